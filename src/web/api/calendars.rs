//! A department's business calendar (weekly hours in a zone, holidays, an iCalendar import)
//! and its SLA policy (its own targets over the [sla] defaults). Agents read, admins change.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller::Caller;
use super::problem::{ApiError, ApiJson, ApiPath, ApiResult, Problem};
use crate::domain::Priority;
use crate::domain::calendar::WeeklyHours;
use crate::domain::ics::{self, Holiday};
use crate::domain::sla::{PolicyOverrides, SlaTargets, Target};
use crate::store::calendars::{self, StoredCalendar};
use crate::web::AppState;

/// One holiday of a calendar.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HolidayJson {
    /// A local date of the calendar's zone.
    #[schema(value_type = String, format = Date, example = "2026-12-25")]
    pub date: NaiveDate,
    #[schema(example = "Christmas Day")]
    pub name: String,
}

/// A department's business calendar.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarJson {
    /// An IANA time zone name; the hours are its local times, daylight saving included.
    #[schema(example = "Europe/Berlin")]
    pub time_zone: String,
    /// Weekday (mon … sun) to intervals "HH:MM-HH:MM" (24:00 may end one); days left out
    /// have no business hours.
    #[schema(example = json!({"mon": ["09:00-12:00", "13:00-17:00"], "fri": ["09:00-15:00"]}))]
    pub hours: BTreeMap<String, Vec<String>>,
    /// On PUT: replaces the holidays; left out, they stay as they are.
    #[serde(default)]
    pub holidays: Option<Vec<HolidayJson>>,
}

impl From<StoredCalendar> for CalendarJson {
    fn from(stored: StoredCalendar) -> Self {
        CalendarJson {
            time_zone: stored.time_zone,
            hours: stored.hours.to_map(),
            holidays: Some(
                stored
                    .holidays
                    .into_iter()
                    .map(|h| HolidayJson {
                        date: h.date,
                        name: h.name,
                    })
                    .collect(),
            ),
        }
    }
}

/// What an iCalendar import did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportResult {
    /// All-day events read from the file (one per date).
    pub read: usize,
    /// Of those, dates the calendar did not have yet (the others were renamed).
    pub added: u64,
    /// Events that are not all-day (a meeting at 10:00) or could not be read.
    pub skipped: usize,
    pub calendar: CalendarJson,
}

/// Minutes per priority; absent ones take the [sla] default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyMinutes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgent: Option<i64>,
}

impl PolicyMinutes {
    fn slot(&mut self, priority: Priority) -> &mut Option<i64> {
        match priority {
            Priority::Low => &mut self.low,
            Priority::Normal => &mut self.normal,
            Priority::High => &mut self.high,
            Priority::Urgent => &mut self.urgent,
        }
    }
}

/// Minutes of each kind of target, per priority.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyTargets {
    #[serde(default)]
    pub first_response: PolicyMinutes,
    #[serde(default)]
    pub next_response: PolicyMinutes,
    #[serde(default)]
    pub resolution: PolicyMinutes,
}

impl PolicyTargets {
    fn minutes(&mut self, target: Target) -> &mut PolicyMinutes {
        match target {
            Target::FirstResponse => &mut self.first_response,
            Target::NextResponse => &mut self.next_response,
            Target::Resolution => &mut self.resolution,
        }
    }

    fn overrides(&mut self) -> PolicyOverrides {
        let mut overrides = PolicyOverrides::new();
        for target in Target::ALL {
            for priority in Priority::ALL {
                if let Some(minutes) = *self.minutes(*target).slot(*priority) {
                    overrides.insert((*target, *priority), minutes);
                }
            }
        }
        overrides
    }
}

/// A department's SLA policy: its own targets in minutes (business minutes when it has a
/// calendar), which a PUT replaces, and `effective`, every target as it applies (its own or
/// the [sla] default).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlaPolicyJson {
    pub first_response: PolicyMinutes,
    pub next_response: PolicyMinutes,
    pub resolution: PolicyMinutes,
    pub effective: PolicyTargets,
}

impl SlaPolicyJson {
    fn of(overrides: &PolicyOverrides, defaults: &SlaTargets) -> SlaPolicyJson {
        let mut own = PolicyTargets::default();
        let mut effective = PolicyTargets::default();
        for target in Target::ALL {
            for priority in Priority::ALL {
                if let Some(minutes) = overrides.get(&(*target, *priority)) {
                    *own.minutes(*target).slot(*priority) = Some(*minutes);
                }
                *effective.minutes(*target).slot(*priority) =
                    Some(defaults.minutes_with(overrides, *target, *priority));
            }
        }
        SlaPolicyJson {
            first_response: own.first_response,
            next_response: own.next_response,
            resolution: own.resolution,
            effective,
        }
    }
}

async fn department(state: &AppState, id: i64) -> ApiResult<()> {
    let known = crate::store::agents::departments(&state.store)
        .await?
        .iter()
        .any(|d| d.id == id);
    if known {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("there is no department {id}")))
    }
}

/// A department's business calendar; 404 when it has none (its targets count around the
/// clock).
#[utoipa::path(
    get, path = "/departments/{id}/calendar", tag = "departments",
    params(("id" = i64, Path, description = "The department's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = CalendarJson),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such department, or it has no calendar", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_calendar(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<CalendarJson>> {
    department(&state, id).await?;
    let stored = calendars::calendar(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("department {id} has no calendar")))?;
    Ok(Json(stored.into()))
}

/// Sets a department's business calendar: its SLA targets then count in these hours.
#[utoipa::path(
    put, path = "/departments/{id}/calendar", tag = "departments",
    params(("id" = i64, Path, description = "The department's id")),
    request_body = CalendarJson,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Saved", body = CalendarJson),
        (status = 400, description = "The id or body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such department", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown zone, day or interval, overlapping intervals, or no hours at all", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_calendar(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(calendar): ApiJson<CalendarJson>,
) -> ApiResult<Json<CalendarJson>> {
    caller.require_admin()?;
    department(&state, id).await?;
    let invalid = |error: &dyn std::fmt::Display| ApiError::Unprocessable(error.to_string());
    crate::domain::zone::parse_zone(&calendar.time_zone).map_err(|e| invalid(&e))?;
    let hours = WeeklyHours::from_map(&calendar.hours).map_err(|e| invalid(&e))?;
    let holidays: Option<Vec<Holiday>> = calendar.holidays.map(|list| {
        list.into_iter()
            .map(|h| Holiday {
                date: h.date,
                name: h.name,
            })
            .collect()
    });
    calendars::set_calendar(
        &state.store,
        id,
        &calendar.time_zone,
        &hours,
        holidays.as_deref(),
        Utc::now(),
    )
    .await?;
    get_calendar(State(state), caller, ApiPath(id)).await
}

/// Removes a department's calendar and holidays: its targets count around the clock again.
#[utoipa::path(
    delete, path = "/departments/{id}/calendar", tag = "departments",
    params(("id" = i64, Path, description = "The department's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed (or there was none)"),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such department", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_calendar(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    department(&state, id).await?;
    calendars::delete_calendar(&state.store, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds the all-day events of an iCalendar (.ics) file to a department's holidays; a date it
/// has already takes the file's name. The department needs a calendar first.
#[utoipa::path(
    post, path = "/departments/{id}/holidays/import", tag = "departments",
    params(("id" = i64, Path, description = "The department's id")),
    request_body(content = String, content_type = "text/calendar", description = "An iCalendar file"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Imported", body = ImportResult),
        (status = 400, description = "The id or body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such department", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The department has no calendar yet", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an iCalendar file", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn import_holidays(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    body: String,
) -> ApiResult<Json<ImportResult>> {
    caller.require_admin()?;
    department(&state, id).await?;
    let imported = ics::parse(&body).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let added = calendars::add_holidays(&state.store, id, &imported.holidays).await?;
    let Json(calendar) = get_calendar(State(state), caller, ApiPath(id)).await?;
    Ok(Json(ImportResult {
        read: imported.holidays.len(),
        added,
        skipped: imported.skipped,
        calendar,
    }))
}

/// A department's SLA policy: its own targets, and every target as it applies.
#[utoipa::path(
    get, path = "/departments/{id}/sla-policy", tag = "departments",
    params(("id" = i64, Path, description = "The department's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = SlaPolicyJson),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such department", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_policy(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<SlaPolicyJson>> {
    department(&state, id).await?;
    let overrides = calendars::policy(&state.store, id).await?;
    Ok(Json(SlaPolicyJson::of(&overrides, &state.config.sla)))
}

/// Replaces a department's own SLA targets (minutes per kind and priority; those left out take
/// the [sla] defaults). Tickets' targets move at their next check.
#[utoipa::path(
    put, path = "/departments/{id}/sla-policy", tag = "departments",
    params(("id" = i64, Path, description = "The department's id")),
    request_body(content = PolicyTargets, description = "The department's own targets; those left out take the [sla] defaults"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Saved", body = SlaPolicyJson),
        (status = 400, description = "The id or body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such department", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A target below 1 minute", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field that is not a kind of target or a priority, or minutes that are not a number", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(mut policy): ApiJson<PolicyTargets>,
) -> ApiResult<Json<SlaPolicyJson>> {
    caller.require_admin()?;
    department(&state, id).await?;
    calendars::set_policy(&state.store, id, &policy.overrides()).await?;
    get_policy(State(state), caller, ApiPath(id)).await
}
