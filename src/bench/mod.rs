//! `helpdesk bench ingest`: intake throughput on a generated corpus.

mod jobs;

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::corpus::{self, CorpusSpec};
use crate::ingest::{self, SourceMessage, Summary};
use crate::intake::{Intake, Limits};
use crate::store::blobs::BlobStore;
use crate::store::{self, Backend, Store, StoreError};

pub use self::jobs::{JobsBench, JobsReport, jobs};

#[derive(Debug, Clone)]
pub struct IngestBench {
    pub messages: usize,
    /// Empty for a fresh SQLite file in a temporary directory; a postgres:// URL of a server
    /// on which a scratch database is created (and dropped afterwards).
    pub database_url: Option<String>,
    pub concurrency: usize,
    pub batch_size: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct IngestReport {
    pub backend: String,
    pub messages: usize,
    pub concurrency: usize,
    pub batch_size: usize,
    pub corpus_bytes: usize,
    pub seconds: f64,
    pub messages_per_second: f64,
    pub threads_generated: usize,
    pub summary: Summary,
    pub tickets: i64,
    pub stored_attachment_contents: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot prepare the benchmark: {0}")]
    Setup(String),
}

pub async fn ingest(options: &IngestBench) -> Result<IngestReport, BenchError> {
    let spec = CorpusSpec {
        messages: options.messages,
        ..CorpusSpec::default()
    };
    eprintln!("generating {} messages…", spec.messages);
    let corpus = corpus::generate(&spec);
    let threads_generated = corpus.iter().filter(|mail| mail.starts_thread).count();
    let corpus_bytes = corpus.iter().map(|mail| mail.raw.len()).sum();

    let workdir = tempfile::tempdir().map_err(|error| BenchError::Setup(error.to_string()))?;
    let connections = (options.concurrency as u32).max(2) + 2;
    let (store, scratch) =
        fresh_store(&options.database_url, workdir.path(), connections, "ingest").await?;
    let intake = bench_intake(&store, workdir.path())?;

    let (sender, receiver) = mpsc::channel(1024);
    let feeder = tokio::spawn(async move {
        for (index, mail) in corpus.into_iter().enumerate() {
            let message = SourceMessage {
                origin: format!("generated message {}", index + 1),
                mail: mail.raw.into(),
            };
            if sender.send(message).await.is_err() {
                break;
            }
        }
    });
    eprintln!("taking in on {:?}…", store.backend());
    let started = Instant::now();
    let mut last_report = Instant::now();
    let summary = ingest::run(
        &intake,
        receiver,
        options.concurrency,
        options.batch_size,
        |summary| {
            if last_report.elapsed() > Duration::from_secs(5) {
                last_report = Instant::now();
                eprintln!(
                    "  {} messages, {:.0}/s",
                    summary.messages,
                    summary.messages as f64 / started.elapsed().as_secs_f64()
                );
            }
        },
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    feeder.await.ok();

    let totals = store::tickets::totals(&store).await?;
    let (blobs, _) = store::attachments::blob_totals(&store).await?;
    close(&store, scratch).await?;
    Ok(IngestReport {
        backend: format!("{:?}", store.backend()),
        messages: options.messages,
        concurrency: options.concurrency,
        batch_size: options.batch_size,
        corpus_bytes,
        seconds,
        messages_per_second: summary.messages as f64 / seconds,
        threads_generated,
        tickets: totals.tickets,
        stored_attachment_contents: blobs,
        summary,
    })
}

#[derive(Debug, Clone)]
pub struct AssignBench {
    pub tickets: usize,
    /// New tickets per second during the steady phase.
    pub rate: u32,
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AssignReport {
    pub backend: String,
    pub tickets: usize,
    pub rate: u32,
    /// Intake commit to assignment, over the tickets of the steady phase.
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// Tickets assigned per second when a backlog of `tickets` waits at once.
    pub saturated_jobs_per_second: f64,
}

/// Opens a fresh database for a benchmark: a temporary SQLite file, or a scratch database on
/// the PostgreSQL server of `database_url`. Returns the store and the scratch database to drop.
async fn fresh_store(
    database_url: &Option<String>,
    workdir: &std::path::Path,
    connections: u32,
    name: &str,
) -> Result<(Store, Option<(String, String)>), BenchError> {
    let (url, scratch) = match database_url {
        Some(url) if Backend::of_url(url) == Backend::Postgres => {
            let database = format!("helpdesk_bench_{name}_{}", std::process::id());
            let scratch_url = store::scratch::create_postgres_database(url, &database).await?;
            (scratch_url, Some((url.clone(), database)))
        }
        Some(url) => (url.clone(), None),
        None => (
            format!("sqlite://{}", workdir.join(format!("{name}.db")).display()),
            None,
        ),
    };
    let store = Store::connect(&url, connections).await?;
    store.migrate().await?;
    Ok((store, scratch))
}

/// Closes a benchmark's store and drops the scratch database [`fresh_store`] made for it.
async fn close(store: &Store, scratch: Option<(String, String)>) -> Result<(), BenchError> {
    store.close().await;
    if let Some((server_url, name)) = scratch {
        store::scratch::drop_postgres_database(&server_url, &name).await?;
    }
    Ok(())
}

/// Intake on a benchmark's store, its attachments kept under `workdir`.
fn bench_intake(store: &Store, workdir: &std::path::Path) -> Result<Intake, BenchError> {
    Ok(Intake::new(
        store.clone(),
        BlobStore::local(&workdir.join("attachments"))
            .map_err(|error| BenchError::Setup(error.to_string()))?,
        Limits {
            max_attachment_bytes: 25 << 20,
            max_message_bytes: 50 << 20,
        },
    ))
}

/// The job settings of the default configuration.
fn default_job_settings() -> Result<crate::jobs::JobSettings, BenchError> {
    let settings = crate::config::Settings::load_from(None, Vec::new())
        .map_err(|error| BenchError::Setup(error.to_string()))?;
    Ok(crate::jobs::JobSettings::from_settings(&settings))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Milliseconds from each ticket's creation to its assignment, sorted.
async fn assignment_latencies(store: &Store, first_ticket_id: i64) -> Result<Vec<f64>, BenchError> {
    let pairs: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> = store::on_pool!(store, pool => sqlx::query_as(
            "SELECT t.created_at, e.at FROM tickets t
             JOIN ticket_events e ON e.ticket_id = t.id AND e.kind = 'assignee'
             WHERE t.id >= $1",
        )
        .bind(first_ticket_id)
        .fetch_all(pool)
        .await
        .map_err(StoreError::from))?;
    let mut latencies: Vec<f64> = pairs
        .into_iter()
        .map(|(created, assigned)| {
            (assigned - created).num_microseconds().unwrap_or(0) as f64 / 1000.0
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

async fn assigned_count(store: &Store) -> Result<i64, BenchError> {
    let count = store::on_pool!(store, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM tickets WHERE assignee_id IS NOT NULL",
    )
    .fetch_one(pool)
    .await
    .map_err(StoreError::from))?;
    Ok(count)
}

async fn wait_until_assigned(store: &Store, expected: i64) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last_report = Instant::now();
    while assigned_count(store).await? < expected {
        if last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            eprintln!("  {} of {expected} assigned", assigned_count(store).await?);
        }
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "only {} of {expected} tickets assigned after 10 minutes",
                assigned_count(store).await?
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Time from intake commit to assignment under a steady load, and assignment throughput with
/// a backlog, with the real job workers.
pub async fn assign(options: &AssignBench) -> Result<AssignReport, BenchError> {
    use crate::domain::rules::Action;
    use crate::domain::{AssignmentStrategy, Role};

    let workdir = tempfile::tempdir().map_err(|error| BenchError::Setup(error.to_string()))?;
    let (store, scratch) = fresh_store(&options.database_url, workdir.path(), 16, "assign").await?;
    let now = chrono::Utc::now();
    let team = store::agents::create_department(&store, "Team", AssignmentStrategy::LeastOpen, now)
        .await?;
    // Assignment chooses only people who can act: these sign in with a password.
    let hash = crate::auth::hash_password("bench agents' password")
        .map_err(|error| BenchError::Setup(error.to_string()))?;
    for n in 0..10 {
        store::agents::create_agent(
            &store,
            &store::agents::NewAgent {
                email: &format!("agent{n}@bench.example"),
                name: &format!("Agent {n}"),
                role: Role::Agent,
                password_hash: Some(&hash),
                department_ids: &[team.id],
                identities: &[],
                max_open_tickets: None,
            },
            now,
        )
        .await?;
    }
    store::rules::create(
        &store,
        store::rules::NewRule {
            name: "everything to the team".into(),
            enabled: true,
            conditions: Vec::new(),
            actions: vec![Action::SetDepartment {
                department: team.id,
            }],
            stop: false,
        },
        now,
    )
    .await?;
    let intake = bench_intake(&store, workdir.path())?;
    let corpus = corpus::generate(&CorpusSpec {
        messages: options.tickets * 2,
        reply_ratio: 0.0,
        attachment_ratio: 0.0,
        seed: 7,
    });
    let (steady, backlog) = corpus.split_at(options.tickets);

    let settings = default_job_settings()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(crate::jobs::run(
        store.clone(),
        settings.clone(),
        crate::jobs::deliver::Deliverers::default(),
        intake.committed(),
        stopped,
    ));

    eprintln!(
        "steady load: {} new tickets at {}/s on {:?}…",
        steady.len(),
        options.rate,
        store.backend()
    );
    let interval = Duration::from_secs_f64(1.0 / f64::from(options.rate.max(1)));
    let started = Instant::now();
    let mut in_flight = tokio::task::JoinSet::new();
    for (index, mail) in steady.iter().enumerate() {
        let due = started + interval * index as u32;
        tokio::time::sleep_until(due.into()).await;
        let intake = intake.clone();
        let raw = mail.raw.clone();
        in_flight.spawn(async move { intake.accept_email(raw).await });
    }
    while let Some(result) = in_flight.join_next().await {
        result
            .map_err(|error| BenchError::Setup(error.to_string()))?
            .map_err(|error| BenchError::Setup(error.to_string()))?;
    }
    wait_until_assigned(&store, steady.len() as i64).await?;
    let latencies = assignment_latencies(&store, 0).await?;

    eprintln!(
        "backlog: {} tickets taken in, then assigned at once…",
        backlog.len()
    );
    stop.send(true).ok();
    workers
        .await
        .map_err(|error| BenchError::Setup(error.to_string()))?
        .map_err(|error| BenchError::Setup(error.to_string()))?;
    // With the workers stopped, the backlog is taken in and relayed first, then drained.
    let summary = {
        let (sender, receiver) = mpsc::channel(1024);
        let backlog: Vec<Vec<u8>> = backlog.iter().map(|mail| mail.raw.clone()).collect();
        tokio::spawn(async move {
            for (index, raw) in backlog.into_iter().enumerate() {
                let message = SourceMessage {
                    origin: format!("backlog {index}"),
                    mail: raw.into(),
                };
                if sender.send(message).await.is_err() {
                    break;
                }
            }
        });
        ingest::run(&intake, receiver, 4, 64, |_| {}).await
    };
    if summary.failed > 0 {
        return Err(BenchError::Setup(format!(
            "{} backlog tickets failed",
            summary.failed
        )));
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let drain_started = Instant::now();
    let workers = tokio::spawn(crate::jobs::run(
        store.clone(),
        settings,
        crate::jobs::deliver::Deliverers::default(),
        intake.committed(),
        stopped,
    ));
    wait_until_assigned(&store, (steady.len() + backlog.len()) as i64).await?;
    let drain_seconds = drain_started.elapsed().as_secs_f64();
    eprintln!("drained in {drain_seconds:.2} s; stopping the workers…");
    stop.send(true).ok();
    workers
        .await
        .map_err(|error| BenchError::Setup(error.to_string()))?
        .map_err(|error| BenchError::Setup(error.to_string()))?;
    eprintln!("workers stopped");

    let backend = format!("{:?}", store.backend());
    close(&store, scratch).await?;
    Ok(AssignReport {
        backend,
        tickets: options.tickets,
        rate: options.rate,
        latency_ms_p50: percentile(&latencies, 0.50),
        latency_ms_p99: percentile(&latencies, 0.99),
        latency_ms_max: latencies.last().copied().unwrap_or(0.0),
        saturated_jobs_per_second: backlog.len() as f64 / drain_seconds,
    })
}
