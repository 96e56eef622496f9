//! One change to many tickets through the API: [`crate::ops::bulk`], all or nothing.

use axum::extract::State;
use chrono::Utc;

use crate::domain::TicketNumber;
use crate::ops::{self, ChangedBy};
use crate::web::AppState;
use crate::web::api::caller::Caller;
use crate::web::api::model::{BulkChanges, BulkResult};
use crate::web::api::problem::{ApiError, ApiJson, ApiResult, Problem};

/// Changes status, priority, department, assignee or tags of many tickets in one
/// transaction, as `PATCH /tickets/{number}` does for one: each ticket's changes are one
/// group of its history with the token's agent and the reason. An unknown number, one the
/// token may not see, or a change one ticket refuses (a closed ticket cannot open again)
/// leaves every ticket as it was.
#[utoipa::path(
    post, path = "/tickets/bulk", tag = "tickets",
    request_body = BulkChanges,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Which tickets changed and which had these values already", body = BulkResult),
        (status = 400, description = "The body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A number names no ticket the token may see; nothing was changed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "One ticket refuses the change (the workflow, a disabled assignee, an unknown department or agent); the detail names it, and nothing was changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No numbers, more than 500, nothing to change, or a field has an invalid value", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn bulk(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<BulkChanges>,
) -> ApiResult<axum::Json<BulkResult>> {
    let change = ops::TicketChange::try_from(request.changes)
        .map_err(|error| ApiError::Unprocessable(error.to_string()))?;
    let numbers: Vec<TicketNumber> = request.numbers.into_iter().map(TicketNumber).collect();
    let by = ChangedBy {
        agent_id: caller.id(),
        now: Utc::now(),
    };
    let outcome =
        ops::bulk::apply(&state.store, &numbers, caller.visibility(), by, &change).await?;
    if !outcome.changed.is_empty() {
        state.live.wake();
    }
    let plain = |list: Vec<TicketNumber>| list.into_iter().map(TicketNumber::get).collect();
    Ok(axum::Json(BulkResult {
        changed: plain(outcome.changed),
        unchanged: plain(outcome.unchanged),
    }))
}
