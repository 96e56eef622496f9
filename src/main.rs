//! The `helpdesk` command line.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use clap::{Args, Parser, Subcommand, ValueEnum};
use helpdesk::channels::{self, email};
use helpdesk::config::{LogFormat, Settings};
use helpdesk::domain::{AssignmentStrategy, MessageKind, Role, Status};
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::store::Backend;
use helpdesk::store::agents::NewAgent;
use helpdesk::store::tickets::{Actor, TicketFilter};
use helpdesk::{accounts, app, auth, bench, ingest, jobs, seed, store, web};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(
    name = "helpdesk",
    version,
    about = "Email and chat messages become tickets, assigned by rules and answered from chat or the web"
)]
struct Cli {
    /// Settings file laid over the built-in defaults (see config/default.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything: migrations, the web server, enabled channels and job workers.
    Serve,
    /// Bring the database schema up to date.
    Migrate,
    /// Agents and admins.
    #[command(subcommand)]
    User(UserCommand),
    /// Departments tickets are routed to.
    #[command(subcommand)]
    Department(DepartmentCommand),
    /// Feed .eml files, mbox files or directories (Maildir) through intake.
    Ingest(IngestArgs),
    /// Look at tickets.
    #[command(subcommand)]
    Ticket(TicketCommand),
    /// Add demo data for a first look.
    Seed {
        /// How many demo tickets to create.
        #[arg(long, default_value_t = 50)]
        tickets: usize,
    },
    /// Benchmarks; see docs/BENCHMARKS.md.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The job queue.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Bearer tokens for the JSON API (/api/v1).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Bring tickets in from other systems.
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a token for an agent; it is printed once and only its hash is stored.
    Create {
        /// The agent the token acts as, by email address.
        #[arg(long)]
        agent: String,
        /// What uses the token, e.g. "CRM sync".
        #[arg(long)]
        name: String,
        /// admin or agent; at most the agent's own role [default: the agent's role].
        #[arg(long, value_parser = parse_role)]
        role: Option<Role>,
    },
    /// Every token, revoked ones included (never the tokens themselves).
    List {
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Revoke a token by its id; it stops working at once.
    Revoke { id: i64 },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Tickets from a CSV file, one per row; see docs/OPERATIONS.md for the columns. Each row is
    /// stored whole or not at all; bad rows are reported with their line and skipped.
    Csv {
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
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

#[derive(Subcommand)]
enum UserCommand {
    /// Add an agent or admin; the password is read from stdin or --password-file (on a
    /// terminal: asked twice, not shown).
    Add(UserAddArgs),
    /// Set a new password, read like `user add`'s; ends the person's web sessions.
    Password {
        email: String,
        /// Read the password from this file's first line instead of stdin.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Disable a person: no sign-in, no working API token, no new tickets; their open
    /// tickets go back to their department's assignment.
    Disable { email: String },
    /// Enable a disabled person again (sign-in and tokens work again).
    Enable { email: String },
    /// List agents and admins.
    List {
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
}

#[derive(Args)]
struct UserAddArgs {
    #[arg(long)]
    email: String,
    #[arg(long)]
    name: String,
    #[arg(long, value_parser = parse_role)]
    role: Role,
    /// A department the agent works in (repeat for several) [default: the default department,
    /// workflow.default_department].
    #[arg(long = "department", value_name = "NAME")]
    departments: Vec<String>,
    /// The agent's Telegram user id, so they can act from the agents' group.
    #[arg(long)]
    telegram_id: Option<String>,
    /// The agent's Discord user id, so they can act from the agents' channel.
    #[arg(long)]
    discord_id: Option<String>,
    /// Most open tickets assigned to the agent at once.
    #[arg(long)]
    max_open_tickets: Option<i64>,
    /// Read the password from this file's first line instead of stdin.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum DepartmentCommand {
    Add {
        name: String,
        #[arg(long, value_parser = parse_strategy, default_value = "round_robin")]
        strategy: AssignmentStrategy,
    },
    List {
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
}

#[derive(Args)]
struct IngestArgs {
    /// .eml files, mbox files (auto-detected) or directories of them.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Batches in flight at once [default: 4 on SQLite, 8 on PostgreSQL].
    #[arg(long)]
    concurrency: Option<usize>,
    /// Most messages committed together, each still all or nothing [default: 256 on SQLite,
    /// 1 on PostgreSQL, where parallel transactions do better].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum TicketCommand {
    List {
        #[arg(long, value_parser = parse_status)]
        status: Option<Status>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    Show {
        /// The ticket number, with or without '#'.
        number: String,
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Answer the customer (delivered on their channel by the job queue), or add a note.
    Reply {
        number: String,
        /// The agent who writes, by email address.
        #[arg(long)]
        agent: String,
        /// An internal note, never sent to the customer.
        #[arg(long)]
        note: bool,
        /// The text; read from stdin when missing.
        #[arg(long)]
        text: Option<String>,
        /// A file to attach (repeat for more); at most `intake.max_attachment_bytes` each.
        #[arg(long = "attach", value_name = "FILE")]
        attach: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Intake throughput on a generated corpus with realistic threading and attachments.
    Ingest {
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        /// A postgres:// server URL to measure PostgreSQL (a scratch database is created);
        /// default: a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        /// Batches in flight at once [default: 4 on SQLite, 8 on PostgreSQL].
        #[arg(long)]
        concurrency: Option<usize>,
        /// Most messages committed together; 1 for a transaction per message [default: 256 on
        /// SQLite, 1 on PostgreSQL].
        #[arg(long)]
        batch_size: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Time from intake commit to assignment under a steady load, and assignments per second
    /// with a backlog, with the real job workers.
    Assign {
        /// Tickets in the steady phase, and again in the backlog.
        #[arg(long, default_value_t = 2000)]
        tickets: usize,
        /// New tickets per second in the steady phase.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// A postgres:// server URL to measure PostgreSQL; default: a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Latency of the ticket list and ticket page on a large database, over loopback.
    Web {
        /// Tickets filled into a fresh database (straight in SQL, one message each).
        #[arg(long, default_value_t = 1_000_000)]
        tickets: i64,
        /// A postgres:// server URL to measure PostgreSQL; default: a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        /// Seconds of measuring per kind of page.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Connections making requests at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Measure on the database --database-url names as it is, filling it only if it
        /// holds fewer tickets, and keep it afterwards (to measure a filled database again).
        #[arg(long, requires = "database_url")]
        reuse: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ListFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ShowFormat {
    Text,
    Json,
}

fn parse_role(value: &str) -> Result<Role, String> {
    value
        .parse()
        .map_err(|error: helpdesk::domain::UnknownValue| error.to_string())
}

fn parse_status(value: &str) -> Result<Status, String> {
    value
        .parse()
        .map_err(|error: helpdesk::domain::UnknownValue| error.to_string())
}

fn parse_strategy(value: &str) -> Result<AssignmentStrategy, String> {
    value
        .parse()
        .map_err(|error: helpdesk::domain::UnknownValue| error.to_string())
}

fn main() -> ExitCode {
    // Before the arguments are read, so `--help | head` ends quietly too.
    end_quietly_on_closed_output(true);
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve) {
        end_quietly_on_closed_output(false);
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("helpdesk: {error}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings, matches!(cli.command, Command::Serve));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("helpdesk: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("helpdesk: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `helpdesk ticket list | head` ends the way Unix tools do when the reader goes away, instead of
/// panicking in `println!` with a backtrace. Rust ignores SIGPIPE by default; this puts back the
/// default action (`quietly`) for one-shot commands only: `serve` must live on if its log pipe
/// closes, so it ignores the signal again (`!quietly`) and sees EPIPE as a write error.
fn end_quietly_on_closed_output(quietly: bool) {
    let action = if quietly {
        libc::SIG_DFL
    } else {
        libc::SIG_IGN
    };
    // SAFETY: called at the start of main, before any other thread exists; it only sets one
    // signal's disposition to a default or ignore.
    unsafe {
        libc::signal(libc::SIGPIPE, action);
    }
}

fn init_logging(settings: &Settings, serving: bool) {
    // One-shot commands report through their own output; their logs stay at warnings unless
    // RUST_LOG asks for more.
    let level = match std::env::var("RUST_LOG") {
        Ok(level) => level,
        Err(_) if serving => settings.log.level.clone(),
        Err(_) => "warn,helpdesk::intake=error".to_owned(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal; a log file or journal gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        // A log that cannot be written (a full disk under a redirected stderr) is dropped: by
        // default the failure is reported with eprintln!, which panics the writing task.
        .log_internal_errors(false);
    match settings.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(command: Command, settings: Settings) -> Result<()> {
    match command {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            app::open_store(&settings).await?;
            println!("database schema is up to date");
            Ok(())
        }
        Command::User(command) => user(command, &settings).await,
        Command::Department(command) => department(command, &settings).await,
        Command::Ingest(args) => ingest_files(args, &settings).await,
        Command::Ticket(command) => ticket(command, &settings).await,
        Command::Seed { tickets } => {
            let store = app::open_store(&settings).await?;
            let intake = app::intake(&settings, store);
            let job_settings = jobs::JobSettings::from_settings(&settings);
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
        Command::Token(command) => token(command, &settings).await,
        Command::Import(ImportCommand::Csv { file, json }) => {
            import_csv(&file, json, &settings).await
        }
        Command::Jobs(JobsCommand::List {
            state,
            queue,
            limit,
            format,
        }) => {
            let store = app::open_store(&settings).await?;
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
        Command::Bench(BenchCommand::Assign {
            tickets,
            rate,
            database_url,
        }) => {
            let report = bench::assign(&bench::AssignBench {
                tickets,
                rate,
                database_url,
            })
            .await?;
            println!(
                "backend {}: {} tickets at {}/s: intake commit to assignment p50 {:.1} ms, \
                 p99 {:.1} ms, max {:.1} ms; backlog of {} drained at {:.0} assignments/s",
                report.backend,
                report.tickets,
                report.rate,
                report.latency_ms_p50,
                report.latency_ms_p99,
                report.latency_ms_max,
                report.tickets,
                report.saturated_jobs_per_second
            );
            Ok(())
        }
        Command::Bench(BenchCommand::Web {
            tickets,
            database_url,
            seconds,
            concurrency,
            reuse,
            json,
        }) => {
            let report = web::bench::run(&web::bench::WebBench {
                tickets,
                database_url,
                seconds,
                concurrency,
                reuse,
            })
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "backend {}: {} tickets (filled in {:.1} s), {} connections",
                    report.backend, report.tickets, report.fill_seconds, report.concurrency
                );
                for page in &report.pages {
                    println!(
                        "  {}: {} requests ({:.0}/s), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                        page.page,
                        page.requests,
                        page.requests_per_second,
                        page.p50_ms,
                        page.p99_ms,
                        page.max_ms
                    );
                }
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Ingest {
            messages,
            database_url,
            concurrency,
            batch_size,
            json,
        }) => {
            let backend = Backend::of_url(database_url.as_deref().unwrap_or("sqlite:"));
            let report = bench::ingest(&bench::IngestBench {
                messages,
                database_url,
                concurrency: concurrency.unwrap_or(default_concurrency(backend)),
                batch_size: batch_size.unwrap_or(default_batch_size(backend)),
            })
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "backend {}: {} messages ({:.1} MB) in {:.2} s = {:.0} messages/s \
                     (concurrency {}, batches of {}); {} tickets for {} generated threads, {} threaded, \
                     {} rejected, {} failed, {} attachment contents stored",
                    report.backend,
                    report.messages,
                    report.corpus_bytes as f64 / 1e6,
                    report.seconds,
                    report.messages_per_second,
                    report.concurrency,
                    report.batch_size,
                    report.tickets,
                    report.threads_generated,
                    report.summary.threaded,
                    report.summary.rejected,
                    report.summary.failed,
                    report.stored_attachment_contents,
                );
            }
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> Result<()> {
    let store = app::open_store(&settings)
        .await
        .context("cannot open the database")?;
    tracing::info!(
        database = %store::redact_password(&settings.database.url),
        "database ready"
    );
    let (stop_jobs, jobs_stop) = tokio::sync::watch::channel(false);
    let mut intake = app::intake(&settings, store.clone());
    if settings.email.enabled {
        let auto_replies = helpdesk::autoreply::AutoReplies::from_settings(&settings)
            .context("email.never_answer")?;
        intake = intake.with_auto_replies(auto_replies);
    }
    let imap = settings.email.enabled.then(|| {
        let mut stop = jobs_stop.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        let (_health, task) = email::start_imap(&settings, intake.clone(), shutdown);
        tracing::info!(
            host = settings.email.imap.host,
            mailbox = settings.email.imap.mailbox,
            "IMAP intake started"
        );
        task
    });
    // Channels that deliver replies join here as they are enabled.
    let mut deliverers = jobs::deliver::Deliverers::default().with_attachments(
        store::attachments::BlobStore::new(settings.attachments_dir()),
    );
    if settings.email.enabled {
        let sender = helpdesk_email::smtp::SmtpSender::new(&email::smtp_settings(&settings))
            .context("the SMTP settings in [email.smtp]")?;
        deliverers = deliverers.with(
            helpdesk::helpdesk_channel::ChannelKind::Email,
            std::sync::Arc::new(sender),
        );
    }
    let telegram = if settings.telegram.enabled {
        let telegram =
            channels::telegram::client(&settings).context("the settings in [telegram]")?;
        deliverers = deliverers.with(
            helpdesk::helpdesk_channel::ChannelKind::Telegram,
            std::sync::Arc::new(telegram.clone()),
        );
        Some(telegram)
    } else {
        None
    };
    let discord = if settings.discord.enabled {
        let discord = channels::discord::client(&settings).context("the settings in [discord]")?;
        deliverers = deliverers.with(
            helpdesk::helpdesk_channel::ChannelKind::Discord,
            std::sync::Arc::new(channels::discord::DiscordDelivery::new(
                discord.clone(),
                store.clone(),
            )),
        );
        Some(discord)
    } else {
        None
    };
    let desk = channels::ChatDesk::new(intake.clone(), deliverers.clone(), &settings.email.address);
    let telegram = match telegram {
        Some(telegram) => {
            let mut stop = jobs_stop.clone();
            let shutdown = async move {
                let _ = stop.wait_for(|stop| *stop).await;
            };
            Some(match settings.telegram.mode {
                helpdesk::config::TelegramMode::Polling => {
                    tracing::info!(
                        api = settings.telegram.api_url,
                        "Telegram long polling started"
                    );
                    channels::telegram::start(telegram, desk.clone(), store.clone(), shutdown)
                }
                helpdesk::config::TelegramMode::Webhook => {
                    let listen = settings.telegram.webhook_listen;
                    let listener = tokio::net::TcpListener::bind(listen)
                        .await
                        .with_context(|| format!("Telegram webhook listener on {listen}"))?;
                    tracing::info!(
                        %listen,
                        url = settings.telegram.webhook_url,
                        "Telegram webhook listening"
                    );
                    channels::telegram::start_webhook(
                        telegram,
                        desk.clone(),
                        store.clone(),
                        listener,
                        shutdown,
                    )
                }
            })
        }
        None => None,
    };
    let discord = discord.map(|discord| {
        let mut stop = jobs_stop.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        tracing::info!(
            agents_channel = settings.discord.agents_channel_id,
            "Discord gateway started"
        );
        channels::discord::start(discord, desk.clone(), store.clone(), shutdown)
    });
    // Other instances and the pages read from here which channels run where.
    let instance =
        store::instances::Instance::this_process(&app::channels_enabled(&settings), Utc::now());
    store::instances::register(&store, &instance)
        .await
        .context("cannot register this instance in the database")?;
    let heartbeat = tokio::spawn(beat(store.clone(), instance.clone(), jobs_stop.clone()));
    let job_settings = jobs::JobSettings::from_settings(&settings);
    let workers = tokio::spawn(jobs::run(
        store.clone(),
        job_settings,
        deliverers,
        intake.committed(),
        jobs_stop,
    ));
    let state = web::AppState::new(store.clone(), web::WebConfig::from_settings(&settings));
    let served = web::serve(state, settings.web.listen, shutdown_signal())
        .await
        .with_context(|| format!("web server on {}", settings.web.listen));
    // Running jobs finish; queued ones stay in the database for the next start.
    stop_jobs.send(true).ok();
    match workers.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "job workers stopped with an error"),
        Err(error) => tracing::error!(%error, "job workers panicked"),
    }
    if let Some(imap) = imap
        && let Err(error) = imap.await
    {
        tracing::error!(%error, "IMAP intake panicked");
    }
    if let Some(telegram) = telegram
        && let Err(error) = telegram.await
    {
        tracing::error!(%error, "Telegram polling panicked");
    }
    if let Some(discord) = discord
        && let Err(error) = discord.await
    {
        tracing::error!(%error, "Discord gateway panicked");
    }
    if let Err(error) = heartbeat.await {
        tracing::error!(%error, "instance heartbeat panicked");
    }
    if let Err(error) = store::instances::remove(&store, &instance.id).await {
        tracing::warn!(%error, "cannot remove this instance's row; it expires by itself");
    }
    served?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Moves this instance's heartbeat on every few seconds until `stop` turns true.
async fn beat(
    store: store::Store,
    instance: store::instances::Instance,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(store::instances::HEARTBEAT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            _ = every.tick() => {}
        }
        if let Err(error) = store::instances::heartbeat(&store, &instance, Utc::now()).await {
            tracing::warn!(%error, "instance heartbeat");
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

async fn user(command: UserCommand, settings: &Settings) -> Result<()> {
    let store = app::open_store(settings).await?;
    match command {
        UserCommand::Add(args) => {
            let password = read_password(args.password_file.as_deref())?;
            let password_hash = auth::hash_password(&password)?;
            let mut department_ids = Vec::new();
            for name in &args.departments {
                match store::agents::department_by_name(&store, name).await? {
                    Some(department) => department_ids.push(department.id),
                    None => bail!(
                        "no department named {name:?}; add it with `helpdesk department add {name:?}`"
                    ),
                }
            }
            let department_ids = accounts::departments_or_default(
                &store,
                department_ids,
                settings.workflow.default_department(),
            )
            .await?;
            let mut identities = Vec::new();
            if let Some(id) = &args.telegram_id {
                identities.push((ChannelKind::Telegram, id.as_str()));
            }
            if let Some(id) = &args.discord_id {
                identities.push((ChannelKind::Discord, id.as_str()));
            }
            let id = store::agents::create_agent(
                &store,
                &NewAgent {
                    email: &args.email,
                    name: &args.name,
                    role: args.role,
                    password_hash: Some(&password_hash),
                    department_ids: &department_ids,
                    identities: &identities,
                    max_open_tickets: args.max_open_tickets,
                },
                Utc::now(),
            )
            .await?;
            println!(
                "added {} {} <{}> (id {id})",
                args.role, args.name, args.email
            );
        }
        UserCommand::Password {
            email,
            password_file,
        } => {
            let id = agent_by_email(&store, &email).await?;
            let password = read_password(password_file.as_deref())?;
            let account = accounts::set_password(&store, id, &password, None).await?;
            println!(
                "new password set for {} <{}>; their web sessions have ended",
                account.name, account.email
            );
        }
        UserCommand::Disable { email } => {
            let id = agent_by_email(&store, &email).await?;
            let handed_back =
                accounts::set_active(&store, id, false, Actor::System, Utc::now()).await?;
            println!(
                "disabled {email}: signed out, API tokens refused, no new tickets; {handed_back} \
                 open tickets go back to assignment (a running `serve` assigns them)"
            );
        }
        UserCommand::Enable { email } => {
            let id = agent_by_email(&store, &email).await?;
            accounts::set_active(&store, id, true, Actor::System, Utc::now()).await?;
            println!("enabled {email}: sign-in and API tokens work again");
        }
        UserCommand::List { format } => {
            let agents = store::agents::list_agents(&store).await?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&agents)?),
                ListFormat::Table => {
                    let rows: Vec<Vec<String>> = agents
                        .iter()
                        .map(|agent| {
                            vec![
                                agent.email.clone(),
                                agent.name.clone(),
                                agent.role.clone(),
                                agent.departments.clone(),
                                agent.identities.clone(),
                                if agent.available { "yes" } else { "no" }.to_owned(),
                                if agent.active { "yes" } else { "no" }.to_owned(),
                            ]
                        })
                        .collect();
                    print_table(
                        &[
                            "EMAIL",
                            "NAME",
                            "ROLE",
                            "DEPARTMENTS",
                            "CHAT",
                            "AVAILABLE",
                            "ACTIVE",
                        ],
                        &rows,
                    );
                }
            }
        }
    }
    Ok(())
}

async fn token(command: TokenCommand, settings: &Settings) -> Result<()> {
    let store = app::open_store(settings).await?;
    match command {
        TokenCommand::Create { agent, name, role } => {
            let agents = store::agents::list_agents(&store).await?;
            let wanted = agent.trim().to_lowercase();
            let Some(owner) = agents.iter().find(|a| a.email == wanted) else {
                bail!("no agent with email {agent}; add one with `helpdesk user add`");
            };
            let role = match role {
                Some(role) => role,
                None => owner.role.parse().unwrap_or(Role::Agent),
            };
            let made = store::api_tokens::create(&store, owner.id, &name, role, Utc::now()).await?;
            eprintln!(
                "token #{} for {} ({} rights); it is shown only now:",
                made.info.id, made.info.agent_email, made.info.role
            );
            println!("{}", made.token);
        }
        TokenCommand::List { format } => {
            let tokens = store::api_tokens::list(&store).await?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&tokens)?),
                ListFormat::Table => print_table(
                    &[
                        "ID",
                        "NAME",
                        "PREFIX",
                        "AGENT",
                        "ROLE",
                        "CREATED",
                        "LAST USED",
                        "REVOKED",
                    ],
                    &tokens
                        .iter()
                        .map(|t| {
                            let when = |at: Option<chrono::DateTime<Utc>>| {
                                at.map_or("-".to_owned(), |at| {
                                    at.format("%Y-%m-%d %H:%M").to_string()
                                })
                            };
                            vec![
                                t.id.to_string(),
                                t.name.clone(),
                                format!("{}…", t.prefix),
                                t.agent_email.clone(),
                                t.role.clone(),
                                when(Some(t.created_at)),
                                when(t.last_used_at),
                                when(t.revoked_at),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
        TokenCommand::Revoke { id } => {
            store::api_tokens::revoke(&store, id, Utc::now()).await?;
            println!("token #{id} revoked");
        }
    }
    Ok(())
}

async fn import_csv(file: &Path, json: bool, settings: &Settings) -> Result<()> {
    let store = app::open_store(settings).await?;
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {} as UTF-8 text", file.display()))?;
    let report = helpdesk::import_csv::import(&store, &text, Utc::now()).await?;
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

/// The agent with this address, or an error that says how to find them.
async fn agent_by_email(store: &store::Store, email: &str) -> Result<i64> {
    match store::agents::agent_id_by_email(store, email).await? {
        Some(id) => Ok(id),
        None => bail!("no agent with email {email}; `helpdesk user list` shows them all"),
    }
}

/// The first line of `file`, or of stdin; on a terminal it is asked twice without being shown.
fn read_password(file: Option<&Path>) -> Result<String> {
    let line = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read password file {}", path.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .to_owned(),
        None if std::io::stdin().is_terminal() => {
            let first = rpassword::prompt_password("Password: ")
                .context("cannot read the password from the terminal")?;
            let second = rpassword::prompt_password("The same password again: ")
                .context("cannot read the password from the terminal")?;
            if first != second {
                bail!("the two passwords differ; nothing was changed");
            }
            first
        }
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from stdin")?;
            line
        }
    };
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password given: pipe it to stdin or use --password-file FILE");
    }
    Ok(password)
}

async fn department(command: DepartmentCommand, settings: &Settings) -> Result<()> {
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

async fn ingest_files(args: IngestArgs, settings: &Settings) -> Result<()> {
    let store = app::open_store(settings).await?;
    let intake = app::intake(settings, store);
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
fn default_concurrency(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 4,
        Backend::Postgres => 8,
    }
}

/// On SQLite a shared commit is what makes bulk intake fast; on PostgreSQL parallel
/// single-message transactions are faster than batches that wait on each other's locks.
fn default_batch_size(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 256,
        Backend::Postgres => 1,
    }
}

fn parse_ticket_number(text: &str) -> Result<i64> {
    text.trim()
        .trim_start_matches('#')
        .parse()
        .with_context(|| format!("{text:?} is not a ticket number such as 1042 or #1042"))
}

async fn ticket(command: TicketCommand, settings: &Settings) -> Result<()> {
    let store = app::open_store(settings).await?;
    match command {
        TicketCommand::List {
            status,
            limit,
            format,
        } => {
            let tickets = store::tickets::list(&store, &TicketFilter { status, limit }).await?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&tickets)?),
                ListFormat::Table => {
                    let rows: Vec<Vec<String>> = tickets
                        .iter()
                        .map(|t| {
                            vec![
                                format!("#{}", t.number),
                                t.status.to_string(),
                                t.priority.to_string(),
                                truncate(&t.subject, 48),
                                truncate(&t.customer, 32),
                                t.assignee.clone().unwrap_or_else(|| "-".into()),
                                t.department.clone().unwrap_or_else(|| "-".into()),
                                t.channel.clone(),
                                t.updated_at.format("%Y-%m-%d %H:%M").to_string(),
                            ]
                        })
                        .collect();
                    print_table(
                        &[
                            "NUMBER",
                            "STATUS",
                            "PRIORITY",
                            "SUBJECT",
                            "CUSTOMER",
                            "ASSIGNEE",
                            "DEPARTMENT",
                            "CHANNEL",
                            "UPDATED",
                        ],
                        &rows,
                    );
                }
            }
        }
        TicketCommand::Reply {
            number,
            agent,
            note,
            text,
            attach,
        } => {
            let number = parse_ticket_number(&number)?;
            let Some(agent_id) = store::agents::agent_id_by_email(&store, &agent).await? else {
                bail!("no agent with email {agent}");
            };
            let text = match text {
                Some(text) => text,
                None => {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                        .context("cannot read the reply from stdin")?;
                    text
                }
            };
            if note && !attach.is_empty() {
                bail!("files can be attached to replies, not to notes");
            }
            let blobs = store::attachments::BlobStore::new(settings.attachments_dir());
            let mut files = Vec::new();
            for path in &attach {
                let content = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                if content.len() as u64 > settings.intake.max_attachment_bytes {
                    bail!(
                        "{} is {} bytes, more than intake.max_attachment_bytes ({})",
                        path.display(),
                        content.len(),
                        settings.intake.max_attachment_bytes
                    );
                }
                let filename = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "attachment".to_owned());
                files.push(helpdesk::ops::AttachedFile {
                    content_type: store::attachments::content_type_for(&filename).to_owned(),
                    size: i64::try_from(content.len()).unwrap_or(i64::MAX),
                    sha256: blobs.put(&content).context("cannot store the attachment")?,
                    filename,
                });
            }
            let external_id =
                helpdesk::ops::new_mail_message_id(&settings.email.address, number.into());
            let stored = helpdesk::ops::send_reply_with_files(
                &store,
                &store::outbound::NewReply {
                    number,
                    agent_id,
                    text: &text,
                    kind: if note {
                        MessageKind::Internal
                    } else {
                        MessageKind::Public
                    },
                    external_id: Some(&external_id),
                    channels_here: &app::channels_enabled(settings),
                    now: Utc::now(),
                },
                &files,
            )
            .await?;
            if stored.to_deliver {
                println!("reply to #{number} queued for delivery");
            } else {
                println!("note added to #{number}");
            }
        }
        TicketCommand::Show { number, format } => {
            let number = parse_ticket_number(&number)?;
            let Some(ticket) = store::tickets::detail(&store, number).await? else {
                bail!("no ticket #{number}");
            };
            match format {
                ShowFormat::Json => println!("{}", serde_json::to_string_pretty(&ticket)?),
                ShowFormat::Text => {
                    let t = &ticket.summary;
                    println!("#{} {}", t.number, t.subject);
                    println!(
                        "status {} · priority {} · department {} · assignee {} · customer {} · via {}",
                        t.status,
                        t.priority,
                        t.department.as_deref().unwrap_or("-"),
                        t.assignee.as_deref().unwrap_or("-"),
                        t.customer,
                        t.channel
                    );
                    println!("created {} · updated {}", t.created_at, t.updated_at);
                    for message in &ticket.messages {
                        println!(
                            "\n--- {} {} {} from {} at {}",
                            message.direction,
                            message.kind,
                            message.channel,
                            message.author,
                            message.created_at.format("%Y-%m-%d %H:%M")
                        );
                        println!("{}", message.body_text.trim_end());
                        if let Some(quoted) = &message.quoted_text {
                            println!(
                                "[{} quoted lines; --format json shows them]",
                                quoted.lines().count()
                            );
                        }
                        if let Some(status) = &message.delivery_status {
                            match &message.delivery_error {
                                Some(error) if status == "failed" => {
                                    println!("[delivery failed: {error}]")
                                }
                                _ => println!("[delivery {status}]"),
                            }
                        }
                        for attachment in &message.attachments {
                            match &attachment.rejected_reason {
                                None => println!(
                                    "[attachment {} ({}, {} bytes)]",
                                    attachment.filename, attachment.content_type, attachment.size
                                ),
                                Some(reason) => println!(
                                    "[attachment {} ({} bytes) {reason}]",
                                    attachment.filename, attachment.size
                                ),
                            }
                        }
                    }
                    println!("\nhistory:");
                    for event in &ticket.history {
                        let by = match (event.kind.as_str(), event.actor.as_str()) {
                            ("created", _) => String::new(),
                            (_, "system") => " — automatically".to_owned(),
                            (_, actor) => format!(" — {actor}"),
                        };
                        println!(
                            "  {} {}{by}{}",
                            event.at.format("%Y-%m-%d %H:%M"),
                            event.text,
                            event
                                .note()
                                .map(|reason| format!(" ({reason})"))
                                .unwrap_or_default()
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
