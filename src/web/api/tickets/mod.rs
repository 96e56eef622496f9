//! Tickets: the list with the web page's filters, one ticket with its conversation, new tickets
//! on behalf of a customer, replies, notes and changes.

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use helpdesk_channel::{ChannelKind, Identity, InboundMessage};
use sha2::{Digest, Sha256};

use super::caller::Caller;
use super::model::{
    self, MergeRequest, NewText, NewTicket, PostedMessage, TicketChanges, TicketDetail,
    TicketFilter, TicketPage, page_size,
};
use super::problem::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Problem};
use crate::domain::{MessageKind, Priority, Status};
use crate::intake::{Intake, Outcome};
use crate::ops::{self, ChangedBy, TicketChange};
use crate::store::api_tokens::{self, RememberedAnswer};
use crate::store::manage::{self, Change};
use crate::store::views::{self, AssigneeFilter, Cursor, ListQuery, Sort};
use crate::store::{on_pool, outbound};
use crate::web::AppState;

/// Most tickets per page.
const MAX_PAGE: i64 = 200;

fn list_query(filter: &TicketFilter, caller: &Caller) -> ApiResult<ListQuery> {
    let bad = ApiError::BadRequest;
    let (status, active_only) = match filter.status.as_deref().unwrap_or("") {
        "" => (None, false),
        "active" => (None, true),
        other => (
            Some(
                other
                    .parse::<Status>()
                    .map_err(|error| bad(error.to_string()))?,
            ),
            false,
        ),
    };
    let assignee = match filter.assignee.as_deref().unwrap_or("") {
        "" => AssigneeFilter::Anyone,
        "none" => AssigneeFilter::Unassigned,
        "me" => AssigneeFilter::Agent(caller.id()),
        other => AssigneeFilter::Agent(other.parse().map_err(|_| {
            bad(format!(
                "assignee {other:?} is not an agent id, \"me\" or \"none\""
            ))
        })?),
    };
    let sort = match filter.sort.as_deref().unwrap_or("") {
        "" => Sort::default(),
        other => Sort::parse(other).ok_or_else(|| {
            bad(format!(
                "unknown sort {other:?} (updated_desc, updated_asc, created_desc, created_asc)"
            ))
        })?,
    };
    let after =
        match filter.cursor.as_deref().unwrap_or("") {
            "" => None,
            text => Some(Cursor::decode(text).ok_or_else(|| {
                bad("the cursor is damaged; start again from the first page".into())
            })?),
        };
    let text = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
    Ok(ListQuery {
        visibility: caller.visibility(),
        status,
        active_only,
        priority: filter.priority.map(Priority::from),
        department_id: filter.department,
        assignee,
        channel: text(&filter.channel),
        tag: text(&filter.tag),
        customer_id: filter.customer,
        search: text(&filter.q),
        sla: None,
        sort,
        after,
        limit: page_size(filter.limit, 50, MAX_PAGE).map_err(bad)?,
    })
}

/// The list's query string with another cursor.
fn page_link(filter: &TicketFilter, cursor: &str) -> String {
    let limit = filter.limit.map(|limit| limit.to_string());
    let department = filter.department.map(|id| id.to_string());
    let customer = filter.customer.map(|id| id.to_string());
    let priority = filter.priority.map(|p| Priority::from(p).as_str());
    let pairs = [
        ("status", filter.status.as_deref()),
        ("priority", priority),
        ("department", department.as_deref()),
        ("assignee", filter.assignee.as_deref()),
        ("channel", filter.channel.as_deref()),
        ("tag", filter.tag.as_deref()),
        ("customer", customer.as_deref()),
        ("q", filter.q.as_deref()),
        ("sort", filter.sort.as_deref()),
        ("limit", limit.as_deref()),
        ("cursor", Some(cursor)),
    ];
    let kept: Vec<(&str, &str)> = pairs
        .into_iter()
        .filter_map(|(key, value)| value.filter(|v| !v.is_empty()).map(|v| (key, v)))
        .collect();
    format!(
        "/api/v1/tickets?{}",
        serde_urlencoded::to_string(kept).unwrap_or_default()
    )
}

/// Tickets the token may see, with the web list's filters, newest change first; keyset pages.
#[utoipa::path(
    get, path = "/tickets", tag = "tickets",
    params(TicketFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of tickets; the Link header names the next page", body = TicketPage),
        (status = 400, description = "A filter or the cursor is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<TicketFilter>,
) -> ApiResult<Response> {
    let query = list_query(&filter, &caller)?;
    let page = views::list_tickets(&state.store, &query).await?;
    let next_cursor = page.next.map(|cursor| cursor.encode());
    let next = next_cursor.as_deref().map(|c| page_link(&filter, c));
    let mut response = axum::Json(TicketPage {
        items: page.tickets.into_iter().map(model::Ticket::from).collect(),
        next_cursor,
        next: next.clone(),
    })
    .into_response();
    if let Some(next) = next
        && let Ok(link) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\""))
    {
        response.headers_mut().insert("link", link);
    }
    Ok(response)
}

/// The API's view of one ticket.
pub async fn detail(state: &AppState, number: i64) -> ApiResult<TicketDetail> {
    let facts = views::ticket_facts(&state.store, number)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no ticket #{number}")))?;
    let detail = crate::store::tickets::detail(&state.store, number)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no ticket #{number}")))?;
    Ok(TicketDetail {
        ticket: detail.summary.into(),
        department_id: facts.department_id,
        assignee_id: facts.assignee_id,
        merged_into: facts.merged_into,
        linked_to: detail.linked_to,
        linked_from: detail.linked_from,
        tags: views::tags(&state.store, facts.id).await?,
        messages: detail.messages.into_iter().map(Into::into).collect(),
        history: detail.history.into_iter().map(Into::into).collect(),
    })
}

/// One ticket with its messages (notes included), tags and history.
#[utoipa::path(
    get, path = "/tickets/{number}", tag = "tickets",
    params(("number" = i64, Path, description = "The ticket number, e.g. 1042")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = TicketDetail),
        (status = 400, description = "The number is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket the token may see", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(number): ApiPath<i64>,
) -> ApiResult<axum::Json<TicketDetail>> {
    caller.visible_ticket(&state, number).await?;
    Ok(axum::Json(detail(&state, number).await?))
}

/// Checks a mail address enough to deliver to it: one `@`, something on both sides, no spaces
/// or characters that would break a header.
fn mail_address(text: &str) -> ApiResult<String> {
    let address = text.trim().to_lowercase();
    let valid = address.len() <= 254
        && address.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c));
    if valid {
        Ok(address)
    } else {
        Err(ApiError::Unprocessable(format!(
            "customer_email {text:?} is not a mail address such as carla@example.org"
        )))
    }
}

/// A header value: one line, with non-ASCII text as an RFC 2047 encoded word.
fn header_text(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.is_ascii() {
        return line;
    }
    let mut encoded = String::from("=?utf-8?q?");
    for byte in line.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => encoded.push(char::from(byte)),
            b' ' => encoded.push('_'),
            other => encoded.push_str(&format!("={other:02X}")),
        }
    }
    encoded.push_str("?=");
    encoded
}

/// The new ticket as a mail from the customer, kept as the raw message like any other arrival.
fn raw_mail(
    new: &NewTicket,
    address: &str,
    message_id: &str,
    support: &str,
    agent_id: i64,
) -> Vec<u8> {
    let from = match new.customer_name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => format!("{} <{address}>", header_text(name)),
        _ => address.to_owned(),
    };
    let body = new.body.replace("\r\n", "\n").replace('\n', "\r\n");
    format!(
        "From: {from}\r\nTo: {support}\r\nSubject: {}\r\nMessage-ID: <{message_id}>\r\n\
         Date: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\nX-Helpdesk-Created-By: api, agent #{agent_id}\r\n\r\n{body}\r\n",
        header_text(new.subject.trim()),
        Utc::now().to_rfc2822(),
    )
    .into_bytes()
}

/// The Message-ID of a ticket made through the API: derived from the idempotency key, so a
/// repeated create is the same message (intake drops it as a duplicate), else random.
fn api_message_id(support: &str, agent_id: i64, key: Option<&str>) -> String {
    let domain = support
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .filter(|domain| !domain.is_empty())
        .unwrap_or("helpdesk.invalid");
    let unique = match key {
        Some(key) => hex::encode(&Sha256::digest(format!("{agent_id}\n{key}").as_bytes())[..16]),
        None => format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
    };
    format!("api.{unique}@{domain}")
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= 255)
        .ok_or_else(|| {
            ApiError::BadRequest(
                "the Idempotency-Key header must be 1 to 255 characters of plain text".into(),
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// Opens a ticket on behalf of a customer, as if they had mailed it: the customer is found or
/// created by address and answered by mail. With an `Idempotency-Key` header, repeating the
/// request (same key, same body) returns the first answer and creates nothing.
#[utoipa::path(
    post, path = "/tickets", tag = "tickets",
    request_body = NewTicket,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a repeated create return the first answer")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The ticket was opened (or, for a repeated key, had been)", body = TicketDetail,
            headers(("Idempotent-Replayed" = String, description = "`true` when this answer repeats the one to an earlier request with the same key; absent on the request that opened the ticket"))),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such department", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The ticket could not be stored as asked", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid, or the key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(new): ApiJson<NewTicket>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let request_hash = hex::encode(Sha256::digest(
        serde_json::to_vec(&new).map_err(|error| ApiError::Internal(error.to_string()))?,
    ));
    if let Some(key) = &key
        && let Some(answer) = api_tokens::remembered(&state.store, caller.id(), key).await?
    {
        return replay(answer, &request_hash);
    }
    let subject = new.subject.trim();
    if subject.is_empty() || subject.chars().count() > 500 {
        return Err(ApiError::Unprocessable(
            "subject must be 1 to 500 characters".into(),
        ));
    }
    if new.body.trim().is_empty() {
        return Err(ApiError::Unprocessable("body must not be empty".into()));
    }
    let address = mail_address(&new.customer_email)?;
    if let Some(department) = new.department_id {
        let known = crate::store::agents::departments(&state.store)
            .await?
            .iter()
            .any(|d| d.id == department);
        if !known {
            return Err(ApiError::NotFound(format!(
                "there is no department #{department}"
            )));
        }
    }
    let support = &state.config.support_address;
    let message_id = api_message_id(support, caller.id(), key.as_deref());
    let message = InboundMessage {
        channel: ChannelKind::Email,
        external_id: message_id.clone(),
        sender: Identity {
            channel: ChannelKind::Email,
            address: address.clone(),
            display_name: new
                .customer_name
                .as_deref()
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned),
        },
        subject: Some(subject.to_owned()),
        text: new.body.replace("\r\n", "\n"),
        html: None,
        attachments: Vec::new(),
        thread: Default::default(),
        automation: Default::default(),
        sent_at: None,
        raw: raw_mail(&new, &address, &message_id, support, caller.id()),
    };
    let intake = Intake::new(
        state.store.clone(),
        state.config.attachments.clone(),
        state.config.intake_limits,
    );
    let outcome = intake.accept(message).await?;
    // A duplicate message is this key's ticket, made by an earlier or concurrent request.
    let replayed = matches!(outcome, Outcome::Duplicate);
    let number = match outcome {
        Outcome::Created { number, .. } => {
            let change = TicketChange {
                priority: new.priority.map(Into::into),
                department: new.department_id.map(Some),
                reason: Some("set when the ticket was created through the API".to_owned()),
                ..TicketChange::default()
            };
            let by = ChangedBy {
                agent_id: caller.id(),
                now: Utc::now(),
            };
            ops::apply(&state.store, number.into(), by, &change).await?;
            number
        }
        // The same key raced another request: answer with the ticket that one made.
        Outcome::Duplicate => ticket_of_message(&state, &message_id).await?,
        Outcome::Threaded { number, .. } | Outcome::Bounced { number, .. } => number,
        Outcome::Rejected { reason } => return Err(ApiError::Unprocessable(reason)),
    };
    let body = serde_json::to_string(&detail(&state, number).await?)
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    if let Some(key) = &key {
        let answer = RememberedAnswer {
            request_hash: request_hash.clone(),
            status: StatusCode::CREATED.as_u16(),
            body: body.clone(),
        };
        let kept = api_tokens::remember(
            &state.store,
            caller.id(),
            key,
            &answer,
            !replayed,
            Utc::now(),
        )
        .await?;
        // A concurrent request may have opened the ticket and remembered its answer first:
        // give the one kept.
        if !kept && let Some(kept) = api_tokens::remembered(&state.store, caller.id(), key).await? {
            return replay(kept, &request_hash);
        }
    }
    Ok(created(number, body, replayed))
}

fn created(number: i64, body: String, replayed: bool) -> Response {
    let mut response = (
        StatusCode::CREATED,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/tickets/{number}")) {
        response.headers_mut().insert(LOCATION, location);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn replay(answer: RememberedAnswer, request_hash: &str) -> ApiResult<Response> {
    if answer.request_hash != request_hash {
        return Err(ApiError::Unprocessable(
            "this Idempotency-Key was used for a different request; use a new key for a new \
             ticket"
                .into(),
        ));
    }
    let number = serde_json::from_str::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|body| body.get("number").and_then(serde_json::Value::as_i64))
        .unwrap_or_default();
    Ok(created(number, answer.body, true))
}

async fn ticket_of_message(state: &AppState, external_id: &str) -> ApiResult<i64> {
    let number: Option<i64> = on_pool!(&state.store, pool => sqlx::query_scalar(
        "SELECT t.number FROM messages m JOIN tickets t ON t.id = m.ticket_id
         WHERE m.channel = 'email' AND m.external_id = $1",
    )
    .bind(external_id)
    .fetch_optional(pool)
    .await)
    .map_err(crate::store::StoreError::from)?;
    number.ok_or_else(|| ApiError::Conflict("the same request is being handled; try again".into()))
}

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
    let external_id =
        ops::new_mail_message_id(&state.config.support_address, number.into());
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

/// Changes status, priority, department or assignee. Each change that differs from the ticket
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
    if ops::apply(&state.store, number.into(), by, &changes.into()).await? {
        state.live.wake();
    }
    Ok(axum::Json(detail(&state, number).await?))
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
        let plan = manage::merge_plan(&state.store, number, request.into).await?;
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
    Ok(axum::Json(detail(&state, request.into).await?))
}
