//! `helpdesk bench cluster`: one or several `serve` instances on one PostgreSQL database, as
//! behind a reverse proxy: pages per second with the connections spread over the instances,
//! and intake per second with the mail split between as many `ingest` processes by
//! conversation (as mailboxes are split between the instances that hold them), while the
//! instances' job workers route and assign what comes in.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use super::bench::{BenchDatabase, PageLatency, WebBenchError, measure};
use super::bench_server::Server;
use crate::corpus::{self, CorpusSpec};
use crate::store::Backend;

#[derive(Debug, Clone)]
pub struct ClusterBench {
    pub instances: usize,
    /// Tickets filled into the database before measuring (as `bench web` fills them).
    pub tickets: i64,
    /// Generated mails taken in (as `bench ingest` generates them).
    pub messages: usize,
    /// Seconds of measuring per kind of page.
    pub seconds: u64,
    /// Connections making requests at once, over all instances.
    pub concurrency: usize,
    /// A postgres:// server URL; a scratch database is made on it and dropped afterwards.
    pub database_url: String,
    /// The `helpdesk` program to run as the instances and the intake processes.
    pub program: PathBuf,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterReport {
    pub instances: usize,
    pub tickets: i64,
    pub pages: Vec<PageLatency>,
    pub messages: usize,
    pub intake_seconds: f64,
    pub intake_per_second: f64,
    /// Conversations in the mail, and the tickets they became (the same when none split).
    pub conversations: usize,
    pub new_tickets: i64,
    /// Peak resident memory of each instance, in MB.
    pub rss_peak_mb: Vec<f64>,
}

pub async fn run(bench: &ClusterBench) -> Result<ClusterReport, WebBenchError> {
    if Backend::of_url(&bench.database_url) != Backend::Postgres {
        return Err(WebBenchError::Failed(
            "a cluster shares one PostgreSQL database: --database-url postgres://…".into(),
        ));
    }
    let instances = bench.instances.max(1);
    let database = BenchDatabase::open(
        Some(&bench.database_url),
        false,
        "cluster",
        bench.tickets,
        4,
    )
    .await?;
    let workdir = tempfile::tempdir()?;
    let mut servers = Vec::with_capacity(instances);
    for instance in 0..instances {
        let data = workdir.path().join(format!("instance-{instance}"));
        servers.push(Server::start(&bench.program, &database.url, &data).await?);
    }
    let outcome = measure_cluster(bench, &database, &servers, workdir.path()).await;
    let rss_peak_mb = servers
        .iter()
        .map(|server| server.memory_mb("VmHWM:"))
        .collect();
    for server in servers {
        server.stop().await;
    }
    database.close().await?;
    let (pages, intake_seconds, conversations, new_tickets) = outcome?;
    Ok(ClusterReport {
        instances,
        tickets: bench.tickets,
        pages,
        messages: bench.messages,
        intake_seconds,
        intake_per_second: bench.messages as f64 / intake_seconds,
        conversations,
        new_tickets,
        rss_peak_mb,
    })
}

async fn measure_cluster(
    bench: &ClusterBench,
    database: &BenchDatabase,
    servers: &[Server],
    workdir: &std::path::Path,
) -> Result<(Vec<PageLatency>, f64, usize, i64), WebBenchError> {
    let addresses: Vec<_> = servers.iter().map(|server| server.address).collect();
    let cookie = database.admin_cookie().await?;
    let numbers: Vec<String> = (0..500)
        .map(|_| {
            format!(
                "/tickets/{}",
                1000 + fastrand::i64(1..=bench.tickets.max(1))
            )
        })
        .collect();
    let kinds = [
        ("ticket list, first page", vec!["/tickets".to_owned()]),
        ("ticket page", numbers),
    ];
    let mut pages = Vec::new();
    for (page, paths) in kinds {
        measure(&addresses, &cookie, addresses.len(), 1, page, paths.clone()).await?;
        pages.push(
            measure(
                &addresses,
                &cookie,
                bench.concurrency,
                bench.seconds,
                page,
                paths,
            )
            .await?,
        );
    }

    // The mail, split by conversation into one folder per intake process.
    let corpus = corpus::generate(&CorpusSpec {
        messages: bench.messages,
        ..CorpusSpec::default()
    });
    let conversations = corpus.iter().filter(|mail| mail.starts_thread).count();
    let folders: Vec<PathBuf> = (0..servers.len())
        .map(|k| workdir.join(format!("mail-{k}")))
        .collect();
    for folder in &folders {
        std::fs::create_dir_all(folder)?;
    }
    for (index, mail) in corpus.iter().enumerate() {
        let folder = &folders[mail.thread % folders.len()];
        std::fs::write(folder.join(format!("{index:07}.eml")), &mail.raw)?;
    }
    drop(corpus);
    let started = Instant::now();
    let mut intakes = Vec::with_capacity(folders.len());
    for (k, folder) in folders.iter().enumerate() {
        intakes.push(
            std::process::Command::new(&bench.program)
                .arg("ingest")
                .arg("--json")
                .arg(folder)
                .env("HELPDESK_DATABASE__URL", &database.url)
                .env("HELPDESK_DATA_DIR", workdir.join(format!("instance-{k}")))
                .env("HELPDESK_LOG__LEVEL", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()?,
        );
    }
    let mut new_tickets = 0;
    for intake in intakes {
        let output = tokio::task::spawn_blocking(move || intake.wait_with_output())
            .await
            .map_err(|error| WebBenchError::Failed(error.to_string()))??;
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| WebBenchError::Failed(format!("ingest's report: {error}")))?;
        if !output.status.success() {
            return Err(WebBenchError::Failed(format!(
                "ingest ended with {}: {report}",
                output.status
            )));
        }
        let summary = &report["summary"];
        if summary["rejected"].as_u64() != Some(0) || summary["failed"].as_u64() != Some(0) {
            return Err(WebBenchError::Failed(format!(
                "ingest did not take every mail: {summary}"
            )));
        }
        new_tickets += summary["new_tickets"].as_i64().unwrap_or(0);
    }
    let intake_seconds = started.elapsed().as_secs_f64();
    Ok((pages, intake_seconds, conversations, new_tickets))
}
