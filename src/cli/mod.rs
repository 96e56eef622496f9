//! The command definition: one file per command, each with its arguments and `run`.

mod attachments;
mod bench;
mod department;
mod import;
mod ingest;
mod jobs;
mod migrate;
mod output;
mod seed;
mod ticket;
mod token;
mod user;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use helpdesk::app;
use helpdesk::config::Settings;

#[derive(Parser)]
#[command(
    name = "helpdesk",
    version,
    about = "Email and chat messages become tickets, assigned by rules and answered from chat or the web"
)]
pub struct Cli {
    /// Settings file laid over the built-in defaults (see config/default.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run everything: migrations, the web server, enabled channels and job workers.
    Serve,
    /// Bring the database schema up to date.
    Migrate,
    /// Agents and admins.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Departments tickets are routed to.
    #[command(subcommand)]
    Department(department::DepartmentCommand),
    /// Feed .eml files, mbox files or directories (Maildir) through intake.
    Ingest(ingest::IngestArgs),
    /// Look at tickets.
    #[command(subcommand)]
    Ticket(ticket::TicketCommand),
    /// Add demo data for a first look.
    Seed(seed::SeedArgs),
    /// Benchmarks; see docs/BENCHMARKS.md.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// The job queue.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// Bearer tokens for the JSON API (/api/v1).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Bring tickets in from other systems.
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Where attachment contents are kept.
    #[command(subcommand)]
    Attachments(attachments::AttachmentsCommand),
}

impl Command {
    /// `serve` runs until stopped and logs at `log.level`; the rest are one-shot.
    pub fn is_serve(&self) -> bool {
        matches!(self, Command::Serve)
    }

    pub async fn run(self, settings: Settings) -> Result<()> {
        match self {
            Command::Serve => app::serve::run(settings).await,
            Command::Migrate => migrate::run(&settings).await,
            Command::User(command) => user::run(command, &settings).await,
            Command::Department(command) => department::run(command, &settings).await,
            Command::Ingest(args) => ingest::run(args, &settings).await,
            Command::Ticket(command) => ticket::run(command, &settings).await,
            Command::Seed(args) => seed::run(args, &settings).await,
            Command::Bench(command) => bench::run(command).await,
            Command::Jobs(command) => jobs::run(command, &settings).await,
            Command::Token(command) => token::run(command, &settings).await,
            Command::Import(command) => import::run(command, &settings).await,
            Command::Attachments(command) => attachments::run(command, &settings).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks the definition (conflicting names, bad defaults) only when a command is
    /// parsed; this checks every subcommand at once.
    #[test]
    fn command_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
