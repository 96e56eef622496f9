//! Tickets by where they stand against their SLA targets.

use chrono::{DateTime, Utc};

use super::{ACTIVE_STATUSES, Bind, Conditions, DUE_SOON};
use crate::domain::Priority;
use crate::domain::sla::SlaTargets;

/// Where tickets stand against their SLA targets, as the dashboard counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaState {
    FirstResponseBreached,
    FirstResponseDueSoon,
    ResolutionBreached,
    ResolutionDueSoon,
}

impl SlaState {
    pub const ALL: &'static [(SlaState, &'static str, &'static str)] = &[
        (
            SlaState::FirstResponseBreached,
            "first_response_breached",
            "first response overdue",
        ),
        (
            SlaState::FirstResponseDueSoon,
            "first_response_due_soon",
            "first response due within an hour",
        ),
        (
            SlaState::ResolutionBreached,
            "resolution_breached",
            "resolution overdue",
        ),
        (
            SlaState::ResolutionDueSoon,
            "resolution_due_soon",
            "resolution due within an hour",
        ),
    ];

    pub fn parse(name: &str) -> Option<SlaState> {
        Self::ALL
            .iter()
            .find(|(_, key, _)| *key == name)
            .map(|(state, _, _)| *state)
    }
}

/// Only active tickets in an SLA state at `now`, under `targets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaFilter {
    pub state: SlaState,
    pub targets: SlaTargets,
    pub now: DateTime<Utc>,
}

/// The clauses that pick the tickets of an SLA filter: the same rule as the dashboard's
/// figures (a target is missed when the ticket is older than its priority allows).
pub(super) fn sla_clauses(conditions: &mut Conditions, filter: &SlaFilter) {
    let first = matches!(
        filter.state,
        SlaState::FirstResponseBreached | SlaState::FirstResponseDueSoon
    );
    let soon = matches!(
        filter.state,
        SlaState::FirstResponseDueSoon | SlaState::ResolutionDueSoon
    );
    let minutes = |priority: Priority| {
        if first {
            filter.targets.first_response.get(priority)
        } else {
            filter.targets.resolution.get(priority)
        }
    };
    let overdue_at = |conditions: &mut Conditions, at: DateTime<Utc>| {
        let parts: Vec<String> = Priority::ALL
            .iter()
            .map(|priority| {
                let name = conditions.placeholder(Bind::Text(priority.as_str().to_owned()));
                let limit = conditions.placeholder(Bind::Time(at - minutes(*priority)));
                format!("(t.priority = {name} AND t.created_at < {limit})")
            })
            .collect();
        format!("({})", parts.join(" OR "))
    };
    conditions.push(format!("t.status IN {ACTIVE_STATUSES}"));
    if first {
        conditions.push("t.first_response_at IS NULL".into());
    }
    if soon {
        let breached = overdue_at(conditions, filter.now);
        conditions.push(format!("NOT {breached}"));
        let due = overdue_at(conditions, filter.now + DUE_SOON);
        conditions.push(due);
    } else {
        let due = overdue_at(conditions, filter.now);
        conditions.push(due);
    }
}
