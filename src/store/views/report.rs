//! The reports' figures for a period, grouped by day, week or month or by department, agent or
//! channel, read from the history so that past periods come out as they were:
//!
//! - new: tickets created in the period; reopened and resolved: status changes in it (back to
//!   active from resolved or closed; from active to resolved or closed);
//! - backlog at the end: today's active tickets created before the end, corrected by the status
//!   changes since the end (a ticket resolved after it was still open then);
//! - first response and resolution times: for answers and resolutions in the period, measured
//!   by [`report::elapsed`] in the business hours of the ticket's department where it has a
//!   calendar (today's calendar, also for the past), else around the clock;
//! - SLA targets that ended in the period (breached then, or met then without a breach);
//! - ratings given in the period, and surveys sent in it with whether they were answered.
//!
//! Department, agent and channel are the ticket's (surveys: the survey's own, kept from when it
//! was sent). Counting is done in SQL; durations are read as rows because a business calendar
//! measures them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::domain::calendar::Calendar;
use crate::domain::report::{self, GroupBy, TimeBasis};
use crate::store::calendars;
use crate::store::{Backend, Result, Store, on_pool};

const ACTIVE: &str = "('new', 'open', 'pending')";
const DONE: &str = "('resolved', 'closed')";

/// Whose figures a report counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportScope {
    /// Admins: the whole team.
    Everyone,
    /// An agent: the tickets assigned to them and the surveys credited to them.
    Agent(i64),
}

#[derive(Debug, Clone, Copy)]
pub struct ReportQuery {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: GroupBy,
    pub scope: ReportScope,
}

/// One row's figures. Shares are fractions (0.0–1.0); times are seconds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Figures {
    pub new: i64,
    pub reopened: i64,
    pub resolved: i64,
    pub backlog: i64,
    pub first_responses: i64,
    pub first_response_median_seconds: Option<i64>,
    pub first_response_p90_seconds: Option<i64>,
    pub resolution_median_seconds: Option<i64>,
    pub sla_ended: i64,
    pub sla_met: i64,
    pub sla_met_share: Option<f64>,
    pub ratings: i64,
    pub ratings_positive: i64,
    /// Ratings of 4 or 5 among the ratings given (CSAT).
    pub satisfaction_score: Option<f64>,
    pub rating_average: Option<f64>,
    pub surveys_sent: i64,
    pub surveys_answered: i64,
    pub response_rate: Option<f64>,
    /// How this row's times were measured; `None` when it has none.
    pub time_basis: Option<TimeBasis>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Group {
    /// The span's first day (YYYY-MM-DD), a department or agent id, or a channel; empty for
    /// tickets without a department or agent.
    pub key: String,
    pub label: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: GroupBy,
    /// How the period's times were measured, over all rows; `None` when it has none.
    pub time_basis: Option<TimeBasis>,
    /// The departments whose times count in business hours.
    pub business_hours: Vec<BusinessHours>,
    pub groups: Vec<Group>,
    pub total: Figures,
}

/// A department that has a business calendar, by which its times are measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BusinessHours {
    pub department_id: i64,
    pub department: String,
    pub time_zone: String,
}

/// Figures as they are gathered, before the shares and percentiles.
#[derive(Default)]
struct Tally {
    figures: Figures,
    first_response: Vec<i64>,
    resolution: Vec<i64>,
    rating_sum: i64,
    /// How many times were measured in business hours, and how many around the clock.
    business: usize,
    wall_clock: usize,
}

impl Tally {
    fn absorb(&mut self, other: &Tally) {
        let (f, o) = (&mut self.figures, &other.figures);
        f.new += o.new;
        f.reopened += o.reopened;
        f.resolved += o.resolved;
        f.backlog += o.backlog;
        f.sla_ended += o.sla_ended;
        f.sla_met += o.sla_met;
        f.ratings += o.ratings;
        f.ratings_positive += o.ratings_positive;
        f.surveys_sent += o.surveys_sent;
        f.surveys_answered += o.surveys_answered;
        self.rating_sum += other.rating_sum;
        self.business += other.business;
        self.wall_clock += other.wall_clock;
        self.first_response.extend_from_slice(&other.first_response);
        self.resolution.extend_from_slice(&other.resolution);
    }

    fn finish(mut self) -> Figures {
        let share = |part: i64, whole: i64| (whole > 0).then(|| part as f64 / whole as f64);
        self.first_response.sort_unstable();
        self.resolution.sort_unstable();
        let mut f = self.figures;
        f.first_responses = self.first_response.len() as i64;
        f.first_response_median_seconds = report::percentile(&self.first_response, 0.5);
        f.first_response_p90_seconds = report::percentile(&self.first_response, 0.9);
        f.resolution_median_seconds = report::percentile(&self.resolution, 0.5);
        f.sla_met_share = share(f.sla_met, f.sla_ended);
        f.satisfaction_score = share(f.ratings_positive, f.ratings);
        f.rating_average = share(self.rating_sum, f.ratings);
        f.response_rate = share(f.surveys_answered, f.surveys_sent);
        f.time_basis = TimeBasis::of(self.business, self.wall_clock);
        f
    }

    /// Counts a time from `from` to `to` (Unix seconds) on a ticket of `department`.
    fn measure(&mut self, clocks: &Clocks, department: Option<i64>, from: i64, to: i64) -> i64 {
        let calendar = department.and_then(|id| clocks.get(&id));
        if calendar.is_some() {
            self.business += 1;
        } else {
            self.wall_clock += 1;
        }
        let time = |epoch| DateTime::<Utc>::from_timestamp(epoch, 0).unwrap_or_default();
        report::elapsed(calendar, time(from), time(to)).num_seconds()
    }
}

/// The departments' business calendars by department id.
type Clocks = HashMap<i64, Calendar>;

/// A status change that resolved or reopened: group, department, created and changed (Unix
/// seconds), 1 when it resolved.
type ChangeRow = (Option<String>, Option<i64>, i64, i64, i64);
/// A first response: group, department, created and answered (Unix seconds).
type AnswerRow = (Option<String>, Option<i64>, i64, i64);
/// A group and its count.
type Count = (Option<String>, i64);
/// A group and two counts (SLA targets ended and met; surveys sent and answered).
type Counts = (Option<String>, i64, i64);
/// A group's ratings: how many, how many of 4 or 5, and their sum.
type RatingRow = (Option<String>, i64, i64, i64);

/// The SQL that differs between the stores, and the grouping expressions.
struct Sql {
    backend: Backend,
    group_by: GroupBy,
}

impl Sql {
    /// The UTC day of a time column, as YYYY-MM-DD once cast to text.
    fn day(&self, column: &str) -> String {
        match self.backend {
            // Times are stored as RFC 3339 text in UTC.
            Backend::Sqlite => format!("substr({column}, 1, 10)"),
            // Grouped as a date and turned into text per group, not per row (sqlx sessions
            // have DateStyle ISO).
            Backend::Postgres => format!("CAST({column} AT TIME ZONE 'UTC' AS DATE)"),
        }
    }

    fn epoch(&self, column: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("unixepoch({column})"),
            Backend::Postgres => format!("CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"),
        }
    }

    /// A ticket's group, the time of the figure being `at`.
    fn ticket_key(&self, at: &str) -> String {
        match self.group_by {
            GroupBy::Department => "CAST(t.department_id AS TEXT)".into(),
            GroupBy::Agent => "CAST(t.assignee_id AS TEXT)".into(),
            GroupBy::Channel => "t.channel".into(),
            _ => self.day(at),
        }
    }

    /// A ticket's group where SQL does not work out the span: the backlog at the end (one
    /// moment), and rows of times (their span comes from their time).
    fn ticket_dimension(&self) -> String {
        if self.group_by.is_time() {
            "CAST(NULL AS TEXT)".into()
        } else {
            self.ticket_key("")
        }
    }

    fn survey_key(&self, at: &str) -> String {
        match self.group_by {
            GroupBy::Department => "CAST(s.department_id AS TEXT)".into(),
            GroupBy::Agent => "CAST(s.agent_id AS TEXT)".into(),
            GroupBy::Channel => "s.channel".into(),
            _ => self.day(at),
        }
    }
}

/// Runs `sql` with the times bound as $1, $2, … and the scope's agent after them.
async fn fetch<T>(
    store: &Store,
    sql: String,
    times: &[DateTime<Utc>],
    agent: Option<i64>,
) -> Result<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    let rows = on_pool!(store, pool => {
        let mut query = sqlx::query_as::<_, T>(AssertSqlSafe(sql.clone()));
        for time in times {
            query = query.bind(*time);
        }
        if let Some(agent) = agent {
            query = query.bind(agent);
        }
        query.fetch_all(pool).await
    })?;
    Ok(rows)
}

/// The report for `query`.
pub async fn summary(store: &Store, query: &ReportQuery) -> Result<Summary> {
    let sql = Sql {
        backend: store.backend(),
        group_by: query.group_by,
    };
    let agent = match query.scope {
        ReportScope::Everyone => None,
        ReportScope::Agent(id) => Some(id),
    };
    let period = [query.from, query.to];
    let mine = |times: usize, column: &str| mine(agent, times, column);
    let times = sql.group_by.is_time();

    let new_sql = format!(
        "SELECT CAST(k AS TEXT), n FROM (
             SELECT {key} AS k, COUNT(*) AS n FROM tickets t
             WHERE t.created_at >= $1 AND t.created_at < $2{mine} GROUP BY 1
         ) grouped",
        key = sql.ticket_key("t.created_at"),
        mine = mine(2, "t.assignee_id"),
    );
    // Rows of times: their span is worked out from `at` here, not per row in SQL.
    let changes_sql = format!(
        "SELECT {key}, t.department_id, {created}, {at},
                CAST(CASE WHEN e.old_value IN {ACTIVE} THEN 1 ELSE 0 END AS BIGINT)
         FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id
         WHERE e.kind = 'status' AND e.at >= $1 AND e.at < $2
           AND ((e.old_value IN {ACTIVE} AND e.new_value IN {DONE})
                OR (e.old_value IN {DONE} AND e.new_value IN {ACTIVE})){mine}",
        key = sql.ticket_dimension(),
        created = sql.epoch("t.created_at"),
        at = sql.epoch("e.at"),
        mine = mine(2, "t.assignee_id"),
    );
    let answered_sql = format!(
        "SELECT {key}, t.department_id, {created}, {answered} FROM tickets t
         WHERE t.first_response_at >= $1 AND t.first_response_at < $2{mine}",
        key = sql.ticket_dimension(),
        created = sql.epoch("t.created_at"),
        answered = sql.epoch("t.first_response_at"),
        mine = mine(2, "t.assignee_id"),
    );
    // By time for the whole team, a target's own times suffice: no look-up of its ticket.
    let ticket = if times && agent.is_none() {
        ""
    } else {
        "JOIN tickets t ON t.id = s.ticket_id"
    };
    let sla_sql = format!(
        "SELECT CAST(k AS TEXT), COUNT(*), SUM(met) FROM (
             SELECT {breached} AS k, 0 AS met FROM sla_targets s {ticket}
             WHERE s.breached_at >= $1 AND s.breached_at < $2{mine}
             UNION ALL
             SELECT {met} AS k, 1 AS met FROM sla_targets s {ticket}
             WHERE s.met_at >= $1 AND s.met_at < $2 AND s.breached_at IS NULL{mine}
         ) ended GROUP BY k",
        breached = sql.ticket_key("s.breached_at"),
        met = sql.ticket_key("s.met_at"),
        mine = mine(2, "t.assignee_id"),
    );
    let ratings_sql = format!(
        "SELECT CAST(k AS TEXT), n, positive, total FROM (
             SELECT {key} AS k, COUNT(*) AS n,
                    SUM(CASE WHEN s.rating >= 4 THEN 1 ELSE 0 END) AS positive,
                    SUM(s.rating) AS total
             FROM satisfaction_surveys s
             WHERE s.rated_at >= $1 AND s.rated_at < $2 AND s.rating IS NOT NULL{mine}
             GROUP BY 1
         ) grouped",
        key = sql.survey_key("s.rated_at"),
        mine = mine(2, "s.agent_id"),
    );
    let sent_sql = format!(
        "SELECT CAST(k AS TEXT), n, answered FROM (
             SELECT {key} AS k, COUNT(*) AS n, COUNT(s.rating) AS answered
             FROM satisfaction_surveys s
             WHERE s.sent_at >= $1 AND s.sent_at < $2{mine} GROUP BY 1
         ) grouped",
        key = sql.survey_key("s.sent_at"),
        mine = mine(2, "s.agent_id"),
    );
    // Two statements at a time (a heavy one beside a light one): a report takes at most two
    // of the pool's connections, however long a year's statements run.
    let stored = calendars::all_calendars(store).await?;
    let (changes, created): (Vec<ChangeRow>, Vec<Count>) = tokio::try_join!(
        fetch(store, changes_sql, &period, agent),
        fetch(store, new_sql, &period, agent),
    )?;
    let (answered, sla): (Vec<AnswerRow>, Vec<Counts>) = tokio::try_join!(
        fetch(store, answered_sql, &period, agent),
        fetch(store, sla_sql, &period, agent),
    )?;
    let (ratings, sent): (Vec<RatingRow>, Vec<Counts>) = tokio::try_join!(
        fetch(store, ratings_sql, &period, agent),
        fetch(store, sent_sql, &period, agent),
    )?;
    let backlog = backlog_at(store, &sql, query.to, agent).await?;

    let mut clocks = Clocks::new();
    for (department, calendar) in &stored {
        clocks.insert(*department, calendar.calendar()?);
    }
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let key_of = |key: Option<String>| -> String {
        let key = key.unwrap_or_default();
        if times {
            NaiveDate::parse_from_str(&key, "%Y-%m-%d")
                .map(|day| sql.group_by.bucket(day).to_string())
                .unwrap_or(key)
        } else {
            key
        }
    };
    for (key, count) in created {
        tallies.entry(key_of(key)).or_default().figures.new += count;
    }
    // A row of times: its dimension, or the span its time `at` falls in.
    let row_key = |key: Option<String>, at: i64| -> String {
        match DateTime::<Utc>::from_timestamp(at, 0).filter(|_| times) {
            Some(at) => sql.group_by.bucket(at.date_naive()).to_string(),
            None => key.unwrap_or_default(),
        }
    };
    for (key, department, created, at, resolving) in changes {
        let tally = tallies.entry(row_key(key, at)).or_default();
        if resolving == 1 {
            tally.figures.resolved += 1;
            let seconds = tally.measure(&clocks, department, created, at);
            tally.resolution.push(seconds);
        } else {
            tally.figures.reopened += 1;
        }
    }
    for (key, department, created, at) in answered {
        let tally = tallies.entry(row_key(key, at)).or_default();
        let seconds = tally.measure(&clocks, department, created, at);
        tally.first_response.push(seconds);
    }
    for (key, ended, met) in sla {
        let figures = &mut tallies.entry(key_of(key)).or_default().figures;
        figures.sla_ended += ended;
        figures.sla_met += met;
    }
    for (key, count, positive, sum) in ratings {
        let tally = tallies.entry(key_of(key)).or_default();
        tally.figures.ratings += count;
        tally.figures.ratings_positive += positive;
        tally.rating_sum += sum;
    }
    for (key, count, answered) in sent {
        let figures = &mut tallies.entry(key_of(key)).or_default().figures;
        figures.surveys_sent += count;
        figures.surveys_answered += answered;
    }

    let mut total = Tally::default();
    let groups = if sql.group_by.is_time() {
        // Each span's backlog from the one after it: the flows of a span undone.
        let mut at_end: i64 = backlog.values().sum();
        let starts = report::buckets(sql.group_by, query.from, query.to);
        let mut groups = Vec::with_capacity(starts.len());
        for start in starts.iter().rev() {
            let mut tally = tallies.remove(&start.to_string()).unwrap_or_default();
            tally.figures.backlog = at_end;
            at_end -= tally.figures.new - tally.figures.resolved + tally.figures.reopened;
            total.absorb(&tally);
            groups.push((start.to_string(), time_label(sql.group_by, *start), tally));
        }
        groups.reverse();
        total.figures.backlog = backlog.values().sum();
        groups
    } else {
        for (key, count) in &backlog {
            tallies.entry(key.clone()).or_default().figures.backlog += count;
        }
        let names = names(store, sql.group_by).await?;
        let mut groups: Vec<(String, String, Tally)> = tallies
            .into_iter()
            .map(|(key, tally)| {
                total.absorb(&tally);
                let label = label(sql.group_by, &key, &names);
                (key, label, tally)
            })
            .collect();
        // Named groups by name, then the ones without a department or agent.
        groups.sort_by(|a, b| (a.0.is_empty(), &a.1).cmp(&(b.0.is_empty(), &b.1)));
        groups
    };
    let departments = names(store, GroupBy::Department).await?;
    let business_hours = stored
        .into_iter()
        .map(|(department_id, calendar)| BusinessHours {
            department_id,
            department: label(
                GroupBy::Department,
                &department_id.to_string(),
                &departments,
            ),
            time_zone: calendar.time_zone,
        })
        .collect();
    let total = total.finish();
    Ok(Summary {
        from: query.from,
        to: query.to,
        group_by: query.group_by,
        time_basis: total.time_basis,
        business_hours,
        groups: groups
            .into_iter()
            .map(|(key, label, tally)| Group {
                key,
                label,
                figures: tally.finish(),
            })
            .collect(),
        total,
    })
}

/// The active tickets at `at` by group (one group when grouping by time): today's active
/// tickets created before then, plus those resolved since, less those reopened since.
async fn backlog_at(
    store: &Store,
    sql: &Sql,
    at: DateTime<Utc>,
    agent: Option<i64>,
) -> Result<HashMap<String, i64>> {
    let mine = |times: usize, column: &str| mine(agent, times, column);
    let key = sql.ticket_dimension();
    let active = format!(
        "SELECT {key}, COUNT(*) FROM tickets t
         WHERE t.status IN {ACTIVE} AND t.created_at < $1{mine} GROUP BY 1",
        mine = mine(1, "t.assignee_id"),
    );
    let since = format!(
        "SELECT {key}, SUM(CASE WHEN e.old_value IN {ACTIVE} THEN 1 ELSE -1 END)
         FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id
         WHERE e.kind = 'status' AND e.at >= $1 AND t.created_at < $1
           AND ((e.old_value IN {ACTIVE} AND e.new_value IN {DONE})
                OR (e.old_value IN {DONE} AND e.new_value IN {ACTIVE})){mine}
         GROUP BY 1",
        mine = mine(1, "t.assignee_id"),
    );
    let moment = [at];
    let (active, since): (Vec<Count>, Vec<Count>) = tokio::try_join!(
        fetch(store, active, &moment, agent),
        fetch(store, since, &moment, agent),
    )?;
    let mut backlog = HashMap::new();
    for (key, count) in active.into_iter().chain(since) {
        *backlog.entry(key.unwrap_or_default()).or_insert(0) += count;
    }
    Ok(backlog)
}

/// The agent's condition on `column`, its placeholder after the `times` a query binds first.
fn mine(agent: Option<i64>, times: usize, column: &str) -> String {
    match agent {
        Some(_) => format!(" AND {column} = ${}", times + 1),
        None => String::new(),
    }
}

fn time_label(group_by: GroupBy, start: NaiveDate) -> String {
    match group_by {
        GroupBy::Week => format!("Week of {}", start.format("%Y-%m-%d")),
        GroupBy::Month => start.format("%Y-%m").to_string(),
        _ => start.format("%Y-%m-%d").to_string(),
    }
}

/// Department or agent names by id.
async fn names(store: &Store, group_by: GroupBy) -> Result<HashMap<String, String>> {
    let sql = match group_by {
        GroupBy::Department => "SELECT id, name FROM departments",
        GroupBy::Agent => "SELECT id, name FROM agents",
        _ => return Ok(HashMap::new()),
    };
    let rows: Vec<(i64, String)> =
        on_pool!(store, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| (id.to_string(), name))
        .collect())
}

fn label(group_by: GroupBy, key: &str, names: &HashMap<String, String>) -> String {
    match (group_by, key) {
        (GroupBy::Department, "") => "(no department)".into(),
        (GroupBy::Agent, "") => "(unassigned)".into(),
        (GroupBy::Channel, channel) => {
            let mut chars = channel.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => "(none)".into(),
            }
        }
        (_, id) => names
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("#{id} (deleted)")),
    }
}
