use super::*;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 instant")
}

fn berlin(hours: &str, holidays: &[&str]) -> Calendar {
    Calendar {
        zone: chrono_tz::Europe::Berlin,
        hours: WeeklyHours::parse_text(hours).expect("hours"),
        holidays: holidays
            .iter()
            .map(|day| day.parse().expect("a date"))
            .collect(),
    }
}

const OFFICE: &str =
    "mon 09:00-17:00\ntue 09:00-17:00\nwed 09:00-17:00\nthu 09:00-17:00\nfri 09:00-17:00";
const ALWAYS: &str = "mon 00:00-24:00\ntue 00:00-24:00\nwed 00:00-24:00\nthu 00:00-24:00\nfri 00:00-24:00\nsat 00:00-24:00\nsun 00:00-24:00";

#[test]
fn business_time_skips_the_weekend() {
    let office = berlin(OFFICE, &[]);
    let clock = Clock::Business(&office);
    // Friday 16:00 in Berlin (UTC+1) plus two business hours is Monday 10:00.
    let friday = at("2026-11-27T15:00:00Z");
    let monday = at("2026-11-30T09:00:00Z");
    assert_eq!(clock.add_minutes(friday, 120), Some(monday));
    assert_eq!(clock.minutes_between(friday, monday), 120);
    // Saturday counts nothing; a start on the weekend begins on Monday at 09:00.
    let saturday = at("2026-11-28T12:00:00Z");
    assert_eq!(clock.minutes_between(friday, saturday), 60);
    assert_eq!(
        clock.add_minutes(saturday, 30),
        Some(at("2026-11-30T08:30:00Z"))
    );
    // Exactly the end of a day's hours: the target is met at 17:00, not the next morning.
    assert_eq!(
        clock.add_minutes(at("2026-11-30T08:00:00Z"), 480),
        Some(at("2026-11-30T16:00:00Z"))
    );
}

#[test]
fn business_time_skips_holidays_and_lunch() {
    let split = berlin(
        "mon 09:00-12:00, 13:00-17:00\ntue 09:00-12:00 13:00-17:00\nwed 09:00-12:00 13:00-17:00\nthu 09:00-12:00 13:00-17:00\nfri 09:00-12:00 13:00-17:00",
        &["2026-12-25"],
    );
    let clock = Clock::Business(&split);
    // Thursday 24 December 16:00 + 2 hours: Christmas Friday and the weekend are skipped.
    assert_eq!(
        clock.add_minutes(at("2026-12-24T15:00:00Z"), 120),
        Some(at("2026-12-28T09:00:00Z"))
    );
    // The lunch hour does not count: 11:00 + 2 hours is 14:00.
    assert_eq!(
        clock.add_minutes(at("2026-12-28T10:00:00Z"), 120),
        Some(at("2026-12-28T13:00:00Z"))
    );
    assert_eq!(
        clock.minutes_between(at("2026-12-24T08:00:00Z"), at("2026-12-28T16:00:00Z")),
        7 * 60 + 7 * 60
    );
}

#[test]
fn spring_forward_shortens_the_night_and_moves_the_office_hour() {
    let office = berlin(OFFICE, &[]);
    let clock = Clock::Business(&office);
    // Friday 26 March 2027 16:00 CET (UTC+1) + 2 hours: Monday 10:00 CEST (UTC+2) = 08:00Z.
    assert_eq!(
        clock.add_minutes(at("2027-03-26T15:00:00Z"), 120),
        Some(at("2027-03-29T08:00:00Z"))
    );
    let always = berlin(ALWAYS, &[]);
    let clock = Clock::Business(&always);
    // Sunday 28 March 2027 has 23 hours in Berlin.
    let sunday = at("2027-03-27T23:00:00Z");
    let monday = at("2027-03-28T22:00:00Z");
    assert_eq!(clock.minutes_between(sunday, monday), 23 * 60);
    assert_eq!(clock.add_minutes(sunday, 23 * 60), Some(monday));
    // 01:00-04:00 local on that night is two real hours; 02:30 never happens.
    let night = berlin("sun 01:00-04:00", &[]);
    let clock = Clock::Business(&night);
    assert_eq!(clock.minutes_between(sunday, monday), 120);
    let gap = berlin("sun 02:30-05:00", &[]);
    let clock = Clock::Business(&gap);
    assert_eq!(
        clock.minutes_between(sunday, monday),
        120,
        "03:00-05:00 CEST"
    );
}

#[test]
fn fall_back_lengthens_the_night() {
    let always = berlin(ALWAYS, &[]);
    let clock = Clock::Business(&always);
    // Sunday 25 October 2026 has 25 hours in Berlin.
    let sunday = at("2026-10-24T22:00:00Z");
    let monday = at("2026-10-25T23:00:00Z");
    assert_eq!(clock.minutes_between(sunday, monday), 25 * 60);
    assert_eq!(clock.add_minutes(sunday, 25 * 60), Some(monday));
    // 01:00-04:00 local on that night is four real hours, 01:00-02:30 two and a half.
    let night = berlin("sun 01:00-04:00", &[]);
    assert_eq!(Clock::Business(&night).minutes_between(sunday, monday), 240);
    let repeated = berlin("sun 01:00-02:30", &[]);
    assert_eq!(
        Clock::Business(&repeated).minutes_between(sunday, monday),
        150
    );
    // Office hours the Friday before (CEST) and the Monday after (CET).
    let office = berlin(OFFICE, &[]);
    assert_eq!(
        Clock::Business(&office).add_minutes(at("2026-10-23T14:00:00Z"), 120),
        Some(at("2026-10-26T09:00:00Z"))
    );
}

#[test]
fn pauses_stop_the_clock_only_in_running_time() {
    let start = at("2026-11-30T08:00:00Z");
    let wall = Clock::WallClock;
    assert_eq!(
        wall.add_minutes(start, 90),
        Some(start + Duration::minutes(90))
    );
    let pause = (start + Duration::minutes(10), start + Duration::minutes(40));
    assert_eq!(
        wall.add(start, 90 * 60, &[pause]),
        Some(start + Duration::minutes(120))
    );
    assert_eq!(
        wall.between(start, start + Duration::minutes(120), &[pause]),
        90 * 60
    );

    let office = berlin(OFFICE, &[]);
    let clock = Clock::Business(&office);
    // Paused Friday 16:30 until Monday 09:30: only half an hour of business time is lost.
    let friday = at("2026-11-27T15:00:00Z");
    let pause = (at("2026-11-27T15:30:00Z"), at("2026-11-30T08:30:00Z"));
    assert_eq!(
        clock.add(friday, 120 * 60, &[pause]),
        Some(at("2026-11-30T10:00:00Z"))
    );
    // Overlapping and unsorted pauses count once.
    let inner = (at("2026-11-30T08:00:00Z"), at("2026-11-30T09:00:00Z"));
    assert_eq!(
        clock.add(friday, 120 * 60, &[inner, pause]),
        Some(at("2026-11-30T10:30:00Z"))
    );
}

#[test]
fn weekly_hours_are_read_and_checked() {
    let hours = WeeklyHours::parse_text("Monday: 09:00-12:00, 13:00-17:00\nsat 10:00-24:00")
        .expect("hours");
    assert_eq!(
        hours.to_text(),
        "mon 09:00-12:00 13:00-17:00\nsat 10:00-24:00"
    );
    assert_eq!(WeeklyHours::from_map(&hours.to_map()), Ok(hours));
    assert!(matches!(
        WeeklyHours::parse_text("mon 09:00-12:00 11:00-13:00"),
        Err(CalendarError::Overlap { .. })
    ));
    assert!(matches!(
        WeeklyHours::parse_text("mon 17:00-09:00"),
        Err(CalendarError::Span(_))
    ));
    assert!(matches!(
        WeeklyHours::parse_text("funday 09:00-17:00"),
        Err(CalendarError::Day(_))
    ));
    assert_eq!(WeeklyHours::parse_text(""), Err(CalendarError::Empty));
    assert!(WeeklyHours::parse_text("mon 09:00-24:30").is_err());
}

#[test]
fn a_calendar_without_reachable_hours_gives_no_due_time() {
    let mut office = berlin("mon 09:00-10:00", &[]);
    let start = at("2026-11-30T00:00:00Z");
    let mut day: NaiveDate = "2026-11-30".parse().expect("date");
    for _ in 0..600 {
        office.holidays.insert(day);
        day += Duration::days(7);
    }
    // Every Monday a holiday for longer than the search reaches: no due time, not a hang.
    assert_eq!(Clock::Business(&office).add_minutes(start, 60), None);
    assert_eq!(
        Clock::Business(&office).minutes_between(start, start + Duration::days(30)),
        0
    );
}
