//! `helpdesk import csv`: tickets from another system, one per CSV row.
//!
//! Columns (a header row names them, in any order, any case): `subject`, `customer_email` and
//! `body` are required; `number`, `customer_name`, `status` (new, open, pending, resolved,
//! closed), `priority` (low, normal, high, urgent), `department` (a name), `assignee` (an
//! agent's email), `created_at` (RFC 3339 or `YYYY-MM-DD HH:MM[:SS]`, UTC) and `tags`
//! (separated by `;`) are optional.
//!
//! Each row is one transaction: its customer, ticket, first message and history events are
//! stored together or not at all. A bad row is reported with its line number and skipped. A row
//! imported before (same content) is recognised and not imported again, so a file can be fed
//! again after its bad rows were fixed.

use chrono::{DateTime, NaiveDateTime, Utc};
use helpdesk_channel::{ChannelKind, Identity};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::{Direction, MessageKind, Priority, Status};
use crate::store::tickets::{Actor, NewEvent, NewMessage, NewTicket, TicketRef};
use crate::store::{self, Store, StoreError, Tx, on_pool, on_tx};

const COLUMNS: &[&str] = &[
    "number",
    "subject",
    "customer_email",
    "customer_name",
    "status",
    "priority",
    "department",
    "assignee",
    "created_at",
    "body",
    "tags",
];

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the header row: {0}")]
    Header(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedRow {
    /// The line of the file the row starts on (the header is line 1).
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub rows: usize,
    /// Numbers of the tickets made, in file order.
    pub imported: Vec<i64>,
    /// Rows imported by an earlier run.
    pub already_imported: usize,
    pub skipped: Vec<SkippedRow>,
}

/// One row, checked.
#[derive(Debug, Clone)]
struct Row {
    line: u64,
    number: Option<i64>,
    subject: String,
    customer_email: String,
    customer_name: Option<String>,
    status: Status,
    priority: Priority,
    department: Option<String>,
    assignee: Option<String>,
    created_at: DateTime<Utc>,
    body: String,
    tags: Vec<String>,
    /// Identifies the row's content, so a second import of it changes nothing.
    fingerprint: String,
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|date| date.and_hms_opt(0, 0, 0))
                .map(|naive| naive.and_utc())
        })
}

fn check_row(
    line: u64,
    header: &[String],
    record: &csv::StringRecord,
    now: DateTime<Utc>,
) -> Result<Row, String> {
    if record.len() != header.len() {
        return Err(format!(
            "{} fields where the header has {}",
            record.len(),
            header.len()
        ));
    }
    let field = |name: &str| -> Option<String> {
        header
            .iter()
            .position(|column| column == name)
            .and_then(|at| record.get(at))
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    let required = |name: &str| field(name).ok_or_else(|| format!("{name} is empty"));
    let number = field("number")
        .map(|text| {
            text.trim_start_matches('#')
                .parse::<i64>()
                .ok()
                .filter(|number| *number > 0)
                .ok_or_else(|| format!("number {text:?} is not a ticket number such as 1042"))
        })
        .transpose()?;
    let subject = required("subject")?;
    let customer_email = required("customer_email")?.to_lowercase();
    let valid_address = customer_email
        .rsplit_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !customer_email.contains(|c: char| c.is_whitespace() || "<>,;\"".contains(c));
    if !valid_address {
        return Err(format!(
            "customer_email {customer_email:?} is not a mail address"
        ));
    }
    let status = match field("status") {
        None => Status::New,
        Some(text) => text
            .to_lowercase()
            .parse()
            .map_err(|error: crate::domain::UnknownValue| error.to_string())?,
    };
    let priority = match field("priority") {
        None => Priority::Normal,
        Some(text) => text
            .to_lowercase()
            .parse()
            .map_err(|error: crate::domain::UnknownValue| error.to_string())?,
    };
    let created_at = match field("created_at") {
        None => now,
        Some(text) => parse_time(&text).ok_or_else(|| {
            format!("created_at {text:?} is not a time such as 2024-03-01T09:30:00Z")
        })?,
    };
    if created_at > now {
        return Err(format!("created_at {created_at} is in the future"));
    }
    let body = required("body")?;
    let tags = field("tags")
        .map(|text| {
            text.split(';')
                .map(|tag| tag.trim().to_lowercase())
                .filter(|tag| !tag.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut digest = Sha256::new();
    for value in record.iter() {
        digest.update(value.trim().as_bytes());
        digest.update([0u8]);
    }
    Ok(Row {
        line,
        number,
        subject,
        customer_email,
        customer_name: field("customer_name"),
        status,
        priority,
        department: field("department"),
        assignee: field("assignee").map(|email| email.to_lowercase()),
        created_at,
        body,
        tags,
        fingerprint: format!(
            "csv.{}@import.invalid",
            hex::encode(&digest.finalize()[..16])
        ),
    })
}

/// What a row became.
enum Stored {
    Ticket(i64),
    AlreadyImported,
}

/// Imports every row of `text`; bad rows are reported, not fatal. Only a header that cannot be
/// read stops the import before it starts.
pub async fn import(
    store: &Store,
    text: &str,
    now: DateTime<Utc>,
) -> Result<ImportReport, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|error| ImportError::Header(error.to_string()))?
        .iter()
        .map(|name| name.trim().trim_start_matches('\u{feff}').to_lowercase())
        .collect();
    for name in &header {
        if !COLUMNS.contains(&name.as_str()) {
            return Err(ImportError::Header(format!(
                "unknown column {name:?} (known: {})",
                COLUMNS.join(", ")
            )));
        }
    }
    for required in ["subject", "customer_email", "body"] {
        if !header.iter().any(|name| name == required) {
            return Err(ImportError::Header(format!(
                "the column {required:?} is missing"
            )));
        }
    }
    let mut report = ImportReport::default();
    for record in reader.records() {
        report.rows += 1;
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, csv::Position::line);
                report.skipped.push(SkippedRow {
                    line,
                    reason: format!("unreadable CSV: {error}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        let row = match check_row(line, &header, &record, now) {
            Ok(row) => row,
            Err(reason) => {
                report.skipped.push(SkippedRow { line, reason });
                continue;
            }
        };
        match store_row(store, &row).await {
            Ok(Stored::Ticket(number)) => report.imported.push(number),
            Ok(Stored::AlreadyImported) => report.already_imported += 1,
            Err(StoreError::Conflict(reason) | StoreError::NotFound(reason)) => {
                report.skipped.push(SkippedRow { line, reason });
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(report)
}

async fn store_row(store: &Store, row: &Row) -> Result<Stored, StoreError> {
    let department: Option<(i64, String)> = match &row.department {
        None => None,
        Some(name) => {
            let found = store::agents::department_by_name(store, name)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("no department named {name:?}")))?;
            Some((found.id, found.name))
        }
    };
    let assignee: Option<(i64, String)> = match &row.assignee {
        None => None,
        Some(email) => {
            let found: Option<(i64, String)> = on_pool!(store, pool => sqlx::query_as(
                "SELECT id, name FROM agents WHERE email = $1",
            )
            .bind(email)
            .fetch_optional(pool)
            .await)?;
            Some(
                found
                    .ok_or_else(|| StoreError::NotFound(format!("no agent with email {email}")))?,
            )
        }
    };
    let mut tx = store.begin_write().await?;
    match store_in(&mut tx, row, department, assignee).await {
        Ok(stored) => {
            tx.commit().await?;
            Ok(stored)
        }
        Err(error) => {
            tx.rollback().await.ok();
            Err(error)
        }
    }
}

async fn store_in(
    tx: &mut Tx,
    row: &Row,
    department: Option<(i64, String)>,
    assignee: Option<(i64, String)>,
) -> Result<Stored, StoreError> {
    let known: Option<i64> = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT id FROM messages WHERE channel = 'email' AND external_id = $1",
    )
    .bind(&row.fingerprint)
    .fetch_optional(&mut *conn)
    .await)?;
    if known.is_some() {
        return Ok(Stored::AlreadyImported);
    }
    let at = row.created_at;
    let identity = Identity {
        channel: ChannelKind::Email,
        address: row.customer_email.clone(),
        display_name: row.customer_name.clone(),
    };
    let customer: Option<(i64, Option<String>)> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT customer_id, display_name FROM customer_identities
         WHERE channel = 'email' AND address = $1",
    )
    .bind(&row.customer_email)
    .fetch_optional(&mut *conn)
    .await)?;
    let customer_id = store::customers::resolve(tx, &identity, customer, at).await?;
    let ticket = match row.number {
        None => {
            store::tickets::create(
                tx,
                &NewTicket {
                    subject: &row.subject,
                    priority: row.priority,
                    customer_id,
                    channel: ChannelKind::Email,
                    conversation: None,
                    follows_ticket_id: None,
                    now: at,
                },
            )
            .await?
        }
        Some(number) => create_numbered(tx, row, number, customer_id).await?,
    };
    store::tickets::insert_message(
        tx,
        &NewMessage {
            ticket_id: ticket.id,
            direction: Direction::Inbound,
            kind: MessageKind::Public,
            author_customer_id: Some(customer_id),
            author_agent_id: None,
            channel: ChannelKind::Email,
            external_id: Some(&row.fingerprint),
            subject: Some(&row.subject),
            body_text: &row.body,
            body_html: None,
            raw_message_id: None,
            sent_at: Some(at),
            now: at,
            sender_address: Some(&row.customer_email),
        },
    )
    .await?
    .ok_or_else(|| StoreError::Conflict("the same row is being imported twice".into()))?;
    let why = format!("imported from CSV line {}", row.line);
    let event =
        |kind: &'static str, old: Option<&'static str>, new: Option<String>| (kind, old, new);
    let mut events = vec![event("imported", None, None)];
    if row.priority != Priority::Normal {
        events.push(event(
            "priority",
            Some(Priority::Normal.as_str()),
            Some(row.priority.as_str().to_owned()),
        ));
    }
    if let Some((id, name)) = &department {
        on_tx!(tx, conn => sqlx::query("UPDATE tickets SET department_id = $1 WHERE id = $2")
            .bind(*id)
            .bind(ticket.id)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))?;
        events.push(event("department", None, Some(name.clone())));
    }
    if let Some((id, name)) = &assignee {
        on_tx!(tx, conn => sqlx::query("UPDATE tickets SET assignee_id = $1 WHERE id = $2")
            .bind(*id)
            .bind(ticket.id)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))?;
        events.push(event("assignee", None, Some(name.clone())));
    }
    for (kind, old, new) in &events {
        store::tickets::record_event(
            tx,
            &NewEvent {
                ticket_id: ticket.id,
                actor: Actor::System,
                kind,
                old_value: *old,
                new_value: new.as_deref(),
                reason: Some(&why),
                at,
            },
        )
        .await?;
    }
    if row.status != Status::New {
        store::tickets::change_status(tx, ticket.number, row.status, Actor::System, Some(&why), at)
            .await?;
    }
    for tag in &row.tags {
        on_tx!(tx, conn => sqlx::query(
            "INSERT INTO ticket_tags (ticket_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(ticket.id)
        .bind(tag)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    }
    Ok(Stored::Ticket(ticket.number))
}

/// A ticket with the number the other system gave it; the counter moves past it, so new
/// tickets never take it.
async fn create_numbered(
    tx: &mut Tx,
    row: &Row,
    number: i64,
    customer_id: i64,
) -> Result<TicketRef, StoreError> {
    let taken: Option<i64> = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT id FROM tickets WHERE number = $1",
    )
    .bind(number)
    .fetch_optional(&mut *conn)
    .await)?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!(
            "ticket #{number} exists already"
        )));
    }
    let id: i64 = on_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO tickets (number, subject, status, priority, customer_id, channel,
                              created_at, updated_at, last_customer_message_at)
         VALUES ($1, $2, 'new', $3, $4, 'email', $5, $5, $5)
         RETURNING id",
    )
    .bind(number)
    .bind(&row.subject)
    .bind(row.priority.as_str())
    .bind(customer_id)
    .bind(row.created_at)
    .fetch_one(&mut *conn)
    .await)?;
    // SQLite's counter follows by trigger; PostgreSQL's sequence is moved here.
    if let Tx::Postgres { transaction } = tx {
        sqlx::query(
            "SELECT setval('ticket_numbers', GREATEST($1, (SELECT last_value FROM ticket_numbers)))",
        )
        .bind(number)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(TicketRef {
        id,
        number,
        status: Status::New,
    })
}
