//! `helpdesk bench ingest`: intake throughput on a generated corpus.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::corpus::{self, CorpusSpec};
use crate::ingest::{self, SourceMessage, Summary};
use crate::intake::{Intake, Limits};
use crate::store::attachments::BlobStore;
use crate::store::{self, Backend, Store, StoreError};

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
    let (url, scratch) = match &options.database_url {
        Some(url) if Backend::of_url(url) == Backend::Postgres => {
            let name = format!("helpdesk_bench_{}", std::process::id());
            let scratch_url = store::scratch::create_postgres_database(url, &name).await?;
            (scratch_url, Some((url.clone(), name)))
        }
        Some(url) => (url.clone(), None),
        None => (
            format!("sqlite://{}", workdir.path().join("bench.db").display()),
            None,
        ),
    };
    let store = Store::connect(&url, (options.concurrency as u32).max(2) + 2).await?;
    store.migrate().await?;
    let intake = Intake::new(
        store.clone(),
        BlobStore::new(workdir.path().join("attachments")),
        Limits {
            max_attachment_bytes: 25 << 20,
            max_message_bytes: 50 << 20,
        },
    );

    let (sender, receiver) = mpsc::channel(1024);
    let feeder = tokio::spawn(async move {
        for (index, mail) in corpus.into_iter().enumerate() {
            let message = SourceMessage {
                origin: format!("generated message {}", index + 1),
                raw: mail.raw,
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
    store.close().await;
    if let Some((server_url, name)) = scratch {
        store::scratch::drop_postgres_database(&server_url, &name).await?;
    }
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
