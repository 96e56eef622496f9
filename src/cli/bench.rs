//! `helpdesk bench`: the measurements of docs/BENCHMARKS.md.

use anyhow::{Context, Result};
use clap::Subcommand;
use helpdesk::store::Backend;
use helpdesk::{bench, web};

use super::ingest;

#[derive(Subcommand)]
pub enum BenchCommand {
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
        /// Most messages committed together; 1 for a transaction per message [default: 512 on
        /// SQLite, 16 on PostgreSQL].
        #[arg(long)]
        batch_size: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Writes the corpus of `bench ingest` as an mbox file, to measure `helpdesk ingest`
    /// itself (its memory without the corpus, say).
    Corpus {
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        /// The mbox file to write.
        output: std::path::PathBuf,
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
    /// Jobs per second the queue runs, for a job that does nothing and for reply deliveries
    /// (to a channel that takes each at once), each worker alone on a filled queue.
    Jobs {
        /// Jobs of each kind.
        #[arg(long, default_value_t = 5000)]
        jobs: usize,
        /// A postgres:// server URL to measure PostgreSQL; default: a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long)]
        json: bool,
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
    /// Latency of the reports (page and CSV) on a large database with its history.
    Reports {
        /// Tickets filled into a fresh database, as for `bench web`, with their history.
        #[arg(long, default_value_t = 1_000_000)]
        tickets: i64,
        /// A postgres:// server URL to measure PostgreSQL; default: a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        /// Seconds of measuring per kind of report.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Connections making requests at once.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// Measure on the database --database-url names as it is (adding the history it
        /// lacks), and keep it afterwards.
        #[arg(long, requires = "database_url")]
        reuse: bool,
        #[arg(long)]
        json: bool,
    },
    /// Browsers holding the live event stream of a real server while tickets change: how fast
    /// a change reaches all of them, the pages meanwhile, and the server's memory.
    Live {
        /// Signed-in browsers holding the event stream at once.
        #[arg(long, default_value_t = 1000)]
        viewers: usize,
        /// Ticket changes made through the API while they listen.
        #[arg(long, default_value_t = 50)]
        changes: usize,
        /// Milliseconds between two changes.
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        /// Tickets in the database (filled straight in SQL).
        #[arg(long, default_value_t = 10_000)]
        tickets: i64,
        /// A postgres:// server URL to measure PostgreSQL; default: a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One or several `serve` instances on one PostgreSQL: pages per second over all of
    /// them, and intake per second split between as many processes.
    Cluster {
        /// Instances started on the database (run once with 1 and once with 2 to compare).
        #[arg(long, default_value_t = 2)]
        instances: usize,
        /// Tickets filled into the database before measuring (straight in SQL).
        #[arg(long, default_value_t = 100_000)]
        tickets: i64,
        /// Generated mails taken in, split between the instances by conversation.
        #[arg(long, default_value_t = 10_000)]
        messages: usize,
        /// Seconds of measuring per kind of page.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Connections making requests at once, over all instances.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// The PostgreSQL server (a scratch database is created on it).
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: BenchCommand) -> Result<()> {
    let outcome = measure(command).await;
    // What the benchmark process itself held at most (servers it started report their own).
    eprintln!(
        "peak RSS of the benchmark process: {:.1} MB",
        web::bench_server::peak_memory_mb()
    );
    outcome
}

async fn measure(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Cluster {
            instances,
            tickets,
            messages,
            seconds,
            concurrency,
            database_url,
            json,
        } => {
            let report = web::bench_cluster::run(&web::bench_cluster::ClusterBench {
                instances,
                tickets,
                messages,
                seconds,
                concurrency,
                database_url,
                program: std::env::current_exe()?,
            })
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{} instance(s), {} tickets, {} connections; intake of {} mails by {} \
                     process(es): {:.1} s, {:.0} messages/s, {} tickets for {} conversations; \
                     instances' peak RSS {:?} MB",
                    report.instances,
                    report.tickets,
                    concurrency,
                    report.messages,
                    report.instances,
                    report.intake_seconds,
                    report.intake_per_second,
                    report.new_tickets,
                    report.conversations,
                    report.rss_peak_mb
                );
                print_pages(&report.pages);
            }
            Ok(())
        }
        BenchCommand::Assign {
            tickets,
            rate,
            database_url,
        } => {
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
        BenchCommand::Jobs {
            jobs,
            database_url,
            json,
        } => {
            let report = bench::jobs(&bench::JobsBench { jobs, database_url }).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "backend {}: {} no-op jobs in {:.2} s, {:.0} jobs/s; {} deliveries in \
                     {:.2} s, {:.0} jobs/s",
                    report.backend,
                    report.jobs,
                    report.noop_seconds,
                    report.noop_jobs_per_second,
                    report.jobs,
                    report.delivery_seconds,
                    report.delivery_jobs_per_second
                );
            }
            Ok(())
        }
        BenchCommand::Web {
            tickets,
            database_url,
            seconds,
            concurrency,
            reuse,
            json,
        } => {
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
                print_pages(&report.pages);
            }
            Ok(())
        }
        BenchCommand::Live {
            viewers,
            changes,
            interval_ms,
            tickets,
            database_url,
            json,
        } => {
            let report = web::bench_live::run(&web::bench_live::LiveBench {
                viewers,
                changes,
                interval: std::time::Duration::from_millis(interval_ms),
                tickets,
                database_url,
                program: std::env::current_exe()?,
            })
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "backend {}: {} viewers, {} changes: {} events delivered, {} missed; \
                     change to browser p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; server RSS \
                     idle {:.1} MB, with the streams {:.1} MB, peak {:.1} MB",
                    report.backend,
                    report.viewers,
                    report.changes,
                    report.deliveries,
                    report.missed,
                    report.p50_ms,
                    report.p99_ms,
                    report.max_ms,
                    report.rss_idle_mb,
                    report.rss_streams_mb,
                    report.rss_peak_mb
                );
                print_pages(&report.pages);
            }
            Ok(())
        }
        BenchCommand::Reports {
            tickets,
            database_url,
            seconds,
            concurrency,
            reuse,
            json,
        } => {
            let report = web::reports::bench::run(&web::reports::bench::ReportBench {
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
                    "backend {}: {} tickets with history (filled in {:.1} s), {} connections",
                    report.backend, report.tickets, report.fill_seconds, report.concurrency
                );
                print_pages(&report.pages);
            }
            Ok(())
        }
        BenchCommand::Corpus { messages, output } => {
            let corpus = helpdesk::corpus::generate(&helpdesk::corpus::CorpusSpec {
                messages,
                ..helpdesk::corpus::CorpusSpec::default()
            });
            let file = std::fs::File::create(&output)
                .with_context(|| format!("cannot create {}", output.display()))?;
            let mut file = std::io::BufWriter::new(file);
            helpdesk::corpus::write_mbox(&corpus, &mut file)
                .and_then(|()| std::io::Write::flush(&mut file))
                .with_context(|| format!("cannot write {}", output.display()))?;
            println!("{} messages written to {}", corpus.len(), output.display());
            Ok(())
        }
        BenchCommand::Ingest {
            messages,
            database_url,
            concurrency,
            batch_size,
            json,
        } => {
            let backend = Backend::of_url(database_url.as_deref().unwrap_or("sqlite:"));
            let report = bench::ingest(&bench::IngestBench {
                messages,
                database_url,
                concurrency: concurrency.unwrap_or(ingest::default_concurrency(backend)),
                batch_size: batch_size.unwrap_or(ingest::default_batch_size(backend)),
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

fn print_pages(pages: &[web::bench::PageLatency]) {
    for page in pages {
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
