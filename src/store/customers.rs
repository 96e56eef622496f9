//! Customers and their identities on each channel.

use chrono::{DateTime, Utc};
use helpdesk_channel::Identity;

use super::{Result, Tx, on_tx};

/// The customer behind `identity`, given what a lookup found: a known identity gets the display
/// name it was missing; an unknown one becomes a new customer. Safe under concurrency: the unique
/// (channel, address) key decides which of two racing writers creates the identity.
pub async fn resolve(
    tx: &mut Tx,
    identity: &Identity,
    known: Option<(i64, Option<String>)>,
    now: DateTime<Utc>,
) -> Result<i64> {
    let channel = identity.channel.as_str();
    if let Some((customer_id, known_name)) = known {
        if known_name.is_none() && identity.display_name.is_some() {
            on_tx!(tx, conn => sqlx::query(
                "UPDATE customer_identities SET display_name = $1 WHERE channel = $2 AND address = $3",
            )
            .bind(&identity.display_name)
            .bind(channel)
            .bind(&identity.address)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))?;
        }
        return Ok(customer_id);
    }

    let customer_id: i64 = on_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO customers (name, created_at) VALUES ($1, $2) RETURNING id",
    )
    .bind(&identity.display_name)
    .bind(now)
    .fetch_one(&mut *conn)
    .await)?;
    let linked: Option<i64> = on_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO customer_identities (customer_id, channel, address, display_name, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (channel, address) DO NOTHING
         RETURNING customer_id",
    )
    .bind(customer_id)
    .bind(channel)
    .bind(&identity.address)
    .bind(&identity.display_name)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await)?;
    if let Some(customer_id) = linked {
        return Ok(customer_id);
    }
    // Another intake created this identity meanwhile: use its customer, drop ours.
    on_tx!(tx, conn => sqlx::query("DELETE FROM customers WHERE id = $1")
        .bind(customer_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    let existing = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT customer_id FROM customer_identities WHERE channel = $1 AND address = $2",
    )
    .bind(channel)
    .bind(&identity.address)
    .fetch_one(&mut *conn)
    .await)?;
    Ok(existing)
}

pub async fn count(store: &super::Store) -> Result<i64> {
    let count = super::on_pool!(store, pool => sqlx::query_scalar("SELECT COUNT(*) FROM customers")
        .fetch_one(pool)
        .await)?;
    Ok(count)
}

/// Takes the right to acknowledge `identity` now: true (and the time recorded) unless it was
/// acknowledged after `not_since`. The row update makes two racing intakes agree.
pub async fn claim_acknowledgement(
    tx: &mut Tx,
    identity: &Identity,
    not_since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let claimed = on_tx!(tx, conn => sqlx::query(
        "UPDATE customer_identities SET acknowledged_at = $1
         WHERE channel = $2 AND address = $3
           AND (acknowledged_at IS NULL OR acknowledged_at <= $4)",
    )
    .bind(now)
    .bind(identity.channel.as_str())
    .bind(&identity.address)
    .bind(not_since)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(claimed == 1)
}
