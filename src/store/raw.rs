//! Raw inbound messages: every message exactly as it arrived, kept whatever happens to it.

use chrono::{DateTime, Utc};
use helpdesk_channel::ChannelKind;

use super::{Result, Store, Tx, on_pool, on_tx};

/// What storing a raw message found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawInsert {
    /// First arrival: the new row.
    New(i64),
    /// Arrived before and was taken in: this arrival is a duplicate.
    Known(i64),
    /// Arrived before but its intake failed: take it in again (the fix may be in now).
    Failed(i64),
}

/// Stores a raw message unless the same (channel, external id) is already kept. Under
/// concurrency the unique key decides: a second writer waits for the first and then sees its row.
pub async fn insert(
    tx: &mut Tx,
    channel: ChannelKind,
    external_id: &str,
    content: &[u8],
    now: DateTime<Utc>,
) -> Result<RawInsert> {
    let size = i64::try_from(content.len()).unwrap_or(i64::MAX);
    let inserted: Option<i64> = on_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO raw_messages (channel, external_id, content, size, received_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (channel, external_id) DO NOTHING
         RETURNING id",
    )
    .bind(channel.as_str())
    .bind(external_id)
    .bind(content)
    .bind(size)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await)?;
    if let Some(id) = inserted {
        return Ok(RawInsert::New(id));
    }
    let (id, failed): (i64, bool) = on_tx!(tx, conn => sqlx::query_as(
        "UPDATE raw_messages SET times_received = times_received + 1
         WHERE channel = $1 AND external_id = $2
         RETURNING id, intake_error IS NOT NULL",
    )
    .bind(channel.as_str())
    .bind(external_id)
    .fetch_one(&mut *conn)
    .await)?;
    Ok(if failed {
        RawInsert::Failed(id)
    } else {
        RawInsert::Known(id)
    })
}

/// Marks a raw message as taken in (after a retry of a failed one succeeds).
pub async fn clear_error(tx: &mut Tx, raw_id: i64) -> Result<()> {
    on_tx!(tx, conn => sqlx::query("UPDATE raw_messages SET intake_error = NULL WHERE id = $1")
        .bind(raw_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// Records why a stored raw message was not taken in, in the intake transaction.
pub async fn record_error(tx: &mut Tx, raw_id: i64, error: &str) -> Result<()> {
    on_tx!(tx, conn => sqlx::query("UPDATE raw_messages SET intake_error = $1 WHERE id = $2")
        .bind(error)
        .bind(raw_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// Records that only the header section of a raw message is kept, and why (its size and the
/// limit), in the intake transaction.
pub async fn record_body_omitted(tx: &mut Tx, raw_id: i64, note: &str) -> Result<()> {
    on_tx!(tx, conn => sqlx::query("UPDATE raw_messages SET body_omitted = $1 WHERE id = $2")
        .bind(note)
        .bind(raw_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// Keeps a message that could not be taken in, with the reason, in its own transaction so the
/// failure of the intake transaction cannot take it along. Returns the raw message's id.
pub async fn keep_failed(
    store: &Store,
    channel: ChannelKind,
    external_id: &str,
    content: &[u8],
    error: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let size = i64::try_from(content.len()).unwrap_or(i64::MAX);
    let id = on_pool!(store, pool => sqlx::query_scalar(
        "INSERT INTO raw_messages (channel, external_id, content, size, received_at, intake_error)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (channel, external_id) DO UPDATE
            SET intake_error = excluded.intake_error,
                times_received = raw_messages.times_received + 1
         RETURNING id",
    )
    .bind(channel.as_str())
    .bind(external_id)
    .bind(content)
    .bind(size)
    .bind(now)
    .bind(error)
    .fetch_one(pool)
    .await)?;
    Ok(id)
}

/// A raw message whose intake failed.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct FailedRaw {
    pub id: i64,
    pub channel: String,
    pub external_id: String,
    pub size: i64,
    pub received_at: DateTime<Utc>,
    pub intake_error: String,
}

pub async fn list_failed(store: &Store, limit: i64) -> Result<Vec<FailedRaw>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, channel, external_id, size, received_at, intake_error FROM raw_messages
         WHERE intake_error IS NOT NULL ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// The stored bytes of a raw message, e.g. to replay it.
pub async fn content(store: &Store, raw_id: i64) -> Result<Option<Vec<u8>>> {
    let content = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT content FROM raw_messages WHERE id = $1",
    )
    .bind(raw_id)
    .fetch_optional(pool)
    .await)?;
    Ok(content)
}

/// A raw message as kept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct RawRow {
    pub id: i64,
    pub content: Vec<u8>,
    /// Bytes of `content`.
    pub size: i64,
    pub intake_error: Option<String>,
    /// Set when `content` is only the header section of a message too large to keep whole.
    pub body_omitted: Option<String>,
}

/// The raw message of a channel's external id.
pub async fn find(
    store: &Store,
    channel: ChannelKind,
    external_id: &str,
) -> Result<Option<RawRow>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, content, size, intake_error, body_omitted FROM raw_messages
         WHERE channel = $1 AND external_id = $2",
    )
    .bind(channel.as_str())
    .bind(external_id)
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// Counts for the ingest summary and, later, metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RawCounts {
    pub kept: i64,
    pub failed: i64,
    pub duplicates_dropped: i64,
}

pub async fn counts(store: &Store) -> Result<RawCounts> {
    let (kept, failed, duplicates_dropped): (i64, i64, i64) = on_pool!(store, pool => sqlx::query_as(
        // SUM of BIGINT is NUMERIC on PostgreSQL: cast back so both decode to i64.
        "SELECT COUNT(*),
                CAST(COALESCE(SUM(CASE WHEN intake_error IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(times_received - 1), 0) AS BIGINT)
         FROM raw_messages",
    )
    .fetch_one(pool)
    .await)?;
    Ok(RawCounts {
        kept,
        failed,
        duplicates_dropped,
    })
}
