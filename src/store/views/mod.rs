//! What the web pages read: the ticket list with filters, search and keyset pagination, one
//! ticket's facts for access checks and forms, and the dashboard figures.

use chrono::{DateTime, Duration, TimeZone, Utc};
use sqlx::AssertSqlSafe;

use super::tickets::TicketSummary;
use super::{Backend, Result, Store, on_pool};
use crate::domain::sla::SlaTargets;
use crate::domain::{Priority, Status};

/// Statuses people still work on.
pub const ACTIVE_STATUSES: &str = "('new', 'open', 'pending')";

/// Whose tickets a query may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Admins: every ticket.
    All,
    /// An agent: tickets of their departments and those assigned to them.
    Agent(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeFilter {
    Anyone,
    Unassigned,
    Agent(i64),
}

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

/// Where tickets stand against their SLA targets, as the dashboard counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaState {
    FirstResponseBreached,
    FirstResponseDueSoon,
    ResolutionBreached,
    ResolutionDueSoon,
}

impl SlaState {
    pub const ALL: &'static [(SlaState, &'static str, &'static str)] = &[
        (
            SlaState::FirstResponseBreached,
            "first_response_breached",
            "first response overdue",
        ),
        (
            SlaState::FirstResponseDueSoon,
            "first_response_due_soon",
            "first response due within an hour",
        ),
        (
            SlaState::ResolutionBreached,
            "resolution_breached",
            "resolution overdue",
        ),
        (
            SlaState::ResolutionDueSoon,
            "resolution_due_soon",
            "resolution due within an hour",
        ),
    ];

    pub fn parse(name: &str) -> Option<SlaState> {
        Self::ALL
            .iter()
            .find(|(_, key, _)| *key == name)
            .map(|(state, _, _)| *state)
    }
}

/// Only active tickets in an SLA state at `now`, under `targets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaFilter {
    pub state: SlaState,
    pub targets: SlaTargets,
    pub now: DateTime<Utc>,
}

/// The clauses that pick the tickets of an SLA filter: the same rule as the dashboard's
/// figures (a target is missed when the ticket is older than its priority allows).
fn sla_clauses(conditions: &mut Conditions, filter: &SlaFilter) {
    let first = matches!(
        filter.state,
        SlaState::FirstResponseBreached | SlaState::FirstResponseDueSoon
    );
    let soon = matches!(
        filter.state,
        SlaState::FirstResponseDueSoon | SlaState::ResolutionDueSoon
    );
    let minutes = |priority: Priority| {
        if first {
            filter.targets.first_response.get(priority)
        } else {
            filter.targets.resolution.get(priority)
        }
    };
    let overdue_at = |conditions: &mut Conditions, at: DateTime<Utc>| {
        let parts: Vec<String> = Priority::ALL
            .iter()
            .map(|priority| {
                let name = conditions.placeholder(Bind::Text(priority.as_str().to_owned()));
                let limit = conditions.placeholder(Bind::Time(at - minutes(*priority)));
                format!("(t.priority = {name} AND t.created_at < {limit})")
            })
            .collect();
        format!("({})", parts.join(" OR "))
    };
    conditions.push(format!("t.status IN {ACTIVE_STATUSES}"));
    if first {
        conditions.push("t.first_response_at IS NULL".into());
    }
    if soon {
        let breached = overdue_at(conditions, filter.now);
        conditions.push(format!("NOT {breached}"));
        let due = overdue_at(conditions, filter.now + DUE_SOON);
        conditions.push(due);
    } else {
        let due = overdue_at(conditions, filter.now);
        conditions.push(due);
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

enum Bind {
    Int(i64),
    Text(String),
    Time(DateTime<Utc>),
}

/// Collects a WHERE clause and its values, numbering placeholders as it goes.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Conditions {
    fn placeholder(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    fn push(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                Bind::Int(value) => query.bind(*value),
                Bind::Text(value) => query.bind(value.clone()),
                Bind::Time(value) => query.bind(*value),
            };
        }
        query
    }};
}

fn visibility_clause(conditions: &mut Conditions, visibility: Visibility) {
    if let Visibility::Agent(agent_id) = visibility {
        let me = conditions.placeholder(Bind::Int(agent_id));
        conditions.push(visible_to_agent("t", &me));
    }
}

/// Whether the ticket `ticket` (a table alias) is one the agent whose id is bound at
/// `agent` may see: theirs, or in one of their departments. The one rule for tickets and,
/// through their tickets, customers.
pub(crate) fn visible_to_agent(ticket: &str, agent: &str) -> String {
    format!(
        "({ticket}.assignee_id = {agent} OR {ticket}.department_id IN
            (SELECT department_id FROM agent_departments WHERE agent_id = {agent}))"
    )
}

/// An FTS5 query that finds every word as a word, whatever characters the words hold.
fn fts5_query(text: &str) -> String {
    text.split_whitespace()
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a search finds its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SearchPlan {
    /// Collect every matching ticket from the text indexes, then order them and take a page:
    /// fast while the words are rare.
    Collect,
    /// Walk the tickets in the page's order and test each for the words: fast when the words
    /// are common, as a page is found among the first few hundred tickets.
    Walk,
}

/// A search matching more tickets and messages than this walks the list instead of
/// collecting every match (at a million tickets a common word matches tens of thousands).
const COMMON_SEARCH: i64 = 5_000;
/// How many tickets, in the page's order, a walking search looks at before it collects
/// instead (a word common overall may be rare among recent tickets).
const SEARCH_WALK_WINDOW: i64 = 5_000;

/// How a search is run: its text, plan, and whether it names customers (their tickets match
/// as well).
#[derive(Debug, Clone, Copy)]
struct Search<'a> {
    text: &'a str,
    plan: SearchPlan,
    customers: bool,
}

/// The ids of the customers a search names, as SQL: an identity whose address is the text
/// (any case; the `lower(address)` index), or a name holding all its words (the name index).
/// `address` and `words` are placeholders; on SQLite `words` is an FTS5 query. A number
/// (`1042`, `#1042`) is looked up by address only (a chat account's id), never by name.
fn customer_source(backend: Backend, address: &str, words: Option<&str>) -> String {
    let by_address = format!(
        "SELECT customer_id FROM customer_identities WHERE lower(address) = lower({address})"
    );
    let Some(words) = words else {
        return by_address;
    };
    let by_name = match backend {
        Backend::Sqlite => {
            format!("SELECT rowid FROM customers_fts WHERE customers_fts MATCH {words}")
        }
        Backend::Postgres => format!(
            "SELECT id FROM customers
             WHERE to_tsvector('simple', COALESCE(name, '')) @@ plainto_tsquery('simple', {words})"
        ),
    };
    format!("{by_address} UNION {by_name}")
}

/// `1042` or `#1042`: a ticket number.
fn is_number(text: &str) -> bool {
    text.trim().trim_start_matches('#').parse::<i64>().is_ok()
}

fn search_clause(conditions: &mut Conditions, backend: Backend, search: Search<'_>) {
    let Search {
        text,
        plan,
        customers,
    } = search;
    let text = text.trim();
    // Collecting, the ticket with that number is one more source of the set: an OR beside
    // the set would make the database test every ticket.
    let (by_number, number_source) = match text.trim_start_matches('#').parse::<i64>() {
        Ok(number) => {
            let number = conditions.placeholder(Bind::Int(number));
            match plan {
                SearchPlan::Walk => (format!("t.number = {number} OR "), String::new()),
                SearchPlan::Collect => (
                    String::new(),
                    format!("SELECT id FROM tickets WHERE number = {number} UNION "),
                ),
            }
        }
        Err(_) => (String::new(), String::new()),
    };
    // The named customers' tickets join the same way as the number: one more source of the
    // collected set (from the `tickets (customer_id)` index), or one more test in the walk.
    let (by_customer, customer_tickets) = if customers {
        let address = conditions.placeholder(Bind::Text(text.to_owned()));
        let words = (!is_number(text)).then(|| {
            conditions.placeholder(Bind::Text(match backend {
                Backend::Sqlite => fts5_query(text),
                Backend::Postgres => text.to_owned(),
            }))
        });
        let source = customer_source(backend, &address, words.as_deref());
        match plan {
            SearchPlan::Walk => (format!("t.customer_id IN ({source}) OR "), String::new()),
            SearchPlan::Collect => (
                String::new(),
                format!("SELECT id FROM tickets WHERE customer_id IN ({source}) UNION "),
            ),
        }
    } else {
        (String::new(), String::new())
    };
    let clause = match (backend, plan) {
        (Backend::Sqlite, SearchPlan::Collect) => {
            let words = conditions.placeholder(Bind::Text(fts5_query(text)));
            format!(
                "t.id IN ({number_source}{customer_tickets}
                    SELECT rowid FROM tickets_fts WHERE tickets_fts MATCH {words}
                    UNION
                    SELECT m.ticket_id FROM messages_fts f JOIN messages m ON m.id = f.rowid
                    WHERE messages_fts MATCH {words})"
            )
        }
        (Backend::Sqlite, SearchPlan::Walk) => {
            // The ticket's messages first (CROSS JOIN keeps that order), then the index.
            let words = conditions.placeholder(Bind::Text(fts5_query(text)));
            format!(
                "({by_number}{by_customer}EXISTS (SELECT 1 FROM tickets_fts
                                    WHERE tickets_fts MATCH {words} AND rowid = t.id)
                  OR EXISTS (SELECT 1 FROM messages m CROSS JOIN messages_fts f ON f.rowid = m.id
                             WHERE m.ticket_id = t.id AND messages_fts MATCH {words}))"
            )
        }
        (Backend::Postgres, SearchPlan::Collect) => {
            let words = conditions.placeholder(Bind::Text(text.to_owned()));
            format!(
                "t.id IN ({number_source}{customer_tickets}
                    SELECT id FROM tickets
                    WHERE to_tsvector('simple', subject) @@ plainto_tsquery('simple', {words})
                    UNION
                    SELECT ticket_id FROM messages
                    WHERE to_tsvector('simple', left(body_text, 100000))
                          @@ plainto_tsquery('simple', {words}))"
            )
        }
        (Backend::Postgres, SearchPlan::Walk) => {
            let words = conditions.placeholder(Bind::Text(text.to_owned()));
            format!(
                // A scalar subquery, not EXISTS: PostgreSQL would turn an EXISTS beside an OR
                // into a hash of every matching message, which is the collecting it avoids.
                "({by_number}{by_customer}to_tsvector('simple', t.subject) @@ plainto_tsquery('simple', {words})
                  OR (SELECT TRUE FROM messages m
                      WHERE m.ticket_id = t.id
                        AND to_tsvector('simple', left(m.body_text, 100000))
                            @@ plainto_tsquery('simple', {words})
                      LIMIT 1))"
            )
        }
    };
    conditions.push(clause);
}

/// What the probe found out about a search before it is run.
struct Probe {
    /// So many subjects, messages and named customers' tickets match that walking the list
    /// finds a page sooner than collecting every match.
    common: bool,
    /// The text names at least one customer with tickets.
    customers: bool,
}

/// Counts, up to a cap, the subjects, messages and tickets of named customers that match
/// `text`: [`COMMON_SEARCH`] of each (on SQLite more, see below).
async fn probe_search(store: &Store, text: &str) -> Result<Probe> {
    let (matches, customer_tickets, common): (i64, i64, i64) = match store {
        Store::Sqlite { pool, .. } => {
            // FTS5 reads a word's whole list of rows to test one row, so walking costs about
            // a millisecond per ticket looked at: on SQLite only words in a fifth of the
            // tickets or more are walked.
            let tickets: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM tickets")
                .fetch_one(pool)
                .await?;
            let common = COMMON_SEARCH.max(tickets / 5);
            let sql = format!(
                "SELECT (SELECT COUNT(*) FROM (SELECT rowid FROM tickets_fts
                                               WHERE tickets_fts MATCH $1 LIMIT $2))
                      + (SELECT COUNT(*) FROM (SELECT rowid FROM messages_fts
                                               WHERE messages_fts MATCH $1 LIMIT $2)),
                        (SELECT COUNT(*) FROM (SELECT 1 FROM tickets
                                               WHERE customer_id IN ({source}) LIMIT $2))",
                source = customer_source(Backend::Sqlite, "$3", (!is_number(text)).then_some("$1")),
            );
            let (matches, customer_tickets): (i64, i64) = sqlx::query_as(AssertSqlSafe(sql))
                .bind(fts5_query(text))
                .bind(common)
                .bind(text)
                .fetch_one(pool)
                .await?;
            (matches, customer_tickets, common)
        }
        Store::Postgres { pool } => {
            let sql = format!(
                "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM tickets
                         WHERE to_tsvector('simple', subject) @@ plainto_tsquery('simple', $1)
                         LIMIT $2) s)
                      + (SELECT COUNT(*) FROM (SELECT 1 FROM messages
                         WHERE to_tsvector('simple', left(body_text, 100000))
                               @@ plainto_tsquery('simple', $1)
                         LIMIT $2) m),
                        (SELECT COUNT(*) FROM (SELECT 1 FROM tickets
                         WHERE customer_id IN ({source}) LIMIT $2) c)",
                source =
                    customer_source(Backend::Postgres, "$1", (!is_number(text)).then_some("$1")),
            );
            let (matches, customer_tickets): (i64, i64) = sqlx::query_as(AssertSqlSafe(sql))
                .bind(text)
                .bind(COMMON_SEARCH)
                .fetch_one(pool)
                .await?;
            (matches, customer_tickets, COMMON_SEARCH)
        }
    };
    Ok(Probe {
        common: matches + customer_tickets >= common,
        customers: customer_tickets > 0,
    })
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

/// The facts of one ticket that access checks and the forms need.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketFacts {
    pub id: i64,
    pub number: i64,
    pub status: String,
    pub priority: String,
    pub department_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub merged_into: Option<i64>,
}

pub async fn ticket_facts(store: &Store, number: i64) -> Result<Option<TicketFacts>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT t.id, t.number, t.status, t.priority, t.department_id, t.assignee_id,
                m.number AS merged_into
         FROM tickets t LEFT JOIN tickets m ON m.id = t.merged_into_ticket_id
         WHERE t.number = $1",
    )
    .bind(number)
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// Whether an agent may see a ticket: it is theirs or in one of their departments.
pub async fn agent_may_see(store: &Store, agent_id: i64, ticket: &TicketFacts) -> Result<bool> {
    if ticket.assignee_id == Some(agent_id) {
        return Ok(true);
    }
    let Some(department_id) = ticket.department_id else {
        return Ok(false);
    };
    let member: Option<i64> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT agent_id FROM agent_departments WHERE agent_id = $1 AND department_id = $2",
    )
    .bind(agent_id)
    .bind(department_id)
    .fetch_optional(pool)
    .await)?;
    Ok(member.is_some())
}

pub async fn tags(store: &Store, ticket_id: i64) -> Result<Vec<String>> {
    let rows = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT tag FROM ticket_tags WHERE ticket_id = $1 ORDER BY tag",
    )
    .bind(ticket_id)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// An attachment to download, if it belongs to the ticket and its content was kept.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Download {
    pub ticket_id: i64,
    pub filename: String,
    pub content_type: String,
    pub sha256: Option<String>,
}

pub async fn attachment(store: &Store, attachment_id: i64) -> Result<Option<Download>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT m.ticket_id, a.filename, a.content_type, a.sha256
         FROM attachments a JOIN messages m ON m.id = a.message_id WHERE a.id = $1",
    )
    .bind(attachment_id)
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// A name and how many active tickets it has; `key` is the list filter's value for it (a status,
/// a priority, an id), empty for "(none)".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Count {
    pub name: String,
    pub key: String,
    pub count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Dashboard {
    pub open_total: i64,
    pub by_status: Vec<Count>,
    pub by_priority: Vec<Count>,
    pub by_department: Vec<Count>,
    pub by_assignee: Vec<Count>,
    pub unassigned: i64,
    pub first_response_breached: i64,
    pub first_response_due_soon: i64,
    pub resolution_breached: i64,
    pub resolution_due_soon: i64,
    pub new_today: i64,
    pub resolved_today: i64,
    /// Over tickets created in the last 30 days that were answered.
    pub median_first_response_minutes: Option<i64>,
}

/// How soon a target counts as "due soon".
pub const DUE_SOON: Duration = Duration::hours(1);

/// The dashboard figures over the tickets `visibility` allows.
pub async fn dashboard(
    store: &Store,
    visibility: Visibility,
    targets: &SlaTargets,
    now: DateTime<Utc>,
) -> Result<Dashboard> {
    let mut base = Conditions::default();
    visibility_clause(&mut base, visibility);
    let visible = if base.clauses.is_empty() {
        "TRUE".to_owned()
    } else {
        base.clauses.join(" AND ")
    };
    let grouped = |label: &str, key: &str, join: &str| {
        format!(
            "SELECT COALESCE({label}, '(none)'), COALESCE(CAST({key} AS TEXT), ''), COUNT(*)
             FROM tickets t {join}
             WHERE t.status IN {ACTIVE_STATUSES} AND {visible}
             GROUP BY {label}, {key} ORDER BY COUNT(*) DESC, 1"
        )
    };
    let mut dashboard = Dashboard {
        by_status: counts(store, &grouped("t.status", "t.status", ""), &base.binds).await?,
        by_priority: counts(store, &grouped("t.priority", "t.priority", ""), &base.binds).await?,
        by_department: counts(
            store,
            &grouped(
                "d.name",
                "d.id",
                "LEFT JOIN departments d ON d.id = t.department_id",
            ),
            &base.binds,
        )
        .await?,
        by_assignee: counts(
            store,
            &grouped(
                "a.name",
                "a.id",
                "LEFT JOIN agents a ON a.id = t.assignee_id",
            ),
            &base.binds,
        )
        .await?,
        ..Dashboard::default()
    };
    dashboard.open_total = dashboard.by_status.iter().map(|count| count.count).sum();
    dashboard.unassigned = dashboard
        .by_assignee
        .iter()
        .filter(|count| count.name == "(none)")
        .map(|count| count.count)
        .sum();

    // A target is breached when the ticket was created longer ago than its priority allows.
    let overdue =
        |conditions: &mut Conditions, minutes: &dyn Fn(Priority) -> i64, at: DateTime<Utc>| {
            let parts: Vec<String> = Priority::ALL
                .iter()
                .map(|priority| {
                    let name = conditions.placeholder(Bind::Text(priority.as_str().to_owned()));
                    let limit = conditions
                        .placeholder(Bind::Time(at - Duration::minutes(minutes(*priority))));
                    format!("(t.priority = {name} AND t.created_at < {limit})")
                })
                .collect();
            format!("({})", parts.join(" OR "))
        };
    let first_minutes = |priority| targets.first_response.get(priority).num_minutes();
    let resolution_minutes = |priority| targets.resolution.get(priority).num_minutes();
    for (first, soon) in [(true, false), (true, true), (false, false), (false, true)] {
        let mut conditions = Conditions {
            clauses: base.clauses.clone(),
            binds: clone_binds(&base.binds),
        };
        let at = if soon { now + DUE_SOON } else { now };
        let minutes: &dyn Fn(Priority) -> i64 = if first {
            &first_minutes
        } else {
            &resolution_minutes
        };
        let due = overdue(&mut conditions, minutes, at);
        conditions.push(format!("t.status IN {ACTIVE_STATUSES}"));
        if first {
            conditions.push("t.first_response_at IS NULL".into());
        }
        if soon {
            let breached_already = overdue(&mut conditions, minutes, now);
            conditions.push(format!("NOT {breached_already}"));
        }
        conditions.push(due);
        let count = count(
            store,
            &format!("SELECT COUNT(*) FROM tickets t {}", conditions.sql()),
            &conditions.binds,
        )
        .await?;
        match (first, soon) {
            (true, false) => dashboard.first_response_breached = count,
            (true, true) => dashboard.first_response_due_soon = count,
            (false, false) => dashboard.resolution_breached = count,
            (false, true) => dashboard.resolution_due_soon = count,
        }
    }

    let midnight = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|time| time.and_utc())
        .unwrap_or(now);
    for resolved in [false, true] {
        let mut conditions = Conditions {
            clauses: base.clauses.clone(),
            binds: clone_binds(&base.binds),
        };
        let since = conditions.placeholder(Bind::Time(midnight));
        let column = if resolved {
            "resolved_at"
        } else {
            "created_at"
        };
        conditions.push(format!("t.{column} >= {since}"));
        let count = count(
            store,
            &format!("SELECT COUNT(*) FROM tickets t {}", conditions.sql()),
            &conditions.binds,
        )
        .await?;
        if resolved {
            dashboard.resolved_today = count;
        } else {
            dashboard.new_today = count;
        }
    }

    let mut conditions = Conditions {
        clauses: base.clauses.clone(),
        binds: clone_binds(&base.binds),
    };
    let since = conditions.placeholder(Bind::Time(now - Duration::days(30)));
    conditions.push(format!("t.created_at >= {since}"));
    conditions.push("t.first_response_at IS NOT NULL".into());
    let sql = format!(
        "SELECT t.created_at, t.first_response_at FROM tickets t {} LIMIT 200000",
        conditions.sql()
    );
    let pairs: Vec<(DateTime<Utc>, DateTime<Utc>)> = on_pool!(store, pool => {
        bind_all!(sqlx::query_as(AssertSqlSafe(sql.clone())), &conditions.binds)
            .fetch_all(pool)
            .await
    })?;
    let mut minutes: Vec<i64> = pairs
        .iter()
        .map(|(created, answered)| (*answered - *created).num_minutes().max(0))
        .collect();
    minutes.sort_unstable();
    dashboard.median_first_response_minutes = minutes.get(minutes.len() / 2).copied();
    Ok(dashboard)
}

fn clone_binds(binds: &[Bind]) -> Vec<Bind> {
    binds
        .iter()
        .map(|bind| match bind {
            Bind::Int(value) => Bind::Int(*value),
            Bind::Text(value) => Bind::Text(value.clone()),
            Bind::Time(value) => Bind::Time(*value),
        })
        .collect()
}

async fn counts(store: &Store, sql: &str, binds: &[Bind]) -> Result<Vec<Count>> {
    let rows: Vec<(String, String, i64)> = on_pool!(store, pool => {
        bind_all!(sqlx::query_as(AssertSqlSafe(sql.to_owned())), binds)
            .fetch_all(pool)
            .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(name, key, count)| Count { name, key, count })
        .collect())
}

async fn count(store: &Store, sql: &str, binds: &[Bind]) -> Result<i64> {
    let count = on_pool!(store, pool => {
        bind_all!(sqlx::query_scalar(AssertSqlSafe(sql.to_owned())), binds)
            .fetch_one(pool)
            .await
    })?;
    Ok(count)
}

/// A change to a ticket, from the `ticket_changes` feed the database keeps.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct TicketChange {
    pub id: i64,
    pub ticket_id: i64,
    pub number: i64,
    pub kind: String,
    pub assignee_id: Option<i64>,
    pub previous_assignee_id: Option<i64>,
    pub department_id: Option<i64>,
}

/// Changes after `after_id`, oldest first.
pub async fn changes_after(store: &Store, after_id: i64, limit: i64) -> Result<Vec<TicketChange>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, ticket_id, number, kind, assignee_id, previous_assignee_id, department_id
         FROM ticket_changes WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// The newest change's id (0 when there is none).
pub async fn last_change_id(store: &Store) -> Result<i64> {
    let id: Option<i64> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT MAX(id) FROM ticket_changes",
    )
    .fetch_one(pool)
    .await)?;
    Ok(id.unwrap_or(0))
}

/// The departments an agent works in.
pub async fn agent_department_ids(store: &Store, agent_id: i64) -> Result<Vec<i64>> {
    let rows = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT department_id FROM agent_departments WHERE agent_id = $1",
    )
    .bind(agent_id)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
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
