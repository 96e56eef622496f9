//! `helpdesk bench web`: latency of the ticket list and the ticket page on a large database,
//! measured over loopback against the real server with keep-alive connections.
//! (Long because it is three pieces that only this benchmark uses: filling a million tickets
//! in bulk statements, the kinds of search measured with the words each finds, and the run.)

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use sqlx::AssertSqlSafe;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{AppState, WebConfig};
use crate::domain::{AssignmentStrategy, Role};
use crate::store::agents::NewAgent;
use crate::store::{self, Backend, Store, StoreError, on_pool, on_writer};

#[derive(Debug, Clone)]
pub struct WebBench {
    pub tickets: i64,
    /// A postgres:// server URL (a scratch database is made); default: a temporary SQLite file.
    pub database_url: Option<String>,
    /// Measuring time per kind of page.
    pub seconds: u64,
    pub concurrency: usize,
    /// Use the database as it is and keep it (see `helpdesk bench web --reuse`).
    pub reuse: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum WebBenchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("benchmark client: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Failed(String),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PageLatency {
    pub page: String,
    pub requests: usize,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct WebBenchReport {
    pub backend: String,
    pub tickets: i64,
    pub fill_seconds: f64,
    pub concurrency: usize,
    pub pages: Vec<PageLatency>,
}

/// Tickets are filled in chunks of this many rows per statement.
const CHUNK: i64 = 50_000;
const CUSTOMERS: i64 = 20_000;
const WORDS: &[&str] = &[
    "invoice", "refund", "password", "login", "delivery", "parcel", "upgrade", "crash", "export",
    "billing", "account", "mobile", "printer", "licence", "backup", "upload",
];

/// Fills an empty store with `tickets` tickets of one message each, with departments, agents
/// and customers, straight in SQL (intake would take hours for a million).
pub async fn fill(store: &Store, tickets: i64) -> Result<(), WebBenchError> {
    let now = Utc::now();
    let mut departments = Vec::new();
    for (name, strategy) in [
        ("General", AssignmentStrategy::RoundRobin),
        ("Billing", AssignmentStrategy::LeastOpen),
        ("Technical", AssignmentStrategy::RoundRobin),
    ] {
        // "General" is there already: every fresh database has the default department.
        let id = match store::agents::department_by_name(store, name).await? {
            Some(department) => department.id,
            None => {
                store::agents::create_department(store, name, strategy, now)
                    .await?
                    .id
            }
        };
        departments.push(id);
    }
    for i in 0..10 {
        let email = format!("bench.agent{i}@helpdesk.example");
        let name = format!("Bench Agent {i}");
        let department = [departments[i % departments.len()]];
        store::agents::create_agent(
            store,
            &NewAgent {
                email: &email,
                name: &name,
                role: if i == 0 { Role::Admin } else { Role::Agent },
                password_hash: None,
                department_ids: &department,
                identities: &[],
                max_open_tickets: None,
            },
            now,
        )
        .await?;
    }
    let words = WORDS
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(", ");
    // Tickets are spread over the last year, 30 s apart; numbers continue after 1000.
    let start = now.timestamp() - tickets * 30;
    match store.backend() {
        Backend::Sqlite => {
            on_writer!(store, conn => sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
                 INSERT INTO customers (id, name, created_at)
                 SELECT i, 'Customer ' || i, '2025-01-01T00:00:00+00:00' FROM n",
            )
            .bind(CUSTOMERS)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()));
            on_writer!(store, conn => sqlx::query(
                "INSERT INTO customer_identities (customer_id, channel, address, created_at)
                 SELECT id, 'email', 'customer' || id || '@example.org', created_at FROM customers",
            )
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()));
            let mut from = 1;
            while from <= tickets {
                let to = (from + CHUNK - 1).min(tickets);
                let sql = format!(
                    "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2),
                     words(k, w) AS (SELECT * FROM (SELECT row_number() OVER () - 1, column1
                                     FROM (VALUES {values})))
                     INSERT INTO tickets (id, number, subject, status, priority, department_id,
                                          assignee_id, customer_id, channel, created_at, updated_at)
                     SELECT i, 1000 + i,
                            'Question ' || i || ' about ' || (SELECT w FROM words WHERE k = i % {count}),
                            CASE i % 5 WHEN 0 THEN 'new' WHEN 1 THEN 'open' WHEN 2 THEN 'pending'
                                       WHEN 3 THEN 'resolved' ELSE 'closed' END,
                            CASE i % 7 WHEN 0 THEN 'high' WHEN 1 THEN 'low' WHEN 2 THEN 'urgent'
                                       ELSE 'normal' END,
                            CASE WHEN i % 10 = 0 THEN NULL ELSE 1 + i % 3 END,
                            CASE WHEN i % 4 = 0 THEN NULL ELSE 1 + i % 10 END,
                            1 + i % {CUSTOMERS}, 'email',
                            strftime('%Y-%m-%dT%H:%M:%S+00:00', $3 + i * 30, 'unixepoch'),
                            strftime('%Y-%m-%dT%H:%M:%S+00:00', $3 + i * 30 + (i % 97) * 60, 'unixepoch')
                     FROM n",
                    values = WORDS.iter().map(|w| format!("('{w}')")).collect::<Vec<_>>().join(", "),
                    count = WORDS.len(),
                );
                on_writer!(store, conn => sqlx::query(AssertSqlSafe(sql))
                    .bind(from)
                    .bind(to)
                    .bind(start)
                    .execute(&mut *conn)
                    .await
                    .map(|done| done.rows_affected()));
                from = to + 1;
            }
        }
        Backend::Postgres => {
            on_writer!(store, conn => sqlx::query(
                "INSERT INTO customers (id, name, created_at)
                 SELECT i, 'Customer ' || i, now() FROM generate_series(1, $1) i",
            )
            .bind(CUSTOMERS)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()));
            on_writer!(store, conn => sqlx::query(
                "INSERT INTO customer_identities (customer_id, channel, address, created_at)
                 SELECT id, 'email', 'customer' || id || '@example.org', created_at FROM customers",
            )
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()));
            let mut from = 1;
            while from <= tickets {
                let to = (from + CHUNK - 1).min(tickets);
                let sql = format!(
                    "INSERT INTO tickets (id, number, subject, status, priority, department_id,
                                          assignee_id, customer_id, channel, created_at, updated_at)
                     SELECT i, 1000 + i,
                            'Question ' || i || ' about ' || (ARRAY[{words}])[1 + i % {count}],
                            (ARRAY['new', 'open', 'pending', 'resolved', 'closed'])[1 + i % 5],
                            (ARRAY['high', 'low', 'urgent', 'normal', 'normal', 'normal', 'normal'])[1 + i % 7],
                            CASE WHEN i % 10 = 0 THEN NULL ELSE 1 + i % 3 END,
                            CASE WHEN i % 4 = 0 THEN NULL ELSE 1 + i % 10 END,
                            1 + i % {CUSTOMERS}, 'email',
                            to_timestamp($3 + i * 30), to_timestamp($3 + i * 30 + (i % 97) * 60)
                     FROM generate_series($1::BIGINT, $2::BIGINT) i",
                    count = WORDS.len(),
                );
                on_writer!(store, conn => sqlx::query(AssertSqlSafe(sql))
                    .bind(from)
                    .bind(to)
                    .bind(start as f64)
                    .execute(&mut *conn)
                    .await
                    .map(|done| done.rows_affected()));
                from = to + 1;
            }
            on_writer!(store, conn => sqlx::query(
                "SELECT setval('ticket_numbers', (SELECT MAX(number) FROM tickets))",
            )
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()));
            // Rows went in with their ids: the sequences move past them, so that intake on
            // the filled database (`bench cluster`) makes new ones.
            for table in ["tickets", "customers"] {
                on_writer!(store, conn => sqlx::query(AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                     (SELECT MAX(id) FROM {table}))"
                )))
                .execute(&mut *conn)
                .await
                .map(|done| done.rows_affected()));
            }
        }
    }
    // One customer message per ticket, in chunks as well.
    let mut from = 1;
    while from <= tickets {
        let to = (from + CHUNK - 1).min(tickets);
        on_writer!(store, conn => sqlx::query(
            "INSERT INTO messages (ticket_id, direction, kind, author_customer_id, channel,
                                   external_id, subject, body_text, created_at)
             SELECT id, 'inbound', 'public', customer_id, 'email',
                    'bench-' || id || '@example.org', subject,
                    'Hello, I have a question about my ' || subject || '. Thanks!', created_at
             FROM tickets WHERE id BETWEEN $1 AND $2",
        )
        .bind(from)
        .bind(to)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
        from = to + 1;
    }
    // The messages' trigger moved updated_at to created_at: spread it again.
    let touch = match store.backend() {
        Backend::Sqlite => {
            "UPDATE tickets SET updated_at = strftime('%Y-%m-%dT%H:%M:%S+00:00',
                 $1 + id * 30 + (id % 97) * 60, 'unixepoch') WHERE id BETWEEN $2 AND $3"
        }
        Backend::Postgres => {
            "UPDATE tickets SET updated_at = to_timestamp($1::BIGINT + id * 30 + (id % 97) * 60)
             WHERE id BETWEEN $2 AND $3"
        }
    };
    let mut from = 1;
    while from <= tickets {
        let to = (from + CHUNK - 1).min(tickets);
        on_writer!(store, conn => sqlx::query(touch)
            .bind(start)
            .bind(from)
            .bind(to)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()));
        from = to + 1;
    }
    on_writer!(store, conn => sqlx::query("DELETE FROM ticket_changes")
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    match store {
        Store::Sqlite { writer, .. } => {
            sqlx::query("ANALYZE").execute(writer).await?;
        }
        Store::Postgres { pool } => {
            sqlx::query("VACUUM ANALYZE").execute(pool).await?;
        }
    }
    Ok(())
}

/// One GET over a kept-alive connection; returns the status code.
async fn get(
    stream: &mut TcpStream,
    path: &str,
    cookie: &str,
    buffer: &mut Vec<u8>,
) -> Result<u16, WebBenchError> {
    let head = format!("Cookie: {cookie}\r\n");
    request(stream, "GET", path, &head, "", buffer).await
}

/// One request over a kept-alive connection, `head` holding extra header lines (each ending
/// in CRLF); the answer is read whole into `buffer` and its status code returned.
pub(super) async fn request(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    head: &str,
    body: &str,
    buffer: &mut Vec<u8>,
) -> Result<u16, WebBenchError> {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}Content-Length: {}\r\n\
         Connection: keep-alive\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    buffer.clear();
    let header_end = read_head(stream, buffer).await?;
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| WebBenchError::Failed("no status line".into()))?;
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| WebBenchError::Failed(format!("{path}: answer without Content-Length")))?;
    while buffer.len() < header_end + length {
        let mut chunk = [0u8; 65536];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(WebBenchError::Failed(
                "the server closed the connection".into(),
            ));
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    Ok(status)
}

/// Reads until the end of an answer's head into `buffer`; returns where the body starts.
pub(super) async fn read_head(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> Result<usize, WebBenchError> {
    loop {
        let mut chunk = [0u8; 16384];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(WebBenchError::Failed(
                "the server closed the connection".into(),
            ));
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(end + 4);
        }
    }
}

pub(super) fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at].as_secs_f64() * 1000.0
}

/// Requests `paths` in turn from `concurrency` connections for `seconds`, the connections
/// spread over `addresses` (several instances of one cluster).
pub(crate) async fn measure(
    addresses: &[std::net::SocketAddr],
    cookie: &str,
    concurrency: usize,
    seconds: u64,
    page: &str,
    paths: Vec<String>,
) -> Result<PageLatency, WebBenchError> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let cookie = cookie.to_owned();
        let paths = paths.clone();
        let address = addresses[worker % addresses.len()];
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            let mut buffer = Vec::new();
            let mut latencies = Vec::new();
            let mut at = worker;
            while Instant::now() < deadline {
                let path = &paths[at % paths.len()];
                at += concurrency;
                let started = Instant::now();
                let status = get(&mut stream, path, &cookie, &mut buffer).await?;
                latencies.push(started.elapsed());
                if status != 200 {
                    return Err(WebBenchError::Failed(format!("{path} answered {status}")));
                }
            }
            Ok::<_, WebBenchError>(latencies)
        }));
    }
    let started = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(
            task.await
                .map_err(|error| WebBenchError::Failed(error.to_string()))??,
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok(PageLatency {
        page: page.to_owned(),
        requests: latencies.len(),
        requests_per_second: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies
            .last()
            .map_or(0.0, |max| max.as_secs_f64() * 1000.0),
    })
}

/// A PostgreSQL server's scratch database to drop afterwards: (server URL, database name).
pub(super) type Scratch = Option<(String, String)>;

/// The URL of a fresh database for a benchmark named `name`: a scratch database on the
/// PostgreSQL server `url` names, the SQLite file it names, or a file in `workdir`.
pub(super) async fn scratch_database(
    url: Option<&str>,
    name: &str,
    workdir: &std::path::Path,
) -> Result<(String, Scratch), WebBenchError> {
    Ok(match url {
        Some(url) if Backend::of_url(url) == Backend::Postgres => {
            let database = format!("helpdesk_bench_{name}_{}", std::process::id());
            let scratch_url = store::scratch::create_postgres_database(url, &database).await?;
            (scratch_url, Some((url.to_owned(), database)))
        }
        Some(url) => (url.to_owned(), None),
        None => (
            format!("sqlite://{}", workdir.join(format!("{name}.db")).display()),
            None,
        ),
    })
}

/// The kinds of search measured apart, each with its paths (random ones drawn from the filled
/// data: ticket `i` is "Question i about <word>", customer `k` has `customer<k>@example.org`).
fn search_kinds(tickets: i64) -> Vec<(&'static str, Vec<String>)> {
    let some = |make: &dyn Fn(i64) -> String, upto: i64| -> Vec<String> {
        (0..50).map(|_| make(fastrand::i64(1..=upto))).collect()
    };
    vec![
        (
            "search, common word (printer: 1 ticket in 16)",
            vec!["/tickets?q=printer".to_owned()],
        ),
        (
            "search, word in every ticket (hello)",
            vec!["/tickets?q=hello".to_owned()],
        ),
        (
            "search, rare word (a number in one subject)",
            some(&|i| format!("/tickets?q={i}"), tickets),
        ),
        (
            "search, two words (question <number>; refund invoice, never together)",
            vec![
                format!("/tickets?q=question+{}", tickets / 3),
                "/tickets?q=refund+invoice".to_owned(),
            ],
        ),
        (
            "search, prefix (print*)",
            vec!["/tickets?q=print%2A".to_owned()],
        ),
        (
            "search, customer address (customer<k>@example.org)",
            some(
                &|k| format!("/tickets?q=customer{k}%40example.org"),
                CUSTOMERS,
            ),
        ),
        (
            "search, part of an address (customer<k>@exam)",
            some(&|k| format!("/tickets?q=customer{k}%40exam"), CUSTOMERS),
        ),
        (
            "search, ticket number (#<number>)",
            some(&|i| format!("/tickets?q=%23{}", 1000 + i), tickets),
        ),
        (
            "search by relevance, common word (printer)",
            vec!["/tickets?q=printer&sort=relevance".to_owned()],
        ),
        (
            "search by relevance, rare word",
            some(
                &|i| format!("/tickets?q=question+{i}&sort=relevance"),
                tickets,
            ),
        ),
    ]
}

/// A benchmark's database: a fresh one filled with tickets, or with `--reuse` the one named,
/// as it is.
pub(crate) struct BenchDatabase {
    pub store: Store,
    pub url: String,
    scratch: Scratch,
    pub fill_seconds: f64,
    _workdir: tempfile::TempDir,
}

impl BenchDatabase {
    pub(crate) async fn open(
        database_url: Option<&str>,
        reuse: bool,
        name: &str,
        tickets: i64,
        connections: u32,
    ) -> Result<BenchDatabase, WebBenchError> {
        let workdir = tempfile::tempdir()?;
        let (url, scratch) = match database_url {
            Some(url) if reuse => (url.to_owned(), None),
            url => scratch_database(url, name, workdir.path()).await?,
        };
        let store = Store::connect(&url, connections).await?;
        store.migrate().await?;
        let filling = Instant::now();
        let held: i64 = on_pool!(&store, pool => sqlx::query_scalar("SELECT COUNT(*) FROM tickets")
            .fetch_one(pool)
            .await)?;
        if held == 0 {
            fill(&store, tickets).await?;
        } else if !reuse || held != tickets {
            return Err(WebBenchError::Failed(format!(
                "the database already holds {held} tickets; --reuse measures a database filled \
                 by an earlier run with the same --tickets"
            )));
        }
        Ok(BenchDatabase {
            store,
            url,
            scratch,
            fill_seconds: filling.elapsed().as_secs_f64(),
            _workdir: workdir,
        })
    }

    /// Serves the database on loopback, signed in as its admin, and measures each kind of
    /// page after a short warm-up that is not counted.
    pub(crate) async fn measure_pages(
        &self,
        kinds: Vec<(&str, Vec<String>)>,
        concurrency: usize,
        seconds: u64,
    ) -> Result<Vec<PageLatency>, WebBenchError> {
        let store = &self.store;
        let cookie = self.admin_cookie().await?;
        let settings = crate::config::Settings::load_from(None, Vec::new())
            .map_err(|error| WebBenchError::Failed(error.to_string()))?;
        let attachments =
            crate::store::blobs::BlobStore::local(&self._workdir.path().join("attachments"))
                .map_err(|error| WebBenchError::Failed(error.to_string()))?;
        let state = AppState::new(
            store.clone(),
            WebConfig::from_settings(&settings, attachments),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(super::serve_on(listener, state, async move {
            let _ = stopped.await;
        }));
        let mut pages = Vec::new();
        for (page, paths) in kinds {
            measure(&[address], &cookie, 1, 1, page, paths.clone()).await?;
            pages.push(measure(&[address], &cookie, concurrency, seconds, page, paths).await?);
        }
        let _ = stop.send(());
        let _ = server.await;
        Ok(pages)
    }

    /// A session cookie of the filled database's admin.
    pub(crate) async fn admin_cookie(&self) -> Result<String, WebBenchError> {
        let store = &self.store;
        let admin: i64 = on_pool!(store, pool => sqlx::query_scalar(
            "SELECT id FROM agents WHERE role = 'admin' ORDER BY id LIMIT 1",
        )
        .fetch_one(pool)
        .await)?;
        let token =
            store::sessions::create(store, admin, chrono::Duration::hours(1), Utc::now()).await?;
        Ok(format!("{}={token}", super::auth::SESSION_COOKIE))
    }

    /// Closes the store and drops a scratch database; answers the backend's name.
    pub(crate) async fn close(self) -> Result<&'static str, WebBenchError> {
        let backend = match self.store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        self.store.close().await;
        if let Some((server_url, name)) = self.scratch {
            store::scratch::drop_postgres_database(&server_url, &name).await?;
        }
        Ok(backend)
    }
}

/// Fills a fresh database, serves it on loopback and measures each kind of page.
pub async fn run(bench: &WebBench) -> Result<WebBenchReport, WebBenchError> {
    let database = BenchDatabase::open(
        bench.database_url.as_deref(),
        bench.reuse,
        "web",
        bench.tickets,
        (bench.concurrency as u32 + 2).max(8),
    )
    .await?;

    // Deep pages start at cursors spread over the whole table.
    let step = (bench.tickets / 200).max(1);
    let deep: Vec<String> = (0..200)
        .map(|k| {
            let id = 1 + k * step;
            let at = Utc
                .timestamp_opt(Utc::now().timestamp() - bench.tickets * 30 + id * 30, 0)
                .single()
                .unwrap_or_else(Utc::now);
            format!(
                "/tickets?after={}",
                store::views::Cursor { at, id, rank: None }.encode()
            )
        })
        .collect();
    let numbers: Vec<String> = (0..500)
        .map(|_| format!("/tickets/{}", 1000 + fastrand::i64(1..=bench.tickets)))
        .collect();
    let mut kinds: Vec<(&str, Vec<String>)> = vec![
        ("ticket list, first page", vec!["/tickets".to_owned()]),
        (
            "ticket list, filtered (status, department, assignee, priority)",
            vec![
                "/tickets?status=open".to_owned(),
                "/tickets?status=active&department=2".to_owned(),
                "/tickets?assignee=none".to_owned(),
                "/tickets?priority=urgent&sort=created_asc".to_owned(),
            ],
        ),
        ("ticket list, deep pages (keyset)", deep),
        ("ticket page", numbers),
    ];
    kinds.extend(search_kinds(bench.tickets));
    let pages = database
        .measure_pages(kinds, bench.concurrency, bench.seconds)
        .await?;
    let fill_seconds = database.fill_seconds;
    let backend = database.close().await?;
    Ok(WebBenchReport {
        backend: backend.to_owned(),
        tickets: bench.tickets,
        fill_seconds,
        concurrency: bench.concurrency,
        pages,
    })
}
