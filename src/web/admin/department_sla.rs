//! One department's business calendar and SLA policy: weekly hours in a zone, holidays (added
//! one by one or from an iCalendar file), and its own targets over the [sla] defaults.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{NaiveDate, Utc};

use crate::domain::Priority;
use crate::domain::calendar::WeeklyHours;
use crate::domain::ics::{self, Holiday};
use crate::domain::sla::{PolicyOverrides, Target};
use crate::domain::zone::{parse_zone, zone_names};
use crate::store::StoreError;
use crate::store::agents;
use crate::store::calendars;
use crate::web::AppState;
use crate::web::auth::{Posted, PostedFiles, Viewer};
use crate::web::error::{WebError, WebResult};
use crate::web::pages::{Nav, see_other};

/// One row of the policy form: a priority and, per kind of target, the department's own
/// minutes (empty: the default) and the default.
struct PolicyRow {
    priority: &'static str,
    cells: Vec<PolicyCell>,
}

struct PolicyCell {
    field: String,
    own: String,
    default: i64,
}

#[derive(Template)]
#[template(path = "web/department_sla.html")]
struct DepartmentSlaPage {
    nav: Option<Nav>,
    csrf: String,
    id: i64,
    name: String,
    has_calendar: bool,
    time_zone: String,
    hours: String,
    holidays: Vec<Holiday>,
    zones: Vec<&'static str>,
    targets: Vec<&'static str>,
    policy: Vec<PolicyRow>,
    notice: Option<String>,
    error: Option<String>,
}

const DEFAULT_HOURS: &str =
    "mon 09:00-17:00\ntue 09:00-17:00\nwed 09:00-17:00\nthu 09:00-17:00\nfri 09:00-17:00";

async fn page(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    notice: Option<String>,
    error: Option<String>,
) -> WebResult<Response> {
    let department = agents::departments(&state.store)
        .await?
        .into_iter()
        .find(|d| d.id == id)
        .ok_or_else(|| WebError::NotFound(format!("There is no department {id}.")))?;
    let calendar = calendars::calendar(&state.store, id).await?;
    let overrides = calendars::policy(&state.store, id).await?;
    let policy = Priority::ALL
        .iter()
        .map(|priority| PolicyRow {
            priority: priority.as_str(),
            cells: Target::ALL
                .iter()
                .map(|target| PolicyCell {
                    field: format!("{}_{}", target.as_str(), priority.as_str()),
                    own: overrides
                        .get(&(*target, *priority))
                        .map(i64::to_string)
                        .unwrap_or_default(),
                    default: state.config.sla.minutes(*target, *priority),
                })
                .collect(),
        })
        .collect();
    let page = DepartmentSlaPage {
        nav: Nav::of(viewer, "departments"),
        csrf: viewer.csrf().to_owned(),
        id,
        name: department.name,
        has_calendar: calendar.is_some(),
        time_zone: calendar
            .as_ref()
            .map_or_else(|| "UTC".to_owned(), |c| c.time_zone.clone()),
        hours: calendar
            .as_ref()
            .map_or_else(|| DEFAULT_HOURS.to_owned(), |c| c.hours.to_text()),
        holidays: calendar.map(|c| c.holidays).unwrap_or_default(),
        zones: zone_names().collect(),
        targets: Target::ALL.iter().map(|t| t.label()).collect(),
        policy,
        notice,
        error: error.clone(),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Html(page.render()?)).into_response())
}

fn back(id: i64) -> Response {
    see_other(&format!("/admin/departments/{id}/sla"))
}

pub async fn department_sla(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> WebResult<Response> {
    viewer.require_admin()?;
    page(&state, &viewer, id, None, None).await
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct CalendarForm {
    time_zone: String,
    hours: String,
    /// "remove": back to around the clock.
    action: String,
}

pub async fn save_calendar(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<CalendarForm>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    viewer.require_admin()?;
    if posted.form.action == "remove" {
        calendars::delete_calendar(&state.store, id).await?;
        return Ok(back(id));
    }
    let checked = parse_zone(&posted.form.time_zone)
        .map_err(|e| e.to_string())
        .and_then(|_| WeeklyHours::parse_text(&posted.form.hours).map_err(|e| e.to_string()));
    let hours = match checked {
        Ok(hours) => hours,
        Err(error) => return page(&state, &viewer, id, None, Some(error)).await,
    };
    calendars::set_calendar(
        &state.store,
        id,
        &posted.form.time_zone,
        &hours,
        None,
        Utc::now(),
    )
    .await?;
    Ok(back(id))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct HolidayForm {
    date: String,
    name: String,
    /// "delete" removes the holiday on `date`.
    action: String,
}

pub async fn save_holiday(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<HolidayForm>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    viewer.require_admin()?;
    let Ok(date) = posted.form.date.trim().parse::<NaiveDate>() else {
        let error = format!("{:?} is not a date such as 2026-12-25", posted.form.date);
        return page(&state, &viewer, id, None, Some(error)).await;
    };
    if posted.form.action == "delete" {
        calendars::delete_holiday(&state.store, id, date).await?;
        return Ok(back(id));
    }
    let holiday = Holiday {
        date,
        name: posted.form.name.clone(),
    };
    match calendars::add_holidays(&state.store, id, &[holiday]).await {
        Ok(_) => Ok(back(id)),
        Err(StoreError::Conflict(error)) => page(&state, &viewer, id, None, Some(error)).await,
        Err(error) => Err(error.into()),
    }
}

pub async fn import_holidays(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: PostedFiles<crate::web::admin::Empty>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    viewer.require_admin()?;
    if let Some(error) = posted.too_large {
        return page(&state, &viewer, id, None, Some(error)).await;
    }
    let Some(file) = posted.files.first() else {
        let error = "Choose an iCalendar (.ics) file to import.".to_owned();
        return page(&state, &viewer, id, None, Some(error)).await;
    };
    let text = String::from_utf8_lossy(&file.content);
    let imported = match ics::parse(&text) {
        Ok(imported) => imported,
        Err(error) => return page(&state, &viewer, id, None, Some(error.to_string())).await,
    };
    match calendars::add_holidays(&state.store, id, &imported.holidays).await {
        Ok(added) => {
            let notice = format!(
                "{} holidays read from {}, {added} of them new; {} events at a time of day \
                 skipped.",
                imported.holidays.len(),
                file.filename,
                imported.skipped
            );
            page(&state, &viewer, id, Some(notice), None).await
        }
        Err(StoreError::Conflict(error)) => page(&state, &viewer, id, None, Some(error)).await,
        Err(error) => Err(error.into()),
    }
}

/// The policy form: a field per kind and priority, e.g. `first_response_urgent`; empty takes
/// the default.
pub async fn save_policy(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<std::collections::HashMap<String, String>>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    viewer.require_admin()?;
    let mut overrides = PolicyOverrides::new();
    for target in Target::ALL {
        for priority in Priority::ALL {
            let field = format!("{}_{}", target.as_str(), priority.as_str());
            let text = posted.form.get(&field).map(|v| v.trim()).unwrap_or("");
            if text.is_empty() {
                continue;
            }
            match text.parse::<i64>() {
                Ok(minutes) if minutes > 0 => {
                    overrides.insert((*target, *priority), minutes);
                }
                _ => {
                    let error = format!(
                        "{} at {priority}: {text:?} is not a number of minutes above 0",
                        target.label()
                    );
                    return page(&state, &viewer, id, None, Some(error)).await;
                }
            }
        }
    }
    calendars::set_policy(&state.store, id, &overrides).await?;
    Ok(back(id))
}
