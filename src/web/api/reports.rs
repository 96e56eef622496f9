//! The reports' figures as JSON: the same as the /reports page, with the same rule (admins:
//! the team; agents: their own figures).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::problem::{ApiError, ApiQuery, ApiResult, Problem};
use crate::store::views::report::{self, Figures, ReportQuery};
use crate::web::AppState;
use crate::web::reports::{ReportParams, scope};

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// A day (YYYY-MM-DD, from its start) or an RFC 3339 time; with `to`, instead of `period`.
    pub from: Option<String>,
    /// A day (YYYY-MM-DD, up to its end) or an RFC 3339 time (excluded).
    pub to: Option<String>,
    /// last_7_days, last_30_days (the default), this_month, last_month, this_quarter or
    /// this_year; UTC, a running period ends with today.
    #[param(
        pattern = "^(last_7_days|last_30_days|this_month|last_month|this_quarter|this_year|custom)?$"
    )]
    pub period: Option<String>,
    /// day (the default), week, month, department, agent or channel.
    #[param(pattern = "^(day|week|month|department|agent|channel)?$")]
    pub group_by: Option<String>,
}

/// A group's figures. Shares are fractions from 0 to 1; times are seconds, measured as
/// `time_basis` says; percentiles are nearest-rank.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportFigures {
    /// Tickets created in the period.
    pub new: i64,
    /// Resolved or closed tickets made active again in the period.
    pub reopened: i64,
    /// Active tickets resolved or closed in the period.
    pub resolved: i64,
    /// Tickets active at the end of the group's span (the period's end for departments, agents
    /// and channels), according to the history.
    pub backlog: i64,
    /// First responses given in the period.
    pub first_responses: i64,
    pub first_response_median_seconds: Option<i64>,
    pub first_response_p90_seconds: Option<i64>,
    /// From creation to each resolution in the period.
    pub resolution_median_seconds: Option<i64>,
    /// SLA targets that ended in the period: breached then, or met then without a breach.
    pub sla_ended: i64,
    pub sla_met: i64,
    pub sla_met_share: Option<f64>,
    /// Ratings given in the period.
    pub ratings: i64,
    /// Ratings of 4 or 5.
    pub ratings_positive: i64,
    /// `ratings_positive / ratings` (CSAT).
    pub satisfaction_score: Option<f64>,
    pub rating_average: Option<f64>,
    /// Surveys sent in the period, and how many of those were answered.
    pub surveys_sent: i64,
    pub surveys_answered: i64,
    pub response_rate: Option<f64>,
    /// How this row's first response and resolution times are measured: `business` (business
    /// hours of the ticket's department's calendar, see `business_hours`), `wall_clock` (around
    /// the clock: the department has no calendar, or the ticket no department) or `mixed` (some
    /// of each); null when the row has no times.
    #[schema(pattern = "^(business|wall_clock|mixed)$")]
    pub time_basis: Option<String>,
}

impl From<Figures> for ReportFigures {
    fn from(f: Figures) -> Self {
        ReportFigures {
            new: f.new,
            reopened: f.reopened,
            resolved: f.resolved,
            backlog: f.backlog,
            first_responses: f.first_responses,
            first_response_median_seconds: f.first_response_median_seconds,
            first_response_p90_seconds: f.first_response_p90_seconds,
            resolution_median_seconds: f.resolution_median_seconds,
            sla_ended: f.sla_ended,
            sla_met: f.sla_met,
            sla_met_share: f.sla_met_share,
            ratings: f.ratings,
            ratings_positive: f.ratings_positive,
            satisfaction_score: f.satisfaction_score,
            rating_average: f.rating_average,
            surveys_sent: f.surveys_sent,
            surveys_answered: f.surveys_answered,
            response_rate: f.response_rate,
            time_basis: f.time_basis.map(|basis| basis.as_str().to_owned()),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportGroup {
    /// The span's first day (YYYY-MM-DD), a department or agent id, or a channel; empty for
    /// tickets without a department or agent.
    pub key: String,
    pub label: String,
    #[serde(flatten)]
    pub figures: ReportFigures,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportBusinessHours {
    pub department_id: i64,
    pub department: String,
    /// The calendar's IANA time zone.
    pub time_zone: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportSummary {
    /// The period's start (included) and end (excluded).
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    #[schema(pattern = "^(day|week|month|department|agent|channel)$")]
    pub group_by: String,
    /// How the period's times are measured over all groups: `business`, `wall_clock` or
    /// `mixed` (each group says its own); null when there are none.
    #[schema(pattern = "^(business|wall_clock|mixed)$")]
    pub time_basis: Option<String>,
    /// The departments with a business calendar: their tickets' times count only business
    /// hours (weekly hours in the zone, without holidays), by today's calendar.
    pub business_hours: Vec<ReportBusinessHours>,
    /// Agents: `agent` (their own figures); admins: `team`.
    pub scope: String,
    pub groups: Vec<ReportGroup>,
    /// The whole period (backlog: at its end).
    pub total: ReportFigures,
}

/// The team's figures for a period, grouped by day, week, month, department, agent or channel,
/// from the ticket history. Agent tokens get their own figures only.
#[utoipa::path(
    get, path = "/reports/summary", tag = "reports",
    params(SummaryParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ReportSummary),
        (status = 400, description = "The period or grouping is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn summary(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<SummaryParams>,
) -> ApiResult<Json<ReportSummary>> {
    let chosen = ReportParams {
        period: params.period,
        from: params.from,
        to: params.to,
        group_by: params.group_by,
    }
    .choose(Utc::now())
    .map_err(ApiError::BadRequest)?;
    let summary = report::summary(
        &state.store,
        &ReportQuery {
            from: chosen.from,
            to: chosen.to,
            group_by: chosen.group_by,
            scope: scope(caller.is_admin(), caller.id()),
        },
    )
    .await?;
    Ok(Json(ReportSummary {
        from: summary.from,
        to: summary.to,
        group_by: summary.group_by.as_str().to_owned(),
        time_basis: summary.time_basis.map(|basis| basis.as_str().to_owned()),
        business_hours: summary
            .business_hours
            .into_iter()
            .map(|b| ReportBusinessHours {
                department_id: b.department_id,
                department: b.department,
                time_zone: b.time_zone,
            })
            .collect(),
        scope: if caller.is_admin() { "team" } else { "agent" }.to_owned(),
        groups: summary
            .groups
            .into_iter()
            .map(|g| ReportGroup {
                key: g.key,
                label: g.label,
                figures: g.figures.into(),
            })
            .collect(),
        total: summary.total.into(),
    }))
}
