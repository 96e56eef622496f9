//! The outbox: follow-up work recorded in the same transaction as the change that needs it.

use chrono::{DateTime, Utc};

use super::{Result, Store, Tx, on_pool, on_tx};

/// What happened that other parts of the system (assignment, notifications, acknowledgements)
/// must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxKind {
    TicketCreated,
    CustomerReplied,
    TicketReopened,
    TicketEscalated,
    TicketAssigned,
}

impl OutboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::TicketCreated => "ticket_created",
            OutboxKind::CustomerReplied => "customer_replied",
            OutboxKind::TicketReopened => "ticket_reopened",
            OutboxKind::TicketEscalated => "ticket_escalated",
            OutboxKind::TicketAssigned => "ticket_assigned",
        }
    }
}

pub async fn record(
    tx: &mut Tx,
    kind: OutboxKind,
    ticket_id: i64,
    message_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO outbox (kind, ticket_id, message_id, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(kind.as_str())
    .bind(ticket_id)
    .bind(message_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(())
}

/// An outbox entry not yet turned into jobs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct PendingEvent {
    pub id: i64,
    pub kind: String,
    pub ticket_id: i64,
    pub message_id: Option<i64>,
}

pub async fn pending(store: &Store, limit: i64) -> Result<Vec<PendingEvent>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, kind, ticket_id, message_id FROM outbox
         WHERE processed_at IS NULL ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}
