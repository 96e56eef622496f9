//! Customers, agents and departments.

use axum::Json;
use axum::extract::State;
use chrono::Utc;

use super::caller::Caller;
use super::model::{
    Agent, Customer, CustomerDetail, CustomerFilter, CustomerMerge, CustomerPage, CustomerRename,
    Department, Identity, Tag, Ticket, page_size,
};
use super::problem::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Problem};
use crate::store::customer_views::{self, CustomerRow};
use crate::store::customers;
use crate::store::views::{self, ListQuery};
use crate::web::AppState;

async fn with_identities(state: &AppState, rows: Vec<CustomerRow>) -> ApiResult<Vec<Customer>> {
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let identities = customer_views::identities(&state.store, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| Customer {
            identities: identities
                .iter()
                .filter(|identity| identity.customer_id == row.id)
                .map(|identity| Identity {
                    channel: identity.channel.clone(),
                    address: identity.address.clone(),
                    display_name: identity.display_name.clone(),
                    handle: identity.handle.clone(),
                })
                .collect(),
            id: row.id,
            name: row.name,
            created_at: row.created_at,
            ticket_count: row.tickets,
        })
        .collect())
}

/// Customers in the order they first wrote, optionally those matching `q`: part of a name, an
/// address or a chat account's id, name or handle (with or without `@`), in any case. An agent's token lists the customers
/// of the tickets it may see (their departments' and their own); an admin's lists all.
#[utoipa::path(
    get, path = "/customers", tag = "customers",
    params(CustomerFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of customers", body = CustomerPage),
        (status = 400, description = "The cursor or limit is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn customers(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<CustomerFilter>,
) -> ApiResult<Json<CustomerPage>> {
    let limit = page_size(filter.limit, 50, 200).map_err(ApiError::BadRequest)?;
    let after = match filter.cursor.as_deref().unwrap_or("") {
        "" => 0,
        text => text
            .parse()
            .map_err(|_| ApiError::BadRequest("the cursor is damaged; start again".into()))?,
    };
    let mut rows = customer_views::list(
        &state.store,
        caller.visibility(),
        filter.q.as_deref(),
        after,
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or_default());
    let next_cursor = more
        .then(|| rows.last().map(|row| row.id.to_string()))
        .flatten();
    let next = next_cursor.as_ref().map(|cursor| {
        let mut pairs = vec![("cursor", cursor.clone()), ("limit", limit.to_string())];
        if let Some(q) = filter.q.as_ref().filter(|q| !q.is_empty()) {
            pairs.push(("q", q.clone()));
        }
        format!(
            "/api/v1/customers?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    });
    Ok(Json(CustomerPage {
        items: with_identities(&state, rows).await?,
        next_cursor,
        next,
    }))
}

/// One customer with their addresses and the tickets the token may see (newest change first,
/// at most 100; `GET /tickets?customer=` pages through all). An agent's token gets 404 for a
/// customer none of whose tickets it may see.
#[utoipa::path(
    get, path = "/customers/{id}", tag = "customers",
    params(("id" = i64, Path, description = "The customer id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = CustomerDetail),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer (or merged into another), or none of their tickets is the agent's to see", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn customer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<CustomerDetail>> {
    Ok(Json(detail(&state, &caller, id).await?))
}

async fn detail(state: &AppState, caller: &Caller, id: i64) -> ApiResult<CustomerDetail> {
    let gone = || {
        ApiError::NotFound(format!(
            "there is no customer #{id} (it may have been merged into another record)"
        ))
    };
    let row = customer_views::find(&state.store, caller.visibility(), id)
        .await?
        .ok_or_else(gone)?;
    let customer = with_identities(state, vec![row])
        .await?
        .pop()
        .ok_or_else(gone)?;
    let page = views::list_tickets(
        &state.store,
        &ListQuery {
            visibility: caller.visibility(),
            customer_id: Some(id),
            limit: 100,
            ..ListQuery::default()
        },
    )
    .await?;
    Ok(CustomerDetail {
        customer,
        tickets: page.tickets.into_iter().map(Ticket::from).collect(),
    })
}

/// Renames a customer (admins, and agents who may see the customer).
#[utoipa::path(
    patch, path = "/customers/{id}", tag = "customers",
    params(("id" = i64, Path, description = "The customer id")),
    request_body = CustomerRename,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The customer after the change", body = CustomerDetail),
        (status = 400, description = "The id or body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer, or none of their tickets is the agent's to see", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The name is too long", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CustomerRename>,
) -> ApiResult<Json<CustomerDetail>> {
    // Only a customer the caller may see: the same 404 as for one that does not exist.
    detail(&state, &caller, id).await?;
    let name = body.name.unwrap_or_default();
    if name.trim().chars().count() > customers::MAX_NAME_CHARS {
        return Err(ApiError::Unprocessable(format!(
            "name: at most {} characters",
            customers::MAX_NAME_CHARS
        )));
    }
    customers::rename(&state.store, id, &name).await?;
    Ok(Json(detail(&state, &caller, id).await?))
}

/// Merges the customer record `other_id` into the customer of the path, the same person (admins
/// only): its identities, tickets and messages move over, each moved ticket's history records
/// it, and `other_id` is deleted; later messages from its addresses join the kept customer.
#[utoipa::path(
    post, path = "/customers/{id}/merge", tag = "customers",
    params(("id" = i64, Path, description = "The customer that goes on")),
    request_body = CustomerMerge,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The kept customer after the merge", body = CustomerDetail),
        (status = 400, description = "The id or body is not readable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent token: only admins merge customers", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "One of the two records does not exist (or was merged meanwhile)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A record cannot be merged into itself", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is JSON but not a merge (a missing or unknown field)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn merge(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CustomerMerge>,
) -> ApiResult<Json<CustomerDetail>> {
    caller.require_admin()?;
    customers::merge(&state.store, id, body.other_id, caller.id(), Utc::now()).await?;
    Ok(Json(detail(&state, &caller, id).await?))
}

/// Agents and admins.
#[utoipa::path(
    get, path = "/agents", tag = "agents",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Agent>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn agents(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Vec<Agent>>> {
    let agents = crate::store::agents::list_agents(&state.store).await?;
    Ok(Json(agents.into_iter().map(Agent::from).collect()))
}

/// Departments tickets are routed to.
#[utoipa::path(
    get, path = "/departments", tag = "departments",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Department>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn departments(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<Vec<Department>>> {
    let departments = crate::store::agents::departments(&state.store).await?;
    Ok(Json(
        departments
            .into_iter()
            .map(|d| Department {
                id: d.id,
                name: d.name,
                assignment_strategy: d.assignment_strategy,
            })
            .collect(),
    ))
}

/// The tags on the tickets the token may see, most used first (at most 500).
#[utoipa::path(
    get, path = "/tags", tag = "tickets",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Tag>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn tags(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Tag>>> {
    let counts = crate::store::views::tag_counts(&state.store, caller.visibility()).await?;
    Ok(Json(
        counts
            .into_iter()
            .map(|count| Tag {
                tag: count.tag,
                tickets: count.tickets,
                active: count.active,
            })
            .collect(),
    ))
}
