//! Who else has a ticket open in the pages, and who is writing on it (see
//! [`crate::web::presence`]).

use axum::extract::State;

use crate::domain::TicketNumber;
use crate::web::AppState;
use crate::web::api::caller::Caller;
use crate::web::api::problem::{ApiPath, ApiResult, Problem};
use crate::web::presence::Person;

/// The agents on a ticket's page right now.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TicketPresence {
    pub number: i64,
    /// Everyone but the token's owner, by name; `typing` while they write a reply or note.
    pub people: Vec<Person>,
}

#[utoipa::path(
    get, path = "/tickets/{number}/presence", tag = "tickets",
    params(("number" = i64, Path, description = "The ticket number, e.g. 1042")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = TicketPresence),
        (status = 400, description = "The number is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket the token may see", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn presence(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(number): ApiPath<TicketNumber>,
) -> ApiResult<axum::Json<TicketPresence>> {
    caller.visible_ticket(&state, number).await?;
    Ok(axum::Json(TicketPresence {
        number: number.get(),
        people: state.live.presence().people(number, caller.id()),
    }))
}
