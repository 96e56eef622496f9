//! The job queue page: jobs by state and queue, and retrying a failed one.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;

use super::Empty;
use crate::web::AppState;
use crate::web::auth::{Posted, Viewer};
use crate::web::error::{WebError, WebResult};
use crate::web::pages::{Nav, render, see_other};
use crate::web::tickets::{Choice, choices};

/// Jobs per page.
const JOBS_PER_PAGE: i64 = 100;

#[derive(Template)]
#[template(path = "web/jobs.html")]
struct JobsPage {
    nav: Option<Nav>,
    csrf: String,
    counts: Vec<(String, i64)>,
    queues: Vec<Choice>,
    states: Vec<Choice>,
    /// The filter as a query string, for the state links and the next page.
    filter: String,
    jobs: Vec<crate::jobs::JobRow>,
    /// The next page's `before`, when there may be one.
    next: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct JobsQuery {
    queue: String,
    state: String,
    before: String,
}

pub async fn jobs(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<JobsQuery>,
) -> WebResult<Response> {
    viewer.require_admin()?;
    let given = |value: &str| Some(value.trim().to_owned()).filter(|v| !v.is_empty());
    let (queue, status, before) = (
        given(&query.queue),
        given(&query.state),
        given(&query.before),
    );
    if let Some(queue) = queue
        .as_deref()
        .filter(|q| !crate::jobs::QUEUES.contains(q))
    {
        return Err(WebError::BadRequest(format!("there is no queue {queue:?}")));
    }
    if let Some(status) = status
        .as_deref()
        .filter(|s| !crate::jobs::STATES.contains(s))
    {
        return Err(WebError::BadRequest(format!(
            "there is no job state {status:?}"
        )));
    }
    let jobs = crate::jobs::query(
        &state.store,
        &crate::jobs::JobQuery {
            queue: queue.as_deref(),
            status: status.as_deref(),
            before: before.as_deref(),
            limit: JOBS_PER_PAGE,
        },
    )
    .await?;
    let next = (jobs.len() as i64 == JOBS_PER_PAGE)
        .then(|| jobs.last().map(|job| job.id.clone()))
        .flatten();
    let filter = serde_urlencoded::to_string([
        ("queue", queue.as_deref().unwrap_or("")),
        ("state", status.as_deref().unwrap_or("")),
    ])
    .unwrap_or_default();
    render(&JobsPage {
        nav: Nav::of(&viewer, "jobs"),
        csrf: viewer.csrf().to_owned(),
        counts: crate::store::jobs::counts(&state.store).await?,
        queues: choices(
            crate::jobs::QUEUES.map(|q| (q, q.trim_start_matches("helpdesk."))),
            queue.as_deref().unwrap_or(""),
        ),
        states: choices(
            crate::jobs::STATES.map(|s| (s, s)),
            status.as_deref().unwrap_or(""),
        ),
        filter,
        jobs,
        next,
    })
}

pub async fn retry_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<Empty>,
) -> WebResult<Response> {
    posted.viewer.require_admin()?;
    if !crate::store::jobs::retry(&state.store, &id).await? {
        return Err(WebError::Conflict(format!(
            "Job {id} is not failed (or no longer exists), so there is nothing to retry."
        )));
    }
    Ok(see_other("/admin/jobs?state=Pending"))
}
