//! The store's error, and which error belongs to which layer.
//!
//! - [`StoreError`] (here): reading and writing the database, the job tables included. Each
//!   variant names one kind of failure; there is no catch-all: a failure of the job queue's
//!   own code, a background task that stopped, a value that cannot be encoded, an operating
//!   system without random numbers each have their variant.
//! - `jobs::JobError`: why a job run failed (a store error, or a failure the job itself
//!   reports, such as a channel that refused for now); the queue keeps it as the job's result.
//! - `intake::IntakeError`, `accounts::AccountError`, …: what an application operation refuses
//!   or fails with; they wrap a [`StoreError`] for the database part.
//! - [`StoreError::Stale`]: the one refusal of an operation in `ops` that carries data (a reply
//!   written without seeing newer messages, `ops::reply`); like `Conflict` it is answered, not
//!   logged.
//! - `web::error::WebError` and `web::api::problem::ApiError`: what a request answers with,
//!   made from the errors above.
//! - `anyhow` only at the edge: the command line and the startup of `serve`.

use crate::domain::TicketNumber;
use sqlx::sqlite::SqliteError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot open database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("cannot create directory {path} for the database: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    /// A value read from the database is not one the application knows.
    #[error("stored value is invalid: {0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A reply or note was written on an older view of its ticket: messages its writer has not
    /// seen arrived after `seen` (`unseen`, oldest first). Nothing was stored.
    #[error(
        "#{number} has new messages since message {seen} you saw: {}; read them, then send \
         again with last_seen_message_id {} to send anyway",
        id_list(.unseen),
        .unseen.last().unwrap_or(.seen)
    )]
    Stale {
        number: TicketNumber,
        seen: i64,
        unseen: Vec<i64>,
    },
    /// The database cannot be reached or cannot write; the same request should work later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The job queue's own code failed (on SQLite it reports its errors in a type of its own).
    #[error("job queue: {0}")]
    Queue(#[from] apalis_sqlite::Error),
    /// A value to be stored as JSON could not be encoded.
    #[error("cannot encode as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    /// Work handed to a blocking task did not finish (it panicked or the runtime is ending).
    #[error("{what} stopped: {source}")]
    Join {
        what: &'static str,
        source: tokio::task::JoinError,
    },
    /// Work shared by several messages stopped; each of them carries this description (a
    /// task's join error can be had only once).
    #[error("{0}")]
    Stopped(String),
    /// The attachment store (files or an S3 bucket) failed or lacks a content.
    #[error(transparent)]
    Blob(#[from] super::blobs::BlobError),
    /// A text the helpdesk sends could not be made from its template.
    #[error("mail template: {0}")]
    Template(#[from] askama::Error),
    /// The operating system gave no random numbers.
    #[error("no random numbers: {0}")]
    NoRandom(getrandom::Error),
}

impl StoreError {
    /// Whether the database as a whole (or the attachment store) is failing (unreachable, out
    /// of space, I/O errors) rather than this one request: the request should be tried again, not given up on.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            // Unreachable, refusing or out of space: worth waiting out, like the database.
            StoreError::Blob(error) => !error.is_missing(),
            StoreError::Database(error) | StoreError::Connect { source: error, .. } => {
                is_outage(error)
            }
            _ => false,
        }
    }

    /// What is failing, for an unavailable error's message: the attachment store or the
    /// database.
    pub fn failing_service(&self) -> &'static str {
        match self {
            StoreError::Blob(_) => "attachment store",
            _ => "database",
        }
    }
}

fn is_outage(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(error) => {
            let code = error.code().unwrap_or_default();
            if error.try_downcast_ref::<SqliteError>().is_some() {
                // The primary result code: BUSY, READONLY, IOERR, FULL, CANTOPEN.
                code.parse::<i32>()
                    .is_ok_and(|code| matches!(code & 0xff, 5 | 8 | 10 | 13 | 14))
            } else {
                // Connection exceptions, insufficient resources (disk full), shutdowns, I/O.
                ["08", "53", "57P", "58"]
                    .iter()
                    .any(|class| code.starts_with(class))
            }
        }
        _ => false,
    }
}

fn id_list(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<crate::domain::UnknownValue> for StoreError {
    fn from(error: crate::domain::UnknownValue) -> Self {
        StoreError::Invalid(error.to_string())
    }
}
