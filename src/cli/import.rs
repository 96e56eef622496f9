//! `helpdesk import`: tickets from other systems.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use clap::Subcommand;
use helpdesk::config::Settings;
use helpdesk::{app, import_csv};

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Tickets from a CSV file, one per row; see docs/OPERATIONS.md for the columns. Each row is
    /// stored whole or not at all; bad rows are reported with their line and skipped.
    Csv {
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: ImportCommand, settings: &Settings) -> Result<()> {
    match command {
        ImportCommand::Csv { file, json } => csv(&file, json, settings).await,
    }
}

async fn csv(file: &Path, json: bool, settings: &Settings) -> Result<()> {
    let store = app::open_store(settings).await?;
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {} as UTF-8 text", file.display()))?;
    let report = import_csv::import(&store, &text, Utc::now()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} rows: {} tickets imported, {} already imported, {} skipped",
            report.rows,
            report.imported.len(),
            report.already_imported,
            report.skipped.len()
        );
        for row in &report.skipped {
            println!("  line {}: {}", row.line, row.reason);
        }
    }
    if !report.skipped.is_empty() {
        bail!(
            "{} rows were skipped; fix them and import the file again (imported rows are not \
             imported twice)",
            report.skipped.len()
        );
    }
    Ok(())
}
