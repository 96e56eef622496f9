//! Satisfaction surveys in the API: a ticket's rating (part of the ticket's JSON) and each
//! department's switch.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller::Caller;
use super::problem::{ApiError, ApiJson, ApiPath, ApiResult, Problem};
use crate::domain::TicketId;
use crate::store::surveys;
use crate::web::AppState;

/// The customer's answer to the ticket's satisfaction survey; `null` on the ticket when none
/// was sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Satisfaction {
    /// 1 (not at all satisfied) to 5 (very satisfied); `null` until the customer answers.
    pub rating: Option<i64>,
    /// What the customer wrote after rating.
    pub comment: Option<String>,
    pub rated_at: Option<DateTime<Utc>>,
    /// The channel the survey went out on.
    pub channel: String,
    pub sent_at: DateTime<Utc>,
    /// Answers are taken until then.
    pub expires_at: DateTime<Utc>,
}

/// The satisfaction of ticket `ticket_id`, if a survey was sent.
pub async fn of_ticket(state: &AppState, ticket_id: TicketId) -> ApiResult<Option<Satisfaction>> {
    Ok(surveys::of_ticket(&state.store, ticket_id)
        .await?
        .map(|survey| Satisfaction {
            rating: survey.rating,
            comment: survey.comment,
            rated_at: survey.rated_at,
            channel: survey.channel,
            sent_at: survey.sent_at,
            expires_at: survey.expires_at,
        }))
}

/// Whether a department's customers are asked for a rating.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveySwitch {
    /// Surveys are sent for its tickets (the settings' `[surveys] enabled` must be on too).
    pub enabled: bool,
}

async fn switch_of(state: &AppState, id: i64) -> ApiResult<SurveySwitch> {
    surveys::department_switches(&state.store)
        .await?
        .into_iter()
        .find(|(department, _)| *department == id)
        .map(|(_, enabled)| SurveySwitch { enabled })
        .ok_or_else(|| ApiError::NotFound(format!("there is no department {id}")))
}

/// Whether satisfaction surveys are sent for a department's tickets.
#[utoipa::path(
    get, path = "/departments/{id}/surveys", tag = "departments",
    params(("id" = i64, Path, description = "The department id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = SurveySwitch),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such department", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn department_surveys(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<SurveySwitch>> {
    Ok(Json(switch_of(&state, id).await?))
}

/// Turns satisfaction surveys on or off for a department's tickets (admins).
#[utoipa::path(
    put, path = "/departments/{id}/surveys", tag = "departments",
    params(("id" = i64, Path, description = "The department id")),
    request_body = SurveySwitch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = SurveySwitch),
        (status = 400, description = "The id or body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such department", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "enabled is missing or not a boolean", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_department_surveys(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<SurveySwitch>,
) -> ApiResult<Json<SurveySwitch>> {
    caller.require_admin()?;
    if !surveys::set_department_switch(&state.store, id, input.enabled).await? {
        return Err(ApiError::NotFound(format!("there is no department {id}")));
    }
    Ok(Json(switch_of(&state, id).await?))
}
