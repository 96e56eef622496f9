//! `helpdesk jobs`: what the job queue holds.

use anyhow::Result;
use clap::Subcommand;
use helpdesk::config::Settings;
use helpdesk::{app, jobs};

use super::output::{ListFormat, print_table, truncate};

#[derive(Subcommand)]
pub enum JobsCommand {
    /// Jobs, newest first.
    List {
        /// Only jobs in this state: Pending, Running, Done, Failed or Killed.
        #[arg(long)]
        state: Option<String>,
        /// Only jobs of this queue, e.g. helpdesk.deliver.
        #[arg(long)]
        queue: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
}

pub async fn run(command: JobsCommand, settings: &Settings) -> Result<()> {
    let JobsCommand::List {
        state,
        queue,
        limit,
        format,
    } = command;
    let store = app::open_store(settings).await?;
    let filter = jobs::JobQuery {
        queue: queue.as_deref(),
        status: state.as_deref(),
        before: None,
        limit,
    };
    let jobs = jobs::query(&store, &filter).await?;
    match format {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&jobs)?),
        ListFormat::Table => print_table(
            &["ID", "QUEUE", "TICKET", "STATE", "ATTEMPTS", "LAST ERROR"],
            &jobs
                .iter()
                .map(|job| {
                    vec![
                        job.id.clone(),
                        job.queue.clone(),
                        job.ticket
                            .map_or_else(|| "-".to_owned(), |n| format!("#{n}")),
                        job.status.clone(),
                        format!("{}/{}", job.attempts, job.max_attempts),
                        truncate(job.last_error.as_deref().unwrap_or("-"), 60),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
    Ok(())
}
