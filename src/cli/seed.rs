//! `helpdesk seed`: demo data for a first look.

use anyhow::Result;
use clap::Args;
use helpdesk::config::Settings;
use helpdesk::{app, jobs, seed};

#[derive(Args)]
pub struct SeedArgs {
    /// How many demo tickets to create.
    #[arg(long, default_value_t = 50)]
    tickets: usize,
}

pub async fn run(SeedArgs { tickets }: SeedArgs, settings: &Settings) -> Result<()> {
    let store = app::open_store(settings).await?;
    let intake = app::intake(settings, store)?;
    let job_settings = jobs::JobSettings::from_settings(settings);
    let report = seed::seed(&intake, tickets, &job_settings).await?;
    println!(
        "seeded {} departments, {} routing rules, {} agents, {} tickets with {} \
         messages; {} of the tickets are assigned",
        report.departments_created,
        report.rules_created,
        report.agents_created,
        report.tickets_created,
        report.messages,
        report.tickets_assigned
    );
    if !report.sign_ins.is_empty() {
        let login = format!("{}/login", settings.web.public_url.trim_end_matches('/'));
        println!(
            "\nSign in at {login} (with `serve` running) as a demo agent; the passwords \
             are shown only now:"
        );
        for demo in &report.sign_ins {
            println!(
                "  {:<30} {}  ({}; {})",
                demo.email, demo.password, demo.name, demo.departments
            );
        }
        println!(
            "Change one with `helpdesk user password EMAIL`; an admin of your own comes \
             from `helpdesk user add --role admin`."
        );
    }
    Ok(())
}
