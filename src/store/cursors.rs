//! Where each channel adapter stands: IMAP UIDVALIDITY and last UID, Telegram update offset,
//! the last message handled in each Discord DM channel.

use chrono::Utc;

use super::{Result, Store, on_pool};

pub async fn get(store: &Store, channel: &str, name: &str) -> Result<Option<String>> {
    let value = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT value FROM channel_cursors WHERE channel = $1 AND name = $2",
    )
    .bind(channel)
    .bind(name)
    .fetch_optional(pool)
    .await)?;
    Ok(value)
}

/// Every cursor of `channel`, as (name, value), by name.
pub async fn list(store: &Store, channel: &str) -> Result<Vec<(String, String)>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT name, value FROM channel_cursors WHERE channel = $1 ORDER BY name",
    )
    .bind(channel)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

pub async fn set(store: &Store, channel: &str, name: &str, value: &str) -> Result<()> {
    let mut tx = store.begin_write().await?;
    super::on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO channel_cursors (channel, name, value, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (channel, name) DO UPDATE SET value = excluded.value,
                                                   updated_at = excluded.updated_at",
    )
    .bind(channel)
    .bind(name)
    .bind(value)
    .bind(Utc::now())
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    tx.commit().await
}
