//! `helpdesk department`: the departments tickets are routed to.

use anyhow::Result;
use chrono::Utc;
use clap::Subcommand;
use helpdesk::config::Settings;
use helpdesk::domain::AssignmentStrategy;
use helpdesk::{app, store};

use super::output::{ListFormat, print_table};

#[derive(Subcommand)]
pub enum DepartmentCommand {
    Add {
        name: String,
        #[arg(long, value_enum, default_value = "round_robin")]
        strategy: AssignmentStrategy,
    },
    List {
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
}

pub async fn run(command: DepartmentCommand, settings: &Settings) -> Result<()> {
    let store = app::open_store(settings).await?;
    match command {
        DepartmentCommand::Add { name, strategy } => {
            let department =
                store::agents::create_department(&store, &name, strategy, Utc::now()).await?;
            println!(
                "added department {} ({})",
                department.name, department.assignment_strategy
            );
        }
        DepartmentCommand::List { format } => {
            let departments = store::agents::departments(&store).await?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&departments)?),
                ListFormat::Table => print_table(
                    &["NAME", "STRATEGY"],
                    &departments
                        .iter()
                        .map(|d| vec![d.name.clone(), d.assignment_strategy.clone()])
                        .collect::<Vec<_>>(),
                ),
            }
        }
    }
    Ok(())
}
