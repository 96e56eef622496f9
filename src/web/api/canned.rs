//! Canned responses: shared ones (admins keep them) and each agent's own. A reply uses one
//! with `canned_response_id` on `POST /tickets/{number}/replies`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller::Caller;
use super::model::{Priority, Status};
use super::problem::{ApiError, ApiJson, ApiPath, ApiResult, Problem};
use crate::domain::canned::CannedDraft;
use crate::store::canned::{self, CannedResponse};
use crate::web::AppState;

/// A canned response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CannedOut {
    pub id: i64,
    pub name: String,
    /// The text, with placeholders `{{customer_name}}`, `{{ticket_number}}`,
    /// `{{agent_name}}` and `{{department}}` filled in when it is sent.
    pub body: String,
    /// Shared with every agent (kept by admins), or the token's agent's own.
    pub shared: bool,
    /// The status set with the reply (new, open, pending, resolved or closed), if any.
    pub status: Option<String>,
    /// The priority set with the reply (low, normal, high or urgent), if any.
    pub priority: Option<String>,
    /// Tags added to the ticket with the reply.
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<CannedResponse> for CannedOut {
    fn from(response: CannedResponse) -> Self {
        CannedOut {
            id: response.id,
            shared: response.is_shared(),
            status: response.status.map(|status| status.as_str().to_owned()),
            priority: response
                .priority
                .map(|priority| priority.as_str().to_owned()),
            name: response.name,
            body: response.body,
            tags: response.tags,
            created_at: response.created_at,
            updated_at: response.updated_at,
        }
    }
}

/// A canned response to save.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CannedIn {
    /// Unique among the shared ones, or among the agent's own, ignoring case; chat uses it
    /// (`/canned NAME`).
    #[schema(example = "refund-done")]
    pub name: String,
    /// The text. Placeholders: `{{customer_name}}` (the customer's name, or their address),
    /// `{{ticket_number}}`, `{{agent_name}}` (who sends it), `{{department}}` (empty without
    /// one). Any other `{{…}}` is refused.
    #[schema(
        example = "Hello {{customer_name}}, your refund for #{{ticket_number}} is on its way. {{agent_name}}"
    )]
    pub body: String,
    /// Shared with every agent (admin tokens only); otherwise the token's agent's own. Only
    /// read on create.
    #[serde(default)]
    pub shared: bool,
    /// Status to set with the reply.
    #[serde(default)]
    pub status: Option<Status>,
    /// Priority to set with the reply.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// Tags to add with the reply (letters, digits and `- _ . :`; stored lowercase).
    #[serde(default)]
    pub tags: Vec<String>,
}

impl CannedIn {
    fn draft(&self) -> Result<CannedDraft, ApiError> {
        CannedDraft::new(
            &self.name,
            &self.body,
            self.status.map(Into::into),
            self.priority.map(Into::into),
            &self.tags.join(" "),
        )
        .map_err(|error| ApiError::Unprocessable(error.to_string()))
    }
}

/// The canned response `id` if the caller may change it: 404 when they cannot see it, 403
/// for a shared one and an agent token.
async fn manageable(state: &AppState, caller: &Caller, id: i64) -> ApiResult<CannedResponse> {
    let response = canned::visible(&state.store, caller.id(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no canned response {id}")))?;
    if response.is_shared() && !caller.is_admin() {
        return Err(ApiError::Forbidden(
            "shared canned responses are kept by admins; this token has agent rights".into(),
        ));
    }
    Ok(response)
}

/// The canned responses the token's agent may use: the shared ones, then their own.
#[utoipa::path(
    get, path = "/canned-responses", tag = "canned",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<CannedOut>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<CannedOut>>> {
    let responses = canned::visible_to(&state.store, caller.id()).await?;
    Ok(Json(responses.into_iter().map(CannedOut::from).collect()))
}

/// Saves a canned response: the token's agent's own, or a shared one (`shared: true`, admin
/// tokens only).
#[utoipa::path(
    post, path = "/canned-responses", tag = "canned",
    request_body = CannedIn,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Saved", body = CannedOut),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A shared one with an agent token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid, e.g. an unknown placeholder", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<CannedIn>,
) -> ApiResult<(StatusCode, Json<CannedOut>)> {
    if new.shared {
        caller.require_admin()?;
    }
    let draft = new.draft()?;
    let owner = (!new.shared).then(|| caller.id());
    let saved = canned::create(&state.store, owner, &draft, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(saved.into())))
}

/// Replaces a canned response's name, body and actions (`shared` is not changed).
#[utoipa::path(
    put, path = "/canned-responses/{id}", tag = "canned",
    params(("id" = i64, Path, description = "The canned response's id")),
    request_body = CannedIn,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Saved", body = CannedOut),
        (status = 400, description = "The id or body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A shared one with an agent token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such canned response the token may see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid, e.g. an unknown placeholder", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(new): ApiJson<CannedIn>,
) -> ApiResult<Json<CannedOut>> {
    manageable(&state, &caller, id).await?;
    let draft = new.draft()?;
    let saved = canned::update(&state.store, id, &draft, Utc::now())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no canned response {id}")))?;
    Ok(Json(saved.into()))
}

/// Deletes a canned response.
#[utoipa::path(
    delete, path = "/canned-responses/{id}", tag = "canned",
    params(("id" = i64, Path, description = "The canned response's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A shared one with an agent token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such canned response the token may see", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    manageable(&state, &caller, id).await?;
    canned::delete(&state.store, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
