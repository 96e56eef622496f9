//! One ticket-change request: status, priority, department, assignee and tags with a reason,
//! applied in one transaction so one form save or one API call is one commit and one group of
//! history events (same agent, time and reason).

use chrono::{DateTime, Utc};

use crate::domain::tags::TagChange;
use crate::domain::{Priority, Status, TicketNumber};
use crate::store::manage::{self, Change};
use crate::store::{Result, Store, Tx};

/// What a person changes about a ticket in one go; `None` leaves a field as it is, and a
/// field equal to the ticket's is no change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketChange {
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    /// `Some(None)` takes the ticket out of its department.
    pub department: Option<Option<i64>>,
    /// `Some(None)` leaves the ticket unassigned.
    pub assignee: Option<Option<i64>>,
    /// Tags set, added or removed (already normalized).
    pub tags: Option<TagChange>,
    /// Why, for the history; blank counts as none.
    pub reason: Option<String>,
}

/// Who makes a change, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangedBy {
    pub agent_id: i64,
    pub now: DateTime<Utc>,
}

/// Applies `change` to ticket `ticket` in a transaction of its own; whether anything changed.
/// A refused part (a status the workflow does not allow, a disabled assignee) leaves the
/// ticket as it was.
pub async fn apply(
    store: &Store,
    ticket: TicketNumber,
    by: ChangedBy,
    change: &TicketChange,
) -> Result<bool> {
    let mut tx = store.begin_write().await?;
    let changed = apply_in(&mut tx, ticket, by, change).await?;
    if changed {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(changed)
}

/// [`apply`] in the caller's transaction. Fields apply in the order the history has always
/// listed them: priority, department, assignee, tags, then status.
pub async fn apply_in(
    tx: &mut Tx,
    ticket: TicketNumber,
    by: ChangedBy,
    change: &TicketChange,
) -> Result<bool> {
    let stamp = Change {
        agent_id: by.agent_id,
        reason: change.reason.as_deref(),
        now: by.now,
    };
    let mut changed = false;
    if let Some(priority) = change.priority {
        changed |= manage::set_priority(tx, ticket, priority, &stamp).await?;
    }
    if let Some(department) = change.department {
        changed |= manage::set_department(tx, ticket, department, &stamp).await?;
    }
    if let Some(assignee) = change.assignee {
        let moved = manage::set_assignee(tx, ticket, assignee, &stamp).await?;
        if moved && assignee.is_some() {
            record_assigned(tx, ticket, by).await?;
        }
        changed |= moved;
    }
    if let Some(tags) = &change.tags {
        changed |= manage::set_tags(tx, ticket, tags, &stamp).await?;
    }
    if let Some(status) = change.status {
        let status_changed = manage::set_status(tx, ticket, status, &stamp).await?;
        if status_changed && matches!(status, Status::Resolved | Status::Closed) {
            // The survey job decides whether the customer is asked (at most once).
            if let Some(found) = crate::store::tickets::find_by_number(tx, ticket).await? {
                crate::jobs::survey::enqueue(tx, found.id, by.now).await?;
            }
        }
        changed |= status_changed;
    }
    // Status (pending pauses the clock), priority and department move the SLA targets.
    let moves_targets =
        change.status.is_some() || change.priority.is_some() || change.department.is_some();
    if changed
        && moves_targets
        && let Some(id) = crate::store::sla::ticket_id(tx, ticket).await?
    {
        crate::jobs::sla::touch(tx, id, by.now).await?;
    }
    Ok(changed)
}

/// The outbox entry of an assignment by a person: the assignee is told (unless they took the
/// ticket themselves) and the agents' places see it.
async fn record_assigned(tx: &mut Tx, ticket: TicketNumber, by: ChangedBy) -> Result<()> {
    let Some(found) = crate::store::tickets::find_by_number(tx, ticket).await? else {
        return Ok(());
    };
    crate::store::outbox::record_by(
        tx,
        crate::store::outbox::OutboxKind::TicketAssigned,
        found.id,
        None,
        Some(by.agent_id),
        by.now,
    )
    .await
}
