//! One ticket's facts for access checks and forms, its tags and its attachments.

use sqlx::AssertSqlSafe;

use super::{Visibility, visible_to_agent};
use crate::domain::{Priority, Status, TicketId, TicketNumber};
use crate::store::{Result, Store, Tx, on_pool, on_tx};

/// The facts of one ticket that access checks and the forms need.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketFacts {
    pub id: TicketId,
    pub number: TicketNumber,
    pub status: Status,
    pub priority: Priority,
    pub department_id: Option<i64>,
    pub assignee_id: Option<i64>,
    /// The number of the ticket it was merged into.
    pub merged_into: Option<TicketNumber>,
}

pub async fn ticket_facts(store: &Store, number: TicketNumber) -> Result<Option<TicketFacts>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT t.id, t.number, t.status, t.priority, t.department_id, t.assignee_id,
                m.number AS merged_into
         FROM tickets t LEFT JOIN tickets m ON m.id = t.merged_into_ticket_id
         WHERE t.number = $1",
    )
    .bind(number)
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// Whether an agent may see a ticket: it is theirs or in one of their departments.
pub async fn agent_may_see(store: &Store, agent_id: i64, ticket: &TicketFacts) -> Result<bool> {
    if ticket.assignee_id == Some(agent_id) {
        return Ok(true);
    }
    let Some(department_id) = ticket.department_id else {
        return Ok(false);
    };
    let member: Option<i64> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT agent_id FROM agent_departments WHERE agent_id = $1 AND department_id = $2",
    )
    .bind(agent_id)
    .bind(department_id)
    .fetch_optional(pool)
    .await)?;
    Ok(member.is_some())
}

/// Whether ticket `number` exists and `visibility` may see it, read in the caller's
/// transaction: a change to many tickets checks each where it changes them.
pub async fn visible_in(tx: &mut Tx, number: TicketNumber, visibility: Visibility) -> Result<bool> {
    let found: Option<i64> = match visibility {
        Visibility::All => on_tx!(tx, conn => sqlx::query_scalar(
            "SELECT t.number FROM tickets t WHERE t.number = $1",
        )
        .bind(number)
        .fetch_optional(&mut *conn)
        .await)?,
        Visibility::Agent(agent_id) => {
            // Built from fixed text only; the values are bound.
            let sql = format!(
                "SELECT t.number FROM tickets t WHERE t.number = $1 AND {}",
                visible_to_agent("t", "$2")
            );
            on_tx!(tx, conn => sqlx::query_scalar(AssertSqlSafe(sql))
                .bind(number)
                .bind(agent_id)
                .fetch_optional(&mut *conn)
                .await)?
        }
    };
    Ok(found.is_some())
}

pub async fn tags(store: &Store, ticket_id: TicketId) -> Result<Vec<String>> {
    let rows = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT tag FROM ticket_tags WHERE ticket_id = $1 ORDER BY tag",
    )
    .bind(ticket_id)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// An attachment to download, if it belongs to the ticket and its content was kept.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Download {
    pub ticket_id: TicketId,
    pub filename: String,
    pub content_type: String,
    pub sha256: Option<String>,
}

pub async fn attachment(store: &Store, attachment_id: i64) -> Result<Option<Download>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT m.ticket_id, a.filename, a.content_type, a.sha256
         FROM attachments a JOIN messages m ON m.id = a.message_id WHERE a.id = $1",
    )
    .bind(attachment_id)
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// The departments an agent works in.
pub async fn agent_department_ids(store: &Store, agent_id: i64) -> Result<Vec<i64>> {
    let rows = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT department_id FROM agent_departments WHERE agent_id = $1",
    )
    .bind(agent_id)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}
