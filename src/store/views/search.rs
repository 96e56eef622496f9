//! Full-text search over subjects, messages and customers' names and addresses, planned by
//! how common the words are.

use sqlx::AssertSqlSafe;

use super::{Bind, Conditions};
use crate::store::{Backend, Result, Store};

/// An FTS5 query that finds every word as a word, whatever characters the words hold.
fn fts5_query(text: &str) -> String {
    text.split_whitespace()
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a search finds its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SearchPlan {
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
pub(super) const SEARCH_WALK_WINDOW: i64 = 5_000;

/// How a search is run: its text, plan, and whether it names customers (their tickets match
/// as well).
#[derive(Debug, Clone, Copy)]
pub(super) struct Search<'a> {
    pub(super) text: &'a str,
    pub(super) plan: SearchPlan,
    pub(super) customers: bool,
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

pub(super) fn search_clause(conditions: &mut Conditions, backend: Backend, search: Search<'_>) {
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
pub(super) struct Probe {
    /// So many subjects, messages and named customers' tickets match that walking the list
    /// finds a page sooner than collecting every match.
    pub(super) common: bool,
    /// The text names at least one customer with tickets.
    pub(super) customers: bool,
}

/// Counts, up to a cap, the subjects, messages and tickets of named customers that match
/// `text`: [`COMMON_SEARCH`] of each (on SQLite more, see below).
pub(super) async fn probe_search(store: &Store, text: &str) -> Result<Probe> {
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
