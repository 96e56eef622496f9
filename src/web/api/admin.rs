//! Admin endpoints: routing rules, the job queue and API tokens. Agent tokens get 403.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller::Caller;
use super::model::{
    Job, JobFilter, Rule, RuleInput, RuleMatch, RuleMoveInput, RuleOverride, page_size,
};
use super::problem::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Problem};
use crate::domain::Role;
use crate::domain::rule_check::{self, Outcome};
use crate::domain::rules::{self, Action, Condition};
use crate::store::api_tokens::{self, TokenInfo};
use crate::store::manage::{self, RuleMove};
use crate::store::rules as rule_store;
use crate::web::AppState;
use crate::web::rule_editor::RECENT_TICKETS;

/// The stored rules in order, each with its warnings.
async fn rules_out(state: &AppState) -> ApiResult<Vec<Rule>> {
    let stored = rule_store::list(&state.store).await?;
    let directory = rule_store::directory(&state.store).await?;
    let samples = rule_store::recent_samples(&state.store, RECENT_TICKETS).await?;
    let report = rule_check::check(&stored, &directory, &samples, &state.config.business_hours);
    Ok(stored
        .iter()
        .enumerate()
        .map(|(at, rule)| Rule {
            id: rule.id,
            position: i64::try_from(at + 1).unwrap_or(i64::MAX),
            conditions: serde_json::to_value(&rule.conditions).unwrap_or_default(),
            actions: serde_json::to_value(&rule.actions).unwrap_or_default(),
            name: rule.name.clone(),
            enabled: rule.enabled,
            stop: rule.stop,
            warnings: report.findings[at]
                .iter()
                .map(|finding| finding.message(&stored, &directory))
                .collect(),
        })
        .collect())
}

/// The rule the input describes, checked as the admin page's editor checks it; the message
/// says what is wrong and where.
fn rule_of(input: RuleInput, id: i64) -> ApiResult<rules::Rule> {
    fn parse<T: serde::de::DeserializeOwned>(
        what: &str,
        value: serde_json::Value,
    ) -> ApiResult<Vec<T>> {
        let value = if value.is_null() {
            serde_json::Value::Array(Vec::new())
        } else {
            value
        };
        serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            let place = if path == "." {
                String::new()
            } else {
                format!(" at {path}")
            };
            ApiError::Unprocessable(format!("{what}{place}: {}", error.inner()))
        })
    }
    let rule = rules::Rule {
        id,
        name: input.name.trim().to_owned(),
        enabled: input.enabled,
        conditions: parse::<Condition>("conditions", input.conditions)?,
        actions: parse::<Action>("actions", input.actions)?,
        stop: input.stop,
    };
    rule.validate()
        .map_err(|error| ApiError::Unprocessable(error.to_string()))?;
    Ok(rule)
}

/// Routing rules in the order they run.
#[utoipa::path(
    get, path = "/rules", tag = "rules",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Rule>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_rules(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Rule>>> {
    caller.require_admin()?;
    Ok(Json(rules_out(&state).await?))
}

async fn rule_by_id(state: &AppState, id: i64) -> ApiResult<Rule> {
    rules_out(state)
        .await?
        .into_iter()
        .find(|rule| rule.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("there is no rule #{id}")))
}

/// Moves a rule to another place in the order; the others keep theirs relative to each other.
#[utoipa::path(
    post, path = "/rules/{id}/move", tag = "rules",
    params(("id" = i64, Path, description = "The rule id")),
    request_body = RuleMoveInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The rule in its new place", body = Rule),
        (status = 400, description = "The id or body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The position is not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn move_rule(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<RuleMoveInput>,
) -> ApiResult<Json<Rule>> {
    caller.require_admin()?;
    if input.position == 0 {
        return Err(ApiError::Unprocessable(
            "position counts from 1 (the rule that runs first)".into(),
        ));
    }
    manage::move_rule(&state.store, id, RuleMove::To(input.position)).await?;
    Ok(Json(rule_by_id(&state, id).await?))
}

/// The newest tickets (up to 200) the rule would change as the rules stand, tried as they
/// arrived; also those its conditions match where an earlier rule stops first.
#[utoipa::path(
    get, path = "/rules/{id}/preview", tag = "rules",
    params(("id" = i64, Path, description = "The rule id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<RuleMatch>),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn preview_rule(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<RuleMatch>>> {
    caller.require_admin()?;
    let stored = rule_store::list(&state.store).await?;
    let at = stored
        .iter()
        .position(|rule| rule.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("there is no rule #{id}")))?;
    let samples = rule_store::recent_samples(&state.store, RECENT_TICKETS).await?;
    let rows = rule_check::preview(&stored, at, &samples, &state.config.business_hours);
    Ok(Json(
        rows.into_iter()
            .map(|(number, outcome)| {
                let subject = samples
                    .iter()
                    .find(|s| s.number == number)
                    .map_or_else(String::new, |s| s.facts.subject.clone());
                let (applies, stopped_by, overridden) = match outcome {
                    Outcome::Applies { overridden } => (
                        true,
                        None,
                        overridden
                            .into_iter()
                            .map(|(field, by)| RuleOverride {
                                field: field.as_str().to_owned(),
                                by: stored[by].id,
                            })
                            .collect(),
                    ),
                    Outcome::StoppedBefore { rule } => (false, Some(stored[rule].id), Vec::new()),
                };
                RuleMatch {
                    ticket: number.get(),
                    subject,
                    applies,
                    stopped_by,
                    overridden,
                }
            })
            .collect(),
    ))
}

/// Adds a rule after the existing ones.
#[utoipa::path(
    post, path = "/rules", tag = "rules",
    request_body = RuleInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The rule was added", body = Rule),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The rule conflicts with the stored ones", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The rule is not valid; the detail says where", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_rule(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<RuleInput>,
) -> ApiResult<(StatusCode, Json<Rule>)> {
    caller.require_admin()?;
    let rule = rule_of(input, 0)?;
    let created = rule_store::create(&state.store, rule.into(), Utc::now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(rule_by_id(&state, created.id).await?),
    ))
}

/// Replaces a rule's name, switches, conditions and actions; it keeps its place.
#[utoipa::path(
    put, path = "/rules/{id}", tag = "rules",
    params(("id" = i64, Path, description = "The rule id")),
    request_body = RuleInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The rule as stored", body = Rule),
        (status = 400, description = "The id or body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The rule conflicts with the stored ones", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The rule is not valid; the detail says where", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_rule(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<RuleInput>,
) -> ApiResult<Json<Rule>> {
    caller.require_admin()?;
    rule_by_id(&state, id).await?;
    let rule = rule_of(input, id)?;
    manage::update_rule(&state.store, &rule, Utc::now()).await?;
    Ok(Json(rule_by_id(&state, id).await?))
}

/// Deletes a rule.
#[utoipa::path(
    delete, path = "/rules/{id}", tag = "rules",
    params(("id" = i64, Path, description = "The rule id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_rule(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    rule_by_id(&state, id).await?;
    manage::delete_rule(&state.store, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The job queue, newest first: assignment, delivery, notifications, SLA checks, webhooks;
/// each job with the ticket it is about.
#[utoipa::path(
    get, path = "/jobs", tag = "jobs",
    params(JobFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Job>),
        (status = 400, description = "The queue, state or limit is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<JobFilter>,
) -> ApiResult<Json<Vec<Job>>> {
    caller.require_admin()?;
    let limit = page_size(filter.limit, 100, 500).map_err(ApiError::BadRequest)?;
    fn given(value: &Option<String>) -> Option<&str> {
        value.as_deref().filter(|v| !v.is_empty())
    }
    let state_filter = given(&filter.state);
    if let Some(other) = state_filter.filter(|s| !crate::jobs::STATES.contains(s)) {
        return Err(ApiError::BadRequest(format!(
            "unknown job state {other:?} (Pending, Running, Done, Failed, Killed)"
        )));
    }
    let queue = given(&filter.queue);
    if let Some(other) = queue.filter(|q| !crate::jobs::QUEUES.contains(q)) {
        return Err(ApiError::BadRequest(format!(
            "unknown queue {other:?} ({})",
            crate::jobs::QUEUES.join(", ")
        )));
    }
    let jobs = crate::jobs::query(
        &state.store,
        &crate::jobs::JobQuery {
            queue,
            status: state_filter,
            before: given(&filter.before),
            limit,
        },
    )
    .await?;
    Ok(Json(jobs.into_iter().map(Job::from).collect()))
}

/// Puts a failed or killed job back in the queue, due now with its attempts reset.
#[utoipa::path(
    post, path = "/jobs/{id}/retry", tag = "jobs",
    params(("id" = String, Path, description = "The job id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Queued again"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is not failed, or no longer exists", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retry_job(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    if crate::store::jobs::retry(&state.store, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::Conflict(format!(
            "job {id} is not failed (or no longer exists), so there is nothing to retry"
        )))
    }
}

/// An API token as lists show it; the token itself is shown only when it is made.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Token {
    pub id: i64,
    pub name: String,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    pub agent_id: i64,
    pub agent_email: String,
    /// admin or agent.
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<TokenInfo> for Token {
    fn from(t: TokenInfo) -> Self {
        Token {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            agent_id: t.agent_id,
            agent_email: t.agent_email,
            role: t.role,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    Admin,
    Agent,
}

/// A token to make.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenInput {
    /// What uses the token, e.g. "CRM sync".
    #[schema(min_length = 1)]
    pub name: String,
    /// The agent the token acts as; the caller when left out.
    #[serde(default)]
    pub agent_id: Option<i64>,
    /// At most the agent's own role; the agent's role when left out.
    #[serde(default)]
    pub role: Option<TokenRole>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The bearer token. It is shown only now; only its hash is stored.
    pub token: String,
    #[serde(flatten)]
    pub info: Token,
}

/// API tokens, newest first.
#[utoipa::path(
    get, path = "/tokens", tag = "tokens",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Token>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Token>>> {
    caller.require_admin()?;
    let tokens = api_tokens::list(&state.store).await?;
    Ok(Json(tokens.into_iter().map(Token::from).collect()))
}

/// Makes a token for an agent; the answer holds the token, which is never shown again.
#[utoipa::path(
    post, path = "/tokens", tag = "tokens",
    request_body = NewTokenInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The token", body = CreatedToken),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The agent may not hold such a token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewTokenInput>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    caller.require_admin()?;
    let agent_id = input.agent_id.unwrap_or(caller.id());
    let role = match input.role {
        Some(TokenRole::Admin) => Role::Admin,
        Some(TokenRole::Agent) => Role::Agent,
        None => {
            let agents = crate::store::agents::list_agents(&state.store).await?;
            let agent = agents
                .iter()
                .find(|agent| agent.id == agent_id)
                .ok_or_else(|| ApiError::NotFound(format!("there is no agent #{agent_id}")))?;
            agent.role.parse().unwrap_or(Role::Agent)
        }
    };
    if input.name.trim().is_empty() {
        return Err(ApiError::Unprocessable(
            "name must say what uses the token".into(),
        ));
    }
    let made = api_tokens::create(&state.store, agent_id, &input.name, role, Utc::now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: made.token,
            info: made.info.into(),
        }),
    ))
}

/// Revokes a token; it stops working at once. A token cannot revoke itself.
#[utoipa::path(
    delete, path = "/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "The token id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The token used for this request", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    if id == caller.owner.token_id {
        return Err(ApiError::Conflict(
            "a token cannot revoke itself; use another admin token or `helpdesk token revoke`"
                .into(),
        ));
    }
    api_tokens::revoke(&state.store, id, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
