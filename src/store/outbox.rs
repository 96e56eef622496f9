//! The outbox: follow-up work recorded in the same transaction as the change that needs it.

use chrono::{DateTime, Utc};

use super::{Result, Store, Tx, on_pool, on_tx};
use crate::domain::TicketId;

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
    /// A share of an SLA target's time has passed (the assignee is warned).
    SlaWarning,
    /// An SLA target was missed (the department is told, the ticket marked).
    SlaBreached,
    /// An internal note names agents with `@name`; `message_id` is the note.
    AgentMentioned,
}

impl OutboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::TicketCreated => "ticket_created",
            OutboxKind::CustomerReplied => "customer_replied",
            OutboxKind::TicketReopened => "ticket_reopened",
            OutboxKind::TicketEscalated => "ticket_escalated",
            OutboxKind::TicketAssigned => "ticket_assigned",
            OutboxKind::SlaWarning => "sla_warning",
            OutboxKind::SlaBreached => "sla_breached",
            OutboxKind::AgentMentioned => "agent_mentioned",
        }
    }
}

pub async fn record(
    tx: &mut Tx,
    kind: OutboxKind,
    ticket_id: TicketId,
    message_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    let entry = NewEntry {
        kind,
        ticket_id,
        message_id,
    };
    record_all(tx, &[entry], now).await
}

/// Records `kind` for each of `tickets` (without a message).
pub async fn record_for_each(
    tx: &mut Tx,
    kind: OutboxKind,
    tickets: &[TicketId],
    now: DateTime<Utc>,
) -> Result<()> {
    let entries: Vec<NewEntry> = tickets
        .iter()
        .map(|&ticket_id| NewEntry {
            kind,
            ticket_id,
            message_id: None,
        })
        .collect();
    record_all(tx, &entries, now).await
}

/// An outbox entry to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEntry {
    pub kind: OutboxKind,
    pub ticket_id: TicketId,
    pub message_id: Option<i64>,
}

/// Records `entries` in their order, in one statement per thousand: a batch of work (a
/// relay round, a group commit of intake) is one round trip, not one per entry.
pub async fn record_all(tx: &mut Tx, entries: &[NewEntry], now: DateTime<Utc>) -> Result<()> {
    for chunk in entries.chunks(1000) {
        let sql = format!(
            "INSERT INTO outbox (kind, ticket_id, message_id, created_at) VALUES {}",
            super::value_rows(tx, chunk.len(), 4)
        );
        on_tx!(tx, conn => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for entry in chunk {
                query = query
                    .bind(entry.kind.as_str())
                    .bind(entry.ticket_id)
                    .bind(entry.message_id)
                    .bind(now);
            }
            query.execute(&mut *conn).await.map(|done| done.rows_affected())
        })?;
    }
    Ok(())
}

/// An outbox entry not yet turned into jobs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct PendingEvent {
    pub id: i64,
    pub kind: String,
    pub ticket_id: TicketId,
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

/// A pending outbox entry with its ticket's creation time, as the relay takes it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RelayEntry {
    pub id: i64,
    pub kind: String,
    pub ticket_id: TicketId,
    /// The message that caused it, if a message did.
    pub message_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// The pending entries a relay transaction takes inside `tx`: the oldest, up to `limit`, or
/// only entry `only`. On PostgreSQL they stay locked until `tx` ends, and entries another
/// instance's relay has locked are skipped.
pub async fn take_pending(tx: &mut Tx, limit: i64, only: Option<i64>) -> Result<Vec<RelayEntry>> {
    let skip_locked = match tx {
        Tx::Sqlite { .. } => "",
        Tx::Postgres { .. } => "FOR UPDATE OF o SKIP LOCKED",
    };
    let sql = format!(
        "SELECT o.id, o.kind, o.ticket_id, o.message_id, t.created_at
         FROM outbox o JOIN tickets t ON t.id = o.ticket_id
         WHERE o.processed_at IS NULL AND (CAST($2 AS BIGINT) IS NULL OR o.id = $2)
         ORDER BY o.id LIMIT $1 {skip_locked}"
    );
    let pending = on_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .bind(only)
            .fetch_all(&mut *conn)
            .await)?;
    Ok(pending)
}

/// Marks outbox entries `ids` done inside `tx`.
pub async fn mark_processed(tx: &mut Tx, ids: &[i64], now: DateTime<Utc>) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    match tx {
        Tx::Sqlite { transaction, .. } => {
            let ids = serde_json::to_string(ids)?;
            sqlx::query(
                "UPDATE outbox SET processed_at = $1 WHERE id IN (SELECT value FROM json_each($2))",
            )
            .bind(now)
            .bind(ids)
            .execute(&mut **transaction)
            .await?;
        }
        Tx::Postgres { transaction } => {
            sqlx::query("UPDATE outbox SET processed_at = $1 WHERE id = ANY($2)")
                .bind(now)
                .bind(ids)
                .execute(&mut **transaction)
                .await?;
        }
    }
    Ok(())
}

/// [`record`] with the agent who caused the entry: notices of it are not sent to them.
pub async fn record_by(
    tx: &mut Tx,
    kind: OutboxKind,
    ticket_id: TicketId,
    message_id: Option<i64>,
    actor_agent_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO outbox (kind, ticket_id, message_id, actor_agent_id, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(kind.as_str())
    .bind(ticket_id)
    .bind(message_id)
    .bind(actor_agent_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(())
}
