//! What an API token does to a ticket: reply, note, change, merge; each an operation of
//! [`crate::ops`].

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;

use super::detail;
use crate::domain::MessageKind;
use crate::ops::{self, ChangedBy};
use crate::store::manage::{self, Change};
use crate::store::outbound;
use crate::web::AppState;
use crate::web::api::caller::Caller;
use crate::web::api::model::{MergeRequest, NewText, PostedMessage, TicketChanges, TicketDetail};
use crate::web::api::problem::{ApiError, ApiJson, ApiPath, ApiResult, Problem};

async fn post_text(
    state: &AppState,
    caller: &Caller,
    number: i64,
    text: &str,
    kind: MessageKind,
) -> ApiResult<(StatusCode, axum::Json<PostedMessage>)> {
    caller.visible_ticket(state, number).await?;
    if text.trim().is_empty() {
        return Err(ApiError::Unprocessable("text must not be empty".into()));
    }
    let external_id = ops::new_mail_message_id(&state.config.support_address, number.into());
    let stored = ops::send_reply(
        &state.store,
        &outbound::NewReply {
            number,
            agent_id: caller.id(),
            text,
            kind,
            external_id: Some(&external_id),
            channels_here: &state.config.channels_here(),
            now: Utc::now(),
        },
    )
    .await?;
    state.live.wake();
    Ok((
        StatusCode::CREATED,
        axum::Json(PostedMessage {
            ticket: number,
            message_id: stored.message_id,
            delivery_status: stored.to_deliver.then(|| "pending".to_owned()),
        }),
    ))
}

/// Answers the customer: the reply is stored and delivered on the ticket's channel by the job
/// queue (retried with backoff). A first reply opens a new ticket.
#[utoipa::path(
    post, path = "/tickets/{number}/replies", tag = "tickets",
    params(("number" = i64, Path, description = "The ticket number")),
    request_body = NewText,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored and queued for delivery", body = PostedMessage),
        (status = 400, description = "The number or body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket the token may see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The ticket is closed or was merged into another, or its channel (e.g. email) is not enabled on any running instance: the detail names the channel and its setting (e.g. `email.enabled`); nothing was stored", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The text is empty", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reply(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(number): ApiPath<i64>,
    ApiJson(body): ApiJson<NewText>,
) -> ApiResult<(StatusCode, axum::Json<PostedMessage>)> {
    post_text(&state, &caller, number, &body.text, MessageKind::Public).await
}

/// Adds an internal note, which the customer never sees.
#[utoipa::path(
    post, path = "/tickets/{number}/notes", tag = "tickets",
    params(("number" = i64, Path, description = "The ticket number")),
    request_body = NewText,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The note was added", body = PostedMessage),
        (status = 400, description = "The number or body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket the token may see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The ticket is closed or was merged into another", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The text is empty", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn note(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(number): ApiPath<i64>,
    ApiJson(body): ApiJson<NewText>,
) -> ApiResult<(StatusCode, axum::Json<PostedMessage>)> {
    post_text(&state, &caller, number, &body.text, MessageKind::Internal).await
}

/// Changes status, priority, department, assignee or tags. Each change that differs from the ticket
/// is a history event naming the token's agent and the reason. Status moves follow the
/// workflow (a closed ticket stays closed).
#[utoipa::path(
    patch, path = "/tickets/{number}", tag = "tickets",
    params(("number" = i64, Path, description = "The ticket number")),
    request_body = TicketChanges,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The ticket after the changes", body = TicketDetail),
        (status = 400, description = "The number or body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket, department or agent", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The workflow does not allow the status change", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field has an invalid value", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(number): ApiPath<i64>,
    ApiJson(changes): ApiJson<TicketChanges>,
) -> ApiResult<axum::Json<TicketDetail>> {
    caller.visible_ticket(&state, number).await?;
    let by = ChangedBy {
        agent_id: caller.id(),
        now: Utc::now(),
    };
    let change = ops::TicketChange::try_from(changes)
        .map_err(|error| ApiError::Unprocessable(error.to_string()))?;
    if ops::apply(&state.store, number.into(), by, &change).await? {
        state.live.wake();
    }
    Ok(axum::Json(detail(&state, caller.id(), number).await?))
}

/// Merges the ticket in the path (a duplicate) into `into`: its messages and tags move there,
/// it closes with `merged_into` pointing at `into`, and both histories say so. Tickets of
/// different customers are merged only with `confirm_different_customers: true`.
#[utoipa::path(
    post, path = "/tickets/{number}/merge", tag = "tickets",
    params(("number" = i64, Path, description = "The number of the duplicate")),
    request_body = MergeRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The ticket that goes on, after the merge", body = TicketDetail),
        (status = 400, description = "The number or body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "One of the tickets does not exist or the token may not see it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A ticket is closed, both are the same, or they belong to different customers and `confirm_different_customers` is not true (the detail says whose messages would move where)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field has an invalid value", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn merge(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(number): ApiPath<i64>,
    ApiJson(request): ApiJson<MergeRequest>,
) -> ApiResult<axum::Json<TicketDetail>> {
    caller.visible_ticket(&state, number).await?;
    caller.visible_ticket(&state, request.into).await?;
    if !request.confirm_different_customers && number != request.into {
        let plan = manage::merge_plan(&state.store, number.into(), request.into.into()).await?;
        if !plan.same_customer() {
            return Err(ApiError::Conflict(format!(
                "#{number} and #{} belong to different customers. {} Send \
                 \"confirm_different_customers\": true to merge them anyway.",
                request.into,
                plan.sentence()
            )));
        }
    }
    let change = Change {
        agent_id: caller.id(),
        reason: request.reason.as_deref(),
        now: Utc::now(),
    };
    ops::merge(
        &state.store,
        number.into(),
        request.into.into(),
        request.confirm_different_customers,
        &change,
    )
    .await?;
    state.live.wake();
    Ok(axum::Json(detail(&state, caller.id(), request.into).await?))
}
