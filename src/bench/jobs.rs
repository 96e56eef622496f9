//! `helpdesk bench jobs`: how many jobs a second the queue runs, for a job that does nothing
//! and for reply deliveries, each worker running alone on a queue filled beforehand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use helpdesk_channel::{ChannelKind, Deliver, Delivered, DeliveryError, OutboundMessage};
use serde::{Deserialize, Serialize};

use super::{BenchError, bench_intake, close, default_job_settings, fresh_store};
use crate::corpus::{self, CorpusSpec};
use crate::domain::{MessageKind, Role};
use crate::jobs::deliver::{DeliverMessage, Deliverers};
use crate::jobs::{Job, JobBatch, JobContext, JobError, JobSettings};
use crate::store::jobs::About;
use crate::store::outbound::NewReply;
use crate::store::{self, Store, StoreError};

#[derive(Debug, Clone)]
pub struct JobsBench {
    /// Jobs of each kind.
    pub jobs: usize,
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct JobsReport {
    pub backend: String,
    pub jobs: usize,
    pub noop_seconds: f64,
    pub noop_jobs_per_second: f64,
    pub delivery_seconds: f64,
    pub delivery_jobs_per_second: f64,
}

/// A job that does nothing: what is left is the queue's own work (fetch, run, acknowledge).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Noop {
    n: usize,
}

impl Job for Noop {
    const QUEUE: &'static str = "helpdesk.bench_noop";
    const MAX_ATTEMPTS: usize = 1;

    async fn run(self, _context: &JobContext) -> Result<(), JobError> {
        Ok(())
    }

    fn about(&self) -> Option<About> {
        None
    }
}

/// Takes every reply at once, so a delivery job measures the queue and the store around the
/// channel (the reply read, its recipient, the sent mark and its history event).
struct Accepting;

impl Deliver for Accepting {
    fn channel(&self) -> ChannelKind {
        ChannelKind::Email
    }

    async fn deliver(&self, message: &OutboundMessage) -> Result<Delivered, DeliveryError> {
        Ok(Delivered {
            external_id: message
                .external_id
                .clone()
                .unwrap_or_else(|| "bench".to_owned()),
        })
    }
}

pub async fn jobs(options: &JobsBench) -> Result<JobsReport, BenchError> {
    let workdir = tempfile::tempdir().map_err(|error| BenchError::Setup(error.to_string()))?;
    let (store, scratch) = fresh_store(&options.database_url, workdir.path(), 16, "jobs").await?;
    let settings = default_job_settings()?;

    eprintln!(
        "queueing {} no-op jobs on {:?}…",
        options.jobs,
        store.backend()
    );
    let mut tx = store.begin_write().await?;
    let mut batch = JobBatch::default();
    let now = Utc::now();
    for n in 0..options.jobs {
        Noop { n }.add_to(&mut batch, &format!("noop:{n}"), now)?;
    }
    batch.push(&mut tx).await?;
    tx.commit().await?;
    let noop_seconds =
        drain::<Noop>(&store, &settings, Deliverers::default(), options.jobs).await?;

    eprintln!("taking in {} tickets and replying to each…", options.jobs);
    queue_replies(&store, workdir.path(), options.jobs).await?;
    let deliverers = Deliverers::default().with(ChannelKind::Email, Arc::new(Accepting));
    let delivery_seconds =
        drain::<DeliverMessage>(&store, &settings, deliverers, options.jobs).await?;
    let sent: i64 = store::on_pool!(&store, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages WHERE delivery_status = 'sent'",
    )
    .fetch_one(pool)
    .await
    .map_err(StoreError::from))?;
    if sent != options.jobs as i64 {
        return Err(BenchError::Setup(format!(
            "{sent} of {} replies sent",
            options.jobs
        )));
    }

    let backend = format!("{:?}", store.backend());
    close(&store, scratch).await?;
    Ok(JobsReport {
        backend,
        jobs: options.jobs,
        noop_seconds,
        noop_jobs_per_second: options.jobs as f64 / noop_seconds,
        delivery_seconds,
        delivery_jobs_per_second: options.jobs as f64 / delivery_seconds,
    })
}

/// Runs `J`'s worker alone until `expected` of its jobs are done; returns the seconds taken.
async fn drain<J: Job>(
    store: &Store,
    settings: &JobSettings,
    deliverers: Deliverers,
    expected: usize,
) -> Result<f64, BenchError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let worker = tokio::spawn(crate::jobs::run_only::<J>(
        store.clone(),
        settings.clone(),
        deliverers,
        stopped,
    ));
    let deadline = started + Duration::from_secs(600);
    let mut last_report = Instant::now();
    loop {
        let done = done_jobs(store, J::QUEUE).await?;
        if done >= expected as i64 {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            eprintln!("  {done} of {expected} {} jobs done", J::QUEUE);
        }
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "only {done} of {expected} {} jobs done after 10 minutes",
                J::QUEUE
            )));
        }
        // Often enough for a tenth of a second's precision, rarely enough that the count
        // (a scan of the job table) takes little from the workers.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.send(true).ok();
    worker
        .await
        .map_err(|error| BenchError::Setup(error.to_string()))?
        .map_err(|error| BenchError::Setup(error.to_string()))?;
    Ok(seconds)
}

async fn done_jobs(store: &Store, queue: &str) -> Result<i64, BenchError> {
    Ok(store::jobs::counts_by_queue(store)
        .await?
        .into_iter()
        .filter(|(job_type, status, _)| job_type == queue && status == "Done")
        .map(|(_, _, count)| count)
        .sum())
}

/// Takes in `count` new mail tickets and stores an agent's reply on each, which queues its
/// delivery.
async fn queue_replies(
    store: &Store,
    workdir: &std::path::Path,
    count: usize,
) -> Result<(), BenchError> {
    let now = Utc::now();
    let agent: i64 = store::agents::create_agent(
        store,
        &store::agents::NewAgent {
            email: "agent@bench.example",
            name: "Agent",
            role: Role::Agent,
            password_hash: None,
            department_ids: &[],
            identities: &[],
            max_open_tickets: None,
        },
        now,
    )
    .await?;
    let intake = bench_intake(store, workdir)?;
    let corpus = corpus::generate(&CorpusSpec {
        messages: count,
        reply_ratio: 0.0,
        attachment_ratio: 0.0,
        seed: 11,
    });
    for mail in corpus {
        intake
            .accept_email(mail.raw)
            .await
            .map_err(|error| BenchError::Setup(error.to_string()))?;
    }
    let numbers: Vec<i64> = store::on_pool!(store, pool => sqlx::query_scalar(
        "SELECT number FROM tickets ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .map_err(StoreError::from))?;
    for number in numbers {
        let external_id =
            crate::domain::new_mail_message_id("support@bench.example", number.into());
        crate::ops::send_reply(
            store,
            &NewReply {
                number: number.into(),
                agent_id: agent,
                text: "Thank you, this is fixed now.",
                kind: MessageKind::Public,
                external_id: Some(&external_id),
                channels_here: &[ChannelKind::Email],
                now: Utc::now(),
            },
        )
        .await?;
    }
    Ok(())
}
