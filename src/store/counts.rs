//! Counts over the whole database, for `/metrics`: the same on every instance.

use super::{Result, Store, on_pool};

/// Public messages per (channel, direction, delivery status).
pub async fn messages(store: &Store) -> Result<Vec<(String, String, Option<String>, i64)>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT channel, direction, delivery_status, COUNT(*) FROM messages
         WHERE kind <> 'internal' GROUP BY channel, direction, delivery_status",
    )
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// Messages kept raw because intake failed, per channel.
pub async fn rejected_by_channel(store: &Store) -> Result<Vec<(String, i64)>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT channel, COUNT(*) FROM raw_messages WHERE intake_error IS NOT NULL GROUP BY channel",
    )
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// Tickets per status (as stored).
pub async fn tickets_by_status(store: &Store) -> Result<Vec<(String, i64)>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT status, COUNT(*) FROM tickets GROUP BY status",
    )
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}
