//! Tickets: the list with the web page's filters and one ticket with its conversation; new
//! tickets on behalf of a customer are in [`create`], replies, notes, changes and merges in
//! [`actions`], one change to many tickets in [`bulk`].

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use super::caller::Caller;
use super::model::{self, TicketDetail, TicketFilter, TicketPage, page_size};
use super::problem::{ApiError, ApiPath, ApiQuery, ApiResult, Problem};
use crate::domain::{Priority, Status, TicketNumber};
use crate::store::views::{self, AssigneeFilter, Cursor, ListQuery, Sort};
use crate::web::AppState;

mod actions;
mod bulk;
mod create;
mod presence;

// Globs, so the OpenAPI path items utoipa generates beside each handler come along.
pub use actions::*;
pub use bulk::*;
pub use create::*;
pub use presence::*;

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
                "unknown sort {other:?} (updated_desc, updated_asc, created_desc, created_asc, relevance)"
            ))
        })?,
    };
    let cursor = |text: Option<&str>| match text.unwrap_or("") {
        "" => Ok(None),
        text => Cursor::decode(text)
            .map(Some)
            .ok_or_else(|| bad("the cursor is damaged; start again from the first page".into())),
    };
    let (after, before) = (
        cursor(filter.cursor.as_deref())?,
        cursor(filter.before.as_deref())?,
    );
    if after.is_some() && before.is_some() {
        return Err(bad("give `cursor` or `before`, not both".into()));
    }
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
        reader: Some(caller.id()),
        unread_only: filter.unread.unwrap_or(false),
        sort,
        after,
        before,
        count: true,
        limit: page_size(filter.limit, 50, MAX_PAGE).map_err(bad)?,
    })
}

/// The list's query string with another page: `("cursor", next)` or `("before", previous)`.
fn page_link(filter: &TicketFilter, (key, cursor): (&str, &str)) -> String {
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
        (
            "unread",
            filter.unread.filter(|unread| *unread).map(|_| "true"),
        ),
        ("sort", filter.sort.as_deref()),
        ("limit", limit.as_deref()),
        (key, Some(cursor)),
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

/// Tickets the token may see, with the web list's filters, newest change first; keyset pages
/// both ways, each with how many tickets match in all. Without `status` every status is
/// listed (the web page shows active ones).
#[utoipa::path(
    get, path = "/tickets", tag = "tickets",
    params(TicketFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of tickets; the Link header names the next and previous pages", body = TicketPage),
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
    let next = next_cursor
        .as_deref()
        .map(|c| page_link(&filter, ("cursor", c)));
    let previous_cursor = page.previous.map(|cursor| cursor.encode());
    let previous = previous_cursor
        .as_deref()
        .map(|c| page_link(&filter, ("before", c)));
    let links: Vec<String> = [(&next, "next"), (&previous, "prev")]
        .into_iter()
        .filter_map(|(link, rel)| link.as_ref().map(|link| format!("<{link}>; rel=\"{rel}\"")))
        .collect();
    let mut response = axum::Json(TicketPage {
        items: page.tickets.into_iter().map(model::Ticket::from).collect(),
        total: page.total.map(|total| total.count),
        total_at_least: page.total.is_some_and(|total| total.at_least),
        next_cursor,
        next,
        previous_cursor,
        previous,
    })
    .into_response();
    if !links.is_empty()
        && let Ok(link) = HeaderValue::from_str(&links.join(", "))
    {
        response.headers_mut().insert("link", link);
    }
    Ok(response)
}

/// The API's view of one ticket, `unread` as the agent `reader` stands.
pub async fn detail(
    state: &AppState,
    reader: i64,
    number: TicketNumber,
) -> ApiResult<TicketDetail> {
    let facts = views::ticket_facts(&state.store, number)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no ticket #{number}")))?;
    let detail = crate::store::tickets::detail(&state.store, number)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no ticket #{number}")))?;
    let mut summary = detail.summary;
    summary.unread = views::is_unread(&state.store, reader, facts.id).await?;
    Ok(TicketDetail {
        ticket: summary.into(),
        department_id: facts.department_id,
        assignee_id: facts.assignee_id,
        merged_into: facts.merged_into.map(TicketNumber::get),
        linked_to: detail.linked_to,
        linked_from: detail.linked_from,
        tags: views::tags(&state.store, facts.id).await?,
        messages: detail.messages.into_iter().map(Into::into).collect(),
        history: detail.history.into_iter().map(Into::into).collect(),
        sla: crate::store::sla::targets(&state.store, facts.id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
        satisfaction: super::surveys::of_ticket(state, facts.id).await?,
    })
}

/// One ticket with its messages (notes included), tags and history. Reading it marks its
/// messages seen for the token's agent (`unread` turns false).
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
    ApiPath(number): ApiPath<TicketNumber>,
) -> ApiResult<axum::Json<TicketDetail>> {
    let facts = caller.visible_ticket(&state, number).await?;
    let mut shown = detail(&state, caller.id(), number).await?;
    // What the answer holds is seen.
    if let Some(last) = shown.messages.iter().map(|message| message.id).max() {
        views::mark_seen(&state.store, caller.id(), facts.id, last).await?;
        shown.ticket.unread = false;
    }
    Ok(axum::Json(shown))
}
