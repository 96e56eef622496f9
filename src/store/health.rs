//! How each channel connection is doing (IMAP intake, SMTP delivery, chat bots), as its adapter
//! last reported: kept in the database so the admin page and /metrics of any instance read it.

use chrono::{DateTime, Utc};

use super::{Result, Store, on_pool};

/// One connection's state. `name` tells several connections of a channel apart
/// ("imap:INBOX", "smtp").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct ChannelHealth {
    pub channel: String,
    pub name: String,
    pub connected: bool,
    /// What the connection is doing, in a few words ("idling", "polling every 30 s").
    pub detail: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Failed attempts since the last success; 0 when healthy.
    pub consecutive_failures: i64,
    /// Messages waiting at the source to be taken in, or here to be delivered.
    pub backlog: i64,
    pub updated_at: DateTime<Utc>,
}

/// Stores a connection's state, replacing what it reported before.
pub async fn report(store: &Store, health: &ChannelHealth) -> Result<()> {
    let mut tx = store.begin_write().await?;
    super::on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO channel_health (channel, name, connected, detail, last_success_at,
                                     last_error, last_error_at, consecutive_failures, backlog,
                                     updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (channel, name) DO UPDATE SET
             connected = excluded.connected, detail = excluded.detail,
             last_success_at = excluded.last_success_at, last_error = excluded.last_error,
             last_error_at = excluded.last_error_at,
             consecutive_failures = excluded.consecutive_failures,
             backlog = excluded.backlog, updated_at = excluded.updated_at",
    )
    .bind(&health.channel)
    .bind(&health.name)
    .bind(health.connected)
    .bind(&health.detail)
    .bind(health.last_success_at)
    .bind(&health.last_error)
    .bind(health.last_error_at)
    .bind(health.consecutive_failures)
    .bind(health.backlog)
    .bind(health.updated_at)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    tx.commit().await
}

/// Every connection's last report, by channel and name.
pub async fn list(store: &Store) -> Result<Vec<ChannelHealth>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT channel, name, connected, detail, last_success_at, last_error, last_error_at,
                consecutive_failures, backlog, updated_at
         FROM channel_health ORDER BY channel, name",
    )
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// How often a healthy delivery connection's row is written again after a success: every
/// delivery writing it made all deliveries of a channel wait on that one row's lock in turn.
const SUCCESS_REFRESH: chrono::Duration = chrono::Duration::seconds(1);

/// Records one delivery attempt on `channel` as the health of its "delivery" connection, in
/// the transaction that records the attempt. A permanent failure (a refused recipient) says
/// nothing against the connection; a temporary one (network, server trouble) does. A success
/// on a connection already known as healthy is written at most once per [`SUCCESS_REFRESH`]:
/// the row is neither locked nor written otherwise.
pub async fn record_delivery(
    tx: &mut super::Tx,
    channel: &str,
    result: std::result::Result<(), (&str, bool)>,
    now: DateTime<Utc>,
) -> Result<()> {
    let (connected, error, failed) = match result {
        Ok(()) => (true, None, false),
        Err((error, permanent)) => (permanent, Some(error), !permanent),
    };
    if error.is_none() {
        // An UPDATE whose condition is false for the row's current version takes no lock.
        let refreshed = super::on_tx!(tx, conn => sqlx::query(
            "UPDATE channel_health SET connected = TRUE, last_success_at = $2,
                    consecutive_failures = 0, updated_at = $2,
                    backlog = (SELECT COUNT(*) FROM messages
                               WHERE delivery_status = 'pending' AND channel = $1)
             WHERE channel = $1 AND name = 'delivery'
               AND (NOT connected OR consecutive_failures <> 0 OR last_success_at IS NULL
                    OR last_success_at < $3)",
        )
        .bind(channel)
        .bind(now)
        .bind(now - SUCCESS_REFRESH)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
        if refreshed > 0 || known(tx, channel).await? {
            return Ok(());
        }
    }
    super::on_tx!(tx, conn => sqlx::query(
        "INSERT INTO channel_health (channel, name, connected, last_success_at, last_error,
                                     last_error_at, consecutive_failures, backlog, updated_at)
         VALUES ($1, 'delivery', $2, CASE WHEN $3 IS NULL THEN $5 END, $3,
                 CASE WHEN $3 IS NULL THEN NULL ELSE $5 END, CASE WHEN $4 THEN 1 ELSE 0 END,
                 (SELECT COUNT(*) FROM messages
                  WHERE delivery_status = 'pending' AND channel = $1), $5)
         ON CONFLICT (channel, name) DO UPDATE SET
             connected = excluded.connected,
             last_success_at = COALESCE(excluded.last_success_at, channel_health.last_success_at),
             last_error = COALESCE(excluded.last_error, channel_health.last_error),
             last_error_at = COALESCE(excluded.last_error_at, channel_health.last_error_at),
             consecutive_failures = CASE WHEN $4 THEN channel_health.consecutive_failures + 1
                                         ELSE 0 END,
             backlog = excluded.backlog, updated_at = excluded.updated_at",
    )
    .bind(channel)
    .bind(connected)
    .bind(error)
    .bind(failed)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(())
}

/// Whether `channel`'s delivery connection has a row yet.
async fn known(tx: &mut super::Tx, channel: &str) -> Result<bool> {
    let rows: i64 = super::on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT COUNT(*) FROM channel_health WHERE channel = $1 AND name = 'delivery'",
    )
    .bind(channel)
    .fetch_one(&mut *conn)
    .await)?;
    Ok(rows > 0)
}
