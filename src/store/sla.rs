//! The SLA targets of tickets (`sla_targets`, one row per target instance) and what they are
//! worked out from; `jobs::sla` decides, this module reads and writes.

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;

use super::{Result, Store, Tx, on_pool, on_tx};
use crate::domain::sla::Target;
use crate::domain::sla_clock::Timeline;
use crate::domain::{Priority, Status};
use crate::domain::{TicketId, TicketNumber};

/// A ticket as its SLA clock needs it.
#[derive(Debug, Clone)]
pub struct TicketClock {
    pub status: Status,
    pub priority: Priority,
    pub department_id: Option<i64>,
    pub timeline: Timeline,
}

#[derive(sqlx::FromRow)]
struct TicketRow {
    status: String,
    priority: String,
    department_id: Option<i64>,
    created_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
}

/// Reads ticket `ticket_id`'s clock inside `tx`, locking the ticket on PostgreSQL so two checks
/// of one ticket take turns; `None` when it is gone.
pub async fn ticket_clock(tx: &mut Tx, ticket_id: TicketId) -> Result<Option<TicketClock>> {
    let lock = match tx {
        Tx::Sqlite { .. } => "",
        Tx::Postgres { .. } => "FOR UPDATE",
    };
    let sql = format!(
        "SELECT status, priority, department_id, created_at, resolved_at, closed_at
         FROM tickets WHERE id = $1 {lock}"
    );
    let row: Option<TicketRow> = on_tx!(tx, conn => sqlx::query_as(AssertSqlSafe(sql))
        .bind(ticket_id)
        .fetch_optional(&mut *conn)
        .await)?;
    let Some(row) = row else { return Ok(None) };
    let status: Status = row.status.parse()?;
    let messages: Vec<(DateTime<Utc>, String)> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT created_at, direction FROM messages
         WHERE ticket_id = $1 AND kind = 'public' ORDER BY created_at, id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await)?;
    let statuses: Vec<(DateTime<Utc>, Option<String>)> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT at, new_value FROM ticket_events
         WHERE ticket_id = $1 AND kind = 'status' ORDER BY at, id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await)?;
    let mut pending: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = Vec::new();
    for (at, to) in statuses {
        let now_pending = to.as_deref() == Some(Status::Pending.as_str());
        let was_pending = pending.last().is_some_and(|(_, end)| end.is_none());
        match (was_pending, now_pending) {
            (false, true) => pending.push((at, None)),
            (true, false) => {
                if let Some((_, end)) = pending.last_mut() {
                    *end = Some(at);
                }
            }
            _ => {}
        }
    }
    Ok(Some(TicketClock {
        status,
        priority: row.priority.parse()?,
        department_id: row.department_id,
        timeline: Timeline {
            created_at: row.created_at,
            resolved_at: row.resolved_at.filter(|_| status == Status::Resolved),
            closed_at: row.closed_at.filter(|_| status == Status::Closed),
            messages: messages
                .into_iter()
                .map(|(at, direction)| (at, direction == "inbound"))
                .collect(),
            pending,
        },
    }))
}

/// One row of `sla_targets`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct TargetRow {
    #[serde(skip)]
    pub id: i64,
    pub target: Target,
    pub started_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub met_at: Option<DateTime<Utc>>,
    pub breached_at: Option<DateTime<Utc>>,
    pub warned_at: Option<DateTime<Utc>>,
    pub paused_since: Option<DateTime<Utc>>,
    pub paused_seconds: i64,
}

/// Where a target stands, as the ticket JSON and page show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    Running,
    Paused,
    Warned,
    Met,
    Breached,
}

impl TargetState {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Running => "running",
            TargetState::Paused => "paused",
            TargetState::Warned => "warned",
            TargetState::Met => "met",
            TargetState::Breached => "breached",
        }
    }
}

impl TargetRow {
    /// A breach stays a breach when the target is met later; a met target's pause and warning
    /// no longer matter.
    pub fn state(&self) -> TargetState {
        if self.breached_at.is_some() {
            TargetState::Breached
        } else if self.met_at.is_some() {
            TargetState::Met
        } else if self.paused_since.is_some() {
            TargetState::Paused
        } else if self.warned_at.is_some() {
            TargetState::Warned
        } else {
            TargetState::Running
        }
    }
}

const TARGET_COLUMNS: &str = "id, target, started_at, due_at, met_at, breached_at, warned_at,
    paused_since, paused_seconds";

/// A ticket's targets in the order they started, inside `tx`.
pub async fn targets_in(tx: &mut Tx, ticket_id: TicketId) -> Result<Vec<TargetRow>> {
    let sql = format!(
        "SELECT {TARGET_COLUMNS} FROM sla_targets WHERE ticket_id = $1 ORDER BY started_at, id"
    );
    let rows = on_tx!(tx, conn => sqlx::query_as(AssertSqlSafe(sql))
        .bind(ticket_id)
        .fetch_all(&mut *conn)
        .await)?;
    Ok(rows)
}

/// A ticket's targets in the order they started.
pub async fn targets(store: &Store, ticket_id: TicketId) -> Result<Vec<TargetRow>> {
    let sql = format!(
        "SELECT {TARGET_COLUMNS} FROM sla_targets WHERE ticket_id = $1 ORDER BY started_at, id"
    );
    let rows = on_pool!(store, pool => sqlx::query_as(AssertSqlSafe(sql))
        .bind(ticket_id)
        .fetch_all(pool)
        .await)?;
    Ok(rows)
}

/// Adds a target row; its id.
pub async fn insert_target(tx: &mut Tx, ticket_id: TicketId, row: &TargetRow) -> Result<i64> {
    let id = on_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO sla_targets (ticket_id, target, started_at, due_at, met_at, breached_at,
                                  warned_at, paused_since, paused_seconds)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(ticket_id)
    .bind(row.target.as_str())
    .bind(row.started_at)
    .bind(row.due_at)
    .bind(row.met_at)
    .bind(row.breached_at)
    .bind(row.warned_at)
    .bind(row.paused_since)
    .bind(row.paused_seconds)
    .fetch_one(&mut *conn)
    .await)?;
    Ok(id)
}

/// Writes a target row's clock and outcome back.
pub async fn update_target(tx: &mut Tx, row: &TargetRow) -> Result<()> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE sla_targets SET due_at = $1, met_at = $2, breached_at = $3, warned_at = $4,
                                paused_since = $5, paused_seconds = $6
         WHERE id = $7",
    )
    .bind(row.due_at)
    .bind(row.met_at)
    .bind(row.breached_at)
    .bind(row.warned_at)
    .bind(row.paused_since)
    .bind(row.paused_seconds)
    .bind(row.id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(())
}

/// Where a ticket stands against its targets, as lists read it from the ticket's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TicketStanding {
    /// The earliest due time of an open target whose clock runs, and which target.
    pub due: Option<(DateTime<Utc>, Target)>,
    /// Every open target's clock stands still (the ticket pending).
    pub paused: bool,
    /// The first breach.
    pub breached_at: Option<DateTime<Utc>>,
}

/// Writes where a ticket stands to its row.
pub async fn set_standing(
    tx: &mut Tx,
    ticket_id: TicketId,
    standing: &TicketStanding,
) -> Result<()> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE tickets SET sla_due_at = $1, sla_due_target = $2, sla_paused = $3,
                            sla_breached_at = $4
         WHERE id = $5",
    )
    .bind(standing.due.map(|(at, _)| at))
    .bind(standing.due.map(|(_, target)| target.as_str()))
    .bind(standing.paused)
    .bind(standing.breached_at)
    .bind(ticket_id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(())
}

/// The ticket id of a number, inside `tx`.
pub async fn ticket_id(tx: &mut Tx, number: TicketNumber) -> Result<Option<TicketId>> {
    let id = on_tx!(tx, conn => sqlx::query_scalar("SELECT id FROM tickets WHERE number = $1")
        .bind(number)
        .fetch_optional(&mut *conn)
        .await)?;
    Ok(id)
}
