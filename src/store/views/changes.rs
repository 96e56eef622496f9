//! The `ticket_changes` feed the database keeps, which live pages and webhooks follow.

use crate::store::{Result, Store, on_pool};

/// A change to a ticket, from the `ticket_changes` feed the database keeps.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct TicketChange {
    pub id: i64,
    pub ticket_id: i64,
    pub number: i64,
    pub kind: String,
    pub assignee_id: Option<i64>,
    pub previous_assignee_id: Option<i64>,
    pub department_id: Option<i64>,
}

/// Changes after `after_id`, oldest first.
pub async fn changes_after(store: &Store, after_id: i64, limit: i64) -> Result<Vec<TicketChange>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, ticket_id, number, kind, assignee_id, previous_assignee_id, department_id
         FROM ticket_changes WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// The newest change's id (0 when there is none).
pub async fn last_change_id(store: &Store) -> Result<i64> {
    let id: Option<i64> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT MAX(id) FROM ticket_changes",
    )
    .fetch_one(pool)
    .await)?;
    Ok(id.unwrap_or(0))
}
