//! Webhooks (admins): URLs that ticket events are posted to, signed, with retries.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller::Caller;
use super::model::page_size;
use super::problem::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Problem};
use crate::store::webhooks::{self, Delivery, Webhook};
use crate::web::AppState;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookOut {
    pub id: i64,
    pub url: String,
    /// The events posted: ticket.created, ticket.updated, ticket.status_changed,
    /// ticket.assigned, message.added, ticket.rated, or `*` for all.
    pub events: Vec<String>,
    pub description: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<Webhook> for WebhookOut {
    fn from(hook: Webhook) -> Self {
        WebhookOut {
            events: hook.events.split(',').map(str::to_owned).collect(),
            id: hook.id,
            url: hook.url,
            description: hook.description,
            active: hook.active,
            created_at: hook.created_at,
        }
    }
}

/// A webhook to register.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// An http:// or https:// URL that receives a POST per event.
    #[schema(example = "https://crm.example.org/helpdesk-events")]
    pub url: String,
    /// ticket.created, ticket.updated, ticket.status_changed, ticket.assigned, message.added,
    /// ticket.rated, or `*` for all.
    pub events: Vec<String>,
    /// The signing secret; a random one is made when left out.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A registered webhook with its signing secret, shown only now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookOut,
    /// The key of the HMAC-SHA256 in `X-Helpdesk-Signature`.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryOut {
    pub id: i64,
    pub event: String,
    /// pending, delivered or failed.
    pub status: String,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        DeliveryOut {
            id: d.id,
            event: d.event,
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            last_attempt_at: d.last_attempt_at,
            delivered_at: d.delivered_at,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// Registered webhooks.
#[utoipa::path(
    get, path = "/webhooks", tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<WebhookOut>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<WebhookOut>>> {
    caller.require_admin()?;
    let hooks = webhooks::list(&state.store).await?;
    Ok(Json(hooks.into_iter().map(WebhookOut::from).collect()))
}

/// Registers a URL for ticket events. The answer holds the signing secret, shown only now.
#[utoipa::path(
    post, path = "/webhooks", tag = "webhooks",
    request_body = NewWebhook,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Registered", body = CreatedWebhook),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The URL or an event is not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewWebhook>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    caller.require_admin()?;
    let events = webhooks::validate(&new.url, &new.events).map_err(ApiError::Unprocessable)?;
    let secret = match new.secret.as_deref().map(str::trim) {
        Some(secret) if secret.len() >= 16 => secret.to_owned(),
        Some(_) => {
            return Err(ApiError::Unprocessable(
                "a secret needs at least 16 characters; leave it out to get a random one".into(),
            ));
        }
        None => crate::store::sessions::random_token()?,
    };
    let hook = webhooks::create(
        &state.store,
        &new.url,
        &secret,
        &events,
        new.description.as_deref().unwrap_or(""),
        Utc::now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: hook.into(),
            secret,
        }),
    ))
}

/// Removes a webhook; events are no longer posted to it.
#[utoipa::path(
    delete, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "The webhook id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    webhooks::delete(&state.store, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's deliveries, newest first: what was sent, how often, and what came back.
#[utoipa::path(
    get, path = "/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path, description = "The webhook id"), DeliveryFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<DeliveryOut>),
        (status = 400, description = "The id or limit is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(filter): ApiQuery<DeliveryFilter>,
) -> ApiResult<Json<Vec<DeliveryOut>>> {
    caller.require_admin()?;
    let limit = page_size(filter.limit, 100, 500).map_err(ApiError::BadRequest)?;
    webhooks::find(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no webhook #{id}")))?;
    let rows = webhooks::deliveries(&state.store, id, limit).await?;
    Ok(Json(rows.into_iter().map(DeliveryOut::from).collect()))
}
