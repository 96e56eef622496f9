//! `/reports`: the team's figures for a period, grouped by time, department, agent or channel,
//! as charts, a table and a CSV download. Admins see everyone's figures, agents their own.
//! The JSON twin is `GET /api/v1/reports/summary` (src/web/api/reports.rs).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::AppState;
use super::auth::Viewer;
use super::error::{WebError, WebResult};
use super::pages::{Nav, render};
use crate::domain::report::{self, GroupBy, Preset, TimeBasis};
use crate::store::views::report::{Figures, ReportQuery, ReportScope, Summary, summary};

pub mod bench;
pub mod chart;

/// The report's choices, as the form and the API send them.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct ReportParams {
    /// A preset (last_7_days, …) or `custom` for `from` and `to`.
    pub period: Option<String>,
    /// A day (YYYY-MM-DD, from its start) or an RFC 3339 time.
    pub from: Option<String>,
    /// A day (YYYY-MM-DD, up to its end) or an RFC 3339 time (excluded).
    pub to: Option<String>,
    pub group_by: Option<String>,
}

/// Longest report: this many rows of days, weeks or months.
const MOST_SPANS: usize = 1000;

/// The period and grouping the parameters ask for, or what is wrong with them.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub preset: Option<Preset>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: GroupBy,
}

fn instant(text: &str, end: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = if end { day + Duration::days(1) } else { day };
        return Ok(report::midnight(day));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| format!("{text:?} is neither a day (YYYY-MM-DD) nor an RFC 3339 time"))
}

impl ReportParams {
    pub fn choose(&self, now: DateTime<Utc>) -> Result<Chosen, String> {
        let group_by = match self.group_by.as_deref().filter(|g| !g.is_empty()) {
            None => GroupBy::Day,
            Some(text) => GroupBy::parse(text).ok_or_else(|| {
                format!(
                    "group_by {text:?} is not one of day, week, month, department, agent, channel"
                )
            })?,
        };
        let from = self.from.as_deref().filter(|t| !t.is_empty());
        let to = self.to.as_deref().filter(|t| !t.is_empty());
        let period = self.period.as_deref().filter(|p| !p.is_empty());
        let today = now.date_naive();
        let (preset, from, to) = match period {
            Some("custom") | None if from.is_some() || to.is_some() => {
                let to = match to {
                    Some(text) => instant(text, true)?,
                    None => report::midnight(today + Duration::days(1)),
                };
                let from = match from {
                    Some(text) => instant(text, false)?,
                    None => to - Duration::days(30),
                };
                (None, from, to)
            }
            Some("custom") | None => {
                let (from, to) = Preset::Last30Days.days(today);
                (
                    Some(Preset::Last30Days),
                    report::midnight(from),
                    report::midnight(to),
                )
            }
            Some(text) => {
                let preset = Preset::parse(text).ok_or_else(|| {
                    format!("period {text:?} is not one of custom, last_7_days, last_30_days, this_month, last_month, this_quarter, this_year")
                })?;
                let (from, to) = preset.days(today);
                (Some(preset), report::midnight(from), report::midnight(to))
            }
        };
        if from >= to {
            return Err("the period must end after it starts".into());
        }
        if report::buckets(group_by, from, to).len() > MOST_SPANS {
            return Err(format!(
                "a report has at most {MOST_SPANS} rows: choose a shorter period or a longer span"
            ));
        }
        Ok(Chosen {
            preset,
            from,
            to,
            group_by,
        })
    }
}

/// Admins see everyone's figures; an agent only their own.
pub fn scope(is_admin: bool, agent_id: i64) -> ReportScope {
    if is_admin {
        ReportScope::Everyone
    } else {
        ReportScope::Agent(agent_id)
    }
}

/// "2 h 05 min", "3 d 4 h", "45 s".
pub fn duration(seconds: Option<i64>) -> String {
    let Some(seconds) = seconds else {
        return "–".into();
    };
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {minutes:02} min")
    } else if minutes > 0 {
        format!("{minutes} min")
    } else {
        format!("{seconds} s")
    }
}

fn percent(share: Option<f64>) -> String {
    share.map_or("–".into(), |s| format!("{:.0} %", s * 100.0))
}

/// One table row, formatted.
pub struct Row {
    pub label: String,
    pub new: i64,
    pub reopened: i64,
    pub resolved: i64,
    pub backlog: i64,
    pub first_median: String,
    pub first_p90: String,
    pub resolution_median: String,
    pub sla: String,
    pub csat: String,
    pub average: String,
    pub response_rate: String,
    pub time_basis: &'static str,
}

impl Row {
    fn of(label: &str, f: &Figures) -> Row {
        Row {
            label: label.to_owned(),
            new: f.new,
            reopened: f.reopened,
            resolved: f.resolved,
            backlog: f.backlog,
            first_median: duration(f.first_response_median_seconds),
            first_p90: duration(f.first_response_p90_seconds),
            resolution_median: duration(f.resolution_median_seconds),
            sla: if f.sla_ended > 0 {
                format!(
                    "{} ({} of {})",
                    percent(f.sla_met_share),
                    f.sla_met,
                    f.sla_ended
                )
            } else {
                "–".into()
            },
            csat: if f.ratings > 0 {
                format!("{} ({} ratings)", percent(f.satisfaction_score), f.ratings)
            } else {
                "–".into()
            },
            average: f.rating_average.map_or("–".into(), |a| format!("{a:.1}")),
            time_basis: match f.time_basis {
                Some(TimeBasis::Business) => "business hours",
                Some(TimeBasis::WallClock) => "wall-clock",
                Some(TimeBasis::Mixed) => "mixed",
                None => "–",
            },
            response_rate: if f.surveys_sent > 0 {
                format!(
                    "{} ({} of {})",
                    percent(f.response_rate),
                    f.surveys_answered,
                    f.surveys_sent
                )
            } else {
                "–".into()
            },
        }
    }
}

pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "web/reports.html")]
struct ReportsPage {
    nav: Option<Nav>,
    is_admin: bool,
    periods: Vec<Choice>,
    groupings: Vec<Choice>,
    custom: bool,
    from_day: String,
    to_day: String,
    period_text: String,
    group_name: &'static str,
    time_basis: String,
    charts: Vec<String>,
    rows: Vec<Row>,
    total: Row,
    csv: String,
}

fn query_string(chosen: &Chosen) -> String {
    let mut pairs = vec![("group_by", chosen.group_by.as_str().to_owned())];
    match chosen.preset {
        Some(preset) => pairs.push(("period", preset.as_str().to_owned())),
        None => {
            pairs.push(("from", chosen.from.to_rfc3339()));
            pairs.push(("to", chosen.to.to_rfc3339()));
        }
    }
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

async fn report(
    state: &AppState,
    viewer: &Viewer,
    params: &ReportParams,
) -> WebResult<(Chosen, Summary)> {
    let chosen = params.choose(Utc::now()).map_err(WebError::BadRequest)?;
    let summary = summary(
        &state.store,
        &ReportQuery {
            from: chosen.from,
            to: chosen.to,
            group_by: chosen.group_by,
            scope: scope(viewer.is_admin(), viewer.id()),
        },
    )
    .await?;
    Ok((chosen, summary))
}

fn charts(summary: &Summary, period_text: &str) -> Vec<String> {
    let labels: Vec<String> = summary.groups.iter().map(|g| g.label.clone()).collect();
    let values = |pick: fn(&Figures) -> f64| -> Vec<f64> {
        summary.groups.iter().map(|g| pick(&g.figures)).collect()
    };
    let per = match summary.group_by {
        GroupBy::Day => "per day",
        GroupBy::Week => "per week",
        GroupBy::Month => "per month",
        GroupBy::Department => "per department",
        GroupBy::Agent => "per agent",
        GroupBy::Channel => "per channel",
    };
    vec![
        chart::bars(
            "chart-flow",
            &format!("New, resolved and reopened tickets {per}"),
            &format!(
                "Bar chart of new, resolved and reopened tickets {per}, {period_text}; the table below has the figures."
            ),
            &labels,
            &[
                chart::Series {
                    name: "New",
                    colour: "#2563eb",
                    values: values(|f| f.new as f64),
                },
                chart::Series {
                    name: "Resolved",
                    colour: "#16a34a",
                    values: values(|f| f.resolved as f64),
                },
                chart::Series {
                    name: "Reopened",
                    colour: "#d97706",
                    values: values(|f| f.reopened as f64),
                },
            ],
        ),
        chart::bars(
            "chart-backlog",
            &format!("Backlog at the end, {per}"),
            &format!(
                "Bar chart of the tickets still open at the end of each row's span, {per}, {period_text}; the table below has the figures."
            ),
            &labels,
            &[chart::Series {
                name: "Backlog",
                colour: "#7c3aed",
                values: values(|f| f.backlog as f64),
            }],
        ),
        chart::bars(
            "chart-first-response",
            &format!("First response time in hours {per}"),
            &format!(
                "Bar chart of the median and 90th percentile first response time in hours {per}, {period_text}; the table below has the figures."
            ),
            &labels,
            &[
                chart::Series {
                    name: "Median",
                    colour: "#0891b2",
                    values: values(|f| {
                        f.first_response_median_seconds.unwrap_or(0) as f64 / 3600.0
                    }),
                },
                chart::Series {
                    name: "90th percentile",
                    colour: "#be123c",
                    values: values(|f| f.first_response_p90_seconds.unwrap_or(0) as f64 / 3600.0),
                },
            ],
        ),
    ]
}

/// `GET /reports`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<ReportParams>,
) -> WebResult<Response> {
    let (chosen, summary) = report(&state, &viewer, &params).await?;
    let last_day = chosen.to - Duration::seconds(1);
    let period_text = format!(
        "{} to {} (UTC)",
        chosen.from.format("%Y-%m-%d"),
        last_day.format("%Y-%m-%d")
    );
    let periods = Preset::ALL
        .iter()
        .map(|p| Choice {
            value: p.as_str(),
            label: p.label(),
            selected: chosen.preset == Some(*p),
        })
        .chain(std::iter::once(Choice {
            value: "custom",
            label: "From – to (below)",
            selected: chosen.preset.is_none(),
        }))
        .collect();
    let groupings = GroupBy::ALL
        .iter()
        .map(|g| Choice {
            value: g.as_str(),
            label: match g {
                GroupBy::Day => "Day",
                GroupBy::Week => "Week",
                GroupBy::Month => "Month",
                GroupBy::Department => "Department",
                GroupBy::Agent => "Agent",
                GroupBy::Channel => "Channel",
            },
            selected: *g == chosen.group_by,
        })
        .collect();
    render(&ReportsPage {
        nav: Nav::of(&viewer, "reports"),
        is_admin: viewer.is_admin(),
        periods,
        groupings,
        custom: chosen.preset.is_none(),
        from_day: chosen.from.format("%Y-%m-%d").to_string(),
        to_day: last_day.format("%Y-%m-%d").to_string(),
        charts: charts(&summary, &period_text),
        period_text,
        group_name: match chosen.group_by {
            GroupBy::Day => "Day",
            GroupBy::Week => "Week",
            GroupBy::Month => "Month",
            GroupBy::Department => "Department",
            GroupBy::Agent => "Agent",
            GroupBy::Channel => "Channel",
        },
        time_basis: time_basis_text(&summary),
        rows: summary
            .groups
            .iter()
            .map(|g| Row::of(&g.label, &g.figures))
            .collect(),
        total: Row::of("All", &summary.total),
        csv: format!("/reports.csv?{}", query_string(&chosen)),
    })
}

/// Which times count business hours, for the line above the figures.
fn time_basis_text(summary: &Summary) -> String {
    if summary.business_hours.is_empty() {
        return "wall-clock time (no department has business hours)".into();
    }
    let departments: Vec<String> = summary
        .business_hours
        .iter()
        .map(|b| format!("{} ({})", b.department, b.time_zone))
        .collect();
    format!(
        "business hours for {}, wall-clock time for other tickets (the table's last column says which per row)",
        departments.join(", ")
    )
}

/// The CSV columns, in order.
const COLUMNS: [&str; 21] = [
    "group",
    "key",
    "new",
    "reopened",
    "resolved",
    "backlog",
    "first_responses",
    "first_response_median_seconds",
    "first_response_p90_seconds",
    "resolution_median_seconds",
    "sla_ended",
    "sla_met",
    "sla_met_share",
    "ratings",
    "ratings_positive",
    "satisfaction_score",
    "rating_average",
    "surveys_sent",
    "surveys_answered",
    "response_rate",
    "time_basis",
];

/// The summary as CSV: a header row and one row per group.
pub fn to_csv(summary: &Summary) -> Result<Vec<u8>, WebError> {
    let failed = |error: csv::Error| WebError::Internal(format!("CSV: {error}"));
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(COLUMNS).map_err(failed)?;
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let share = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
    for group in &summary.groups {
        let f = &group.figures;
        writer
            .write_record([
                group.label.clone(),
                group.key.clone(),
                f.new.to_string(),
                f.reopened.to_string(),
                f.resolved.to_string(),
                f.backlog.to_string(),
                f.first_responses.to_string(),
                opt(f.first_response_median_seconds),
                opt(f.first_response_p90_seconds),
                opt(f.resolution_median_seconds),
                f.sla_ended.to_string(),
                f.sla_met.to_string(),
                share(f.sla_met_share),
                f.ratings.to_string(),
                f.ratings_positive.to_string(),
                share(f.satisfaction_score),
                share(f.rating_average),
                f.surveys_sent.to_string(),
                f.surveys_answered.to_string(),
                share(f.response_rate),
                f.time_basis
                    .map(|basis| basis.as_str().to_owned())
                    .unwrap_or_default(),
            ])
            .map_err(failed)?;
    }
    writer
        .into_inner()
        .map_err(|error| WebError::Internal(format!("CSV: {error}")))
}

/// `GET /reports.csv`: the page's table as a file.
pub async fn download(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<ReportParams>,
) -> WebResult<Response> {
    let (chosen, summary) = report(&state, &viewer, &params).await?;
    let name = format!(
        "report-{}-{}-by-{}.csv",
        chosen.from.format("%Y%m%d"),
        (chosen.to - Duration::seconds(1)).format("%Y%m%d"),
        chosen.group_by.as_str()
    );
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        to_csv(&summary)?,
    )
        .into_response())
}
