//! The customers: the list with search, a page per customer (identities, tickets, rename,
//! merging two records of the same person), and the customer panel of the ticket page.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::AppState;
use super::auth::{Posted, Viewer};
use super::error::{WebError, WebResult};
use super::pages::{Nav, render, see_other};
use crate::domain::TicketNumber;
use crate::store::customer_views::{self, CustomerRow, IdentityRow};
use crate::store::customers;
use crate::store::tickets::TicketSummary;
use crate::store::views::{self, ListQuery};

/// Customers per page of the list.
const PAGE: i64 = 50;
/// Tickets the customer page and the ticket page's panel show before linking to the list.
const CUSTOMER_TICKETS: i64 = 50;
const PANEL_TICKETS: i64 = 10;

/// A customer with their identities, as pages show them.
pub struct CustomerItem {
    pub id: i64,
    pub name: Option<String>,
    /// The name, else the first handle or address: what lists call them.
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub tickets: i64,
    pub identities: Vec<IdentityRow>,
}

async fn with_identities(state: &AppState, rows: Vec<CustomerRow>) -> WebResult<Vec<CustomerItem>> {
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let identities = customer_views::identities(&state.store, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let identities: Vec<IdentityRow> = identities
                .iter()
                .filter(|identity| identity.customer_id == row.id)
                .cloned()
                .collect();
            CustomerItem {
                label: row
                    .name
                    .clone()
                    .or_else(|| {
                        identities.first().map(|i| match &i.handle {
                            Some(handle) => format!("@{handle}"),
                            None => i.address.clone(),
                        })
                    })
                    .unwrap_or_else(|| format!("customer #{}", row.id)),
                id: row.id,
                name: row.name,
                created_at: row.created_at,
                tickets: row.tickets,
                identities,
            }
        })
        .collect())
}

/// The customer `id`, if the viewer may see them (an agent: through one of their tickets);
/// else the same 404 as for one that does not exist.
async fn customer(state: &AppState, viewer: &Viewer, id: i64) -> WebResult<CustomerItem> {
    let row = customer_views::find(&state.store, viewer.visibility(), id)
        .await?
        .ok_or_else(|| {
            WebError::NotFound(format!(
                "There is no customer #{id}; it may have been merged into another record."
            ))
        })?;
    with_identities(state, vec![row])
        .await?
        .pop()
        .ok_or_else(|| WebError::NotFound(format!("There is no customer #{id}.")))
}

/// What lists call customer `id` (their name, else a handle or address), if the viewer may see
/// them.
pub async fn label(state: &AppState, viewer: &Viewer, id: i64) -> WebResult<Option<String>> {
    let Some(row) = customer_views::find(&state.store, viewer.visibility(), id).await? else {
        return Ok(None);
    };
    Ok(with_identities(state, vec![row])
        .await?
        .pop()
        .map(|customer| customer.label))
}

/// The customer's newest tickets the viewer may see, and whether there are more.
async fn tickets_of(
    state: &AppState,
    viewer: &Viewer,
    customer_id: i64,
    limit: i64,
) -> WebResult<(Vec<TicketSummary>, bool)> {
    let mut page = views::list_tickets(
        &state.store,
        &ListQuery {
            visibility: viewer.visibility(),
            customer_id: Some(customer_id),
            reader: Some(viewer.id()),
            limit,
            ..ListQuery::default()
        },
    )
    .await?;
    super::tickets::mark_due(&mut page.tickets, &state.config.sla, Utc::now());
    Ok((page.tickets, page.next.is_some()))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct ListParams {
    q: String,
    /// The last customer id of the previous page.
    after: String,
}

#[derive(Template)]
#[template(path = "web/customers.html")]
struct ListPage {
    nav: Option<Nav>,
    q: String,
    customers: Vec<CustomerItem>,
    next_page: Option<String>,
    first_page: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<ListParams>,
) -> WebResult<Response> {
    let after = match params.after.as_str() {
        "" => 0,
        text => text.parse().map_err(|_| {
            WebError::BadRequest("The page link is damaged; start from the first page.".into())
        })?,
    };
    let mut rows = customer_views::list(
        &state.store,
        viewer.visibility(),
        Some(params.q.as_str()),
        after,
        PAGE + 1,
    )
    .await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let link = |after: Option<i64>| {
        let mut pairs = Vec::new();
        if !params.q.trim().is_empty() {
            pairs.push(("q", params.q.trim().to_owned()));
        }
        if let Some(after) = after {
            pairs.push(("after", after.to_string()));
        }
        format!(
            "/customers?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    };
    let next_page = more
        .then(|| rows.last().map(|row| link(Some(row.id))))
        .flatten();
    let first_page = (after > 0).then(|| link(None));
    render(&ListPage {
        nav: Nav::of(&viewer, "customers"),
        customers: with_identities(&state, rows).await?,
        q: params.q,
        next_page,
        first_page,
    })
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct ShowParams {
    /// Set after a merge: the record that was merged into this one.
    merged: String,
}

#[derive(Template)]
#[template(path = "web/customer.html")]
struct CustomerPage {
    nav: Option<Nav>,
    csrf: String,
    is_admin: bool,
    customer: CustomerItem,
    tickets: Vec<TicketSummary>,
    more_tickets: bool,
    /// The viewer sees only some of the customer's tickets.
    some_hidden: bool,
    merged: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(params): Query<ShowParams>,
) -> WebResult<Response> {
    let customer = customer(&state, &viewer, id).await?;
    let (tickets, more_tickets) = tickets_of(&state, &viewer, id, CUSTOMER_TICKETS).await?;
    render(&CustomerPage {
        nav: Nav::of(&viewer, "customers"),
        csrf: viewer.csrf().to_owned(),
        is_admin: viewer.is_admin(),
        some_hidden: !more_tickets && tickets.len() as i64 != customer.tickets,
        customer,
        tickets,
        more_tickets,
        merged: Some(params.merged).filter(|merged| !merged.is_empty()),
    })
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct RenameForm {
    name: String,
}

/// Agents (of customers they may see) and admins may rename: a name is what the people
/// answering call the customer.
pub async fn rename(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<RenameForm>,
) -> WebResult<Response> {
    customer(&state, &posted.viewer, id).await?;
    customers::rename(&state.store, id, &posted.form.name).await?;
    Ok(see_other(&format!("/customers/{id}")))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct MergeParams {
    /// The other record: its number, or words of its name or address.
    other: String,
}

#[derive(Template)]
#[template(path = "web/customer_merge.html")]
struct MergePage {
    nav: Option<Nav>,
    csrf: String,
    keep: CustomerItem,
    other_text: String,
    /// The record chosen to merge into `keep`, when the text named exactly one.
    other: Option<CustomerItem>,
    /// Records the text may mean, when it named several (or none).
    candidates: Vec<CustomerItem>,
}

/// Merging moves tickets between records whatever their departments, and cannot be undone:
/// admins only.
fn may_merge(viewer: &Viewer) -> WebResult<()> {
    if viewer.is_admin() {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "Only admins merge customer records, as it moves tickets of every department and \
             cannot be undone; ask an admin."
                .into(),
        ))
    }
}

/// The confirmation: which record goes on, and what moves to it from the other.
pub async fn merge_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(params): Query<MergeParams>,
) -> WebResult<Response> {
    may_merge(&viewer)?;
    let keep = customer(&state, &viewer, id).await?;
    let text = params.other.trim().trim_start_matches('#');
    let (other, candidates) = match text.parse::<i64>() {
        Ok(other_id) if other_id == id => {
            return Err(WebError::Conflict(
                "A customer record cannot be merged into itself; choose the other record.".into(),
            ));
        }
        Ok(other_id) => (Some(customer(&state, &viewer, other_id).await?), Vec::new()),
        Err(_) if text.is_empty() => (None, Vec::new()),
        Err(_) => {
            let rows = customer_views::list(&state.store, viewer.visibility(), Some(text), 0, PAGE)
                .await?;
            let mut found = with_identities(&state, rows).await?;
            found.retain(|candidate| candidate.id != id);
            if found.len() == 1 {
                (found.pop(), Vec::new())
            } else {
                (None, found)
            }
        }
    };
    render(&MergePage {
        nav: Nav::of(&viewer, "customers"),
        csrf: viewer.csrf().to_owned(),
        keep,
        other_text: params.other,
        other,
        candidates,
    })
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct MergeForm {
    other: String,
}

pub async fn merge(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<MergeForm>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    may_merge(&viewer)?;
    let other: i64 = posted.form.other.trim().parse().map_err(|_| {
        WebError::BadRequest(format!(
            "{:?} is not a customer record number",
            posted.form.other
        ))
    })?;
    customers::merge(&state.store, id, other, viewer.id(), Utc::now()).await?;
    Ok(see_other(&format!("/customers/{id}?merged={other}")))
}

/// What the ticket page shows of its customer.
pub struct CustomerPanel {
    pub customer: CustomerItem,
    /// Their other tickets the viewer may see, newest change first.
    pub others: Vec<TicketSummary>,
    pub more: bool,
}

pub async fn panel(
    state: &AppState,
    viewer: &Viewer,
    number: TicketNumber,
) -> WebResult<CustomerPanel> {
    let row = customer_views::of_ticket(&state.store, number)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("There is no ticket #{number}.")))?;
    let customer = with_identities(state, vec![row])
        .await?
        .pop()
        .ok_or_else(|| WebError::NotFound(format!("There is no ticket #{number}.")))?;
    let (mut others, more) = tickets_of(state, viewer, customer.id, PANEL_TICKETS + 1).await?;
    others.retain(|ticket| ticket.number != number);
    let more = more || others.len() as i64 > PANEL_TICKETS;
    others.truncate(PANEL_TICKETS as usize);
    Ok(CustomerPanel {
        customer,
        others,
        more,
    })
}
