//! One SLA check of a ticket inside a transaction: its targets worked out and written, the
//! warnings and breaches of the checked kind recorded once each, the next checks queued.

use chrono::{DateTime, Utc};

use super::{SlaCheck, SlaOutcome, enqueue};
use crate::domain::calendar::Clock;
use crate::domain::sla::{PolicyOverrides, SlaTargets, Target};
use crate::domain::sla_clock::{self, Instance};
use crate::domain::{Priority, Status, TicketId};
use crate::store::outbox::{self, OutboxKind};
use crate::store::sla::{self as targets_store, TargetRow, TicketStanding};
use crate::store::tickets::{Actor, NewEvent, escalate_priority, record_event};
use crate::store::{Result, Tx, calendars};

/// What the check did to one target of the checked kind.
enum Fired {
    Nothing,
    Warned,
    Breached { from: Priority, to: Priority },
}

pub(super) async fn run(
    tx: &mut Tx,
    targets: &SlaTargets,
    job: SlaCheck,
    now: DateTime<Utc>,
) -> Result<SlaOutcome> {
    let Some(ticket) = targets_store::ticket_clock(tx, job.ticket_id).await? else {
        return Ok(SlaOutcome::Met);
    };
    let (calendar, overrides) = match ticket.department_id {
        Some(department) => (
            calendars::calendar_in(tx, department)
                .await?
                .map(|stored| stored.calendar())
                .transpose()?,
            calendars::policy_in(tx, department).await?,
        ),
        None => (None, PolicyOverrides::new()),
    };
    let clock = calendar.as_ref().map_or(Clock::WallClock, Clock::Business);
    let mut rows = targets_store::targets_in(tx, job.ticket_id).await?;
    let mut priority = ticket.priority;
    let mut escalated = None;
    let mut next: Vec<(Target, DateTime<Utc>)> = Vec::new();
    for instance in ticket.timeline.instances() {
        let minutes = targets.minutes_with(&overrides, instance.target, ticket.priority);
        let standing = sla_clock::standing(
            clock,
            &ticket.timeline,
            &instance,
            minutes,
            targets.warning_permille,
            now,
        );
        let Some(mut row) = merged_row(&mut rows, &instance, &standing) else {
            continue;
        };
        let fires = row.target == job.target
            && ticket.status != Status::Closed
            && row.met_at.is_none()
            && row.paused_since.is_none();
        let fired = if !fires || row.breached_at.is_some() {
            Fired::Nothing
        } else if row.due_at <= now {
            let (from, to) = breach(tx, job.ticket_id, &row, priority, now).await?;
            row.breached_at = Some(row.due_at);
            priority = to;
            Fired::Breached { from, to }
        } else if row.warned_at.is_none() && standing.warn_at <= now {
            warn(tx, job.ticket_id, &row, now).await?;
            row.warned_at = Some(now);
            Fired::Warned
        } else {
            Fired::Nothing
        };
        if let Fired::Breached { from, to } = fired {
            escalated = Some(SlaOutcome::Escalated { from, to });
        }
        if row.id == 0 {
            row.id = targets_store::insert_target(tx, job.ticket_id, &row).await?;
        } else {
            targets_store::update_target(tx, &row).await?;
        }
        if let Some(at) = next_check(&row, standing.warn_at, now) {
            next.push((row.target, at));
        }
        rows.push(row);
    }
    targets_store::set_standing(tx, job.ticket_id, &ticket_standing(&rows)).await?;
    for (target, at) in next {
        let check = SlaCheck {
            ticket_id: job.ticket_id,
            target,
        };
        enqueue(tx, check, at).await?;
    }
    if ticket.status == Status::Closed {
        return Ok(SlaOutcome::Met);
    }
    if let Some(outcome) = escalated {
        return Ok(outcome);
    }
    let latest = rows
        .iter()
        .filter(|row| row.target == job.target)
        .max_by_key(|row| row.started_at);
    Ok(match latest {
        None => SlaOutcome::Met,
        Some(row) if row.met_at.is_some() => SlaOutcome::Met,
        Some(row) if row.breached_at.is_some() => SlaOutcome::AlreadyEscalated,
        Some(row) if row.paused_since.is_some() => SlaOutcome::Paused(row.due_at),
        Some(row) => SlaOutcome::CheckAgainAt(row.due_at),
    })
}

/// The stored row of `instance` (taken out of `rows`) brought up to date, or a new one (id 0);
/// `None` when it was met before, so nothing of it changes any more.
fn merged_row(
    rows: &mut Vec<TargetRow>,
    instance: &Instance,
    standing: &sla_clock::Standing,
) -> Option<TargetRow> {
    let found = rows
        .iter()
        .position(|row| row.target == instance.target && row.started_at == instance.started_at);
    let mut row = match found {
        Some(index) if rows[index].met_at.is_some() => return None,
        Some(index) => rows.remove(index),
        None => TargetRow {
            id: 0,
            target: instance.target,
            started_at: instance.started_at,
            due_at: standing.due_at,
            met_at: None,
            breached_at: None,
            warned_at: None,
            paused_since: None,
            paused_seconds: 0,
        },
    };
    // A breached target keeps the due time it missed.
    if row.breached_at.is_none() {
        row.due_at = standing.due_at;
    }
    row.met_at = instance.met_at;
    row.paused_since = standing.paused_since;
    row.paused_seconds = standing.paused_seconds;
    // Met after its due time before any check saw it: missed all the same.
    if row.breached_at.is_none() && row.met_at.is_some_and(|met| met > row.due_at) {
        row.breached_at = Some(row.due_at);
    }
    Some(row)
}

/// When the target needs its next check: its warning, then its due time; none once met,
/// breached or while paused (the change that resumes it checks again).
fn next_check(
    row: &TargetRow,
    warn_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if row.met_at.is_some() || row.breached_at.is_some() || row.paused_since.is_some() {
        None
    } else if row.warned_at.is_none() && warn_at < row.due_at {
        Some(warn_at.max(now))
    } else {
        Some(row.due_at.max(now))
    }
}

fn ticket_standing(rows: &[TargetRow]) -> TicketStanding {
    let open = || rows.iter().filter(|row| row.met_at.is_none());
    let due = open()
        .filter(|row| row.paused_since.is_none())
        .map(|row| (row.due_at, row.target))
        .min();
    TicketStanding {
        due,
        paused: due.is_none() && open().next().is_some(),
        breached_at: rows.iter().filter_map(|row| row.breached_at).min(),
    }
}

fn due_text(row: &TargetRow) -> String {
    format!(
        "{} was due at {}",
        row.target.label(),
        row.due_at.format("%Y-%m-%d %H:%M UTC")
    )
}

/// The warning of one target: its history event and outbox row.
async fn warn(tx: &mut Tx, ticket_id: TicketId, row: &TargetRow, now: DateTime<Utc>) -> Result<()> {
    let reason = format!(
        "{} is due at {}",
        row.target.label(),
        row.due_at.format("%Y-%m-%d %H:%M UTC")
    );
    record_event(
        tx,
        &NewEvent {
            ticket_id,
            actor: Actor::System,
            kind: "sla_warning",
            old_value: None,
            new_value: Some(row.target.as_str()),
            reason: Some(&reason),
            at: now,
        },
    )
    .await?;
    outbox::record(tx, OutboxKind::SlaWarning, ticket_id, None, now).await
}

/// The breach of one target: its history event and outbox row, and the escalation (priority
/// up one step, with its own events and outbox row). Returns the priority before and after.
async fn breach(
    tx: &mut Tx,
    ticket_id: TicketId,
    row: &TargetRow,
    priority: Priority,
    now: DateTime<Utc>,
) -> Result<(Priority, Priority)> {
    let reason = due_text(row);
    record_event(
        tx,
        &NewEvent {
            ticket_id,
            actor: Actor::System,
            kind: "sla_breached",
            old_value: None,
            new_value: Some(row.target.as_str()),
            reason: Some(&reason),
            at: now,
        },
    )
    .await?;
    outbox::record(tx, OutboxKind::SlaBreached, ticket_id, None, now).await?;
    record_event(
        tx,
        &NewEvent {
            ticket_id,
            actor: Actor::System,
            kind: "escalated",
            old_value: None,
            new_value: Some(row.target.label()),
            reason: Some(&reason),
            at: now,
        },
    )
    .await?;
    let to = priority.raised();
    if to != priority {
        escalate_priority(tx, ticket_id, priority, to, &reason, now).await?;
    }
    outbox::record(tx, OutboxKind::TicketEscalated, ticket_id, None, now).await?;
    Ok((priority, to))
}
