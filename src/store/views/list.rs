//! The ticket list: filters, orders and keyset pages.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::AssertSqlSafe;

use super::ordered::{Matches, text_range};
use super::reads::unread_sql;
use super::search::{
    Documents, Known, SEARCH_WALK_WINDOW, Search, SearchPlan, fts5_query, probe_search,
    ranked_source, search_clause,
};
use super::sla::{SlaFilter, sla_clauses};
use super::{ACTIVE_STATUSES, AssigneeFilter, Bind, Conditions, Visibility, visibility_clause};
use crate::domain::{Priority, Status};
use crate::store::tickets::TicketSummary;
use crate::store::{Backend, Result, Store, on_pool};

/// The orders the list offers; each pages by (column, id), relevance by (score, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    UpdatedDesc,
    UpdatedAsc,
    CreatedDesc,
    CreatedAsc,
    /// The best matches of a search first; without a search, as `UpdatedDesc`.
    Relevance,
}

impl Sort {
    pub const ALL: &'static [(Sort, &'static str, &'static str)] = &[
        (Sort::UpdatedDesc, "updated_desc", "recently updated"),
        (Sort::UpdatedAsc, "updated_asc", "least recently updated"),
        (Sort::CreatedDesc, "created_desc", "newest"),
        (Sort::CreatedAsc, "created_asc", "oldest"),
        (Sort::Relevance, "relevance", "best match"),
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
            Sort::UpdatedDesc | Sort::UpdatedAsc | Sort::Relevance => "updated_at",
            Sort::CreatedDesc | Sort::CreatedAsc => "created_at",
        }
    }

    fn descending(self) -> bool {
        matches!(
            self,
            Sort::UpdatedDesc | Sort::CreatedDesc | Sort::Relevance
        )
    }
}

/// Where the next page starts: the sort value and id of the last ticket shown; in a search
/// ranked by relevance, its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: i64,
    pub rank: Option<f64>,
}

impl Cursor {
    /// `nanoseconds_id`, or `r<score>_id` ranked, for a URL.
    pub fn encode(&self) -> String {
        match self.rank {
            // Debug prints the shortest text that reads back as the same number.
            Some(rank) => format!("r{rank:?}_{}", self.id),
            None => format!(
                "{}_{}",
                self.at.timestamp_nanos_opt().unwrap_or_default(),
                self.id
            ),
        }
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (value, id) = text.split_once('_')?;
        let id = id.parse().ok()?;
        if let Some(rank) = value.strip_prefix('r') {
            let rank: f64 = rank.parse().ok().filter(|rank: &f64| rank.is_finite())?;
            return Some(Cursor {
                at: Utc.timestamp_nanos(0),
                id,
                rank: Some(rank),
            });
        }
        Some(Cursor {
            at: Utc.timestamp_nanos(value.parse().ok()?),
            id,
            rank: None,
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
    /// The agent whose unread tickets are marked (and, with `unread_only`, the only ones shown).
    pub reader: Option<i64>,
    pub unread_only: bool,
    pub sort: Sort,
    /// The page after this ticket, or, with `before`, the page before that one.
    pub after: Option<Cursor>,
    pub before: Option<Cursor>,
    /// Whether to count every ticket the filters match (up to [`COUNT_LIMIT`]).
    pub count: bool,
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
            reader: None,
            unread_only: false,
            sort: Sort::default(),
            after: None,
            before: None,
            count: false,
            limit: 50,
        }
    }
}

/// Counting stops here: beyond it a figure costs a walk over most of the table and says
/// little more than "many".
pub const COUNT_LIMIT: i64 = 10_000;

/// How many tickets the filters match; `at_least` when counting stopped at [`COUNT_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    pub count: i64,
    pub at_least: bool,
}

/// A page of tickets, where the pages next to it start, and the total when it was asked for
/// (a search of common words is not counted).
#[derive(Debug, Clone)]
pub struct TicketPage {
    pub tickets: Vec<TicketSummary>,
    /// Pass as `after` for the next page.
    pub next: Option<Cursor>,
    /// Pass as `before` for the previous page.
    pub previous: Option<Cursor>,
    pub total: Option<Total>,
}

const LIST_COLUMNS: &str = "t.id, t.number, t.subject, t.status, t.priority,
    d.name AS department, a.name AS assignee,
    COALESCE(c.name, (SELECT ci.address FROM customer_identities ci
                      WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1), '') AS customer,
    t.customer_id, t.channel, t.created_at, t.updated_at, t.first_response_at, t.resolved_at,
    t.waiting_on, t.sla_due_at, t.sla_due_target, t.sla_paused, t.sla_breached_at";

/// One page of tickets matching `query`, in its order.
pub async fn list_tickets(store: &Store, query: &ListQuery) -> Result<TicketPage> {
    let search = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty());
    let Some(text) = search else {
        let (mut page, _) = list_page(store, query, None).await?;
        if query.count {
            page.total = Some(count_tickets(store, query, None).await?);
        }
        return Ok(page);
    };
    // SQLite reads the matches in the list's order from the rowids of `ticket_search` that
    // hold the page (`ordered`), so a common word costs no more than a rare one; when they are
    // few, it has them all and the words are not looked up again.
    let mut matches = None;
    if let Store::Sqlite { pool, .. } = store
        && matches!(query.sort, Sort::UpdatedDesc | Sort::UpdatedAsc)
    {
        let order = PageOrder::of(query);
        let mut conditions = filter_conditions(query);
        cursor_clause(&mut conditions, query, &order, false);
        let from = query.before.or(query.after).map(|cursor| cursor.at);
        let want = query.limit + 1;
        let descending = order.direction == "DESC";
        matches =
            Some(text_range(pool, &conditions, &fts5_query(text), descending, from, want).await?);
    }
    // Listed from the start of the list, the matches are all there are.
    let listed = match (&matches, query.before.or(query.after)) {
        (Some(Matches::Listed(ids)), None) => Some(ids.as_slice()),
        _ => None,
    };
    let known = match (listed, &matches) {
        (Some(ids), _) => Known::Documents(ids.len() as i64),
        (None, Some(_)) if !query.count => Known::Unneeded,
        _ => Known::Nothing,
    };
    let probe = probe_search(store, text, known).await?;
    let search = |plan, documents| Search {
        text,
        plan,
        customers: probe.customers(),
        documents,
        rare_word: probe.rare_word.as_deref(),
    };
    let collected = Some(search(
        SearchPlan::Collect,
        listed.map_or(Documents::All, Documents::Listed),
    ));
    if query.sort == Sort::Relevance {
        let ranked = search(SearchPlan::Ranked, Documents::All);
        let (mut page, _) = list_page(store, query, Some(ranked)).await?;
        if query.count && !probe.common {
            page.total = Some(count_tickets(store, query, collected).await?);
        }
        return Ok(page);
    }
    let documents = match &matches {
        None => Documents::All,
        Some(Matches::Range(lo, hi)) => Documents::Range(*lo, *hi),
        Some(Matches::Listed(ids)) => Documents::Listed(ids),
    };
    let walk = match matches {
        // The key range is small; only a customer with many tickets makes collecting slow.
        Some(_) => probe.common_customers,
        None => probe.common,
    };
    if walk {
        let (page, full) =
            list_page(store, query, Some(search(SearchPlan::Walk, documents))).await?;
        // Less than a page near the start of the list: the words are rare there after all.
        if full {
            return Ok(page);
        }
    }
    let (mut page, _) =
        list_page(store, query, Some(search(SearchPlan::Collect, documents))).await?;
    if query.count && !(matches.is_some() && probe.common) {
        page.total = Some(count_tickets(store, query, collected).await?);
    }
    Ok(page)
}

/// The filters of `query` without its page position or search.
fn filter_conditions(query: &ListQuery) -> Conditions {
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
    if let (true, Some(reader)) = (query.unread_only, query.reader) {
        let reader = conditions.placeholder(Bind::Int(reader));
        conditions.push(unread_sql("t", &reader));
    }
    conditions
}

/// How many tickets match the filters (and a rare search), counted up to [`COUNT_LIMIT`].
async fn count_tickets(
    store: &Store,
    query: &ListQuery,
    search: Option<Search<'_>>,
) -> Result<Total> {
    let mut conditions = filter_conditions(query);
    if let Some(search) = search {
        search_clause(&mut conditions, store.backend(), search);
    }
    let limit = conditions.placeholder(Bind::Int(COUNT_LIMIT + 1));
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM tickets t {where_clause} LIMIT {limit}) matched",
        where_clause = conditions.sql(),
    );
    let count: i64 = on_pool!(store, pool => {
        bind_all!(sqlx::query_scalar(AssertSqlSafe(sql.clone())), &conditions.binds)
            .fetch_one(pool)
            .await
    })?;
    Ok(Total {
        count: count.min(COUNT_LIMIT),
        at_least: count > COUNT_LIMIT,
    })
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

/// A row of a page, with its score when ranked by relevance.
#[derive(sqlx::FromRow)]
struct Scored {
    #[sqlx(flatten)]
    ticket: TicketSummary,
    #[sqlx(default)]
    score: Option<f64>,
}

/// The order a page is read in: the sort's column, and the direction and comparison with the
/// cursor. A page before a cursor is read backwards from it, then turned round.
struct PageOrder {
    column: &'static str,
    direction: &'static str,
    comparison: &'static str,
    backwards: bool,
}

impl PageOrder {
    fn of(query: &ListQuery) -> PageOrder {
        let backwards = query.before.is_some();
        let (direction, comparison) = if query.sort.descending() != backwards {
            ("DESC", "<")
        } else {
            ("ASC", ">")
        };
        PageOrder {
            column: query.sort.column(),
            direction,
            comparison,
            backwards,
        }
    }
}

/// Where the page starts: after (or before) the cursor's (sort value, id), or ranked, its
/// (score, id); a cursor without a score starts a ranked list from the top.
fn cursor_clause(conditions: &mut Conditions, query: &ListQuery, order: &PageOrder, ranked: bool) {
    let Some(from) = query.before.or(query.after) else {
        return;
    };
    let comparison = order.comparison;
    if ranked {
        if let Some(rank) = from.rank {
            let rank = conditions.placeholder(Bind::Float(rank));
            let id = conditions.placeholder(Bind::Int(from.id));
            conditions.push(format!("(s.score, t.id) {comparison} ({rank}, {id})"));
        }
    } else {
        let at = conditions.placeholder(Bind::Time(from.at));
        let id = conditions.placeholder(Bind::Int(from.id));
        let column = order.column;
        conditions.push(format!("(t.{column}, t.id) {comparison} ({at}, {id})"));
    }
}

/// A page, and whether there were more tickets beyond it in the direction it was read.
async fn list_page(
    store: &Store,
    query: &ListQuery,
    search: Option<Search<'_>>,
) -> Result<(TicketPage, bool)> {
    let mut conditions = filter_conditions(query);
    let order = PageOrder::of(query);
    let (column, direction, backwards) = (order.column, order.direction, order.backwards);
    let ranked = search.is_some_and(|search| search.plan == SearchPlan::Ranked);
    cursor_clause(&mut conditions, query, &order, ranked);
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
        Some(
            ranked @ Search {
                plan: SearchPlan::Ranked,
                ..
            },
        ) => {
            let source = ranked_source(
                &mut conditions,
                store.backend(),
                ranked.text,
                ranked.customers,
            );
            let limit = conditions.placeholder(Bind::Int(query.limit + 1));
            format!(
                "SELECT t.*, s.score AS score FROM ({source}) s JOIN tickets t ON t.id = s.id
                 {where_clause}
                 ORDER BY s.score {direction}, t.id {direction} LIMIT {limit}",
                where_clause = conditions.sql(),
            )
        }
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
    let unread = match query.reader {
        Some(reader) => {
            let reader = conditions.placeholder(Bind::Int(reader));
            format!("COALESCE({}, FALSE)", unread_sql("t", &reader))
        }
        None => "FALSE".to_owned(),
    };
    let (score, by) = if ranked {
        (", t.score AS score", "score")
    } else {
        ("", column)
    };
    let sql = format!(
        "SELECT {LIST_COLUMNS}, {unread} AS unread{score}
         FROM ({chosen}) t
         JOIN customers c ON c.id = t.customer_id
         LEFT JOIN departments d ON d.id = t.department_id
         LEFT JOIN agents a ON a.id = t.assignee_id
         ORDER BY t.{by} {direction}, t.id {direction}"
    );
    let mut rows: Vec<Scored> = on_pool!(store, pool => {
        bind_all!(sqlx::query_as(AssertSqlSafe(sql.clone())), &conditions.binds)
            .fetch_all(pool)
            .await
    })?;
    let full = rows.len() as i64 > query.limit;
    rows.truncate(query.limit.max(0) as usize);
    if backwards {
        rows.reverse();
    }
    let cursor = |row: &Scored| Cursor {
        at: match query.sort {
            Sort::UpdatedDesc | Sort::UpdatedAsc | Sort::Relevance => row.ticket.updated_at,
            Sort::CreatedDesc | Sort::CreatedAsc => row.ticket.created_at,
        },
        id: row.ticket.id.get(),
        rank: row.score.filter(|_| ranked),
    };
    // Read forwards, a page before exists when this one starts after a cursor; read
    // backwards, a page after always exists (the one the reader came from).
    let (has_previous, has_next) = if backwards {
        (full, true)
    } else {
        (query.after.is_some(), full)
    };
    let page = TicketPage {
        next: has_next.then(|| rows.last().map(cursor)).flatten(),
        previous: has_previous.then(|| rows.first().map(cursor)).flatten(),
        tickets: rows.into_iter().map(|row| row.ticket).collect(),
        total: None,
    };
    Ok((page, full))
}

/// A tag in use: on how many tickets, and on how many active ones.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct TagCount {
    pub tag: String,
    pub tickets: i64,
    pub active: i64,
}

/// The most used tags on the tickets `visibility` shows, most used first: the tags page and
/// the tag menus.
pub async fn tag_counts(store: &Store, visibility: Visibility) -> Result<Vec<TagCount>> {
    let mut conditions = Conditions::default();
    visibility_clause(&mut conditions, visibility);
    let sql = format!(
        "SELECT tt.tag, COUNT(*) AS tickets,
                SUM(CASE WHEN t.status IN {ACTIVE_STATUSES} THEN 1 ELSE 0 END) AS active
         FROM ticket_tags tt JOIN tickets t ON t.id = tt.ticket_id
         {where_clause}
         GROUP BY tt.tag ORDER BY COUNT(*) DESC, tt.tag LIMIT 500",
        where_clause = conditions.sql(),
    );
    let rows = on_pool!(store, pool => {
        bind_all!(sqlx::query_as(AssertSqlSafe(sql.clone())), &conditions.binds)
            .fetch_all(pool)
            .await
    })?;
    Ok(rows)
}
