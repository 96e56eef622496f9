//! Customers as the JSON API lists and shows them: who they are and where they write from.

use chrono::{DateTime, Utc};

use sqlx::AssertSqlSafe;

use super::views::Visibility;
use super::{Result, Store, on_pool};
use crate::domain::TicketNumber;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CustomerRow {
    pub id: i64,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    /// How many tickets they have, of any status and department.
    pub tickets: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IdentityRow {
    pub customer_id: i64,
    pub channel: String,
    pub address: String,
    pub display_name: Option<String>,
    /// A chat account's handle, without the `@`.
    pub handle: Option<String>,
}

/// The condition on customers `c` that keeps those `visibility` allows, with the agent's id
/// (or NULL for all) bound at `agent`: an agent sees the customers of the tickets they see.
fn visible_customer(agent: &str) -> String {
    format!(
        "(CAST({agent} AS BIGINT) IS NULL OR EXISTS (SELECT 1 FROM tickets t
              WHERE t.customer_id = c.id AND {}))",
        super::views::visible_to_agent("t", agent)
    )
}

fn agent_of(visibility: Visibility) -> Option<i64> {
    match visibility {
        Visibility::All => None,
        Visibility::Agent(agent_id) => Some(agent_id),
    }
}

/// Customers by id that `visibility` allows, after `after_id`, optionally those whose name, an
/// address, or a chat account's name or handle (`ada_l` or `@ada_l`) contains `search` (any
/// case); one more than `limit` tells whether another page follows.
pub async fn list(
    store: &Store,
    visibility: Visibility,
    search: Option<&str>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<CustomerRow>> {
    let pattern = search
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(super::contains_pattern);
    let sql = format!(
        "SELECT c.id, c.name, c.created_at,
                (SELECT COUNT(*) FROM tickets WHERE customer_id = c.id) AS tickets
         FROM customers c
         WHERE c.id > $1
           AND ($2 IS NULL OR LOWER(COALESCE(c.name, '')) LIKE $2 ESCAPE '\\'
                OR c.id IN (SELECT customer_id FROM customer_identities
                            WHERE LOWER(address) LIKE $2 ESCAPE '\\'
                               OR LOWER(COALESCE(display_name, '')) LIKE $2 ESCAPE '\\'
                               OR '@' || LOWER(handle) LIKE $2 ESCAPE '\\'))
           AND {}
         ORDER BY c.id LIMIT $3",
        visible_customer("$4")
    );
    let rows = on_pool!(store, pool => sqlx::query_as(AssertSqlSafe(sql.clone()))
    .bind(after_id)
    .bind(pattern.clone())
    .bind(limit)
    .bind(agent_of(visibility))
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// The customer `id`, when `visibility` allows.
pub async fn find(store: &Store, visibility: Visibility, id: i64) -> Result<Option<CustomerRow>> {
    let sql = format!(
        "SELECT c.id, c.name, c.created_at,
                (SELECT COUNT(*) FROM tickets WHERE customer_id = c.id) AS tickets
         FROM customers c WHERE c.id = $1 AND {}",
        visible_customer("$2")
    );
    let row = on_pool!(store, pool => sqlx::query_as(AssertSqlSafe(sql.clone()))
    .bind(id)
    .bind(agent_of(visibility))
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// The identities of the given customers.
pub async fn identities(store: &Store, customer_ids: &[i64]) -> Result<Vec<IdentityRow>> {
    if customer_ids.is_empty() {
        return Ok(Vec::new());
    }
    let (first, last) = (
        customer_ids.iter().copied().min().unwrap_or_default(),
        customer_ids.iter().copied().max().unwrap_or_default(),
    );
    let rows: Vec<IdentityRow> = on_pool!(store, pool => sqlx::query_as(
        "SELECT customer_id, channel, address, display_name, handle FROM customer_identities
         WHERE customer_id BETWEEN $1 AND $2 ORDER BY id",
    )
    .bind(first)
    .bind(last)
    .fetch_all(pool)
    .await)?;
    Ok(rows
        .into_iter()
        .filter(|row| customer_ids.contains(&row.customer_id))
        .collect())
}

/// The customer of the ticket with this number.
pub async fn of_ticket(store: &Store, number: TicketNumber) -> Result<Option<CustomerRow>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT c.id, c.name, c.created_at,
                (SELECT COUNT(*) FROM tickets o WHERE o.customer_id = c.id) AS tickets
         FROM tickets t JOIN customers c ON c.id = t.customer_id WHERE t.number = $1",
    )
    .bind(number)
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}
