//! `helpdesk ingest`: mail files through intake, with a progress line on a terminal.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use helpdesk::config::Settings;
use helpdesk::store::Backend;
use helpdesk::{app, ingest};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
pub struct IngestArgs {
    /// .eml files, mbox files (auto-detected) or directories of them.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Batches in flight at once [default: 4 on SQLite, 8 on PostgreSQL].
    #[arg(long)]
    concurrency: Option<usize>,
    /// Most messages committed together, each still all or nothing [default: 512 on SQLite,
    /// 16 on PostgreSQL, where small batches in parallel do better].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: IngestArgs, settings: &Settings) -> Result<()> {
    let store = app::open_store(settings).await?;
    let intake = app::intake(settings, store)?;
    let files = ingest::expand_paths(&args.files)?;
    let progress = if std::io::stderr().is_terminal() && !args.json {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {pos} messages ({per_sec}) {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let (messages, reader) = ingest::spawn_reader(files, intake.limits().max_message_bytes);
    let backend = intake.store().backend();
    let concurrency = args.concurrency.unwrap_or(default_concurrency(backend));
    let batch_size = args.batch_size.unwrap_or(default_batch_size(backend));
    let summary = ingest::run(&intake, messages, concurrency, batch_size, |summary| {
        progress.set_position(summary.messages);
        progress.set_message(format!(
            "{} new tickets, {} threaded, {} duplicates, {} rejected",
            summary.new_tickets, summary.threaded, summary.duplicates, summary.rejected
        ));
    })
    .await;
    progress.finish_and_clear();
    let read_errors = reader.await.context("the file reader stopped")?;

    if args.json {
        let errors: Vec<String> = read_errors.iter().map(ToString::to_string).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "summary": summary,
                "unreadable_files": errors,
            }))?
        );
    } else {
        println!(
            "{} messages: {} new tickets, {} replies threaded ({} reopened), {} duplicates, {} rejected",
            summary.messages,
            summary.new_tickets,
            summary.threaded,
            summary.reopened,
            summary.duplicates,
            summary.rejected
        );
        if summary.bounces > 0 {
            println!(
                "  {} bounces of mail sent from here joined their tickets",
                summary.bounces
            );
        }
        for (reason, count) in &summary.rejected_reasons {
            println!("  rejected {count}×: {reason}");
        }
        for (origin, reason) in &summary.rejected_examples {
            println!("    {origin}: {reason}");
        }
        for (origin, error) in &summary.failures {
            println!("  FAILED {origin}: {error}");
        }
        if summary.not_taken > 0 {
            println!(
                "  {} not taken in: the database stopped taking them",
                summary.not_taken
            );
        }
        for error in &read_errors {
            println!("  unreadable: {error}");
        }
    }
    if let Some(reason) = &summary.stopped {
        bail!(
            "ingest stopped: {reason}. {} messages were not taken in and the rest were not \
             read; run the same command again once the database works (messages already taken \
             in are skipped as duplicates)",
            summary.not_taken
        );
    }
    if summary.failed > 0 || !read_errors.is_empty() {
        bail!(
            "{} messages could not be stored and {} files could not be read",
            summary.failed,
            read_errors.len()
        );
    }
    Ok(())
}

/// SQLite writes one transaction at a time, so a few batches in flight keep parsing ahead of
/// it; PostgreSQL writes in parallel.
pub fn default_concurrency(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 4,
        Backend::Postgres => 8,
    }
}

/// A shared commit is what makes bulk intake fast. On SQLite a batch holds the one write lock
/// for about a sixth of a second at 512 (docs/BENCHMARKS.md: 512 against 256 and 1,024). On
/// PostgreSQL small batches in parallel share commits without waiting long on each other's
/// thread locks (docs/BENCHMARKS.md: 16 beat 1, 4, 8 and 32 at 8 in flight).
pub fn default_batch_size(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 512,
        Backend::Postgres => 16,
    }
}
