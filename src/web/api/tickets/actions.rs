//! What an API token does to a ticket: reply, note, change, merge; each an operation of
//! [`crate::ops`].

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use chrono::Utc;
use helpdesk_channel::Attachment;

use super::detail;
use crate::domain::MessageKind;
use crate::domain::TicketNumber;
use crate::ops::{self, ChangedBy};
use crate::store::canned::{self, Pick};
use crate::store::manage::{self, Change};
use crate::store::outbound;
use crate::web::api::caller::Caller;
use crate::web::api::model::{
    MergeRequest, NewText, NewTextWithFiles, PostedMessage, TicketChanges, TicketDetail,
};
use crate::web::api::problem::{ApiError, ApiJson, ApiPath, ApiResult, Problem};
use crate::web::{AppState, upload};

/// A reply or note as the API takes it: a JSON [`NewText`], or the same fields as a
/// `multipart/form-data` form with files ([`NewTextWithFiles`]).
pub struct PostedText {
    text: NewText,
    files: Vec<Attachment>,
}

impl FromRequest<AppState> for PostedText {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        if !upload::is_multipart(request.headers()) {
            let ApiJson(text) = ApiJson::<NewText>::from_request(request, state).await?;
            return Ok(PostedText {
                text,
                files: Vec::new(),
            });
        }
        let multipart = Multipart::from_request(request, state)
            .await
            .map_err(|error| ApiError::BadRequest(error.body_text()))?;
        let upload = upload::read(multipart, &state.config.intake_limits)
            .await
            .map_err(|error| ApiError::BadRequest(error.to_string()))?;
        if let Some(why) = upload.too_large {
            return Err(ApiError::TooLarge(why));
        }
        let text = serde_urlencoded::from_str(&upload.urlencoded())
            .map_err(|error| ApiError::Unprocessable(format!("form fields: {error}")))?;
        Ok(PostedText {
            text,
            files: upload.files,
        })
    }
}

async fn post_text(
    state: &AppState,
    caller: &Caller,
    number: TicketNumber,
    posted: PostedText,
    kind: MessageKind,
) -> ApiResult<(StatusCode, axum::Json<PostedMessage>)> {
    caller.visible_ticket(state, number).await?;
    let text = posted.text.text;
    let canned = posted.text.canned_response_id;
    if canned.is_some() && kind == MessageKind::Internal {
        return Err(ApiError::Unprocessable(
            "canned_response_id is for replies, not notes".into(),
        ));
    }
    match (text.trim().is_empty(), canned) {
        (true, None) => return Err(ApiError::Unprocessable("text must not be empty".into())),
        (false, Some(_)) => {
            return Err(ApiError::Unprocessable(
                "send either text or canned_response_id, not both".into(),
            ));
        }
        _ => {}
    }
    let files = ops::keep_files(&state.config.attachments, posted.files).await?;
    let external_id = crate::domain::new_mail_message_id(&state.config.support_address, number);
    let channels_here = state.config.channels_here();
    let reply = outbound::NewReply {
        number,
        agent_id: caller.id(),
        text: &text,
        kind,
        external_id: Some(&external_id),
        channels_here: &channels_here,
        now: Utc::now(),
    };
    let last_seen = posted.text.last_seen_message_id;
    let stored = match canned {
        Some(id) => {
            // One the token cannot use is a bad field, not a missing page.
            if canned::visible(&state.store, caller.id(), id)
                .await?
                .is_none()
            {
                return Err(ApiError::Unprocessable(format!(
                    "there is no canned response {id} you can use"
                )));
            }
            ops::canned::reply_with(&state.store, &reply, Pick::Id(id), &files, last_seen)
                .await?
                .reply
        }
        None => ops::send_reply_as_seen(&state.store, &reply, &files, last_seen).await?,
    };
    state.live.wake();
    Ok((
        StatusCode::CREATED,
        axum::Json(PostedMessage {
            ticket: number.get(),
            message_id: stored.message_id,
            delivery_status: stored.to_deliver.then(|| "pending".to_owned()),
        }),
    ))
}

/// Answers the customer: the reply is stored and delivered on the ticket's channel by the job
/// queue (retried with backoff), with its files attached when sent as `multipart/form-data`.
/// A first reply opens a new ticket. With `canned_response_id` the canned response's body is
/// the text (placeholders filled in) and its actions apply in the same commit.
#[utoipa::path(
    post, path = "/tickets/{number}/replies", tag = "tickets",
    params(("number" = i64, Path, description = "The ticket number")),
    request_body(
        description = "The text (or a canned response) as JSON, or the same fields and files as a multipart form (files go out with the reply on the customer's channel)",
        content((NewText = "application/json"), (NewTextWithFiles = "multipart/form-data"))
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored and queued for delivery", body = PostedMessage),
        (status = 400, description = "The number or body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket the token may see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The ticket is closed or was merged into another, or its channel (e.g. email) is not enabled on any running instance: the detail names the channel and its setting (e.g. `email.enabled`); or `last_seen_message_id` is older than messages the caller has not seen: the detail names their ids. Nothing was stored", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A file is larger than `intake.max_attachment_bytes`, or the form larger than `intake.max_message_bytes`; nothing was stored", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The text is empty, both text and `canned_response_id` were sent, or the canned response is not one the token's agent may use", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reply(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(number): ApiPath<TicketNumber>,
    posted: PostedText,
) -> ApiResult<(StatusCode, axum::Json<PostedMessage>)> {
    post_text(&state, &caller, number, posted, MessageKind::Public).await
}

/// Adds an internal note, which the customer never sees; files sent as `multipart/form-data`
/// stay with it on the ticket.
#[utoipa::path(
    post, path = "/tickets/{number}/notes", tag = "tickets",
    params(("number" = i64, Path, description = "The ticket number")),
    request_body(
        description = "The text as JSON, or the text and files as a multipart form",
        content((NewText = "application/json"), (NewTextWithFiles = "multipart/form-data"))
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The note was added", body = PostedMessage),
        (status = 400, description = "The number or body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket the token may see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The ticket is closed or was merged into another, or `last_seen_message_id` is older than messages the caller has not seen (the detail names their ids); nothing was stored", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A file or the form is larger than the limits; nothing was stored", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The text is empty", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn note(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(number): ApiPath<TicketNumber>,
    posted: PostedText,
) -> ApiResult<(StatusCode, axum::Json<PostedMessage>)> {
    post_text(&state, &caller, number, posted, MessageKind::Internal).await
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
    ApiPath(number): ApiPath<TicketNumber>,
    ApiJson(changes): ApiJson<TicketChanges>,
) -> ApiResult<axum::Json<TicketDetail>> {
    caller.visible_ticket(&state, number).await?;
    let by = ChangedBy {
        agent_id: caller.id(),
        now: Utc::now(),
    };
    let change = ops::TicketChange::try_from(changes)
        .map_err(|error| ApiError::Unprocessable(error.to_string()))?;
    if ops::apply(&state.store, number, by, &change).await? {
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
    ApiPath(number): ApiPath<TicketNumber>,
    ApiJson(request): ApiJson<MergeRequest>,
) -> ApiResult<axum::Json<TicketDetail>> {
    caller.visible_ticket(&state, number).await?;
    let into = TicketNumber(request.into);
    caller.visible_ticket(&state, into).await?;
    if !request.confirm_different_customers && number != into {
        let plan = manage::merge_plan(&state.store, number, into).await?;
        if !plan.same_customer() {
            return Err(ApiError::Conflict(format!(
                "#{number} and #{} belong to different customers. {} Send \
                 \"confirm_different_customers\": true to merge them anyway.",
                into,
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
        number,
        into,
        request.confirm_different_customers,
        &change,
    )
    .await?;
    state.live.wake();
    Ok(axum::Json(detail(&state, caller.id(), into).await?))
}
