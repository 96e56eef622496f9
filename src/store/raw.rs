//! Raw inbound messages: every message exactly as it arrived, kept whatever happens to it.

use std::collections::HashMap;

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

/// A raw message to store.
#[derive(Debug, Clone, Copy)]
pub struct NewRaw<'a> {
    pub channel: ChannelKind,
    pub external_id: &'a str,
    pub content: &'a [u8],
}

/// Stores each raw message unless the same (channel, external id) is already kept, in one
/// statement per hundred messages; the answers are in the order given, and a message given
/// twice is new the first time and known the second. Under concurrency the unique key
/// decides: a second writer waits for the first and then sees its row.
pub async fn insert_all(
    tx: &mut Tx,
    messages: &[NewRaw<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<RawInsert>> {
    let mut answers = Vec::with_capacity(messages.len());
    for chunk in messages.chunks(100) {
        let sql = format!(
            "INSERT INTO raw_messages (channel, external_id, content, size, received_at)
             VALUES {}
             ON CONFLICT (channel, external_id) DO NOTHING
             RETURNING id, channel, external_id",
            super::value_rows(tx, chunk.len(), 5)
        );
        let inserted: Vec<(i64, String, String)> = on_tx!(tx, conn => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for message in chunk {
                query = query
                    .bind(message.channel.as_str())
                    .bind(message.external_id)
                    .bind(message.content)
                    .bind(i64::try_from(message.content.len()).unwrap_or(i64::MAX))
                    .bind(now);
            }
            query.fetch_all(&mut *conn).await
        })?;
        let mut new: HashMap<(String, String), i64> = inserted
            .into_iter()
            .map(|(id, channel, external_id)| ((channel, external_id), id))
            .collect();
        for message in chunk {
            let key = (
                message.channel.as_str().to_owned(),
                message.external_id.to_owned(),
            );
            answers.push(match new.remove(&key) {
                Some(id) => RawInsert::New(id),
                None => received_again(tx, message).await?,
            });
        }
    }
    Ok(answers)
}

/// A raw message that is kept already: counts the arrival and tells whether its intake failed.
async fn received_again(tx: &mut Tx, message: &NewRaw<'_>) -> Result<RawInsert> {
    let (id, failed): (i64, bool) = on_tx!(tx, conn => sqlx::query_as(
        "UPDATE raw_messages SET times_received = times_received + 1
         WHERE channel = $1 AND external_id = $2
         RETURNING id, intake_error IS NOT NULL",
    )
    .bind(message.channel.as_str())
    .bind(message.external_id)
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

/// What a channel's intake left in the raw messages: the newest arrival, how many failed since
/// `since`, and the newest failure's error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelIntake {
    pub last_message: Option<DateTime<Utc>>,
    pub failed_since: i64,
    pub last_error: Option<String>,
}

pub async fn channel_intake(
    store: &Store,
    channel: ChannelKind,
    since: DateTime<Utc>,
) -> Result<ChannelIntake> {
    let (last_message, failed_since): (Option<DateTime<Utc>>, i64) = on_pool!(store, pool => sqlx::query_as(
        "SELECT (SELECT MAX(received_at) FROM raw_messages WHERE channel = $1),
                (SELECT COUNT(*) FROM raw_messages
                 WHERE channel = $1 AND intake_error IS NOT NULL AND received_at > $2)",
    )
    .bind(channel.as_str())
    .bind(since)
    .fetch_one(pool)
    .await)?;
    let last_error: Option<String> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT intake_error FROM raw_messages
         WHERE channel = $1 AND intake_error IS NOT NULL ORDER BY received_at DESC LIMIT 1",
    )
    .bind(channel.as_str())
    .fetch_optional(pool)
    .await)?;
    Ok(ChannelIntake {
        last_message,
        failed_since,
        last_error,
    })
}
