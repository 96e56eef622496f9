//! A seeded history (tickets, status changes, first responses, SLA targets, surveys at chosen
//! times) written straight into the tables, and the report's figures computed from those rows
//! by replaying each ticket's history, independently of the SQL the report runs.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use helpdesk::store::Store;

pub const ACTIVE: [&str; 3] = ["new", "open", "pending"];
pub const DONE: [&str; 2] = ["resolved", "closed"];

pub struct Ticket {
    pub id: i64,
    pub department: Option<i64>,
    pub assignee: Option<i64>,
    pub channel: &'static str,
    pub created: DateTime<Utc>,
    /// (at, old, new), in time order.
    pub events: Vec<(DateTime<Utc>, &'static str, &'static str)>,
    pub first_response: Option<DateTime<Utc>>,
}

impl Ticket {
    pub fn status(&self) -> &'static str {
        self.events.last().map_or("new", |e| e.2)
    }

    /// The status at `at` by the history: the last change before it.
    pub fn status_at(&self, at: DateTime<Utc>) -> &'static str {
        self.events
            .iter()
            .rev()
            .find(|e| e.0 < at)
            .map_or("new", |e| e.2)
    }
}

pub struct Target {
    pub ticket: usize,
    pub met: Option<DateTime<Utc>>,
    pub breached: Option<DateTime<Utc>>,
}

pub struct Survey {
    pub ticket: usize,
    pub channel: &'static str,
    pub agent: Option<i64>,
    pub department: Option<i64>,
    pub sent: DateTime<Utc>,
    pub rating: Option<i64>,
    pub rated: Option<DateTime<Utc>>,
}

pub struct Seed {
    pub tickets: Vec<Ticket>,
    pub targets: Vec<Target>,
    pub surveys: Vec<Survey>,
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }

    fn minutes(&mut self, most: u64) -> Duration {
        Duration::seconds(60 * (1 + self.next(most)) as i64 + self.next(60) as i64)
    }
}

pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

/// About 90 tickets created from late February to early April 2025, so that a March report
/// has work carried in, done in it, and changed after it.
pub fn generate(billing: i64, technical: i64, admin: i64, agent: i64) -> Seed {
    let mut rng = Lcg(15);
    let start = Utc
        .with_ymd_and_hms(2025, 2, 20, 0, 0, 0)
        .single()
        .expect("start");
    let mut tickets = Vec::new();
    let mut targets = Vec::new();
    let mut surveys = Vec::new();
    for i in 0..90usize {
        let created = start + rng.minutes(45 * 24 * 60);
        let department = [None, Some(billing), Some(technical)][rng.next(3) as usize];
        let assignee = [None, Some(admin), Some(agent), Some(agent)][rng.next(4) as usize];
        let channel = ["email", "telegram", "discord"][rng.next(3) as usize];
        let mut events = Vec::new();
        let mut status = "new";
        let mut time = created;
        for _ in 0..rng.next(6) {
            time += rng.minutes(4 * 24 * 60);
            let next = match status {
                "new" => "open",
                "open" => ["pending", "resolved", "closed"][rng.next(3) as usize],
                "pending" => ["open", "resolved"][rng.next(2) as usize],
                "resolved" => ["open", "closed"][rng.next(2) as usize],
                _ => "open",
            };
            events.push((time, status, next));
            status = next;
        }
        let first_response = (rng.next(4) != 0).then(|| created + rng.minutes(30 * 60));
        let ticket = Ticket {
            id: 1_000_000 + i as i64,
            department,
            assignee,
            channel,
            created,
            events,
            first_response,
        };
        for _ in 0..rng.next(3) {
            let end = created + rng.minutes(20 * 24 * 60);
            let (met, breached) = match rng.next(4) {
                0 => (Some(end), None),
                1 => (None, Some(end)),
                2 => (Some(end + Duration::days(2)), Some(end)),
                _ => (None, None),
            };
            targets.push(Target {
                ticket: i,
                met,
                breached,
            });
        }
        if let Some(resolved) = ticket.events.iter().find(|e| e.2 == "resolved") {
            let rating = match rng.next(6) {
                0 => None,
                r => Some(r as i64),
            };
            // Every fifth survey credits someone other than today's assignee: the one who
            // resolved it before it moved.
            let agent_credited = if i % 5 == 0 {
                Some(if ticket.assignee == Some(agent) {
                    admin
                } else {
                    agent
                })
            } else {
                ticket.assignee
            };
            surveys.push(Survey {
                ticket: i,
                channel: ticket.channel,
                agent: agent_credited,
                department: ticket.department,
                sent: resolved.0,
                rated: rating.map(|_| resolved.0 + rng.minutes(3 * 24 * 60)),
                rating,
            });
        }
        tickets.push(ticket);
    }
    Seed {
        tickets,
        targets,
        surveys,
    }
}

macro_rules! run {
    ($store:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        match $store {
            Store::Sqlite { writer, .. } => {
                sqlx::query($sql)$(.bind($bind))*.execute(writer).await.expect("seed");
            }
            Store::Postgres { pool } => {
                sqlx::query($sql)$(.bind($bind))*.execute(pool).await.expect("seed");
            }
        }
    };
}

/// Writes the seed into the tables, as the application would have left them.
pub async fn write(store: &Store, seed: &Seed) {
    let customer = 1_000_000i64;
    run!(
        store,
        "INSERT INTO customers (id, name, created_at) VALUES ($1, 'Report Customer', $2)",
        customer,
        at("2025-01-01T00:00:00Z")
    );
    for t in &seed.tickets {
        run!(
            store,
            "INSERT INTO tickets (id, number, subject, status, priority, department_id,
                                  assignee_id, customer_id, channel, created_at, updated_at,
                                  first_response_at, resolved_at)
             VALUES ($1, $2, 'Seeded', $3, 'normal', $4, $5, $6, $7, $8, $8, $9, $10)",
            t.id,
            t.id - 900_000,
            t.status(),
            t.department,
            t.assignee,
            customer,
            t.channel,
            t.created,
            t.first_response,
            (t.status() == "resolved")
                .then(|| t.events.last().map(|e| e.0))
                .flatten(),
        );
        for (when, old, new) in &t.events {
            run!(
                store,
                "INSERT INTO ticket_events (ticket_id, at, kind, old_value, new_value)
                 VALUES ($1, $2, 'status', $3, $4)",
                t.id,
                *when,
                *old,
                *new,
            );
            // Other kinds of history are not status changes and must not count.
            run!(
                store,
                "INSERT INTO ticket_events (ticket_id, at, kind, old_value, new_value)
                 VALUES ($1, $2, 'priority', 'resolved', 'open')",
                t.id,
                *when,
            );
        }
    }
    for (n, target) in seed.targets.iter().enumerate() {
        let t = &seed.tickets[target.ticket];
        // A ticket's targets start apart (one row per target instance and start).
        run!(
            store,
            "INSERT INTO sla_targets (ticket_id, target, started_at, due_at, met_at, breached_at)
             VALUES ($1, 'resolution', $2, $3, $4, $5)",
            t.id,
            t.created + Duration::seconds(n as i64),
            t.created + Duration::days(1),
            target.met,
            target.breached,
        );
    }
    for s in &seed.surveys {
        let t = &seed.tickets[s.ticket];
        run!(
            store,
            "INSERT INTO satisfaction_surveys (ticket_id, channel, agent_id, department_id,
                                               sent_at, expires_at, rating, rated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            t.id,
            s.channel,
            s.agent,
            s.department,
            s.sent,
            s.sent + Duration::days(14),
            s.rating,
            s.rated,
        );
    }
}

/// A department's office hours as the test counts them, apart from the application's calendar
/// code: Monday to Friday 09:00-17:00 in Berlin, without `holidays` (Berlin dates).
pub struct OfficeHours {
    pub department: i64,
    pub holidays: Vec<NaiveDate>,
}

impl OfficeHours {
    /// Seconds of office hours in `[from, to)`: each Berlin working day's 09:00-17:00 cut to
    /// the interval.
    pub fn seconds(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        let berlin = chrono_tz::Europe::Berlin;
        let mut day = from.with_timezone(&berlin).date_naive();
        let last = to.with_timezone(&berlin).date_naive();
        let mut total = 0;
        while day <= last {
            if day.weekday().num_days_from_monday() < 5 && !self.holidays.contains(&day) {
                let local = |hour| {
                    berlin
                        .from_local_datetime(&day.and_hms_opt(hour, 0, 0).expect("hour"))
                        .single()
                        .expect("one instant")
                        .with_timezone(&Utc)
                };
                let (open, close) = (local(9).max(from), local(17).min(to));
                total += (close - open).num_seconds().max(0);
            }
            day = day.succ_opt().expect("next day");
        }
        total
    }
}

/// How long `from` to `to` took on `t`: office hours for its department if it has them, else
/// wall-clock; and whether it was office hours.
fn took(
    t: &Ticket,
    hours: Option<&OfficeHours>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (i64, bool) {
    match hours {
        Some(hours) if t.department == Some(hours.department) => (hours.seconds(from, to), true),
        _ => ((to - from).num_seconds(), false),
    }
}

/// The figures of one group, gathered from the rows.
#[derive(Debug, Default, Clone)]
pub struct Expected {
    pub new: i64,
    pub reopened: i64,
    pub resolved: i64,
    pub backlog: i64,
    pub first_response: Vec<i64>,
    pub resolution: Vec<i64>,
    pub sla_ended: i64,
    pub sla_met: i64,
    pub ratings: i64,
    pub positive: i64,
    pub rating_sum: i64,
    pub sent: i64,
    pub answered: i64,
    /// Times measured in office hours, and around the clock.
    pub business: usize,
    pub wall_clock: usize,
}

impl Expected {
    /// `business`, `wall_clock` or `mixed`; `None` without times.
    pub fn time_basis(&self) -> Option<&'static str> {
        match (self.business, self.wall_clock) {
            (0, 0) => None,
            (_, 0) => Some("business"),
            (0, _) => Some("wall_clock"),
            _ => Some("mixed"),
        }
    }

    fn count(&mut self, business: bool) {
        if business {
            self.business += 1;
        } else {
            self.wall_clock += 1;
        }
    }
}

pub fn nearest_rank(values: &[i64], fraction: f64) -> Option<i64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() as f64 * fraction).ceil().max(1.0) as usize;
    Some(sorted[rank - 1])
}

pub fn span_start(group_by: &str, day: NaiveDate) -> NaiveDate {
    match group_by {
        "week" => day - Duration::days(day.weekday().num_days_from_monday() as i64),
        "month" => NaiveDate::from_ymd_opt(day.year(), day.month(), 1).expect("first"),
        _ => day,
    }
}

fn span_end(group_by: &str, start: NaiveDate) -> NaiveDate {
    match group_by {
        "week" => start + Duration::days(7),
        "month" if start.month() == 12 => {
            NaiveDate::from_ymd_opt(start.year() + 1, 1, 1).expect("january")
        }
        "month" => NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1).expect("next"),
        _ => start + Duration::days(1),
    }
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
}

/// The expected groups of a report on `[from, to)` grouped by `group_by`, counting only the
/// tickets assigned to `agent` and the surveys credited to them when given, with times in
/// `hours` for its department.
pub fn expected(
    seed: &Seed,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    group_by: &str,
    agent: Option<i64>,
    hours: Option<&OfficeHours>,
) -> BTreeMap<String, Expected> {
    let in_period = |time: DateTime<Utc>| time >= from && time < to;
    let id_key = |id: Option<i64>| id.map(|id| id.to_string()).unwrap_or_default();
    let ticket_key = |t: &Ticket, time: DateTime<Utc>| match group_by {
        "department" => id_key(t.department),
        "agent" => id_key(t.assignee),
        "channel" => t.channel.to_owned(),
        _ => span_start(group_by, time.date_naive()).to_string(),
    };
    let survey_key = |s: &Survey, time: DateTime<Utc>| match group_by {
        "department" => id_key(s.department),
        "agent" => id_key(s.agent),
        "channel" => s.channel.to_owned(),
        _ => span_start(group_by, time.date_naive()).to_string(),
    };
    let mine = |t: &Ticket| agent.is_none() || t.assignee == agent;
    let mut groups: BTreeMap<String, Expected> = BTreeMap::new();
    let time_grouped = matches!(group_by, "day" | "week" | "month");
    if time_grouped {
        let mut start = span_start(group_by, from.date_naive());
        while midnight(start) < to {
            groups.insert(start.to_string(), Expected::default());
            start = span_end(group_by, start);
        }
    }
    for t in seed.tickets.iter().filter(|t| mine(t)) {
        if in_period(t.created) {
            groups.entry(ticket_key(t, t.created)).or_default().new += 1;
        }
        for (when, old, new) in &t.events {
            if !in_period(*when) {
                continue;
            }
            let group = groups.entry(ticket_key(t, *when)).or_default();
            if ACTIVE.contains(old) && DONE.contains(new) {
                group.resolved += 1;
                let (seconds, business) = took(t, hours, t.created, *when);
                group.resolution.push(seconds);
                group.count(business);
            } else if DONE.contains(old) && ACTIVE.contains(new) {
                group.reopened += 1;
            }
        }
        if let Some(answered) = t.first_response.filter(|a| in_period(*a)) {
            let group = groups.entry(ticket_key(t, answered)).or_default();
            let (seconds, business) = took(t, hours, t.created, answered);
            group.first_response.push(seconds);
            group.count(business);
        }
        if !time_grouped && t.created < to && ACTIVE.contains(&t.status_at(to)) {
            groups.entry(ticket_key(t, to)).or_default().backlog += 1;
        }
    }
    if time_grouped {
        for (start, group) in groups.iter_mut() {
            let start = NaiveDate::parse_from_str(start, "%Y-%m-%d").expect("day");
            let end = midnight(span_end(group_by, start)).min(to);
            group.backlog = seed
                .tickets
                .iter()
                .filter(|t| mine(t) && t.created < end && ACTIVE.contains(&t.status_at(end)))
                .count() as i64;
        }
    }
    for target in &seed.targets {
        let t = &seed.tickets[target.ticket];
        let Some(end) = target.breached.or(target.met) else {
            continue;
        };
        if mine(t) && in_period(end) {
            let group = groups.entry(ticket_key(t, end)).or_default();
            group.sla_ended += 1;
            group.sla_met += i64::from(target.breached.is_none());
        }
    }
    for s in &seed.surveys {
        if agent.is_some() && s.agent != agent {
            continue;
        }
        if let (Some(rating), Some(rated)) = (s.rating, s.rated)
            && in_period(rated)
        {
            let group = groups.entry(survey_key(s, rated)).or_default();
            group.ratings += 1;
            group.positive += i64::from(rating >= 4);
            group.rating_sum += rating;
        }
        if in_period(s.sent) {
            let group = groups.entry(survey_key(s, s.sent)).or_default();
            group.sent += 1;
            group.answered += i64::from(s.rating.is_some());
        }
    }
    groups
}
