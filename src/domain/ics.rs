//! Holidays from an iCalendar file (RFC 5545): the all-day events of its VEVENTs, with their
//! SUMMARY as the name. Folded lines, escaped text, multi-day events and yearly repetition
//! (`RRULE:FREQ=YEARLY`, with COUNT or UNTIL, else ten years) are understood; events at a time
//! of day are not holidays and are counted as skipped.

use chrono::{Datelike, Duration, NaiveDate};

/// One holiday: a local date and its name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holiday {
    pub date: NaiveDate,
    pub name: String,
}

/// What a file held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    /// By date, one per date (the first event's name wins).
    pub holidays: Vec<Holiday>,
    /// Events that are not all-day, or that could not be read.
    pub skipped: usize,
}

/// Why a file is not an iCalendar file at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IcsError {
    #[error("the file is not an iCalendar file (no BEGIN:VCALENDAR)")]
    NotCalendar,
}

/// Longest event taken as a run of holidays; longer ones are skipped as mistakes.
const MAX_EVENT_DAYS: i64 = 62;
/// How far a yearly event without COUNT or UNTIL repeats.
const YEARS_WITHOUT_END: u32 = 10;

/// Lines with their continuations (a line starting with a space or tab) joined back.
fn unfold(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some(last)) => last.push_str(rest),
            _ => lines.push(raw.to_owned()),
        }
    }
    lines
}

/// A content line: its name (upper case), its parameters and its value.
struct Property<'a> {
    name: String,
    params: Vec<(String, &'a str)>,
    value: &'a str,
}

fn property(line: &str) -> Option<Property<'_>> {
    // The value starts at the first colon outside a quoted parameter value.
    let mut quoted = false;
    let colon = line.char_indices().find_map(|(i, c)| {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => return Some(i),
            _ => {}
        }
        None
    })?;
    let (head, value) = (&line[..colon], &line[colon + 1..]);
    let mut parts = head.split(';');
    let name = parts.next()?.trim().to_ascii_uppercase();
    let params = parts
        .filter_map(|part| part.split_once('='))
        .map(|(key, value)| (key.trim().to_ascii_uppercase(), value.trim_matches('"')))
        .collect();
    Some(Property {
        name,
        params,
        value,
    })
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push(' '),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out.trim().to_owned()
}

/// A DATE value ("20261225"), or `None` for a DATE-TIME or anything else.
fn date_of(property: &Property<'_>) -> Option<NaiveDate> {
    let is_date = property
        .params
        .iter()
        .any(|(key, value)| key == "VALUE" && value.eq_ignore_ascii_case("DATE"));
    let value = property.value.trim();
    if !is_date && value.len() != 8 {
        return None;
    }
    NaiveDate::parse_from_str(value, "%Y%m%d").ok()
}

#[derive(Default)]
struct Event {
    start: Option<NaiveDate>,
    timed: bool,
    end: Option<NaiveDate>,
    days: Option<i64>,
    summary: Option<String>,
    rrule: Option<String>,
    cancelled: bool,
}

/// `DURATION:P1D` / `P2W` of an all-day event, in days.
fn duration_days(value: &str) -> Option<i64> {
    let body = value.trim().strip_prefix('P')?;
    if let Some(weeks) = body.strip_suffix('W') {
        return weeks.parse::<i64>().ok().map(|w| w * 7);
    }
    body.strip_suffix('D')?.parse().ok()
}

/// The years of a yearly rule from the event's first date on.
fn yearly(rule: &str, first: NaiveDate) -> Option<Vec<NaiveDate>> {
    let mut freq = None;
    let mut count = None;
    let mut until = None;
    let mut interval = 1;
    for part in rule.split(';') {
        let (key, value) = part.split_once('=')?;
        match key.trim().to_ascii_uppercase().as_str() {
            "FREQ" => freq = Some(value.trim().to_ascii_uppercase()),
            "COUNT" => count = value.trim().parse::<u32>().ok(),
            "UNTIL" => until = NaiveDate::parse_from_str(value.get(..8)?, "%Y%m%d").ok(),
            "INTERVAL" => interval = value.trim().parse::<i32>().ok().filter(|i| *i > 0)?,
            // BYMONTH etc. repeating the start's own month and day change nothing; anything
            // else (BYDAY: "the last Monday of May") is not a fixed date.
            "BYMONTH" if value.trim().parse::<u32>().ok() == Some(first.month()) => {}
            "BYMONTHDAY" if value.trim().parse::<u32>().ok() == Some(first.day()) => {}
            "WKST" => {}
            _ => return None,
        }
    }
    if freq.as_deref() != Some("YEARLY") {
        return None;
    }
    let limit = count.unwrap_or(YEARS_WITHOUT_END).min(100);
    let dates = (0..limit as i32)
        .filter_map(|n| first.with_year(first.year() + n * interval))
        .take_while(|date| until.is_none_or(|until| *date <= until))
        .collect();
    Some(dates)
}

/// Reads the holidays of an iCalendar text.
pub fn parse(text: &str) -> Result<Imported, IcsError> {
    let lines = unfold(text.trim_start_matches('\u{feff}'));
    if !lines
        .iter()
        .any(|line| line.trim().eq_ignore_ascii_case("BEGIN:VCALENDAR"))
    {
        return Err(IcsError::NotCalendar);
    }
    let mut imported = Imported::default();
    let mut found: Vec<Holiday> = Vec::new();
    let mut event: Option<Event> = None;
    // Nested components (a VALARM inside a VEVENT) are passed over.
    let mut nested = 0usize;
    for line in &lines {
        let Some(prop) = property(line) else { continue };
        let value = prop.value.trim();
        let Some(current) = event.as_mut() else {
            if prop.name == "BEGIN" && value.eq_ignore_ascii_case("VEVENT") {
                event = Some(Event::default());
            }
            continue;
        };
        match prop.name.as_str() {
            "BEGIN" => nested += 1,
            "END" if nested > 0 => nested -= 1,
            _ if nested > 0 => {}
            "END" if value.eq_ignore_ascii_case("VEVENT") => {
                if let Some(done) = event.take() {
                    match holidays_of(&done) {
                        Some(days) => found.extend(days),
                        None if done.cancelled => {}
                        None => imported.skipped += 1,
                    }
                }
            }
            "DTSTART" => {
                current.start = date_of(&prop);
                current.timed = current.start.is_none();
            }
            "DTEND" => current.end = date_of(&prop),
            "DURATION" => current.days = duration_days(value),
            "SUMMARY" => current.summary = Some(unescape(prop.value)),
            "RRULE" => current.rrule = Some(value.to_owned()),
            "STATUS" => current.cancelled = value.eq_ignore_ascii_case("CANCELLED"),
            _ => {}
        }
    }
    found.sort_by_key(|holiday| holiday.date);
    found.dedup_by_key(|holiday| holiday.date);
    imported.holidays = found;
    Ok(imported)
}

/// The dates an all-day event covers, or `None` when it is not one.
fn holidays_of(event: &Event) -> Option<Vec<Holiday>> {
    if event.timed || event.cancelled {
        return None;
    }
    let start = event.start?;
    let days = match (event.end, event.days) {
        (Some(end), _) => (end - start).num_days().max(1),
        (None, Some(days)) => days.max(1),
        (None, None) => 1,
    };
    if days > MAX_EVENT_DAYS {
        return None;
    }
    let name = event
        .summary
        .clone()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "Holiday".to_owned());
    let firsts = match &event.rrule {
        Some(rule) => yearly(rule, start)?,
        None => vec![start],
    };
    Some(
        firsts
            .into_iter()
            .flat_map(|first| (0..days).map(move |d| first + Duration::days(d)))
            .map(|date| Holiday {
                date,
                name: name.clone(),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An export in the style of public holiday feeds: CRLF, a time zone block, folded lines,
    /// escaped commas, a two-day event, a yearly event, a timed event and an alarm.
    const FEED: &str = include_str!("../../tests/fixtures/holidays-berlin.ics");

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("a date")
    }

    #[test]
    fn all_day_events_become_holidays() {
        let imported = parse(FEED).expect("a calendar");
        let names: Vec<(String, &str)> = imported
            .holidays
            .iter()
            .map(|h| (h.date.to_string(), h.name.as_str()))
            .collect();
        assert!(names.contains(&("2026-12-25".into(), "1. Weihnachtstag")));
        assert!(names.contains(&("2026-12-26".into(), "2. Weihnachtstag")));
        // Folded and escaped.
        assert!(
            names.contains(&(
                "2026-10-03".into(),
                "Tag der Deutschen Einheit, bundesweiter Feiertag"
            )),
            "{names:?}"
        );
        // Two days from one event (DTEND is exclusive).
        assert!(names.contains(&("2026-12-31".into(), "Betriebsruhe")));
        assert!(names.contains(&("2027-01-01".into(), "Betriebsruhe")));
        assert!(!names.iter().any(|(d, _)| d == "2027-01-02"));
        // Yearly, three times.
        let labour: Vec<&str> = names
            .iter()
            .filter(|(_, n)| *n == "Tag der Arbeit")
            .map(|(d, _)| d.as_str())
            .collect();
        assert_eq!(labour, ["2026-05-01", "2027-05-01", "2028-05-01"]);
        // The team meeting at 10:00 is no holiday; the alarm's text is no event.
        assert_eq!(imported.skipped, 1);
        assert!(
            !names
                .iter()
                .any(|(_, n)| n.contains("Meeting") || n.contains("Reminder"))
        );
        // One per date, in order.
        let dates: Vec<NaiveDate> = imported.holidays.iter().map(|h| h.date).collect();
        let mut sorted = dates.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(dates, sorted);
    }

    #[test]
    fn plain_lf_files_and_bare_dates_are_read() {
        let text = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20270406\nSUMMARY:Ostermontag\nEND:VEVENT\nEND:VCALENDAR\n";
        let imported = parse(text).expect("a calendar");
        assert_eq!(
            imported.holidays,
            vec![Holiday {
                date: date("2027-04-06"),
                name: "Ostermontag".into()
            }]
        );
        assert_eq!(parse("hello"), Err(IcsError::NotCalendar));
        let timed = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;TZID=Europe/Berlin:20270406T100000\nEND:VEVENT\nEND:VCALENDAR";
        assert_eq!(parse(timed).expect("a calendar").skipped, 1);
    }
}
