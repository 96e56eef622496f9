//! Data access on SQLite (embedded default) and PostgreSQL (production).
//!
//! One set of SQL wherever the two agree: `$1…$N` placeholders, `RETURNING`, `ON CONFLICT`.
//! The [`on_pool!`] and [`on_tx!`] macros expand a query once per backend, so each arm is checked
//! against its concrete driver; backend-specific SQL is written out where the two differ.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgPool, Postgres, Sqlite, SqlitePool, Transaction};

pub mod agents;
pub mod api_tokens;
pub mod assign;
pub mod attachments;
pub mod blobs;
pub mod calendars;
pub mod canned;
pub mod chat;
pub mod counts;
pub mod cursors;
pub mod customer_views;
pub mod customers;
mod error;
pub mod health;
pub mod history;
pub mod import;
pub mod instances;
pub mod jobs;
pub mod leases;
pub mod mailboxes;
pub mod manage;
pub mod notices;
pub mod outbound;
pub mod outbox;
pub mod raw;
pub mod rules;
pub mod scratch;
pub mod sessions;
pub mod sla;
pub mod surveys;
pub mod tickets;
pub mod views;
pub mod webhooks;

pub use error::{Result, StoreError};

/// The name of our migration table, apart from the job queue's own `_sqlx_migrations`.
const MIGRATIONS_TABLE: &str = "helpdesk_migrations";

/// How long a request waits for a database connection: enough for a busy pool, and short enough
/// that a database that cannot be reached is answered with 503 within seconds, not minutes.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the health checks (/readyz, /metrics) wait for the database before they report it
/// down, so a monitor gets its answer within a second.
pub const HEALTH_TIMEOUT: Duration = Duration::from_millis(800);

/// Runs `checks`, the database's part of a health answer (/readyz, /metrics), within
/// [`HEALTH_TIMEOUT`] altogether: an unreachable or stuck database is reported as unavailable
/// however many queries the answer needs. Only for reads: what did not finish is dropped.
pub async fn within_health_timeout<T>(checks: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(HEALTH_TIMEOUT, checks)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "no answer within {} ms",
                HEALTH_TIMEOUT.as_millis()
            )))
        })
}

/// The size of the write that checks whether SQLite can write again after a failed write.
const WRITE_PROBE_BYTES: i64 = 64 * 1024;

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// A connection pool on one of the two backends.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite {
        /// Connections for reading.
        pool: SqlitePool,
        /// The one connection that writes. Writers of this process queue for it in order
        /// rather than in SQLite's busy handler, which polls with sleeps; and as no other
        /// connection of ours writes, its page cache stays valid between transactions.
        writer: SqlitePool,
        writes: Arc<WriteCheck>,
    },
    Postgres {
        pool: PgPool,
    },
}

/// A transaction on one of the two backends.
pub enum Tx {
    Sqlite {
        transaction: Transaction<'static, Sqlite>,
        unfinished: Unfinished,
    },
    Postgres {
        transaction: Transaction<'static, Postgres>,
    },
}

/// Runs `$body` with `$conn` bound to the pool of whichever backend `$store` is.
macro_rules! on_pool {
    ($store:expr, $conn:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite { pool: $conn, .. } => $body,
            $crate::store::Store::Postgres { pool: $conn } => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the connection of the transaction `$tx`.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite { transaction, .. } => {
                let $conn = &mut **transaction;
                $body
            }
            $crate::store::Tx::Postgres { transaction } => {
                let $conn = &mut **transaction;
                $body
            }
        }
    };
}
/// Runs one statement `$body` in its own write transaction (on SQLite through the writer
/// connection, so it queues with the other writers) and commits.
macro_rules! on_writer {
    ($store:expr, $conn:ident => $body:expr) => {{
        let mut tx = $store.begin_write().await?;
        let value = $crate::store::on_tx!(&mut tx, $conn => $body)?;
        tx.commit().await?;
        value
    }};
}
pub(crate) use {on_pool, on_tx, on_writer};

/// Ids as an SQL list for `IN (…)`; `NULL` when there are none, which matches nothing.
pub(crate) fn id_list<T: std::fmt::Display>(ids: &[T]) -> String {
    if ids.is_empty() {
        return "NULL".to_owned();
    }
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `LIKE … ESCAPE '\'` pattern for values that contain `text`, lower-cased: its wildcards
/// (`%`, `_`, common in chat handles) are escaped and so searched for as typed.
pub(crate) fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Placeholders for values bound in the order the placeholders are written: `$1, $2, …` on
/// PostgreSQL, `?` on SQLite, which looks a numbered placeholder up by its name in a list once
/// per value bound: at a few thousand values that costs more than the statement's own work.
pub(crate) struct Placeholders {
    numbered: bool,
    written: usize,
}

impl Placeholders {
    pub(crate) fn new(tx: &Tx) -> Placeholders {
        Placeholders {
            numbered: matches!(tx, Tx::Postgres { .. }),
            written: 0,
        }
    }

    /// The next placeholder.
    pub(crate) fn next(&mut self) -> String {
        self.written += 1;
        if self.numbered {
            format!("${}", self.written)
        } else {
            "?".to_owned()
        }
    }

    /// `rows` rows of `columns` placeholders each, for a statement's `VALUES`: `($1, $2),
    /// ($3, $4)`.
    pub(crate) fn rows(&mut self, rows: usize, columns: usize) -> String {
        (0..rows)
            .map(|_| {
                let cells = (0..columns).map(|_| self.next()).collect::<Vec<_>>();
                format!("({})", cells.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `rows` rows of `columns` placeholders each, for a statement on `tx` that binds nothing else
/// (see [`Placeholders`]).
pub(crate) fn value_rows(tx: &Tx, rows: usize, columns: usize) -> String {
    Placeholders::new(tx).rows(rows, columns)
}

/// Whether SQLite's writes need checking: set when a write transaction ends without its commit
/// (a failed statement or commit, or one given up), cleared by [`Store::check_writes`].
#[derive(Debug, Default)]
pub struct WriteCheck {
    needed: AtomicBool,
}

/// Held by a write transaction on SQLite: marks the writes for a check unless it commits.
pub struct Unfinished {
    check: Arc<WriteCheck>,
    committed: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.committed {
            self.check.needed.store(true, Ordering::SeqCst);
        }
    }
}

impl Store {
    /// Opens the database at `url`, creating an SQLite file (and its directory) when missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        let connect_error = |source| StoreError::Connect {
            url: redact_password(url),
            source,
        };
        match Backend::of_url(url) {
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url).map_err(connect_error)?;
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                Ok(Store::Postgres { pool })
            }
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(connect_error)?
                    .create_if_missing(true)
                    // WAL lets the web pages read while intake writes; NORMAL keeps every
                    // committed transaction across a process crash (only an OS crash or power
                    // loss may take the last commits back).
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    // Sorts and statement journals in memory: on disk each one creates and
                    // deletes a temporary file, which dominated the cost of an intake.
                    .pragma("temp_store", "memory")
                    .busy_timeout(Duration::from_secs(30));
                let file = options.get_filename();
                if let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                        path: dir.display().to_string(),
                        source,
                    })?;
                }
                let writer = SqlitePoolOptions::new()
                    .max_connections(1)
                    // A ping before every transaction would cost a round trip to the
                    // connection's thread each time; a broken file shows in the next query.
                    .test_before_acquire(false)
                    // Writers wait here for their turn, as long as a large batch may take.
                    .acquire_timeout(Duration::from_secs(300))
                    // sqlx counts a transaction as open until its COMMIT or ROLLBACK succeeds.
                    // When SQLite has already rolled it back itself (a full disk or an I/O error
                    // at COMMIT, or in a statement without a statement journal), the ROLLBACK
                    // that follows fails too, and the connection would refuse every later
                    // BEGIN. It is closed instead, and the pool opens a new one.
                    .before_acquire(|connection, _| {
                        Box::pin(async move {
                            let usable = !connection.is_in_transaction();
                            if !usable {
                                tracing::warn!(
                                    "the write connection was left in a failed transaction; \
                                     opening a new one"
                                );
                            }
                            Ok(usable)
                        })
                    })
                    // The writer walks every index a message goes into; 32 MB of pages left it
                    // reading from the file system a tenth of its time at 100,000 messages.
                    // Checkpoints every 40 MB of log instead of 4 MB copy the pages intake keeps
                    // rewriting (indexes, the search index) once instead of every few batches.
                    .connect_with(
                        options
                            .clone()
                            .pragma("cache_size", "-131072")
                            .pragma("wal_autocheckpoint", "10000"),
                    )
                    .await
                    .map_err(connect_error)?;
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                Ok(Store::Sqlite {
                    pool,
                    writer,
                    writes: Arc::default(),
                })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite { .. } => Backend::Sqlite,
            Store::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Brings the schema up to date; safe to run from several instances at once.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Store::Sqlite { writer, .. } => {
                let mut migrator = sqlx::migrate!("migrations/sqlite");
                migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
                migrator.run(writer).await?;
                jobs::migrate_sqlite(writer).await
            }
            Store::Postgres { pool } => {
                let mut migrator = sqlx::migrate!("migrations/postgres");
                migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
                // One connection for both sets of migrations, given back before the command's
                // own queries: a connection dropped is given back by a task after a ping, so
                // an acquire right after it would open a second connection.
                let mut conn = pool.acquire().await?;
                migrator.run(&mut *conn).await?;
                jobs::migrate_postgres(&mut conn).await?;
                conn.return_to_pool().await;
                Ok(())
            }
        }
    }

    /// Starts a transaction that writes. On SQLite it takes the write lock up front, so two
    /// writers queue instead of both reading and then failing to upgrade their locks.
    pub async fn begin_write(&self) -> Result<Tx> {
        Ok(match self {
            Store::Sqlite { writer, writes, .. } => Tx::Sqlite {
                // Before BEGIN, so a BEGIN that fails counts as a failed write too.
                unfinished: Unfinished {
                    check: writes.clone(),
                    committed: false,
                },
                transaction: writer.begin_with("BEGIN IMMEDIATE").await?,
            },
            Store::Postgres { pool } => Tx::Postgres {
                transaction: pool.begin().await?,
            },
        })
    }

    /// Has PostgreSQL gather the statistics of the tables intake writes. Its planner chooses
    /// by them, and the plans of foreign key checks and trigger statements, made once per
    /// connection, stay as first made until statistics change: made on a table that was
    /// nearly empty when a bulk import began, they scan it whole for every row. Autovacuum
    /// does this too, but only once a minute at most, and not at all where it is off. SQLite
    /// plans by the shape of its indexes and needs nothing.
    pub async fn refresh_statistics(&self) -> Result<()> {
        const TABLES: [&str; 10] = [
            "tickets",
            "messages",
            "message_references",
            "customers",
            "customer_identities",
            "raw_messages",
            "outbox",
            "attachments",
            "ticket_search",
            "ticket_changes",
        ];
        if let Store::Postgres { pool } = self {
            // One table at a time: each takes well under a second, all of them together
            // longer than sqlx's slow-statement warning allows.
            for table in TABLES {
                sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// Closes the pools, waiting at most a few seconds for connections still checked out
    /// (a background task of the job queue may hold one until the runtime ends).
    pub async fn close(&self) {
        let close = async {
            if let Store::Sqlite { writer, .. } = self {
                writer.close().await;
            }
            on_pool!(self, pool => pool.close().await)
        };
        if tokio::time::timeout(Duration::from_secs(5), close)
            .await
            .is_err()
        {
            tracing::debug!("database connections still in use at close");
        }
    }

    /// Whether the database answers within [`HEALTH_TIMEOUT`]; for /readyz and /metrics.
    pub async fn ping(&self) -> Result<()> {
        within_health_timeout(async {
            on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
            Ok(())
        })
        .await
    }

    /// Whether the database can write, for /readyz. Answers at once while every write
    /// transaction committed; after one that did not (on SQLite: a full disk, say), a write of
    /// 64 KiB is tried and removed again, and its error is the answer until one succeeds.
    /// PostgreSQL reports its own disk trouble (the server stops on a failed WAL write), so
    /// there writes are not checked.
    pub async fn check_writes(&self) -> Result<()> {
        let Store::Sqlite { writes, .. } = self else {
            return Ok(());
        };
        // Cleared before the probe, so a write failing meanwhile (the probe too) sets it again.
        if !writes.needed.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let probe = async {
            on_writer!(self, conn => sqlx::query("INSERT INTO write_probe (data) VALUES (zeroblob($1))")
                .bind(WRITE_PROBE_BYTES)
                .execute(&mut *conn)
                .await
                .map(|_| ()));
            on_writer!(self, conn => sqlx::query("DELETE FROM write_probe")
                .execute(&mut *conn)
                .await
                .map(|_| ()));
            Ok::<(), StoreError>(())
        };
        match tokio::time::timeout(HEALTH_TIMEOUT, probe).await {
            Ok(result) => result,
            Err(_) => {
                writes.needed.store(true, Ordering::SeqCst);
                Err(StoreError::Unavailable(format!(
                    "a write failed and the writer did not become free within {} ms to check \
                     again",
                    HEALTH_TIMEOUT.as_millis()
                )))
            }
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite {
                transaction,
                mut unfinished,
            } => {
                transaction.commit().await?;
                unfinished.committed = true;
            }
            Tx::Postgres { transaction } => transaction.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sqlite { transaction, .. } => transaction.rollback().await?,
            Tx::Postgres { transaction } => transaction.rollback().await?,
        }
        Ok(())
    }
}

/// Whether an error is a unique-constraint violation (a concurrent writer got there first).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The URL with any password replaced, for messages and logs.
pub fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_password("postgres://app:s3cret@db:5432/helpdesk"),
            "postgres://app:***@db:5432/helpdesk"
        );
        assert_eq!(
            redact_password("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
        assert_eq!(
            redact_password("sqlite://data/helpdesk.db"),
            "sqlite://data/helpdesk.db"
        );
    }
}
