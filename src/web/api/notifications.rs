//! The token's own agent's choice of how they are told of each event, over the API; the same
//! choices as the form on `/account`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller::Caller;
use super::problem::{ApiError, ApiJson, ApiResult, Problem};
use crate::domain::notice::NoticeEvent;
use crate::store::notices::{self, Preference};
use crate::web::AppState;
use crate::web::notifications::parse_way;

/// How the agent is told of one event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Way {
    /// `chat`, `mail`, `both` or `none`: the way in force.
    #[schema(example = "chat")]
    pub how: String,
    /// True when the agent did not choose: the default (chat with a linked chat account,
    /// else mail) applies.
    pub default: bool,
}

impl From<&Preference> for Way {
    fn from(preference: &Preference) -> Way {
        Way {
            how: preference.way.as_str().to_owned(),
            default: preference.is_default,
        }
    }
}

/// How the agent is told of each event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Notifications {
    /// A ticket is assigned to them (not when they take it themselves).
    pub assigned: Way,
    /// The customer writes on a ticket assigned to them.
    pub customer_replied: Way,
    /// A ticket assigned to them nears its SLA target.
    pub sla_warning: Way,
    /// A ticket of their department (any ticket, for admins) misses its SLA target.
    pub sla_breached: Way,
    /// Another agent names them with `@name` in an internal note.
    pub mentioned: Way,
}

/// The events to change, each `chat`, `mail`, `both`, `none` or `default`; left out: unchanged.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationsInput {
    #[serde(default)]
    pub assigned: Option<String>,
    #[serde(default)]
    pub customer_replied: Option<String>,
    #[serde(default)]
    pub sla_warning: Option<String>,
    #[serde(default)]
    pub sla_breached: Option<String>,
    #[serde(default)]
    pub mentioned: Option<String>,
}

async fn current(state: &AppState, agent_id: i64) -> ApiResult<Notifications> {
    let preferences = notices::preferences(&state.store, agent_id).await?;
    let of = |event: NoticeEvent| -> ApiResult<Way> {
        preferences
            .iter()
            .find(|p| p.event == event)
            .map(Way::from)
            .ok_or_else(|| ApiError::Internal(format!("no preference for {event}")))
    };
    Ok(Notifications {
        assigned: of(NoticeEvent::Assigned)?,
        customer_replied: of(NoticeEvent::CustomerReplied)?,
        sla_warning: of(NoticeEvent::SlaWarning)?,
        sla_breached: of(NoticeEvent::SlaBreached)?,
        mentioned: of(NoticeEvent::Mentioned)?,
    })
}

/// How the token's agent is told of what concerns them.
#[utoipa::path(
    get, path = "/account/notifications", tag = "agents",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The way of each event", body = Notifications),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn show(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Notifications>> {
    Ok(Json(current(&state, caller.id()).await?))
}

/// Chooses how the token's agent is told of some events; the others stay as they are.
#[utoipa::path(
    put, path = "/account/notifications", tag = "agents",
    request_body = NotificationsInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Saved; the way of each event now", body = Notifications),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown event or way", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NotificationsInput>,
) -> ApiResult<Json<Notifications>> {
    let mut changes = Vec::new();
    for (event, value) in [
        (NoticeEvent::Assigned, &input.assigned),
        (NoticeEvent::CustomerReplied, &input.customer_replied),
        (NoticeEvent::SlaWarning, &input.sla_warning),
        (NoticeEvent::SlaBreached, &input.sla_breached),
        (NoticeEvent::Mentioned, &input.mentioned),
    ] {
        if let Some(value) = value {
            let way = parse_way(value)
                .map_err(|error| ApiError::Unprocessable(format!("{event}: {error}")))?;
            changes.push((event, way));
        }
    }
    notices::choose(&state.store, caller.id(), &changes).await?;
    Ok(Json(current(&state, caller.id()).await?))
}
