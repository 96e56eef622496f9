//! The ticket list: filters, orders and keyset pages.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::AssertSqlSafe;

use super::search::{SEARCH_WALK_WINDOW, Search, SearchPlan, probe_search, search_clause};
use super::sla::{SlaFilter, sla_clauses};
use super::{ACTIVE_STATUSES, AssigneeFilter, Bind, Conditions, Visibility, visibility_clause};
use crate::domain::{Priority, Status};
use crate::store::tickets::TicketSummary;
use crate::store::{Backend, Result, Store, on_pool};

/// The orders the list offers; each pages by (column, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    UpdatedDesc,
    UpdatedAsc,
    CreatedDesc,
    CreatedAsc,
}

impl Sort {
    pub const ALL: &'static [(Sort, &'static str, &'static str)] = &[
        (Sort::UpdatedDesc, "updated_desc", "recently updated"),
        (Sort::UpdatedAsc, "updated_asc", "least recently updated"),
        (Sort::CreatedDesc, "created_desc", "newest"),
        (Sort::CreatedAsc, "created_asc", "oldest"),
    ];

    pub fn name(self) -> &'static str {
        Sort::ALL
            .iter()
            .find(|(sort, _, _)| *sort == self)
            .map_or("updated_desc", |(_, name, _)| name)
    }

    pub fn parse(name: &str) -> Option<Sort> {
        Sort::ALL
            .iter()
            .find(|(_, known, _)| *known == name)
            .map(|(sort, _, _)| *sort)
    }

    fn column(self) -> &'static str {
        match self {
            Sort::UpdatedDesc | Sort::UpdatedAsc => "updated_at",
            Sort::CreatedDesc | Sort::CreatedAsc => "created_at",
        }
    }

    fn descending(self) -> bool {
        matches!(self, Sort::UpdatedDesc | Sort::CreatedDesc)
    }
}

/// Where the next page starts: the sort value and id of the last ticket shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: i64,
}

impl Cursor {
    /// `nanoseconds_id`, for a URL.
    pub fn encode(&self) -> String {
        format!(
            "{}_{}",
            self.at.timestamp_nanos_opt().unwrap_or_default(),
            self.id
        )
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (nanos, id) = text.split_once('_')?;
        Some(Cursor {
            at: Utc.timestamp_nanos(nanos.parse().ok()?),
            id: id.parse().ok()?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub visibility: Visibility,
    pub status: Option<Status>,
    /// Only new, open and pending tickets.
    pub active_only: bool,
    pub priority: Option<Priority>,
    pub department_id: Option<i64>,
    pub assignee: AssigneeFilter,
    pub channel: Option<String>,
    pub tag: Option<String>,
    /// Only the tickets of this customer.
    pub customer_id: Option<i64>,
    pub search: Option<String>,
    pub sla: Option<SlaFilter>,
    pub sort: Sort,
    pub after: Option<Cursor>,
    pub limit: i64,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            visibility: Visibility::All,
            status: None,
            active_only: false,
            priority: None,
            department_id: None,
            assignee: AssigneeFilter::Anyone,
            channel: None,
            tag: None,
            customer_id: None,
            search: None,
            sla: None,
            sort: Sort::default(),
            after: None,
            limit: 50,
        }
    }
}

/// A page of tickets and where the next one starts, if there is one.
#[derive(Debug, Clone)]
pub struct TicketPage {
    pub tickets: Vec<TicketSummary>,
    pub next: Option<Cursor>,
}

const LIST_COLUMNS: &str = "t.id, t.number, t.subject, t.status, t.priority,
    d.name AS department, a.name AS assignee,
    COALESCE(c.name, (SELECT ci.address FROM customer_identities ci
                      WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1), '') AS customer,
    t.channel, t.created_at, t.updated_at";

/// One page of tickets matching `query`, in its order.
pub async fn list_tickets(store: &Store, query: &ListQuery) -> Result<TicketPage> {
    let search = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty());
    let Some(text) = search else {
        return list_page(store, query, None).await;
    };
    let probe = probe_search(store, text).await?;
    let search = |plan| Search {
        text,
        plan,
        customers: probe.customers,
    };
    if probe.common {
        let page = list_page(store, query, Some(search(SearchPlan::Walk))).await?;
        // Less than a page near the start of the list: the words are rare there after all.
        if page.next.is_some() {
            return Ok(page);
        }
    }
    list_page(store, query, Some(search(SearchPlan::Collect))).await
}

/// The page of a walking search: the first [`SEARCH_WALK_WINDOW`] tickets in the page's order,
/// each tested for the search.
fn walk_page(
    conditions: &mut Conditions,
    backend: Backend,
    search: Search<'_>,
    query: &ListQuery,
    column: &str,
    direction: &str,
) -> String {
    let window = conditions.placeholder(Bind::Int(SEARCH_WALK_WINDOW));
    let walked = format!(
        "SELECT t.* FROM tickets t {where_clause}
         ORDER BY t.{column} {direction}, t.id {direction} LIMIT {window}",
        where_clause = conditions.sql(),
    );
    let mut found = Conditions {
        clauses: Vec::new(),
        binds: std::mem::take(&mut conditions.binds),
    };
    search_clause(&mut found, backend, search);
    let limit = found.placeholder(Bind::Int(query.limit + 1));
    conditions.binds = found.binds;
    format!(
        "SELECT t.* FROM ({walked}) t {where_clause}
         ORDER BY t.{column} {direction}, t.id {direction} LIMIT {limit}",
        where_clause = format_args!("WHERE {}", found.clauses.join(" AND ")),
    )
}

async fn list_page(
    store: &Store,
    query: &ListQuery,
    search: Option<Search<'_>>,
) -> Result<TicketPage> {
    let mut conditions = Conditions::default();
    visibility_clause(&mut conditions, query.visibility);
    if let Some(status) = query.status {
        let status = conditions.placeholder(Bind::Text(status.as_str().to_owned()));
        conditions.push(format!("t.status = {status}"));
    } else if query.active_only {
        conditions.push(format!("t.status IN {ACTIVE_STATUSES}"));
    }
    if let Some(priority) = query.priority {
        let priority = conditions.placeholder(Bind::Text(priority.as_str().to_owned()));
        conditions.push(format!("t.priority = {priority}"));
    }
    if let Some(department) = query.department_id {
        let department = conditions.placeholder(Bind::Int(department));
        conditions.push(format!("t.department_id = {department}"));
    }
    match query.assignee {
        AssigneeFilter::Anyone => {}
        AssigneeFilter::Unassigned => conditions.push("t.assignee_id IS NULL".into()),
        AssigneeFilter::Agent(agent_id) => {
            let agent = conditions.placeholder(Bind::Int(agent_id));
            conditions.push(format!("t.assignee_id = {agent}"));
        }
    }
    if let Some(channel) = &query.channel {
        let channel = conditions.placeholder(Bind::Text(channel.clone()));
        conditions.push(format!("t.channel = {channel}"));
    }
    if let Some(tag) = &query.tag {
        let tag = conditions.placeholder(Bind::Text(tag.trim().to_lowercase()));
        conditions.push(format!(
            "t.id IN (SELECT ticket_id FROM ticket_tags WHERE tag = {tag})"
        ));
    }
    if let Some(customer) = query.customer_id {
        let customer = conditions.placeholder(Bind::Int(customer));
        conditions.push(format!("t.customer_id = {customer}"));
    }
    if let Some(filter) = &query.sla {
        sla_clauses(&mut conditions, filter);
    }
    let column = query.sort.column();
    let (direction, comparison) = if query.sort.descending() {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    if let Some(after) = query.after {
        let at = conditions.placeholder(Bind::Time(after.at));
        let id = conditions.placeholder(Bind::Int(after.id));
        conditions.push(format!("(t.{column}, t.id) {comparison} ({at}, {id})"));
    }
    // The page is chosen on `tickets` alone, so the sort index drives it; names are looked up
    // for the page's rows only. A walking search tests the first tickets in the page's order.
    let chosen = match search {
        Some(
            walk @ Search {
                plan: SearchPlan::Walk,
                ..
            },
        ) => walk_page(
            &mut conditions,
            store.backend(),
            walk,
            query,
            column,
            direction,
        ),
        None | Some(_) => {
            if let Some(search) = search {
                search_clause(&mut conditions, store.backend(), search);
            }
            let limit = conditions.placeholder(Bind::Int(query.limit + 1));
            format!(
                "SELECT t.* FROM tickets t {where_clause}
                 ORDER BY t.{column} {direction}, t.id {direction} LIMIT {limit}",
                where_clause = conditions.sql(),
            )
        }
    };
    let sql = format!(
        "SELECT {LIST_COLUMNS}
         FROM ({chosen}) t
         JOIN customers c ON c.id = t.customer_id
         LEFT JOIN departments d ON d.id = t.department_id
         LEFT JOIN agents a ON a.id = t.assignee_id
         ORDER BY t.{column} {direction}, t.id {direction}"
    );
    let mut tickets: Vec<TicketSummary> = on_pool!(store, pool => {
        bind_all!(sqlx::query_as(AssertSqlSafe(sql.clone())), &conditions.binds)
            .fetch_all(pool)
            .await
    })?;
    let next = if tickets.len() as i64 > query.limit {
        tickets.truncate(query.limit.max(0) as usize);
        tickets.last().map(|last| Cursor {
            at: match query.sort {
                Sort::UpdatedDesc | Sort::UpdatedAsc => last.updated_at,
                Sort::CreatedDesc | Sort::CreatedAsc => last.created_at,
            },
            id: last.id,
        })
    } else {
        None
    };
    Ok(TicketPage { tickets, next })
}

/// Distinct ticket channels and tags, for the filter menus.
pub async fn tag_names(store: &Store) -> Result<Vec<String>> {
    let rows = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT DISTINCT tag FROM ticket_tags ORDER BY tag LIMIT 200",
    )
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}
