//! The rules of the reports: which periods there are, how a period is cut into days, weeks or
//! months, how long something took (business time where the department has a calendar), and
//! the percentiles of those times. Periods and spans are in UTC.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use super::calendar::{Calendar, Clock};

/// What a report's rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Day,
    Week,
    Month,
    Department,
    Agent,
    Channel,
}

impl GroupBy {
    pub const ALL: [GroupBy; 6] = [
        GroupBy::Day,
        GroupBy::Week,
        GroupBy::Month,
        GroupBy::Department,
        GroupBy::Agent,
        GroupBy::Channel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Week => "week",
            GroupBy::Month => "month",
            GroupBy::Department => "department",
            GroupBy::Agent => "agent",
            GroupBy::Channel => "channel",
        }
    }

    pub fn parse(text: &str) -> Option<GroupBy> {
        GroupBy::ALL.into_iter().find(|g| g.as_str() == text)
    }

    /// Rows are spans of time (rather than departments, agents or channels).
    pub fn is_time(self) -> bool {
        matches!(self, GroupBy::Day | GroupBy::Week | GroupBy::Month)
    }

    /// The start of the span `day` falls in.
    pub fn bucket(self, day: NaiveDate) -> NaiveDate {
        match self {
            GroupBy::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
            GroupBy::Month => day.with_day(1).unwrap_or(day),
            _ => day,
        }
    }

    /// The start of the span after the one starting at `start`.
    pub fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            GroupBy::Week => start + Duration::days(7),
            GroupBy::Month => add_months(start, 1),
            _ => start + Duration::days(1),
        }
    }
}

/// The named periods of the report form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Last7Days,
    Last30Days,
    ThisMonth,
    LastMonth,
    ThisQuarter,
    ThisYear,
}

impl Preset {
    pub const ALL: [Preset; 6] = [
        Preset::Last7Days,
        Preset::Last30Days,
        Preset::ThisMonth,
        Preset::LastMonth,
        Preset::ThisQuarter,
        Preset::ThisYear,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Last7Days => "last_7_days",
            Preset::Last30Days => "last_30_days",
            Preset::ThisMonth => "this_month",
            Preset::LastMonth => "last_month",
            Preset::ThisQuarter => "this_quarter",
            Preset::ThisYear => "this_year",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Preset::Last7Days => "Last 7 days",
            Preset::Last30Days => "Last 30 days",
            Preset::ThisMonth => "This month",
            Preset::LastMonth => "Last month",
            Preset::ThisQuarter => "This quarter",
            Preset::ThisYear => "This year",
        }
    }

    pub fn parse(text: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The period as days, `to` excluded; a period that is still running ends with today.
    pub fn days(self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        let tomorrow = today + Duration::days(1);
        let month = today.with_day(1).unwrap_or(today);
        match self {
            Preset::Last7Days => (today - Duration::days(6), tomorrow),
            Preset::Last30Days => (today - Duration::days(29), tomorrow),
            Preset::ThisMonth => (month, tomorrow),
            Preset::LastMonth => (add_months(month, -1), month),
            Preset::ThisQuarter => {
                let quarter = add_months(month, -(((today.month0()) % 3) as i32));
                (quarter, tomorrow)
            }
            Preset::ThisYear => (
                NaiveDate::from_yo_opt(today.year(), 1).unwrap_or(today),
                tomorrow,
            ),
        }
    }
}

fn add_months(date: NaiveDate, months: i32) -> NaiveDate {
    let index = date.year() * 12 + date.month0() as i32 + months;
    NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
        .unwrap_or(date)
}

/// Midnight UTC of `day`.
pub fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// The span starts of `group_by` that cover `[from, to)`; empty for grouping that is not by
/// time.
pub fn buckets(group_by: GroupBy, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<NaiveDate> {
    let mut starts = Vec::new();
    if !group_by.is_time() || from >= to {
        return starts;
    }
    let mut start = group_by.bucket(from.date_naive());
    while midnight(start) < to {
        starts.push(start);
        start = group_by.next(start);
    }
    starts
}

/// How a figure's times were measured: in the business hours of the ticket's department's
/// calendar, around the clock (the department has none), or some of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeBasis {
    Business,
    WallClock,
    Mixed,
}

impl TimeBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeBasis::Business => "business",
            TimeBasis::WallClock => "wall_clock",
            TimeBasis::Mixed => "mixed",
        }
    }

    /// The basis of `business` times in business hours and `wall_clock` ones around the
    /// clock; `None` when nothing was measured.
    pub fn of(business: usize, wall_clock: usize) -> Option<TimeBasis> {
        match (business, wall_clock) {
            (0, 0) => None,
            (_, 0) => Some(TimeBasis::Business),
            (0, _) => Some(TimeBasis::WallClock),
            _ => Some(TimeBasis::Mixed),
        }
    }
}

/// How long the work took from `from` to `to`: business time in `calendar` (the ticket's
/// department's), else wall-clock. The one place report durations are measured.
pub fn elapsed(calendar: Option<&Calendar>, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    match calendar {
        Some(calendar) => Duration::seconds(Clock::Business(calendar).between(from, to, &[])),
        None => (to - from).max(Duration::zero()),
    }
}

/// The nearest-rank percentile (`fraction` 0.5 for the median) of `sorted` values.
pub fn percentile(sorted: &[i64], fraction: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64) * fraction).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        assert_eq!(GroupBy::Week.bucket(day("2026-12-06")), day("2026-11-30"));
        assert_eq!(GroupBy::Week.bucket(day("2026-11-30")), day("2026-11-30"));
        assert_eq!(GroupBy::Month.bucket(day("2026-12-31")), day("2026-12-01"));
        assert_eq!(GroupBy::Month.next(day("2026-12-01")), day("2027-01-01"));
    }

    #[test]
    fn presets_end_with_today_or_the_last_day_of_a_past_month() {
        let today = day("2026-02-15");
        assert_eq!(
            Preset::LastMonth.days(today),
            (day("2026-01-01"), day("2026-02-01"))
        );
        assert_eq!(
            Preset::ThisQuarter.days(today),
            (day("2026-01-01"), day("2026-02-16"))
        );
        assert_eq!(
            Preset::Last7Days.days(today),
            (day("2026-02-09"), day("2026-02-16"))
        );
        assert_eq!(
            Preset::LastMonth.days(day("2026-01-10")),
            (day("2025-12-01"), day("2026-01-01"))
        );
    }

    #[test]
    fn buckets_cover_the_period() {
        let weeks = buckets(
            GroupBy::Week,
            midnight(day("2026-11-04")),
            midnight(day("2026-11-17")),
        );
        assert_eq!(
            weeks,
            [day("2026-11-02"), day("2026-11-09"), day("2026-11-16")]
        );
        assert!(buckets(GroupBy::Agent, midnight(day("2026-11-04")), Utc::now()).is_empty());
    }

    #[test]
    fn elapsed_counts_business_hours_where_there_is_a_calendar() {
        let calendar = Calendar {
            zone: chrono_tz::Europe::Berlin,
            hours: crate::domain::calendar::WeeklyHours::parse_text(
                "mon 09:00-17:00\ntue 09:00-17:00\nwed 09:00-17:00\nthu 09:00-17:00\nfri 09:00-17:00",
            )
            .expect("hours"),
            holidays: Default::default(),
        };
        // Friday 16:00 to Monday 10:00 in Berlin (UTC+1): one hour on Friday, one on Monday.
        let from: DateTime<Utc> = "2026-11-27T15:00:00Z".parse().expect("from");
        let to: DateTime<Utc> = "2026-11-30T09:00:00Z".parse().expect("to");
        assert_eq!(elapsed(Some(&calendar), from, to), Duration::hours(2));
        assert_eq!(elapsed(None, from, to), Duration::hours(66));
        assert_eq!(elapsed(None, to, from), Duration::zero());
        assert_eq!(TimeBasis::of(0, 0), None);
        assert_eq!(TimeBasis::of(3, 0), Some(TimeBasis::Business));
        assert_eq!(TimeBasis::of(3, 1), Some(TimeBasis::Mixed));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[5], 0.9), Some(5));
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), Some(9));
        assert_eq!(percentile(&[1, 2, 3], 0.5), Some(2));
    }
}
