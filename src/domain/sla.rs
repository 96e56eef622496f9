//! Service-level targets: when a ticket's first response and resolution are due.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::{Priority, named_enum};

named_enum!(
    /// The kinds of target a ticket has: a first response and a resolution once, a next
    /// response each time the customer writes after our answer.
    Target, "SLA target" {
        FirstResponse = "first_response",
        NextResponse = "next_response",
        Resolution = "resolution",
    }
);

impl Target {
    /// As people read it: "first response".
    pub fn label(self) -> &'static str {
        match self {
            Target::FirstResponse => "first response",
            Target::NextResponse => "next response",
            Target::Resolution => "resolution",
        }
    }
}

/// A department's own targets, in minutes, by kind and priority; the rest come from [sla].
pub type PolicyOverrides = BTreeMap<(Target, Priority), i64>;

/// Targets per priority, in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinutesByPriority {
    pub low: i64,
    pub normal: i64,
    pub high: i64,
    pub urgent: i64,
}

impl MinutesByPriority {
    pub fn get(&self, priority: Priority) -> Duration {
        Duration::minutes(match priority {
            Priority::Low => self.low,
            Priority::Normal => self.normal,
            Priority::High => self.high,
            Priority::Urgent => self.urgent,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaTargets {
    pub first_response: MinutesByPriority,
    pub resolution: MinutesByPriority,
    pub next_response: MinutesByPriority,
    /// The share of a target's time after which the warning goes out, in thousandths.
    pub warning_permille: u32,
}

/// When a ticket's targets fall due; `None` once met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub first_response: Option<DateTime<Utc>>,
    pub resolution: Option<DateTime<Utc>>,
}

impl SlaTargets {
    /// The default minutes of a kind of target at a priority.
    pub fn minutes(&self, target: Target, priority: Priority) -> i64 {
        let by = match target {
            Target::FirstResponse => self.first_response,
            Target::NextResponse => self.next_response,
            Target::Resolution => self.resolution,
        };
        by.get(priority).num_minutes()
    }

    /// The minutes of a kind of target at a priority, a department's own where it has one.
    pub fn minutes_with(
        &self,
        overrides: &PolicyOverrides,
        target: Target,
        priority: Priority,
    ) -> i64 {
        overrides
            .get(&(target, priority))
            .copied()
            .unwrap_or_else(|| self.minutes(target, priority))
    }

    pub fn due(
        &self,
        created_at: DateTime<Utc>,
        priority: Priority,
        first_response_at: Option<DateTime<Utc>>,
        resolved_at: Option<DateTime<Utc>>,
    ) -> Due {
        Due {
            first_response: first_response_at
                .is_none()
                .then(|| created_at + self.first_response.get(priority)),
            resolution: resolved_at
                .is_none()
                .then(|| created_at + self.resolution.get(priority)),
        }
    }
}

impl Due {
    /// The earliest target missed by `now`, if any: "first response" or "resolution".
    pub fn breached(&self, now: DateTime<Utc>) -> Option<&'static str> {
        if self.first_response.is_some_and(|due| due <= now) {
            Some("first response")
        } else if self.resolution.is_some_and(|due| due <= now) {
            Some("resolution")
        } else {
            None
        }
    }
}

/// Where a ticket's next target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueState {
    OnTime,
    DueSoon,
    Overdue,
}

/// The target a ticket must meet next: what, when, and how it stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextDue {
    /// "first response" or "resolution".
    pub what: &'static str,
    pub at: DateTime<Utc>,
    pub state: DueState,
}

impl DueState {
    /// How a target due at `at` stands at `now`: overdue, due within `soon`, or on time.
    pub fn at(at: DateTime<Utc>, now: DateTime<Utc>, soon: Duration) -> DueState {
        if at <= now {
            DueState::Overdue
        } else if at <= now + soon {
            DueState::DueSoon
        } else {
            DueState::OnTime
        }
    }
}

impl Due {
    /// The earliest open target, and whether at `now` it is overdue or due within `soon`.
    pub fn next(&self, now: DateTime<Utc>, soon: Duration) -> Option<NextDue> {
        let (what, at) = [
            ("first response", self.first_response),
            ("resolution", self.resolution),
        ]
        .into_iter()
        .filter_map(|(what, at)| at.map(|at| (what, at)))
        .min_by_key(|(_, at)| *at)?;
        let state = DueState::at(at, now, soon);
        Some(NextDue { what, at, state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGETS: SlaTargets = SlaTargets {
        first_response: MinutesByPriority {
            low: 1440,
            normal: 480,
            high: 120,
            urgent: 30,
        },
        resolution: MinutesByPriority {
            low: 10080,
            normal: 2880,
            high: 1440,
            urgent: 240,
        },
        next_response: MinutesByPriority {
            low: 1440,
            normal: 480,
            high: 240,
            urgent: 60,
        },
        warning_permille: 800,
    };

    #[test]
    fn targets_depend_on_priority_and_stop_once_met() {
        let created: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().expect("date");
        let due = TARGETS.due(created, Priority::Urgent, None, None);
        assert_eq!(due.first_response, Some(created + Duration::minutes(30)));
        assert_eq!(due.resolution, Some(created + Duration::hours(4)));
        assert_eq!(due.breached(created + Duration::minutes(29)), None);
        assert_eq!(
            due.breached(created + Duration::minutes(30)),
            Some("first response")
        );

        let answered = TARGETS.due(created, Priority::Urgent, Some(created), None);
        assert_eq!(answered.first_response, None);
        assert_eq!(
            answered.breached(created + Duration::hours(5)),
            Some("resolution")
        );
        let done = TARGETS.due(created, Priority::Low, Some(created), Some(created));
        assert_eq!(done.breached(created + Duration::days(30)), None);
    }

    #[test]
    fn the_next_target_is_the_earliest_open_one() {
        let created: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().expect("date");
        let soon = Duration::hours(1);
        let due = TARGETS.due(created, Priority::Urgent, None, None);
        let next = due.next(created, soon).expect("a target");
        assert_eq!(next.what, "first response");
        assert_eq!(next.at, created + Duration::minutes(30));
        assert_eq!(next.state, DueState::DueSoon);
        let low = TARGETS.due(created, Priority::Low, None, None);
        assert_eq!(
            low.next(created, soon).map(|n| n.state),
            Some(DueState::OnTime)
        );
        let answered = TARGETS.due(created, Priority::Urgent, Some(created), None);
        let next = answered
            .next(created + Duration::hours(5), soon)
            .expect("a target");
        assert_eq!((next.what, next.state), ("resolution", DueState::Overdue));
        let done = TARGETS.due(created, Priority::Low, Some(created), Some(created));
        assert_eq!(done.next(created, soon), None);
    }

    #[test]
    fn a_department_overrides_single_targets() {
        let mut overrides = PolicyOverrides::new();
        overrides.insert((Target::FirstResponse, Priority::Urgent), 10);
        assert_eq!(
            TARGETS.minutes_with(&overrides, Target::FirstResponse, Priority::Urgent),
            10
        );
        assert_eq!(
            TARGETS.minutes_with(&overrides, Target::FirstResponse, Priority::High),
            120
        );
        assert_eq!(
            TARGETS.minutes_with(&overrides, Target::NextResponse, Priority::Urgent),
            60
        );
        assert_eq!("next_response".parse::<Target>(), Ok(Target::NextResponse));
    }
}
