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
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::{Priority, Status};
use crate::store::import::{self, ImportRow as Row, Stored};
use crate::store::{Store, StoreError};

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
        match import::store_row(store, &row).await {
            Ok(Stored::Ticket(number)) => report.imported.push(number.get()),
            Ok(Stored::AlreadyImported) => report.already_imported += 1,
            Err(StoreError::Conflict(reason) | StoreError::NotFound(reason)) => {
                report.skipped.push(SkippedRow { line, reason });
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(report)
}
