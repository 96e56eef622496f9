//! Business calendars: weekly hours in a named IANA zone, holidays, and the arithmetic SLA
//! targets count in (add business time to an instant, business time between two instants),
//! with times the clock stands still (a ticket pending) taken out.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// Why weekly hours or a calendar are not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("{0:?} is not a day such as \"mon\"")]
    Day(String),
    #[error("{0:?} is not an interval such as \"09:00-17:00\"")]
    Span(String),
    #[error("on {day} the intervals {first} and {second} overlap")]
    Overlap {
        day: &'static str,
        first: String,
        second: String,
    },
    #[error("a calendar needs business hours on at least one day")]
    Empty,
    #[error(transparent)]
    Zone(#[from] super::zone::UnknownZone),
}

/// Minutes from local midnight: `start` inclusive, `end` exclusive, `end` at most 24:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub start: u16,
    pub end: u16,
}

impl Span {
    /// "09:00-17:00" (24:00 is allowed as an end).
    pub fn parse(text: &str) -> Result<Span, CalendarError> {
        let bad = || CalendarError::Span(text.trim().to_owned());
        let (start, end) = text.trim().split_once('-').ok_or_else(bad)?;
        let minute = |part: &str| -> Option<u16> {
            let (h, m) = part.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
        };
        let (start, end) = (minute(start).ok_or_else(bad)?, minute(end).ok_or_else(bad)?);
        if start >= end {
            return Err(bad());
        }
        Ok(Span { start, end })
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The working intervals of each weekday, Monday first, sorted and not overlapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeeklyHours {
    days: [Vec<Span>; 7],
}

impl WeeklyHours {
    /// From day names ("mon", "monday", any case) to intervals.
    pub fn from_map(map: &BTreeMap<String, Vec<String>>) -> Result<WeeklyHours, CalendarError> {
        let mut hours = WeeklyHours::default();
        for (day, spans) in map {
            let weekday: Weekday = day
                .trim()
                .parse()
                .map_err(|_| CalendarError::Day(day.clone()))?;
            let slot = &mut hours.days[weekday.num_days_from_monday() as usize];
            for span in spans {
                slot.push(Span::parse(span)?);
            }
        }
        hours.check()?;
        Ok(hours)
    }

    /// One line per day: "mon 09:00-12:00 13:00-17:00" (commas allowed between intervals).
    pub fn parse_text(text: &str) -> Result<WeeklyHours, CalendarError> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
            let mut parts = line.split(|c: char| c.is_whitespace() || c == ',');
            let day = parts.next().unwrap_or_default().trim_end_matches(':');
            let spans = map.entry(day.to_owned()).or_default();
            spans.extend(parts.filter(|p| !p.is_empty()).map(str::to_owned));
        }
        WeeklyHours::from_map(&map)
    }

    fn check(&mut self) -> Result<(), CalendarError> {
        for (index, spans) in self.days.iter_mut().enumerate() {
            spans.sort();
            for pair in spans.windows(2) {
                if pair[1].start < pair[0].end {
                    return Err(CalendarError::Overlap {
                        day: DAY_NAMES[index],
                        first: pair[0].to_string(),
                        second: pair[1].to_string(),
                    });
                }
            }
        }
        if self.days.iter().all(Vec::is_empty) {
            return Err(CalendarError::Empty);
        }
        Ok(())
    }

    /// Day name to intervals, days without hours left out.
    pub fn to_map(&self) -> BTreeMap<String, Vec<String>> {
        DAY_NAMES
            .iter()
            .zip(&self.days)
            .filter(|(_, spans)| !spans.is_empty())
            .map(|(day, spans)| {
                let spans = spans.iter().map(Span::to_string).collect();
                ((*day).to_owned(), spans)
            })
            .collect()
    }

    /// The form [`WeeklyHours::parse_text`] reads, Monday first.
    pub fn to_text(&self) -> String {
        DAY_NAMES
            .iter()
            .zip(&self.days)
            .filter(|(_, spans)| !spans.is_empty())
            .map(|(day, spans)| {
                let spans: Vec<String> = spans.iter().map(Span::to_string).collect();
                format!("{day} {}", spans.join(" "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn on(&self, day: Weekday) -> &[Span] {
        &self.days[day.num_days_from_monday() as usize]
    }
}

/// A department's business calendar.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    pub zone: Tz,
    pub hours: WeeklyHours,
    /// Local dates (in `zone`) without business hours.
    pub holidays: BTreeSet<NaiveDate>,
}

/// A stretch of time the clock stands still, `[from, to)`.
pub type Pause = (DateTime<Utc>, DateTime<Utc>);

/// How long a calendar is searched for business hours before giving up (ten years of
/// holidays would be a broken calendar, not a real one).
const SEARCH_DAYS: i64 = 3660;

/// Far enough to stand for "never" without overflowing.
fn far_future(from: DateTime<Utc>) -> DateTime<Utc> {
    from + Duration::days(36_600)
}

/// How SLA time is counted: around the clock, or in a calendar's business hours.
#[derive(Debug, Clone, Copy)]
pub enum Clock<'a> {
    WallClock,
    Business(&'a Calendar),
}

impl Calendar {
    /// The instant of local `minute` (from midnight) on `date`. A local time the zone skips
    /// (the hour clocks jump forward) becomes the first one after the jump; one the zone
    /// repeats (the hour clocks fall back) the first or the `latest` of the two.
    fn instant(&self, date: NaiveDate, minute: u16, latest: bool) -> Option<DateTime<Utc>> {
        let naive = date.and_hms_opt(0, 0, 0)? + Duration::minutes(i64::from(minute));
        let local = self.zone.from_local_datetime(&naive);
        let found = if latest {
            local.latest()
        } else {
            local.earliest()
        };
        found
            .or_else(|| {
                (1..=240).find_map(|step| {
                    self.zone
                        .from_local_datetime(&(naive + Duration::minutes(step)))
                        .earliest()
                })
            })
            .map(|at| at.with_timezone(&Utc))
    }

    /// The business windows from `from` on, in order, clipped to start no earlier than `from`,
    /// until `visit` breaks or the search ends.
    fn windows(
        &self,
        from: DateTime<Utc>,
        mut visit: impl FnMut(DateTime<Utc>, DateTime<Utc>) -> ControlFlow<()>,
    ) {
        let first = from.with_timezone(&self.zone).date_naive();
        // A window of the day before can reach past local midnight only through a
        // daylight-saving change; starting a day early is cheap and safe.
        let mut date = first.pred_opt().unwrap_or(first);
        for _ in 0..SEARCH_DAYS {
            if !self.holidays.contains(&date) {
                for span in self.hours.on(date.weekday()) {
                    let (Some(start), Some(end)) = (
                        self.instant(date, span.start, false),
                        self.instant(date, span.end, true),
                    ) else {
                        continue;
                    };
                    if end <= from || end <= start {
                        continue;
                    }
                    if visit(start.max(from), end).is_break() {
                        return;
                    }
                }
            }
            let Some(next) = date.succ_opt() else { return };
            date = next;
        }
    }
}

impl Clock<'_> {
    /// The windows the clock runs in from `from` on, with `pauses` taken out.
    fn running(
        &self,
        from: DateTime<Utc>,
        pauses: &[Pause],
        mut visit: impl FnMut(DateTime<Utc>, DateTime<Utc>) -> ControlFlow<()>,
    ) {
        let mut split = |start: DateTime<Utc>, end: DateTime<Utc>| {
            let mut cursor = start;
            for &(pause_from, pause_to) in pauses {
                if pause_to <= cursor || pause_from >= end {
                    continue;
                }
                if pause_from > cursor && visit(cursor, pause_from).is_break() {
                    return ControlFlow::Break(());
                }
                cursor = cursor.max(pause_to);
                if cursor >= end {
                    return ControlFlow::Continue(());
                }
            }
            if cursor < end {
                visit(cursor, end)
            } else {
                ControlFlow::Continue(())
            }
        };
        match self {
            Clock::WallClock => {
                let _ = split(from, far_future(from));
            }
            Clock::Business(calendar) => calendar.windows(from, split),
        }
    }

    /// The instant at which `seconds` of running time have passed after `start`; `None` when
    /// the calendar has no business hours within years.
    pub fn add(
        &self,
        start: DateTime<Utc>,
        seconds: i64,
        pauses: &[Pause],
    ) -> Option<DateTime<Utc>> {
        if seconds <= 0 {
            return Some(start);
        }
        let pauses = sorted(pauses);
        let mut left = seconds;
        let mut found = None;
        self.running(start, &pauses, |from, to| {
            let length = (to - from).num_seconds();
            if length >= left {
                found = Some(from + Duration::seconds(left));
                ControlFlow::Break(())
            } else {
                left -= length;
                ControlFlow::Continue(())
            }
        });
        found
    }

    /// Seconds of running time in `[from, to)`.
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>, pauses: &[Pause]) -> i64 {
        if to <= from {
            return 0;
        }
        let pauses = sorted(pauses);
        let mut total = 0;
        self.running(from, &pauses, |start, end| {
            if start >= to {
                return ControlFlow::Break(());
            }
            total += (end.min(to) - start).num_seconds();
            ControlFlow::Continue(())
        });
        total
    }

    /// [`Clock::add`] in whole minutes.
    pub fn add_minutes(&self, start: DateTime<Utc>, minutes: i64) -> Option<DateTime<Utc>> {
        self.add(start, minutes.saturating_mul(60), &[])
    }

    /// [`Clock::between`] in whole minutes.
    pub fn minutes_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        self.between(from, to, &[]) / 60
    }
}

fn sorted(pauses: &[Pause]) -> Vec<Pause> {
    let mut pauses: Vec<Pause> = pauses.iter().copied().filter(|(a, b)| a < b).collect();
    pauses.sort();
    pauses
}

#[cfg(test)]
mod tests;
