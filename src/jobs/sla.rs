//! SLA timers. A check of a ticket works out all its targets from its history (first
//! response, next responses, resolution; paused while pending; in business time when its
//! department has a calendar), writes them to `sla_targets`, and for the kind of target it
//! checks records a warning at the configured share of the time and a breach at the due time:
//! each once per target, with its history event and outbox row in the same transaction. A
//! breach also escalates the ticket (priority up one step). Then it queues the next check.
//! Resolved tickets close by themselves after a quiet period.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Job, JobBatch, JobContext, JobError};
use crate::domain::sla::SlaTargets;
pub use crate::domain::sla::Target;
use crate::domain::{Priority, Status, TicketId, TicketNumber};
use crate::store::jobs::About;
use crate::store::tickets::{Actor, change_status};
use crate::store::{Result, Store, StoreError, Tx};

mod check;

/// Check one kind of target of one ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaCheck {
    pub ticket_id: TicketId,
    pub target: Target,
}

impl Job for SlaCheck {
    const QUEUE: &'static str = "helpdesk.sla";

    async fn run(self, context: &JobContext) -> Result<(), JobError> {
        let outcome = check(&context.store, &context.settings.sla, self, Utc::now()).await?;
        if let SlaOutcome::Escalated { from, to } = &outcome {
            tracing::info!(ticket_id = %self.ticket_id, target = ?self.target, %from, %to, "ticket escalated");
        }
        Ok(())
    }

    fn about(&self) -> Option<About> {
        Some(About::Ticket(self.ticket_id))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlaOutcome {
    /// Met (answered, resolved), the ticket closed or gone: nothing to do.
    Met,
    /// Not due yet: due at this time (a warning may have gone out).
    CheckAgainAt(DateTime<Utc>),
    /// The ticket is pending: the clock stands still; due at this time if it ran again now.
    Paused(DateTime<Utc>),
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

/// A new ticket's first check, due when it was created: it writes all its targets and queues
/// each one's check at its warning and due times (which depend on its department's calendar
/// and policy, known only once it is routed). One check, not one per kind: each works out
/// every target, and two at once of one ticket wait for each other's row lock.
pub(crate) fn schedule_new(
    jobs: &mut JobBatch,
    ticket_id: TicketId,
    created_at: DateTime<Utc>,
    _targets: &SlaTargets,
) -> Result<()> {
    let check = SlaCheck {
        ticket_id,
        target: Target::FirstResponse,
    };
    check.add_to(jobs, &check_key(check, created_at), created_at)
}

/// Queues a look at ticket `ticket_id`'s targets at `now`, after a change that may meet, pause,
/// resume or move them (a reply, a status, priority or department change, a customer's
/// message).
pub async fn touch(tx: &mut Tx, ticket_id: TicketId, now: DateTime<Utc>) -> Result<()> {
    let check = SlaCheck {
        ticket_id,
        target: Target::NextResponse,
    };
    let key = format!("sla:touch:{ticket_id}:{}", now.timestamp_micros());
    check.enqueue(tx, &key, now).await
}

/// [`touch`] in a batch, once per outbox entry `entry`.
pub(crate) fn touch_for_entry(
    jobs: &mut JobBatch,
    entry: i64,
    ticket_id: TicketId,
    now: DateTime<Utc>,
) -> Result<()> {
    let check = SlaCheck {
        ticket_id,
        target: Target::NextResponse,
    };
    check.add_to(jobs, &format!("sla:outbox:{entry}"), now)
}

/// Runs one check at time `now` (a parameter, so tests control the clock).
pub async fn check(
    store: &Store,
    targets: &SlaTargets,
    job: SlaCheck,
    now: DateTime<Utc>,
) -> Result<SlaOutcome> {
    let mut tx = store.begin_write().await?;
    let outcome = check::run(&mut tx, targets, job, now).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Closes tickets resolved at least `quiet` before `now`; returns their numbers.
pub async fn close_quiet(
    store: &Store,
    quiet: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<TicketNumber>> {
    let numbers = crate::store::tickets::resolved_before(store, now - quiet, 500).await?;
    let reason = format!("resolved {} days ago without news", quiet.num_days());
    let mut closed = Vec::with_capacity(numbers.len());
    for number in numbers {
        let mut tx = store.begin_write().await?;
        let changed = change_status(
            &mut tx,
            number,
            Status::Closed,
            Actor::System,
            Some(&reason),
            now,
        )
        .await;
        match changed {
            Ok(_) => {
                tx.commit().await?;
                closed.push(number);
            }
            // Another instance, or the customer, moved it meanwhile (or merged it away).
            Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => tx.rollback().await?,
            Err(error) => return Err(error),
        }
    }
    Ok(closed)
}
