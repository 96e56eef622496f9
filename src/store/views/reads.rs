//! What each agent has seen of each ticket: a ticket is unread for an agent while a customer
//! message newer than the last one they saw is on it. Tickets keep the id of their last public
//! customer message (`last_inbound_message_id`, set by the message trigger), so the test is one
//! primary-key lookup in `ticket_reads` per ticket.

use sqlx::AssertSqlSafe;

use super::ACTIVE_STATUSES;
use crate::domain::TicketId;
use crate::store::{Result, Store, on_pool, on_writer};

/// Whether the ticket `ticket` (a table alias) is unread for the agent whose id is bound at
/// `agent`: NULL (false) on tickets without a customer message.
pub(super) fn unread_sql(ticket: &str, agent: &str) -> String {
    format!(
        "({ticket}.last_inbound_message_id > COALESCE((SELECT r.message_id FROM ticket_reads r
            WHERE r.agent_id = {agent} AND r.ticket_id = {ticket}.id), 0))"
    )
}

/// Records that `agent_id` has seen the ticket up to `message_id`. Seeing an older state
/// again (a page open in another tab) never moves the mark back.
pub async fn mark_seen(
    store: &Store,
    agent_id: i64,
    ticket_id: TicketId,
    message_id: i64,
) -> Result<()> {
    let seen: Option<i64> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT message_id FROM ticket_reads WHERE agent_id = $1 AND ticket_id = $2",
    )
    .bind(agent_id)
    .bind(ticket_id)
    .fetch_optional(pool)
    .await)?;
    // Reading the page again changes nothing: no write.
    if seen.is_some_and(|seen| seen >= message_id) {
        return Ok(());
    }
    on_writer!(store, conn => sqlx::query(
        "INSERT INTO ticket_reads (agent_id, ticket_id, message_id) VALUES ($1, $2, $3)
         ON CONFLICT (agent_id, ticket_id) DO UPDATE SET message_id = excluded.message_id
         WHERE ticket_reads.message_id < excluded.message_id",
    )
    .bind(agent_id)
    .bind(ticket_id)
    .bind(message_id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()));
    Ok(())
}

/// Whether the ticket is unread for `agent_id`.
pub async fn is_unread(store: &Store, agent_id: i64, ticket_id: TicketId) -> Result<bool> {
    let sql = format!(
        "SELECT COALESCE({}, FALSE) FROM tickets t WHERE t.id = $2",
        unread_sql("t", "$1")
    );
    let unread: Option<bool> = on_pool!(store, pool => sqlx::query_scalar(AssertSqlSafe(sql.clone()))
        .bind(agent_id)
        .bind(ticket_id)
        .fetch_optional(pool)
        .await)?;
    Ok(unread.unwrap_or(false))
}

/// How many of an agent's own active tickets are unread among the ones changed most recently.
/// A customer message moves its ticket to the top of this order, so an unread ticket drops out
/// only after this many newer changes to the agent's other tickets.
pub const UNREAD_WINDOW: i64 = 200;

/// How many active tickets assigned to `agent_id` are unread for them: the navigation's
/// figure, read on every page, so it looks at no more than [`UNREAD_WINDOW`] of the agent's
/// most recently changed tickets (the `tickets_assignee_updated` index).
pub async fn unread_count(store: &Store, agent_id: i64) -> Result<i64> {
    let sql = format!(
        "SELECT COUNT(*) FROM (
             SELECT t.id, t.last_inbound_message_id FROM tickets t
             WHERE t.assignee_id = $1 AND t.status IN {ACTIVE_STATUSES}
             ORDER BY t.updated_at DESC LIMIT $2) t
         WHERE {}",
        unread_sql("t", "$1")
    );
    let count = on_pool!(store, pool => sqlx::query_scalar(AssertSqlSafe(sql.clone()))
        .bind(agent_id)
        .bind(UNREAD_WINDOW)
        .fetch_one(pool)
        .await)?;
    Ok(count)
}
