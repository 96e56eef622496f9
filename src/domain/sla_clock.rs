//! A ticket's SLA targets worked out from what happened to it: which targets it has (one first
//! response and one resolution, a next response each time the customer writes after our
//! answer), when each was met, and where each one's clock stands (due, warning, paused).

use chrono::{DateTime, Duration, Utc};

use super::calendar::{Clock, Pause};
use super::sla::Target;

/// What the targets are worked out from.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub created_at: DateTime<Utc>,
    /// When the ticket was resolved, if it is now.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When the ticket was closed, if it is now.
    pub closed_at: Option<DateTime<Utc>>,
    /// Public messages in order: when, and whether the customer wrote it.
    pub messages: Vec<(DateTime<Utc>, bool)>,
    /// While the ticket was pending: from, and until (`None`: it still is).
    pub pending: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
}

/// One target a ticket has, as its history says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    pub target: Target,
    pub started_at: DateTime<Utc>,
    pub met_at: Option<DateTime<Utc>>,
}

impl Timeline {
    /// The ticket's targets in the order they started. A resolved or closed ticket's open
    /// targets end when it was resolved or closed.
    pub fn instances(&self) -> Vec<Instance> {
        let mut found = vec![Instance {
            target: Target::FirstResponse,
            started_at: self.created_at,
            met_at: None,
        }];
        // The response target waiting for our answer, if any (an index into `found`).
        let mut waiting = Some(0);
        for &(at, from_customer) in &self.messages {
            match (from_customer, waiting) {
                (false, Some(index)) => {
                    found[index].met_at = Some(at);
                    waiting = None;
                }
                (true, None) => {
                    waiting = Some(found.len());
                    found.push(Instance {
                        target: Target::NextResponse,
                        started_at: at,
                        met_at: None,
                    });
                }
                _ => {}
            }
        }
        found.push(Instance {
            target: Target::Resolution,
            started_at: self.created_at,
            met_at: self.resolved_at,
        });
        // Resolving or closing ends what is still open: nothing is owed on a finished ticket.
        if let Some(ended) = self.resolved_at.or(self.closed_at) {
            for instance in &mut found {
                instance
                    .met_at
                    .get_or_insert(ended.max(instance.started_at));
            }
        }
        found.sort_by_key(|instance| (instance.started_at, instance.target));
        found
    }

    /// The pending stretches as pauses, one still going taken to last until `now`.
    pub fn pauses(&self, now: DateTime<Utc>) -> Vec<Pause> {
        self.pending
            .iter()
            .map(|&(from, to)| (from, to.unwrap_or(now).max(from)))
            .collect()
    }

    /// Since when the ticket is pending, if it is now.
    pub fn pending_since(&self) -> Option<DateTime<Utc>> {
        self.pending
            .iter()
            .find_map(|&(from, to)| to.is_none().then_some(from))
    }
}

/// Where one target's clock stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// When it falls due; while paused, as if the clock ran again now.
    pub due_at: DateTime<Utc>,
    /// When the share of its time that warns has passed.
    pub warn_at: DateTime<Utc>,
    /// Since when its clock stands still (the ticket pending), if it does now.
    pub paused_since: Option<DateTime<Utc>>,
    /// Running time lost to pauses until it was met or until now.
    pub paused_seconds: i64,
}

/// Far enough to stand for "never" when a calendar has no hours within years.
fn never(from: DateTime<Utc>) -> DateTime<Utc> {
    from + Duration::days(36_600)
}

/// Where `instance` stands at `now` with `minutes` to be met in, counted by `clock`.
pub fn standing(
    clock: Clock<'_>,
    timeline: &Timeline,
    instance: &Instance,
    minutes: i64,
    warning_permille: u32,
    now: DateTime<Utc>,
) -> Standing {
    let end = instance.met_at.unwrap_or(now).max(instance.started_at);
    let pauses: Vec<Pause> = timeline
        .pauses(end)
        .into_iter()
        .filter(|(from, _)| *from < end)
        .collect();
    let seconds = minutes.saturating_mul(60);
    let warning = seconds.saturating_mul(i64::from(warning_permille)) / 1000;
    let start = instance.started_at;
    let due_at = clock
        .add(start, seconds, &pauses)
        .unwrap_or_else(|| never(start));
    let warn_at = clock
        .add(start, warning, &pauses)
        .unwrap_or_else(|| never(start));
    let paused_seconds = clock.between(start, end, &[]) - clock.between(start, end, &pauses);
    let paused_since = match instance.met_at {
        Some(_) => None,
        None => timeline.pending_since().map(|since| since.max(start)),
    };
    Standing {
        due_at,
        warn_at,
        paused_since,
        paused_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::{Calendar, WeeklyHours};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("an instant")
    }

    #[test]
    fn a_customer_writing_after_our_answer_starts_a_next_response() {
        let created = at("2026-11-30T09:00:00Z");
        let timeline = Timeline {
            created_at: created,
            messages: vec![
                (created, true),
                (at("2026-11-30T09:05:00Z"), true),
                (at("2026-11-30T10:00:00Z"), false),
                (at("2026-11-30T10:30:00Z"), false),
                (at("2026-11-30T11:00:00Z"), true),
                (at("2026-11-30T11:10:00Z"), true),
                (at("2026-11-30T12:00:00Z"), false),
                (at("2026-11-30T13:00:00Z"), true),
            ],
            ..Timeline::default()
        };
        let found = timeline.instances();
        let summary: Vec<(Target, DateTime<Utc>, Option<DateTime<Utc>>)> = found
            .iter()
            .map(|i| (i.target, i.started_at, i.met_at))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    Target::FirstResponse,
                    created,
                    Some(at("2026-11-30T10:00:00Z"))
                ),
                (Target::Resolution, created, None),
                (
                    Target::NextResponse,
                    at("2026-11-30T11:00:00Z"),
                    Some(at("2026-11-30T12:00:00Z"))
                ),
                (Target::NextResponse, at("2026-11-30T13:00:00Z"), None),
            ]
        );
        let closed = Timeline {
            closed_at: Some(at("2026-12-01T09:00:00Z")),
            ..timeline
        };
        assert!(closed.instances().iter().all(|i| i.met_at.is_some()));
    }

    #[test]
    fn pending_time_moves_the_due_time_in_business_hours() {
        let calendar = Calendar {
            zone: chrono_tz::Europe::Berlin,
            hours: WeeklyHours::parse_text(
                "mon 09:00-17:00\ntue 09:00-17:00\nwed 09:00-17:00\nthu 09:00-17:00\nfri 09:00-17:00",
            )
            .expect("hours"),
            holidays: Default::default(),
        };
        let clock = Clock::Business(&calendar);
        // Monday 30 November 09:00 Berlin, a 4-hour resolution target.
        let created = at("2026-11-30T08:00:00Z");
        let mut timeline = Timeline {
            created_at: created,
            pending: vec![(at("2026-11-30T09:00:00Z"), None)],
            ..Timeline::default()
        };
        let instance = timeline
            .instances()
            .into_iter()
            .find(|i| i.target == Target::Resolution)
            .expect("resolution");
        // Pending since 10:00; at 11:30 the clock has stood still for 1.5 hours.
        let now = at("2026-11-30T10:30:00Z");
        let paused = standing(clock, &timeline, &instance, 240, 800, now);
        assert_eq!(paused.paused_since, Some(at("2026-11-30T09:00:00Z")));
        assert_eq!(paused.paused_seconds, 90 * 60);
        assert_eq!(paused.due_at, at("2026-11-30T13:30:00Z"));
        // Resumed at 16:00: one hour ran before, one after, two remain: Tuesday 11:00 Berlin.
        timeline.pending = vec![(at("2026-11-30T09:00:00Z"), Some(at("2026-11-30T15:00:00Z")))];
        let resumed = standing(
            clock,
            &timeline,
            &instance,
            240,
            800,
            at("2026-11-30T15:30:00Z"),
        );
        assert_eq!(resumed.paused_since, None);
        assert_eq!(resumed.paused_seconds, 6 * 3600);
        assert_eq!(resumed.due_at, at("2026-12-01T10:00:00Z"));
        // 80 % of 4 hours is 3 h 12 min of running time: Tuesday 10:12 Berlin.
        assert_eq!(resumed.warn_at, at("2026-12-01T09:12:00Z"));
    }

    #[test]
    fn a_warning_at_half_the_time_moves_with_a_pause_across_it() {
        let created = at("2026-11-30T09:00:00Z");
        // A two-hour target; pending from 09:30 to 10:30, across the mark at one hour.
        let mut timeline = Timeline {
            created_at: created,
            pending: vec![(at("2026-11-30T09:30:00Z"), None)],
            ..Timeline::default()
        };
        let resolution = timeline
            .instances()
            .into_iter()
            .find(|i| i.target == Target::Resolution)
            .expect("resolution");
        let paused = standing(
            Clock::WallClock,
            &timeline,
            &resolution,
            120,
            500,
            at("2026-11-30T10:15:00Z"),
        );
        assert_eq!(paused.paused_since, Some(at("2026-11-30T09:30:00Z")));
        // As if the clock ran again now: half an hour used, half an hour to the warning.
        assert_eq!(paused.warn_at, at("2026-11-30T10:45:00Z"));
        assert_eq!(paused.due_at, at("2026-11-30T11:45:00Z"));
        timeline.pending = vec![(at("2026-11-30T09:30:00Z"), Some(at("2026-11-30T10:30:00Z")))];
        let resumed = standing(
            Clock::WallClock,
            &timeline,
            &resolution,
            120,
            500,
            at("2026-11-30T10:31:00Z"),
        );
        assert_eq!(resumed.paused_since, None);
        assert_eq!(resumed.paused_seconds, 3600);
        assert_eq!(resumed.warn_at, at("2026-11-30T11:00:00Z"));
        assert_eq!(resumed.due_at, at("2026-11-30T12:00:00Z"));
    }

    #[test]
    fn a_pause_before_the_target_started_does_not_count() {
        let created = at("2026-11-30T08:00:00Z");
        let customer = at("2026-11-30T12:00:00Z");
        let timeline = Timeline {
            created_at: created,
            messages: vec![
                (created, true),
                (at("2026-11-30T09:00:00Z"), false),
                (customer, true),
            ],
            pending: vec![(at("2026-11-30T10:00:00Z"), Some(customer))],
            ..Timeline::default()
        };
        let next = timeline
            .instances()
            .into_iter()
            .find(|i| i.target == Target::NextResponse)
            .expect("next response");
        let standing = standing(Clock::WallClock, &timeline, &next, 60, 500, customer);
        assert_eq!(standing.due_at, customer + Duration::minutes(60));
        assert_eq!(standing.warn_at, customer + Duration::minutes(30));
        assert_eq!(standing.paused_seconds, 0);
    }
}
