//! Customers and their identities on each channel.

use chrono::{DateTime, Utc};
use helpdesk_channel::Identity;

use sqlx::AssertSqlSafe;

use super::{Result, StoreError, Tx, on_tx, on_writer};

/// The customer behind `identity`, given what a lookup found: a known identity gets the display
/// name it was missing and the handle it has now (handles change); an unknown one becomes a new
/// customer. Safe under concurrency: the unique (channel, address) key decides which of two
/// racing writers creates the identity.
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
        if let Some(handle) = &identity.handle {
            // Writes only when the handle changed: most messages leave the row alone.
            on_tx!(tx, conn => sqlx::query(
                "UPDATE customer_identities SET handle = $1
                 WHERE channel = $2 AND address = $3 AND (handle IS NULL OR handle <> $1)",
            )
            .bind(handle)
            .bind(channel)
            .bind(&identity.address)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))?;
        }
        return Ok(customer_id);
    }

    let created = create_all(tx, &[identity], now).await?;
    created
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::NotFound("the customer just created".to_owned()))
}

/// A new customer for each of `identities` (distinct identities none of which is known yet),
/// in two statements per hundred; the ids are in the order given. Safe under concurrency: an
/// identity another writer created meanwhile keeps its customer, and the one made for it here
/// is dropped.
pub async fn create_all(
    tx: &mut Tx,
    identities: &[&Identity],
    now: DateTime<Utc>,
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(identities.len());
    for chunk in identities.chunks(100) {
        let sql = format!(
            "INSERT INTO customers (name, created_at) VALUES {} RETURNING id",
            super::value_rows(tx, chunk.len(), 2)
        );
        // Rows are numbered in the order of the VALUES list, on both stores.
        let mut customers: Vec<i64> = on_tx!(tx, conn => {
            let mut query = sqlx::query_scalar(AssertSqlSafe(sql));
            for identity in chunk {
                query = query.bind(&identity.display_name).bind(now);
            }
            query.fetch_all(&mut *conn).await
        })?;
        customers.sort_unstable();
        let sql = format!(
            "INSERT INTO customer_identities
                 (customer_id, channel, address, display_name, handle, created_at)
             VALUES {}
             ON CONFLICT (channel, address) DO NOTHING
             RETURNING customer_id",
            super::value_rows(tx, chunk.len(), 6)
        );
        let linked: Vec<i64> = on_tx!(tx, conn => {
            let mut query = sqlx::query_scalar(AssertSqlSafe(sql));
            for (identity, customer_id) in chunk.iter().zip(&customers) {
                query = query
                    .bind(customer_id)
                    .bind(identity.channel.as_str())
                    .bind(&identity.address)
                    .bind(&identity.display_name)
                    .bind(&identity.handle)
                    .bind(now);
            }
            query.fetch_all(&mut *conn).await
        })?;
        for (identity, customer_id) in chunk.iter().zip(customers) {
            if linked.contains(&customer_id) {
                ids.push(customer_id);
            } else {
                ids.push(taken_meanwhile(tx, identity, customer_id).await?);
            }
        }
    }
    Ok(ids)
}

/// Another intake created `identity` meanwhile: its customer, with `ours` dropped.
async fn taken_meanwhile(tx: &mut Tx, identity: &Identity, ours: i64) -> Result<i64> {
    on_tx!(tx, conn => sqlx::query("DELETE FROM customers WHERE id = $1")
        .bind(ours)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    let existing = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT customer_id FROM customer_identities WHERE channel = $1 AND address = $2",
    )
    .bind(identity.channel.as_str())
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

/// The longest customer name kept.
pub const MAX_NAME_CHARS: usize = 200;

/// Gives a customer a new name; an empty one clears it (lists then show an address).
pub async fn rename(store: &super::Store, customer_id: i64, name: &str) -> Result<()> {
    let name = name.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(StoreError::Conflict(format!(
            "a name has at most {MAX_NAME_CHARS} characters"
        )));
    }
    let name = Some(name).filter(|name| !name.is_empty());
    let updated = on_writer!(store, conn => sqlx::query("UPDATE customers SET name = $1 WHERE id = $2")
        .bind(name)
        .bind(customer_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    if updated == 0 {
        return Err(gone(customer_id));
    }
    Ok(())
}

fn gone(customer_id: i64) -> StoreError {
    StoreError::NotFound(format!(
        "there is no customer #{customer_id} (it may have been merged into another record)"
    ))
}

/// What a merge moved to the kept record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merged {
    pub identities: u64,
    pub tickets: u64,
}

/// Merges the customer record `other` into `keep`, the same person: identities, tickets,
/// messages and history move to `keep` (which takes `other`'s name if it has none), each moved
/// ticket's history says so, and `other` is deleted. Two merges of the same records run one
/// after the other; the second finds a record gone and is refused.
pub async fn merge(
    store: &super::Store,
    keep: i64,
    other: i64,
    agent_id: i64,
    now: DateTime<Utc>,
) -> Result<Merged> {
    if keep == other {
        return Err(StoreError::Conflict(
            "a customer record cannot be merged into itself".into(),
        ));
    }
    let mut tx = store.begin_write().await?;
    // PostgreSQL: lock both rows (in id order), so a racing merge waits and then finds one
    // gone. NO KEY UPDATE still lets intake insert a ticket that refers to a row meanwhile.
    let lock = match tx {
        Tx::Sqlite { .. } => "",
        Tx::Postgres { .. } => "FOR NO KEY UPDATE",
    };
    let sql = format!("SELECT id, name FROM customers WHERE id IN ($1, $2) ORDER BY id {lock}");
    let rows: Vec<(i64, Option<String>)> = on_tx!(&mut tx, conn => sqlx::query_as(AssertSqlSafe(sql))
        .bind(keep)
        .bind(other)
        .fetch_all(&mut *conn)
        .await)?;
    let name_of = |id: i64| {
        rows.iter()
            .find(|(row, _)| *row == id)
            .map(|(_, name)| name.clone())
    };
    let kept_name = name_of(keep).ok_or_else(|| gone(keep))?;
    let other_name = name_of(other).ok_or_else(|| gone(other))?;
    // Intake takes the same lock for the sender's identity, so a message from one of these
    // identities is taken in either before the move (and its ticket moves) or after it.
    let identities: Vec<(String, String)> = on_tx!(&mut tx, conn => sqlx::query_as(
        "SELECT channel, address FROM customer_identities WHERE customer_id = $1",
    )
    .bind(other)
    .fetch_all(&mut *conn)
    .await)?;
    let keys: Vec<String> = identities
        .iter()
        .map(|(channel, address)| identity_lock_key(channel, address))
        .collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    super::tickets::lock_thread(&mut tx, &keys).await?;

    let kept_address: Option<String> = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "SELECT address FROM customer_identities WHERE customer_id = $1 ORDER BY id LIMIT 1",
    )
    .bind(keep)
    .fetch_optional(&mut *conn)
    .await)?;
    // The history names both records as lists show them: the name, else the first address.
    let other_address = identities.first().map(|(_, address)| address.clone());
    let from = other_name
        .clone()
        .or(other_address.clone())
        .unwrap_or_else(|| format!("customer #{other}"));
    let to = kept_name
        .clone()
        .or_else(|| other_name.clone())
        .or(kept_address)
        .or(other_address)
        .unwrap_or_else(|| format!("customer #{keep}"));
    let reason = format!("customer records #{other} and #{keep} are the same person");
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO ticket_events (ticket_id, at, actor_agent_id, kind, old_value, new_value,
                                    reason)
         SELECT id, $1, $2, 'customer', $3, $4, $5 FROM tickets WHERE customer_id = $6",
    )
    .bind(now)
    .bind(agent_id)
    .bind(&from)
    .bind(&to)
    .bind(&reason)
    .bind(other)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    let moves = [
        "UPDATE customer_identities SET customer_id = $1 WHERE customer_id = $2",
        "UPDATE tickets SET customer_id = $1 WHERE customer_id = $2",
        "UPDATE messages SET author_customer_id = $1 WHERE author_customer_id = $2",
        "UPDATE ticket_events SET actor_customer_id = $1 WHERE actor_customer_id = $2",
    ];
    let mut moved = Vec::new();
    for sql in moves {
        moved.push(on_tx!(&mut tx, conn => sqlx::query(sql)
            .bind(keep)
            .bind(other)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))?);
    }
    if kept_name.is_none() && other_name.is_some() {
        on_tx!(&mut tx, conn => sqlx::query("UPDATE customers SET name = $1 WHERE id = $2")
            .bind(&other_name)
            .bind(keep)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))?;
    }
    on_tx!(&mut tx, conn => sqlx::query("DELETE FROM customers WHERE id = $1")
        .bind(other)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await?;
    Ok(Merged {
        identities: moved[0],
        tickets: moved[1],
    })
}

/// The advisory lock key of a sender's identity (PostgreSQL), shared by intake and merges.
pub fn identity_lock_key(channel: &str, address: &str) -> String {
    format!("identity:{channel}:{address}")
}
