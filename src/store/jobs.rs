//! The job tables: the queue's own (apalis's `Jobs` on SQLite, `apalis.jobs` on PostgreSQL),
//! written by our enqueueing and read by the jobs page, the command line and /metrics.
//!
//! What a job is and how it runs is `crate::jobs`; this module knows only rows: a queue name,
//! a JSON payload, an idempotency key, a due time and a number of attempts.

use std::collections::{BTreeMap, HashMap};

use apalis::prelude::TaskBuilder;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Backend, Result, Store, Tx, on_writer};
use crate::domain::{TicketId, TicketNumber};

/// The job queue's own migrations (its tables live beside ours) on SQLite.
pub(super) async fn migrate_sqlite(writer: &sqlx::SqlitePool) -> Result<()> {
    SqliteStorage::<()>::migrations().run(writer).await?;
    Ok(())
}

/// The job queue's migrations on PostgreSQL, on the connection the caller holds.
pub(super) async fn migrate_postgres(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Postgres>,
) -> Result<()> {
    PostgresStorage::<()>::migrations().run(&mut **conn).await?;
    Ok(())
}

/// A job to be put in the queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: &'static str,
    /// The payload, as JSON.
    pub args: Vec<u8>,
    /// A second job with the same key in the same queue is left out.
    pub idempotency_key: String,
    pub due: DateTime<Utc>,
    pub max_attempts: usize,
}

impl NewJob {
    /// Seconds since the epoch the queue stores as the due time. The queue compares whole
    /// seconds with `run_at < now()`: a job due this very second would wait for the next one,
    /// so it is stored one second early.
    fn run_at(&self) -> i64 {
        (self.due.timestamp() - 1).max(0)
    }
}

/// Puts `jobs` in the queue inside `tx` (on PostgreSQL one statement per queue); a job whose
/// idempotency key its queue already knows is left out.
pub async fn insert(tx: &mut Tx, jobs: Vec<NewJob>) -> Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    match tx {
        Tx::Sqlite { transaction, .. } => {
            for job in jobs {
                let run_at = job.run_at();
                let task = TaskBuilder::new(job.args)
                    .run_at_timestamp(u64::try_from(run_at).unwrap_or_default())
                    .max_attempts(job.max_attempts)
                    .idempotency_key(job.idempotency_key)
                    .build();
                apalis_sqlite::queries::push_tasks(&mut **transaction, job.queue, &[task]).await?;
            }
        }
        Tx::Postgres { transaction } => {
            let mut by_queue: BTreeMap<&str, Vec<NewJob>> = BTreeMap::new();
            for job in jobs {
                by_queue.entry(job.queue).or_default().push(job);
            }
            for (queue, jobs) in by_queue {
                // The same row apalis's own push writes, in one statement for many jobs,
                // and without failing (and so aborting our transaction) on a known key.
                let mut args = Vec::with_capacity(jobs.len());
                let mut attempts = Vec::with_capacity(jobs.len());
                let mut due = Vec::with_capacity(jobs.len());
                let mut keys = Vec::with_capacity(jobs.len());
                for job in jobs {
                    due.push(job.run_at());
                    attempts.push(i32::try_from(job.max_attempts).unwrap_or(i32::MAX));
                    args.push(job.args);
                    keys.push(job.idempotency_key);
                }
                sqlx::query(
                    "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts,
                            run_at, priority, metadata, idempotency_key)
                     SELECT apalis.generate_ulid(), $1, j.job, 'Pending', 0, j.max_attempts,
                            to_timestamp(j.due), 0, ''::hstore, j.idempotency_key
                     FROM unnest($2::bytea[], $3::integer[], $4::bigint[], $5::text[])
                          AS j(job, max_attempts, due, idempotency_key)
                     ON CONFLICT (job_type, idempotency_key) DO NOTHING",
                )
                .bind(queue)
                .bind(args)
                .bind(attempts)
                .bind(due)
                .bind(keys)
                .execute(&mut **transaction)
                .await?;
            }
        }
    }
    Ok(())
}

/// Puts a failed or killed job back in the queue, due now with its attempts reset.
pub async fn retry(store: &Store, job_id: &str) -> Result<bool> {
    let updated = match store.backend() {
        Backend::Sqlite => on_writer!(store, conn => sqlx::query(
            "UPDATE Jobs SET status = 'Pending', attempts = 0, run_at = strftime('%s', 'now') - 1,
                    lock_at = NULL, lock_by = NULL, done_at = NULL
             WHERE id = $1 AND status IN ('Failed', 'Killed')",
        )
        .bind(job_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected())),
        Backend::Postgres => on_writer!(store, conn => sqlx::query(
            "UPDATE apalis.jobs SET status = 'Pending', attempts = 0, run_at = now(),
                    lock_at = NULL, lock_by = NULL, done_at = NULL
             WHERE id = $1 AND status IN ('Failed', 'Killed')",
        )
        .bind(job_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected())),
    };
    Ok(updated == 1)
}

/// Counts of jobs per state, for the jobs page.
pub async fn counts(store: &Store) -> Result<Vec<(String, i64)>> {
    let rows = match store {
        Store::Sqlite { pool, .. } => {
            sqlx::query_as("SELECT status, COUNT(*) FROM Jobs GROUP BY status ORDER BY status")
                .fetch_all(pool)
                .await?
        }
        Store::Postgres { pool } => {
            sqlx::query_as(
                "SELECT status, COUNT(*) FROM apalis.jobs GROUP BY status ORDER BY status",
            )
            .fetch_all(pool)
            .await?
        }
    };
    Ok(rows)
}

/// Counts of jobs per queue and state: (queue, state, count), for /metrics.
pub async fn counts_by_queue(store: &Store) -> Result<Vec<(String, String, i64)>> {
    let rows = match store {
        Store::Sqlite { pool, .. } => {
            sqlx::query_as("SELECT job_type, status, COUNT(*) FROM Jobs GROUP BY job_type, status")
                .fetch_all(pool)
                .await?
        }
        Store::Postgres { pool } => {
            sqlx::query_as(
                "SELECT job_type, status, COUNT(*) FROM apalis.jobs GROUP BY job_type, status",
            )
            .fetch_all(pool)
            .await?
        }
    };
    Ok(rows)
}

/// A job finished lately: its queue and, in Unix seconds as the queue keeps them, when it was
/// stored as due (one second early, see [`insert`]), taken and done.
pub type FinishedJob = (String, i64, Option<i64>, Option<i64>);

/// Jobs finished in the last `window_seconds`, for /metrics.
pub async fn finished(store: &Store, window_seconds: i64) -> Result<Vec<FinishedJob>> {
    let rows = match store {
        Store::Sqlite { pool, .. } => {
            sqlx::query_as(
                "SELECT job_type, run_at, lock_at, done_at FROM Jobs
                 WHERE status = 'Done' AND done_at > strftime('%s', 'now') - $1",
            )
            .bind(window_seconds)
            .fetch_all(pool)
            .await?
        }
        Store::Postgres { pool } => {
            sqlx::query_as(
                "SELECT job_type, EXTRACT(EPOCH FROM run_at)::BIGINT,
                        EXTRACT(EPOCH FROM lock_at)::BIGINT, EXTRACT(EPOCH FROM done_at)::BIGINT
                 FROM apalis.jobs
                 WHERE status = 'Done' AND done_at > now() - make_interval(secs => $1)",
            )
            .bind(window_seconds as f64)
            .fetch_all(pool)
            .await?
        }
    };
    Ok(rows)
}

/// The states a job can be in.
pub const STATES: [&str; 5] = ["Pending", "Running", "Done", "Failed", "Killed"];

/// A job as `helpdesk jobs list`, the jobs page and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRow {
    pub id: String,
    pub queue: String,
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    /// The last attempt's result as the queue keeps it (JSON).
    pub last_result: Option<String>,
    /// The last attempt's error, when it failed.
    pub last_error: Option<String>,
    /// The number of the ticket the job is about.
    pub ticket: Option<TicketNumber>,
    /// When the job was queued (from its id, a ULID).
    pub created_at: Option<DateTime<Utc>>,
    /// When it is (or was last) due.
    pub run_at: Option<DateTime<Utc>>,
    /// When a worker last took it.
    pub started_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
}

/// Which jobs to list: newest first, optionally of one queue and one state, older than the job
/// `before` (the last of the previous page).
#[derive(Debug, Clone, Copy)]
pub struct JobQuery<'a> {
    pub queue: Option<&'a str>,
    pub status: Option<&'a str>,
    pub before: Option<&'a str>,
    pub limit: i64,
}

#[derive(sqlx::FromRow)]
struct StoredJob {
    id: String,
    queue: String,
    status: String,
    attempts: i64,
    max_attempts: i64,
    last_result: Option<String>,
    /// Seconds since the epoch.
    run_at: Option<i64>,
    lock_at: Option<i64>,
    done_at: Option<i64>,
    job: Vec<u8>,
}

/// The jobs `filter` asks for, each with the ticket it is about: `about` reads from a job's
/// queue and payload what it points at.
pub async fn query(
    store: &Store,
    filter: &JobQuery<'_>,
    about: impl Fn(&str, &[u8]) -> Option<About>,
) -> Result<Vec<JobRow>> {
    // Ids are ULIDs: their order is the order the jobs were queued in.
    let stored: Vec<StoredJob> = match store {
        Store::Sqlite { pool, .. } => {
            sqlx::query_as(
                "SELECT id, job_type AS queue, status, attempts, max_attempts, last_result,
                        run_at, lock_at, done_at, job
                 FROM Jobs
                 WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR job_type = $2)
                   AND ($3 IS NULL OR id < $3)
                 ORDER BY id DESC LIMIT $4",
            )
            .bind(filter.status)
            .bind(filter.queue)
            .bind(filter.before)
            .bind(filter.limit)
            .fetch_all(pool)
            .await?
        }
        Store::Postgres { pool } => {
            sqlx::query_as(
                "SELECT id, job_type AS queue, status, attempts::BIGINT AS attempts,
                        max_attempts::BIGINT AS max_attempts, last_result::TEXT AS last_result,
                        EXTRACT(EPOCH FROM run_at)::BIGINT AS run_at,
                        EXTRACT(EPOCH FROM lock_at)::BIGINT AS lock_at,
                        EXTRACT(EPOCH FROM done_at)::BIGINT AS done_at, job
                 FROM apalis.jobs
                 WHERE ($1::TEXT IS NULL OR status = $1) AND ($2::TEXT IS NULL OR job_type = $2)
                   AND ($3::TEXT IS NULL OR id COLLATE \"C\" < $3)
                 ORDER BY id COLLATE \"C\" DESC LIMIT $4",
            )
            .bind(filter.status)
            .bind(filter.queue)
            .bind(filter.before)
            .bind(filter.limit)
            .fetch_all(pool)
            .await?
        }
    };
    let about: Vec<Option<About>> = stored
        .iter()
        .map(|job| about(&job.queue, &job.job))
        .collect();
    let numbers = ticket_numbers(store, &about).await?;
    let at = |seconds: Option<i64>| seconds.and_then(|s| DateTime::from_timestamp(s, 0));
    Ok(stored
        .into_iter()
        .zip(about)
        .map(|(job, about)| JobRow {
            created_at: ulid_time(&job.id),
            last_error: job.last_result.as_deref().and_then(error_of),
            ticket: about.and_then(|about| numbers.get(&about).copied()),
            run_at: at(job.run_at),
            started_at: at(job.lock_at),
            done_at: at(job.done_at),
            id: job.id,
            queue: job.queue,
            status: job.status,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            last_result: job.last_result,
        })
        .collect())
}

/// What a job is about: the thing its payload points at, which leads to a ticket number on
/// the jobs page and names the job in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum About {
    Ticket(TicketId),
    Number(TicketNumber),
    Message(i64),
    WebhookDelivery(i64),
}

impl std::fmt::Display for About {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            About::Ticket(id) => write!(f, "ticket id {id}"),
            About::Number(number) => write!(f, "ticket #{number}"),
            About::Message(id) => write!(f, "message {id}"),
            About::WebhookDelivery(id) => write!(f, "webhook delivery {id}"),
        }
    }
}

/// The ticket numbers the jobs point at, looked up together per kind of pointer.
async fn ticket_numbers(
    store: &Store,
    about: &[Option<About>],
) -> Result<HashMap<About, TicketNumber>> {
    let mut numbers = HashMap::new();
    let (mut tickets, mut messages, mut deliveries) = (Vec::new(), Vec::new(), Vec::new());
    for pointer in about.iter().flatten() {
        match *pointer {
            About::Ticket(id) => tickets.push(id.get()),
            About::Message(id) => messages.push(id),
            About::WebhookDelivery(id) => deliveries.push(id),
            About::Number(number) => {
                numbers.insert(*pointer, number);
            }
        }
    }
    let found = numbers_of(
        store,
        "SELECT t.id, t.number FROM tickets t WHERE t.id",
        tickets,
    )
    .await?;
    numbers.extend(
        found
            .into_iter()
            .map(|(id, n)| (About::Ticket(TicketId(id)), n)),
    );
    let found = numbers_of(
        store,
        "SELECT m.id, t.number FROM messages m JOIN tickets t ON t.id = m.ticket_id WHERE m.id",
        messages,
    )
    .await?;
    numbers.extend(found.into_iter().map(|(id, n)| (About::Message(id), n)));
    let found = numbers_of(
        store,
        "SELECT w.id, t.number FROM webhook_deliveries w JOIN tickets t ON t.id = w.ticket_id
         WHERE w.id",
        deliveries,
    )
    .await?;
    numbers.extend(
        found
            .into_iter()
            .map(|(id, n)| (About::WebhookDelivery(id), n)),
    );
    Ok(numbers)
}

/// Runs `select` (ending in the id column to match) for `ids`: (id, ticket number) pairs.
async fn numbers_of(
    store: &Store,
    select: &str,
    mut ids: Vec<i64>,
) -> Result<Vec<(i64, TicketNumber)>> {
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found = match store {
        Store::Sqlite { pool, .. } => {
            let ids = serde_json::to_string(&ids)?;
            let sql = format!("{select} IN (SELECT value FROM json_each($1))");
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(ids)
                .fetch_all(pool)
                .await?
        }
        Store::Postgres { pool } => {
            let sql = format!("{select} = ANY($1)");
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(ids)
                .fetch_all(pool)
                .await?
        }
    };
    Ok(found)
}

/// The error in a job's stored result (`{"Err": "…"}`, or a plain string); `None` when the
/// last attempt succeeded.
fn error_of(result: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(result) {
        Ok(serde_json::Value::Object(map)) => match map.get("Err") {
            Some(serde_json::Value::String(error)) => Some(error.clone()),
            Some(other) => Some(other.to_string()),
            None => None,
        },
        Ok(serde_json::Value::String(error)) => Some(error),
        Ok(serde_json::Value::Null) => None,
        Ok(other) => Some(other.to_string()),
        Err(_) => Some(result.to_owned()).filter(|text| !text.trim().is_empty()),
    }
}

/// The time a ULID was made: its first ten characters are milliseconds since the epoch in
/// Crockford's base 32.
fn ulid_time(id: &str) -> Option<DateTime<Utc>> {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    if id.len() != 26 {
        return None;
    }
    let mut millis: i64 = 0;
    for byte in id.bytes().take(10) {
        let digit = DIGITS
            .iter()
            .position(|d| *d == byte.to_ascii_uppercase())?;
        millis = millis
            .checked_mul(32)?
            .checked_add(i64::try_from(digit).ok()?)?;
    }
    DateTime::from_timestamp_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ulid_tells_when_it_was_made() {
        // 01HF7YAT3V is 1700000000123 ms (2023-11-14 22:13:20.123 UTC) in base 32.
        let at = ulid_time("01HF7YAT3VTSV4RRFFQ69G5FAV").expect("a ULID");
        assert_eq!(at.timestamp_millis(), 1_700_000_000_123);
        assert_eq!(ulid_time("not-a-ulid"), None);
    }

    #[test]
    fn the_last_error_is_read_from_the_stored_result() {
        assert_eq!(
            error_of(r#"{"Err":"smtp down"}"#).as_deref(),
            Some("smtp down")
        );
        assert_eq!(error_of(r#"{"Ok":null}"#), None);
        assert_eq!(error_of(r#""smtp down""#).as_deref(), Some("smtp down"));
        assert_eq!(error_of("plain words").as_deref(), Some("plain words"));
    }
}
