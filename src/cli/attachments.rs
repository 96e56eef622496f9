//! `helpdesk attachments`: where attachment contents are kept.

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use helpdesk::config::Settings;
use helpdesk::store::blobs::{self, BlobStore};

#[derive(Subcommand)]
pub enum AttachmentsCommand {
    /// Copy the contents kept as files under the data directory into another store, skipping
    /// those already there; safe to run again (say after an interruption).
    Migrate {
        /// The store to copy to, as configured in [attachments.s3].
        #[arg(long, value_enum)]
        to: Target,
        /// Copies at a time.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Target {
    S3,
}

pub async fn run(command: AttachmentsCommand, settings: &Settings) -> Result<()> {
    let AttachmentsCommand::Migrate { to, parallel } = command;
    let source = BlobStore::local(&settings.attachments_dir())?;
    let target = match to {
        Target::S3 => BlobStore::s3(&settings.attachments.s3)
            .context("the attachment store in [attachments.s3]")?,
    };
    println!("copying {} to {}", source.name(), target.name());
    let copied = blobs::copy_all(&source, &target, parallel.max(1)).await;
    println!(
        "{} copied, {} already there, {} failed",
        copied.copied,
        copied.present,
        copied.failures.len()
    );
    for failure in &copied.failures {
        eprintln!("not copied: {failure}");
    }
    if !copied.failures.is_empty() {
        anyhow::bail!(
            "{} contents were not copied; run the command again to copy the rest",
            copied.failures.len()
        );
    }
    Ok(())
}
