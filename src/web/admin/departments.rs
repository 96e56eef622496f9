//! The departments page: add one, rename it, change how it assigns tickets.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;

use crate::domain::AssignmentStrategy;
use crate::store::StoreError;
use crate::store::agents::{self};
use crate::store::manage;
use crate::web::AppState;
use crate::web::auth::{Posted, Viewer};
use crate::web::error::{WebError, WebResult};
use crate::web::pages::{Nav, see_other};
use crate::web::tickets::{Choice, choices};

struct DepartmentRow {
    id: i64,
    name: String,
    strategies: Vec<Choice>,
    agents: i64,
    open_tickets: i64,
    /// Satisfaction surveys are sent for its tickets.
    surveys: bool,
}

#[derive(Template)]
#[template(path = "web/departments.html")]
struct DepartmentsPage {
    nav: Option<Nav>,
    csrf: String,
    departments: Vec<DepartmentRow>,
    strategies: Vec<Choice>,
    /// Priority, first response and resolution targets, from [sla] in the settings.
    sla: Vec<(&'static str, String, String)>,
    error: Option<String>,
    /// `[surveys] enabled`: off turns surveys off whatever the departments say.
    surveys_enabled: bool,
}

fn strategy_choices(current: &str) -> Vec<Choice> {
    choices(
        AssignmentStrategy::ALL.iter().map(|s| {
            let label = match s {
                AssignmentStrategy::RoundRobin => "round robin",
                AssignmentStrategy::LeastOpen => "least open tickets",
            };
            (s.as_str(), label)
        }),
        current,
    )
}

async fn departments_page(
    state: &AppState,
    viewer: &Viewer,
    error: Option<String>,
) -> WebResult<Response> {
    let counts = agents::department_counts(&state.store).await?;
    let switches = crate::store::surveys::department_switches(&state.store).await?;
    let departments = agents::departments(&state.store)
        .await?
        .into_iter()
        .map(|d| {
            let (agents, open_tickets) = counts
                .iter()
                .find(|(id, _, _)| *id == d.id)
                .map_or((0, 0), |(_, agents, open)| (*agents, *open));
            DepartmentRow {
                surveys: switches
                    .iter()
                    .find(|(id, _)| *id == d.id)
                    .is_none_or(|(_, on)| *on),
                strategies: strategy_choices(&d.assignment_strategy),
                id: d.id,
                name: d.name,
                agents,
                open_tickets,
            }
        })
        .collect();
    let page = DepartmentsPage {
        nav: Nav::of(viewer, "departments"),
        csrf: viewer.csrf().to_owned(),
        departments,
        strategies: strategy_choices(AssignmentStrategy::RoundRobin.as_str()),
        sla: crate::domain::Priority::ALL
            .iter()
            .map(|priority| {
                let minutes = |target: chrono::Duration| {
                    crate::web::pages::minutes_text(Some(target.num_minutes()))
                };
                (
                    priority.as_str(),
                    minutes(state.config.sla.first_response.get(*priority)),
                    minutes(state.config.sla.resolution.get(*priority)),
                )
            })
            .collect(),
        error: error.clone(),
        surveys_enabled: state.config.surveys_enabled,
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Html(page.render()?)).into_response())
}

pub async fn departments(State(state): State<AppState>, viewer: Viewer) -> WebResult<Response> {
    viewer.require_admin()?;
    departments_page(&state, &viewer, None).await
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct DepartmentForm {
    name: String,
    strategy: String,
}

fn parse_strategy(text: &str) -> WebResult<AssignmentStrategy> {
    text.parse()
        .map_err(|error: crate::domain::UnknownValue| WebError::BadRequest(error.to_string()))
}

pub async fn create_department(
    State(state): State<AppState>,
    posted: Posted<DepartmentForm>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    viewer.require_admin()?;
    let strategy = parse_strategy(&posted.form.strategy)?;
    match agents::create_department(&state.store, &posted.form.name, strategy, Utc::now()).await {
        Ok(_) => Ok(see_other("/admin/departments")),
        Err(StoreError::Conflict(error)) => departments_page(&state, &viewer, Some(error)).await,
        Err(error) => Err(error.into()),
    }
}

pub async fn update_department(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<DepartmentForm>,
) -> WebResult<Response> {
    posted.viewer.require_admin()?;
    let strategy = parse_strategy(&posted.form.strategy)?;
    manage::set_department_strategy(&state.store, id, strategy).await?;
    Ok(see_other("/admin/departments"))
}
