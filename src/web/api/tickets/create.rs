//! New tickets on behalf of a customer: a mail made from the request goes through intake, so
//! the ticket is threaded, ruled and assigned as any mail would be; an idempotency key makes
//! a repeated request answer with the same ticket.

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use helpdesk_channel::{ChannelKind, Identity, InboundMessage};
use sha2::{Digest, Sha256};

use super::detail;
use crate::domain::TicketNumber;
use crate::intake::{Intake, Outcome};
use crate::ops::{self, ChangedBy, TicketChange};
use crate::store::api_tokens::{self, RememberedAnswer};
use crate::web::AppState;
use crate::web::api::caller::Caller;
use crate::web::api::model::{NewTicket, TicketDetail};
use crate::web::api::problem::{ApiError, ApiJson, ApiResult, Problem};

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
            handle: None,
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
            ops::apply(&state.store, number, by, &change).await?;
            number
        }
        // The same key raced another request: answer with the ticket that one made.
        Outcome::Duplicate => ticket_of_message(&state, &message_id).await?,
        Outcome::Threaded { number, .. } | Outcome::Bounced { number, .. } => number,
        Outcome::Rejected { reason } => return Err(ApiError::Unprocessable(reason)),
    };
    let body = serde_json::to_string(&detail(&state, caller.id(), number).await?)
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

fn created(number: TicketNumber, body: String, replayed: bool) -> Response {
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
        .map(TicketNumber)
        .unwrap_or_default();
    Ok(created(number, answer.body, true))
}

async fn ticket_of_message(state: &AppState, external_id: &str) -> ApiResult<TicketNumber> {
    let number = crate::store::tickets::number_of_message(
        &state.store,
        helpdesk_channel::ChannelKind::Email,
        external_id,
    )
    .await?;
    number.ok_or_else(|| ApiError::Conflict("the same request is being handled; try again".into()))
}
