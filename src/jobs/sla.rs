//! SLA timers: a check runs when a first response or resolution falls due and escalates a
//! ticket that missed it; a met target makes the check a no-op. Resolved tickets close by
//! themselves after a quiet period.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;

use super::{Job, JobBatch, JobContext, JobError};
use crate::domain::sla::SlaTargets;
use crate::domain::{Priority, Status};
use crate::store::jobs::About;
use crate::store::outbox::{self, OutboxKind};
use crate::store::tickets::{Actor, NewEvent, change_status, record_event};
use crate::store::{Result, Store, Tx, on_pool, on_tx};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    FirstResponse,
    Resolution,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::FirstResponse => "first response",
            Target::Resolution => "resolution",
        }
    }
}

/// Check one target of one ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaCheck {
    pub ticket_id: i64,
    pub target: Target,
}

impl Job for SlaCheck {
    const QUEUE: &'static str = "helpdesk.sla";

    async fn run(self, context: &JobContext) -> Result<(), JobError> {
        let outcome = check(&context.store, &context.settings.sla, self, Utc::now()).await?;
        if let SlaOutcome::Escalated { from, to } = &outcome {
            tracing::info!(ticket_id = self.ticket_id, target = ?self.target, %from, %to, "ticket escalated");
        }
        Ok(())
    }

    fn about(&self) -> Option<About> {
        Some(About::Ticket(self.ticket_id))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlaOutcome {
    /// Met (answered, resolved) or the ticket is gone: nothing to do.
    Met,
    /// Not due yet (the priority may have changed): checked again at this time.
    CheckAgainAt(DateTime<Utc>),
    /// Missed: the priority went from the first to the second.
    Escalated { from: Priority, to: Priority },
    /// Missed and escalated before.
    AlreadyEscalated,
}

/// Queues `check` inside `tx`, due at `at`; one check of a target per due time.
pub async fn enqueue(tx: &mut Tx, check: SlaCheck, at: DateTime<Utc>) -> Result<()> {
    check.enqueue(tx, &check_key(check, at), at).await
}

/// One check of a ticket's target per due time.
fn check_key(check: SlaCheck, at: DateTime<Utc>) -> String {
    format!(
        "sla:{}:{:?}:{}",
        check.ticket_id,
        check.target,
        at.timestamp()
    )
}

/// Schedules both checks of a new ticket at the earliest time either could fall due; each
/// check then moves itself to the due time of the ticket's priority at that moment.
pub(crate) fn schedule_new(
    jobs: &mut JobBatch,
    ticket_id: i64,
    created_at: DateTime<Utc>,
    targets: &SlaTargets,
) -> Result<()> {
    for target in [Target::FirstResponse, Target::Resolution] {
        let soonest = match target {
            Target::FirstResponse => targets.first_response,
            Target::Resolution => targets.resolution,
        };
        let earliest = [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Urgent,
        ]
        .into_iter()
        .map(|priority| soonest.get(priority))
        .min()
        .unwrap_or_else(|| Duration::minutes(1));
        let at = created_at + earliest;
        let check = SlaCheck { ticket_id, target };
        check.add_to(jobs, &check_key(check, at), at)?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct SlaRow {
    status: String,
    priority: String,
    created_at: DateTime<Utc>,
    first_response_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    escalations: i64,
}

/// Runs one check at time `now` (a parameter, so tests control the clock).
pub async fn check(
    store: &Store,
    targets: &SlaTargets,
    job: SlaCheck,
    now: DateTime<Utc>,
) -> Result<SlaOutcome> {
    let mut tx = store.begin_write().await?;
    let lock = match &tx {
        Tx::Sqlite { .. } => "",
        Tx::Postgres { .. } => "FOR UPDATE OF t",
    };
    let sql = format!(
        "SELECT t.status, t.priority, t.created_at, t.first_response_at, t.resolved_at,
                (SELECT COUNT(*) FROM ticket_events e
                 WHERE e.ticket_id = t.id AND e.kind = 'escalated' AND e.new_value = $2)
                    AS escalations
         FROM tickets t WHERE t.id = $1 {lock}"
    );
    let row: Option<SlaRow> = on_tx!(&mut tx, conn => sqlx::query_as(AssertSqlSafe(sql))
        .bind(job.ticket_id)
        .bind(job.target.name())
        .fetch_optional(&mut *conn)
        .await)?;
    let Some(row) = row else {
        return Ok(SlaOutcome::Met);
    };
    let status: Status = row.status.parse()?;
    let priority: Priority = row.priority.parse()?;
    let due = targets.due(
        row.created_at,
        priority,
        row.first_response_at,
        row.resolved_at,
    );
    let due_at = match job.target {
        Target::FirstResponse => due.first_response,
        Target::Resolution => due.resolution,
    };
    let outcome = match due_at {
        None => SlaOutcome::Met,
        Some(_) if status == Status::Closed => SlaOutcome::Met,
        Some(at) if at > now => {
            enqueue(&mut tx, job, at).await?;
            SlaOutcome::CheckAgainAt(at)
        }
        Some(_) if row.escalations > 0 => SlaOutcome::AlreadyEscalated,
        Some(at) => {
            let to = priority.raised();
            let reason = format!(
                "{} was due at {}",
                job.target.name(),
                at.format("%Y-%m-%d %H:%M UTC")
            );
            record_event(
                &mut tx,
                &NewEvent {
                    ticket_id: job.ticket_id,
                    actor: Actor::System,
                    kind: "escalated",
                    old_value: None,
                    new_value: Some(job.target.name()),
                    reason: Some(&reason),
                    at: now,
                },
            )
            .await?;
            if to != priority {
                on_tx!(&mut tx, conn => sqlx::query("UPDATE tickets SET priority = $1 WHERE id = $2")
                    .bind(to.as_str())
                    .bind(job.ticket_id)
                    .execute(&mut *conn)
                    .await
                    .map(|done| done.rows_affected()))?;
                record_event(
                    &mut tx,
                    &NewEvent {
                        ticket_id: job.ticket_id,
                        actor: Actor::System,
                        kind: "priority",
                        old_value: Some(priority.as_str()),
                        new_value: Some(to.as_str()),
                        reason: Some(&format!("escalation: {reason}")),
                        at: now,
                    },
                )
                .await?;
            }
            outbox::record(
                &mut tx,
                OutboxKind::TicketEscalated,
                job.ticket_id,
                None,
                now,
            )
            .await?;
            SlaOutcome::Escalated { from: priority, to }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Closes tickets resolved at least `quiet` before `now`; returns their numbers.
pub async fn close_quiet(store: &Store, quiet: Duration, now: DateTime<Utc>) -> Result<Vec<i64>> {
    let numbers: Vec<i64> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT number FROM tickets WHERE status = 'resolved' AND resolved_at <= $1
         ORDER BY id LIMIT 500",
    )
    .bind(now - quiet)
    .fetch_all(pool)
    .await)?;
    let reason = format!("resolved {} days ago without news", quiet.num_days());
    let mut closed = Vec::with_capacity(numbers.len());
    for number in numbers {
        let mut tx = store.begin_write().await?;
        // Another instance, or the customer, may have moved it meanwhile: skip it then.
        if change_status(
            &mut tx,
            number,
            Status::Closed,
            Actor::System,
            Some(&reason),
            now,
        )
        .await
        .is_ok()
        {
            tx.commit().await?;
            closed.push(number);
        } else {
            tx.rollback().await?;
        }
    }
    Ok(closed)
}
