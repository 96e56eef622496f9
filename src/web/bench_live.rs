//! `helpdesk bench live`: many signed-in browsers hold the event stream of a real `serve`
//! process while tickets change through the API: how long a change takes to reach every
//! browser, the pages' latency meanwhile, and the server's memory (its own process, so the
//! load client's connections do not count).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::bench::{
    PageLatency, WebBenchError, fill, measure, percentile, read_head, request, scratch_database,
};
use super::bench_server::Server;
use crate::domain::Role;
use crate::store::{self, Backend, Store, on_pool};

#[derive(Debug, Clone)]
pub struct LiveBench {
    /// Browsers holding the event stream at once.
    pub viewers: usize,
    /// Ticket changes made while they listen, one every `interval`.
    pub changes: usize,
    pub interval: Duration,
    /// Tickets in the database (straight in SQL, as `bench web` fills it).
    pub tickets: i64,
    /// A postgres:// server URL (a scratch database is made); default: a temporary SQLite file.
    pub database_url: Option<String>,
    /// The `helpdesk` program to run as the server.
    pub program: PathBuf,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveBenchReport {
    pub backend: String,
    pub viewers: usize,
    pub changes: usize,
    /// Events that reached a browser (viewers × changes when none is lost).
    pub deliveries: usize,
    pub missed: usize,
    /// From sending the change to the API until a browser read its event.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Resident memory of the server process: idle, with every stream open, and its peak.
    pub rss_idle_mb: f64,
    pub rss_streams_mb: f64,
    pub rss_peak_mb: f64,
    /// The pages measured while the changes fanned out.
    pub pages: Vec<PageLatency>,
}

/// What each browser read: (ticket number, when).
type Received = Arc<Mutex<Vec<(i64, Instant)>>>;

pub async fn run(bench: &LiveBench) -> Result<LiveBenchReport, WebBenchError> {
    let workdir = tempfile::tempdir()?;
    let (url, scratch) =
        scratch_database(bench.database_url.as_deref(), "live", workdir.path()).await?;
    let store = Store::connect(&url, 4).await?;
    store.migrate().await?;
    fill(&store, bench.tickets).await?;
    let admin: i64 = on_pool!(&store, pool => sqlx::query_scalar(
        "SELECT id FROM agents WHERE role = 'admin' ORDER BY id LIMIT 1",
    )
    .fetch_one(pool)
    .await)?;
    let now = Utc::now();
    let mut cookies = Vec::with_capacity(bench.viewers);
    for _ in 0..bench.viewers {
        let token = store::sessions::create(&store, admin, chrono::Duration::hours(2), now).await?;
        cookies.push(format!("{}={token}", super::auth::SESSION_COOKIE));
    }
    let api_token = store::api_tokens::create(&store, admin, "bench live", Role::Admin, now)
        .await?
        .token;
    let backend = match store.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    store.close().await;

    let server = Server::start(&bench.program, &url, &workdir.path().join("data")).await?;
    let outcome = listen_and_change(bench, &server, &cookies, &api_token).await;
    let rss_peak_mb = server.memory_mb("VmHWM:");
    server.stop().await;
    if let Some((server_url, name)) = scratch {
        store::scratch::drop_postgres_database(&server_url, &name).await?;
    }
    let (received, sent, pages, rss_idle_mb, rss_streams_mb) = outcome?;

    let mut latencies = Vec::new();
    let mut missed = 0;
    for viewer in &received {
        let viewer = viewer.lock().map_err(|_| poisoned())?;
        for (number, at) in &sent {
            match viewer
                .iter()
                .find(|(seen, when)| seen == number && when >= at)
            {
                Some((_, when)) => latencies.push(*when - *at),
                None => missed += 1,
            }
        }
    }
    latencies.sort_unstable();
    Ok(LiveBenchReport {
        backend: backend.to_owned(),
        viewers: bench.viewers,
        changes: sent.len(),
        deliveries: latencies.len(),
        missed,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies
            .last()
            .map_or(0.0, |max| max.as_secs_f64() * 1000.0),
        rss_idle_mb,
        rss_streams_mb,
        rss_peak_mb,
        pages,
    })
}

type Outcome = (
    Vec<Received>,
    Vec<(i64, Instant)>,
    Vec<PageLatency>,
    f64,
    f64,
);

async fn listen_and_change(
    bench: &LiveBench,
    server: &Server,
    cookies: &[String],
    api_token: &str,
) -> Result<Outcome, WebBenchError> {
    let rss_idle_mb = server.memory_mb("VmRSS:");
    let mut received = Vec::with_capacity(cookies.len());
    let mut readers = Vec::with_capacity(cookies.len());
    for cookie in cookies {
        let (events, reader) = open_stream(server.address, cookie).await?;
        received.push(events);
        readers.push(reader);
    }
    // Every stream is subscribed once its head came back; a moment for the last ones.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_streams_mb = server.memory_mb("VmRSS:");

    // Pages are measured while the changes fan out.
    let measuring =
        Duration::from_secs_f64((bench.interval.as_secs_f64() * bench.changes as f64).max(1.0));
    let cookie = cookies.first().cloned().unwrap_or_default();
    let addresses = [server.address];
    let middle = format!("/tickets/{}", 1000 + (bench.tickets / 2).max(1));
    let pages = tokio::spawn(async move {
        let seconds = measuring.as_secs().max(1);
        let list = measure(
            &addresses,
            &cookie,
            2,
            seconds,
            "ticket list while streaming",
            vec!["/tickets".to_owned()],
        );
        let page = measure(
            &addresses,
            &cookie,
            2,
            seconds,
            "ticket page while streaming",
            vec!["/tickets/1001".to_owned(), middle],
        );
        let (list, page) = tokio::join!(list, page);
        Ok::<_, WebBenchError>(vec![list?, page?])
    });

    let mut api = TcpStream::connect(server.address).await?;
    api.set_nodelay(true)?;
    let head = format!("Authorization: Bearer {api_token}\r\nContent-Type: application/json\r\n");
    let mut buffer = Vec::new();
    // Each change sets a priority the ticket does not have, so each one is a change.
    let mut priorities = Vec::with_capacity(bench.changes);
    for k in 0..bench.changes {
        let number = 1001 + k as i64;
        request(
            &mut api,
            "GET",
            &format!("/api/v1/tickets/{number}"),
            &head,
            "",
            &mut buffer,
        )
        .await?;
        let body = buffer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(&buffer[..0], |end| &buffer[end + 4..]);
        let current = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|ticket| ticket["priority"].as_str().map(str::to_owned));
        priorities.push(if current.as_deref() == Some("high") {
            "low"
        } else {
            "high"
        });
    }
    let mut sent = Vec::with_capacity(bench.changes);
    for (k, priority) in priorities.into_iter().enumerate() {
        let number = 1001 + k as i64;
        let at = Instant::now();
        let status = request(
            &mut api,
            "PATCH",
            &format!("/api/v1/tickets/{number}"),
            &head,
            &format!("{{\"priority\":\"{priority}\"}}"),
            &mut buffer,
        )
        .await?;
        if status != 200 {
            return Err(WebBenchError::Failed(format!(
                "PATCH /api/v1/tickets/{number} answered {status}"
            )));
        }
        sent.push((number, at));
        tokio::time::sleep(bench.interval).await;
    }
    let pages = pages
        .await
        .map_err(|error| WebBenchError::Failed(error.to_string()))??;
    // The last events are on their way.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for reader in readers {
        reader.abort();
    }
    Ok((received, sent, pages, rss_idle_mb, rss_streams_mb))
}

/// Opens `/events` as a browser does and reads it in a task until aborted.
async fn open_stream(
    address: std::net::SocketAddr,
    cookie: &str,
) -> Result<(Received, tokio::task::JoinHandle<()>), WebBenchError> {
    let mut stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buffer = Vec::new();
    let body = read_head(&mut stream, &mut buffer).await?;
    if !buffer.starts_with(b"HTTP/1.1 200") {
        return Err(WebBenchError::Failed(format!(
            "/events answered {}",
            String::from_utf8_lossy(&buffer[..body.min(40)])
        )));
    }
    let received: Received = Arc::default();
    let events = received.clone();
    let mut pending = String::from_utf8_lossy(&buffer[body..]).into_owned();
    let reader = tokio::spawn(async move {
        let mut chunk = vec![0u8; 8192];
        loop {
            take_numbers(&mut pending, &events);
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => pending.push_str(&String::from_utf8_lossy(&chunk[..read])),
            }
        }
    });
    Ok((received, reader))
}

/// Records the ticket number of every complete `ticket` event in `pending` and keeps the
/// incomplete rest. The stream is chunked; the framing between events is skipped over.
fn take_numbers(pending: &mut String, events: &Received) {
    const MARK: &str = "event: ticket\ndata: {\"number\":";
    let now = Instant::now();
    let mut consumed = 0;
    while let Some(start) = pending[consumed..].find(MARK) {
        let digits_from = consumed + start + MARK.len();
        let digits: String = pending[digits_from..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if digits_from + digits.len() >= pending.len() {
            break;
        }
        if let (Ok(number), Ok(mut events)) = (digits.parse(), events.lock()) {
            events.push((number, now));
        }
        consumed = digits_from + digits.len();
    }
    // Keep a tail that may hold the start of the next event.
    let keep_from = pending.len().saturating_sub(MARK.len() + 20).max(consumed);
    pending.drain(..keep_from);
}

fn poisoned() -> WebBenchError {
    WebBenchError::Failed("a stream reader panicked".into())
}
