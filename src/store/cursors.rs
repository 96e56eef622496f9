//! Where each channel adapter stands: IMAP UIDVALIDITY and last UID, Telegram update offset.

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
