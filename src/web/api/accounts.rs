//! People's accounts over the API: admins add agents, set passwords and disable or enable
//! people; everyone changes their own password.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller::Caller;
use super::model::Agent;
use super::problem::{ApiError, ApiJson, ApiPath, ApiResult, Problem};
use crate::accounts::{self, AccountError, ZoneError};
use crate::domain::Role;
use crate::store::agents::{self, NewAgent};
use crate::store::tickets::Actor;
use crate::web::AppState;

fn account_error(error: AccountError) -> ApiError {
    match error {
        AccountError::Store(error) => error.into(),
        AccountError::TooManyTries { .. } => ApiError::TooManyRequests(error.to_string()),
        AccountError::WrongPassword | AccountError::Password(_) => {
            ApiError::Unprocessable(error.to_string())
        }
    }
}

async fn agent(state: &AppState, id: i64) -> ApiResult<Agent> {
    agents::list_agents(&state.store)
        .await?
        .into_iter()
        .find(|agent| agent.id == id)
        .map(Agent::from)
        .ok_or_else(|| ApiError::NotFound(format!("there is no agent #{id}")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentRole {
    Admin,
    Agent,
}

/// An agent or admin to add.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgentInput {
    pub email: String,
    pub name: String,
    pub role: AgentRole,
    /// At least 8 characters; left out, the person can only work from chat until an admin
    /// sets one.
    #[serde(default)]
    pub password: Option<String>,
    /// Department ids; left out or empty, the default department (`workflow.default_department`).
    #[serde(default)]
    pub department_ids: Vec<i64>,
    #[serde(default)]
    pub max_open_tickets: Option<i64>,
}

/// Adds an agent or admin. Without departments they join the default department, so tickets
/// reach them at once.
#[utoipa::path(
    post, path = "/agents", tag = "agents",
    request_body = NewAgentInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new agent", body = Agent),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email address is taken or not an address", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid (a short password)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_agent(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewAgentInput>,
) -> ApiResult<(StatusCode, Json<Agent>)> {
    caller.require_admin()?;
    if input.name.trim().is_empty() {
        return Err(ApiError::Unprocessable("name must not be empty".into()));
    }
    if input.max_open_tickets.is_some_and(|limit| limit < 0) {
        return Err(ApiError::Unprocessable(
            "max_open_tickets cannot be negative".into(),
        ));
    }
    let known = agents::departments(&state.store).await?;
    if let Some(unknown) = input
        .department_ids
        .iter()
        .find(|id| !known.iter().any(|d| d.id == **id))
    {
        return Err(ApiError::Unprocessable(format!(
            "there is no department #{unknown}"
        )));
    }
    let hash = match input.password {
        Some(password) => Some(
            tokio::task::spawn_blocking(move || crate::auth::hash_password(&password))
                .await
                .map_err(|error| ApiError::Internal(error.to_string()))?
                .map_err(|error| ApiError::Unprocessable(error.to_string()))?,
        ),
        None => None,
    };
    let department_ids = accounts::departments_or_default(
        &state.store,
        input.department_ids,
        state.config.default_department.as_deref(),
    )
    .await?;
    let id = agents::create_agent(
        &state.store,
        &NewAgent {
            email: &input.email,
            name: &input.name,
            role: match input.role {
                AgentRole::Admin => Role::Admin,
                AgentRole::Agent => Role::Agent,
            },
            password_hash: hash.as_deref(),
            department_ids: &department_ids,
            identities: &[],
            max_open_tickets: input.max_open_tickets,
        },
        Utc::now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(agent(&state, id).await?)))
}

/// A new password, set by an admin.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordInput {
    /// At least 8 characters.
    pub password: String,
}

/// Sets someone's password (they forgot theirs). All their web sessions end; their API tokens
/// keep working.
#[utoipa::path(
    put, path = "/agents/{id}/password", tag = "agents",
    params(("id" = i64, Path, description = "The agent id")),
    request_body = PasswordInput,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Set; the person's web sessions have ended"),
        (status = 400, description = "The id is not a number or the body not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The password is too short", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<PasswordInput>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    accounts::set_password(&state.store, id, &input.password, None)
        .await
        .map_err(account_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether a person may work.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActiveInput {
    /// false disables: no sign-in, no working API token, no new tickets, open tickets
    /// reassigned. true enables again (reassigned tickets stay where they went).
    pub active: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActiveChange {
    pub agent: Agent,
    /// Open tickets handed back to their department's assignment (0 when enabling).
    pub reassigned_tickets: usize,
}

/// Disables or enables a person. A disabled person's open tickets are assigned again by their
/// department's strategy through the job queue, each with a history entry saying why.
#[utoipa::path(
    put, path = "/agents/{id}/active", tag = "agents",
    params(("id" = i64, Path, description = "The agent id")),
    request_body = ActiveInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = ActiveChange),
        (status = 400, description = "The id is not a number or the body not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An admin cannot disable themselves", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "active is missing or not a boolean", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_active(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<ActiveInput>,
) -> ApiResult<Json<ActiveChange>> {
    caller.require_admin()?;
    if id == caller.id() && !input.active {
        return Err(ApiError::Conflict(
            "you cannot disable yourself; another admin can".into(),
        ));
    }
    let reassigned = accounts::set_active(
        &state.store,
        id,
        input.active,
        Actor::Agent(caller.id()),
        Utc::now(),
    )
    .await
    .map_err(account_error)?;
    Ok(Json(ActiveChange {
        agent: agent(&state, id).await?,
        reassigned_tickets: reassigned,
    }))
}

/// The caller's own new password.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnPasswordInput {
    pub current_password: String,
    /// At least 8 characters.
    pub password: String,
}

/// Changes the password of the token's own agent; the current password must be right (wrong
/// ones count like failed sign-ins). Their web sessions end; API tokens keep working.
#[utoipa::path(
    put, path = "/account/password", tag = "agents",
    request_body = OwnPasswordInput,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed; the caller's web sessions have ended"),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The current password is wrong or the new one too short", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords for this address lately", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn change_own_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<OwnPasswordInput>,
) -> ApiResult<StatusCode> {
    accounts::change_own_password(
        &state.store,
        caller.id(),
        &input.current_password,
        &input.password,
        None,
        Utc::now(),
    )
    .await
    .map_err(account_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's time zone for the pages.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeZoneInput {
    /// An IANA name such as `Europe/Berlin`; null or empty: the browser's zone.
    pub time_zone: Option<String>,
}

/// Sets the time zone the web pages show the token's agent times in.
#[utoipa::path(
    put, path = "/account/time-zone", tag = "agents",
    request_body = TimeZoneInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Set; the agent as it is now", body = Agent),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an IANA time zone name", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_own_time_zone(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<TimeZoneInput>,
) -> ApiResult<Json<Agent>> {
    let name = input.time_zone.unwrap_or_default();
    accounts::set_time_zone(&state.store, caller.id(), &name)
        .await
        .map_err(|error| match error {
            ZoneError::Unknown(error) => ApiError::Unprocessable(error.to_string()),
            ZoneError::Store(error) => error.into(),
        })?;
    Ok(Json(agent(&state, caller.id()).await?))
}

/// A person's signature for their replies by mail.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureInput {
    /// Appended below "-- " to the person's replies that go out by mail (never on chat), above
    /// the mailbox's signature; null or blank clears it. At most 2000 characters are kept.
    #[schema(example = "Ada Lovelace\nSecond-level support")]
    pub signature: Option<String>,
}

/// The token's agent's signature for replies by mail.
#[utoipa::path(
    get, path = "/account/signature", tag = "agents",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The signature; null when none is set", body = SignatureInput),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn own_signature(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<SignatureInput>> {
    let signature = crate::store::mailboxes::agent_signature(&state.store, caller.id()).await?;
    Ok(Json(SignatureInput { signature }))
}

/// Sets the signature appended to the token's agent's replies by mail.
#[utoipa::path(
    put, path = "/account/signature", tag = "agents",
    request_body = SignatureInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Set; the signature as kept", body = SignatureInput),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field other than signature, or it is not a string", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_own_signature(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<SignatureInput>,
) -> ApiResult<Json<SignatureInput>> {
    let text = input.signature.unwrap_or_default();
    crate::store::mailboxes::set_agent_signature(&state.store, caller.id(), &text).await?;
    own_signature(State(state), caller).await
}
