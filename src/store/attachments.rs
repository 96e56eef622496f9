//! Attachments: rows per message; their contents are in the blob store (`store::blobs`).

use chrono::{DateTime, Utc};

use super::{Result, Store, Tx, on_pool, on_tx};
use crate::domain::TicketId;

/// One attachment row to write with its message.
#[derive(Debug, Clone)]
pub struct NewAttachment<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub inline: bool,
    pub content_id: Option<&'a str>,
    /// The stored content, or why it was not kept.
    pub stored: Result<String, String>,
}

/// Stores `attachments`, each beside the id of its message: the contents' rows, then the
/// attachments' rows, each in one statement per hundred.
pub async fn insert_all(
    tx: &mut Tx,
    attachments: &[(i64, NewAttachment<'_>)],
    now: DateTime<Utc>,
) -> Result<()> {
    let contents: Vec<(&str, i64)> = attachments
        .iter()
        .filter_map(|(_, attachment)| Some((attachment.stored.as_deref().ok()?, attachment.size)))
        .collect();
    for chunk in contents.chunks(100) {
        let sql = format!(
            "INSERT INTO attachment_blobs (sha256, size, created_at) VALUES {}
             ON CONFLICT (sha256) DO NOTHING",
            super::value_rows(tx, chunk.len(), 3)
        );
        on_tx!(tx, conn => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (sha256, size) in chunk {
                query = query.bind(*sha256).bind(*size).bind(now);
            }
            query.execute(&mut *conn).await.map(|done| done.rows_affected())
        })?;
    }
    for chunk in attachments.chunks(100) {
        let sql = format!(
            "INSERT INTO attachments
                (message_id, sha256, filename, content_type, size, inline, content_id,
                 rejected_reason)
             VALUES {}",
            super::value_rows(tx, chunk.len(), 8)
        );
        on_tx!(tx, conn => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (message_id, attachment) in chunk {
                query = query
                    .bind(*message_id)
                    .bind(attachment.stored.as_deref().ok())
                    .bind(attachment.filename)
                    .bind(attachment.content_type)
                    .bind(attachment.size)
                    .bind(attachment.inline)
                    .bind(attachment.content_id)
                    .bind(attachment.stored.as_ref().err());
            }
            query.execute(&mut *conn).await.map(|done| done.rows_affected())
        })?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct AttachmentView {
    #[serde(skip)]
    pub message_id: i64,
    pub id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub inline: bool,
    /// The Content-ID a mail's HTML refers to it by (`cid:`), without angle brackets.
    pub content_id: Option<String>,
    pub sha256: Option<String>,
    pub rejected_reason: Option<String>,
}

/// The attachments of a ticket's messages, in message order.
pub async fn of_ticket(store: &Store, ticket_id: TicketId) -> Result<Vec<AttachmentView>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT a.message_id, a.id, a.filename, a.content_type, a.size, a.inline, a.content_id,
                a.sha256, a.rejected_reason
         FROM attachments a JOIN messages m ON m.id = a.message_id
         WHERE m.ticket_id = $1 ORDER BY a.message_id, a.id",
    )
    .bind(ticket_id)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// How many distinct contents are stored, and their total size.
pub async fn blob_totals(store: &Store) -> Result<(i64, i64)> {
    let totals = on_pool!(store, pool => sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM attachment_blobs",
    )
    .fetch_one(pool)
    .await)?;
    Ok(totals)
}

/// The attachments of one message, in order.
pub async fn of_message(store: &Store, message_id: i64) -> Result<Vec<AttachmentView>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT message_id, id, filename, content_type, size, inline, content_id, sha256,
                rejected_reason
         FROM attachments WHERE message_id = $1 ORDER BY id",
    )
    .bind(message_id)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// The media type of a file, judged by its name's extension; for files agents attach.
pub fn content_type_for(filename: &str) -> &'static str {
    let extension = filename
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "zip" => "application/zip",
        "json" => "application/json",
        "eml" => "message/rfc822",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}
