//! Full-text search over each ticket's document (its subject and all its messages) and over
//! customers' names and addresses, planned by how common the words are.

use sqlx::AssertSqlSafe;

use super::{Bind, Conditions};
use crate::store::{Backend, Result, Store, id_list, on_pool};

/// The words of a search: plain ones, and prefixes (`print*`).
struct Words<'a> {
    plain: Vec<&'a str>,
    prefixes: Vec<&'a str>,
}

fn words(text: &str) -> Words<'_> {
    let mut words = Words {
        plain: Vec::new(),
        prefixes: Vec::new(),
    };
    for word in text.split_whitespace() {
        match word.trim_end_matches('*') {
            stem if stem.len() < word.len() && !stem.is_empty() => words.prefixes.push(stem),
            _ => words.plain.push(word),
        }
    }
    words
}

/// An FTS5 query that finds every word as a word (a prefix with `*`), whatever characters the
/// words hold: each is quoted, so user input is never FTS5 syntax.
pub(super) fn fts5_query(text: &str) -> String {
    let quoted = |word: &str| format!("\"{}\"", word.replace('"', "\"\""));
    let words = words(text);
    words
        .plain
        .iter()
        .map(|word| quoted(word))
        .chain(
            words
                .prefixes
                .iter()
                .map(|stem| format!("{}*", quoted(stem))),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `tsquery` of a search on PostgreSQL, as SQL with its values as placeholders: the plain
/// words through `plainto_tsquery`, each prefix as a quoted lexeme with `:*`.
fn tsquery(conditions: &mut Conditions, text: &str) -> String {
    let words = words(text);
    let mut parts = Vec::new();
    if !words.plain.is_empty() || words.prefixes.is_empty() {
        let plain = conditions.placeholder(Bind::Text(words.plain.join(" ")));
        parts.push(format!("plainto_tsquery('simple', {plain})"));
    }
    if !words.prefixes.is_empty() {
        let lexemes = words
            .prefixes
            .iter()
            .map(|stem| format!("'{}':*", stem.replace('\\', "\\\\").replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(" & ");
        let lexemes = conditions.placeholder(Bind::Text(lexemes));
        parts.push(format!("to_tsquery('simple', {lexemes})"));
    }
    match parts.as_slice() {
        [one] => one.clone(),
        _ => format!("({})", parts.join(" && ")),
    }
}

/// The documents matching a search, as a condition on `ticket_search` (alias `d` on
/// PostgreSQL).
fn text_match(conditions: &mut Conditions, backend: Backend, text: &str) -> String {
    match backend {
        Backend::Sqlite => {
            let query = conditions.placeholder(Bind::Text(fts5_query(text)));
            format!("ticket_search MATCH {query}")
        }
        Backend::Postgres => format!("d.document @@ {}", tsquery(conditions, text)),
    }
}

/// The ids of the tickets whose document matches, as SQL. On SQLite only the rowids in a
/// range are read (see [`super::ordered`]); the ticket's id is the rowid's low 32 bits.
fn text_source(conditions: &mut Conditions, backend: Backend, search: Search<'_>) -> String {
    let (text, documents) = (search.text.trim(), search.documents);
    if let Documents::Listed(ids) = documents {
        return format!("SELECT id FROM tickets WHERE id IN ({})", id_list(ids));
    }
    if let (Backend::Postgres, Some(word)) = (backend, search.rare_word) {
        // The index finds the rare word's few documents; each is tested for the whole search
        // by the function behind `@@`, which the planner cannot turn into an index scan.
        // Through the index alone, `question 333333` read the million entries of `question`
        // (110-160 ms at a million tickets, 0.14 ms this way).
        let word = conditions.placeholder(Bind::Text(word.to_owned()));
        let whole = tsquery(conditions, text);
        return format!(
            "SELECT d.ticket_id FROM ticket_search d
             WHERE d.document @@ plainto_tsquery('simple', {word})
               AND ts_match_vq(d.document, {whole})"
        );
    }
    let matching = text_match(conditions, backend, text);
    match backend {
        Backend::Sqlite => {
            let range = match documents {
                Documents::Range(lo, hi) => {
                    let lo = conditions.placeholder(Bind::Int(lo));
                    let hi = conditions.placeholder(Bind::Int(hi));
                    format!(" AND rowid >= {lo} AND rowid < {hi}")
                }
                Documents::All | Documents::Listed(_) => String::new(),
            };
            format!("SELECT rowid & 4294967295 FROM ticket_search WHERE {matching}{range}")
        }
        Backend::Postgres => format!("SELECT d.ticket_id FROM ticket_search d WHERE {matching}"),
    }
}

/// How a search finds its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SearchPlan {
    /// Collect every matching ticket (on SQLite: of the key range), then order them and take
    /// a page: fast while the matches are few.
    Collect,
    /// Walk the tickets in the page's order and test each for the words: fast when the words
    /// are common, as a page is found among the first few hundred tickets.
    Walk,
    /// Collect every match with its score and take the best (`sort=relevance`).
    Ranked,
}

/// A search matching more tickets than this is common: PostgreSQL walks the list instead of
/// collecting every match, and the total is not counted.
pub(super) const COMMON_SEARCH: i64 = 5_000;
/// How many tickets, in the page's order, a walking search looks at before it collects
/// instead (a word common overall may be rare among recent tickets).
pub(super) const SEARCH_WALK_WINDOW: i64 = 5_000;

/// Which documents a search reads.
#[derive(Debug, Clone, Copy)]
pub(super) enum Documents<'a> {
    /// Every document that matches the words.
    All,
    /// SQLite: the matches whose rowids lie in `[lo, hi)`, which hold the page.
    Range(i64, i64),
    /// The matching tickets, already read: the words are not looked up again.
    Listed(&'a [i64]),
}

/// The customers a search names (their tickets match as well).
#[derive(Debug, Clone, Copy)]
pub(super) enum Customers<'a> {
    None,
    /// These, found by the probe.
    Listed(&'a [i64]),
    /// More than the probe lists: looked up again by the statement.
    Many,
}

/// How a search is run: its text, plan, the customers it names, and the documents it reads.
#[derive(Debug, Clone, Copy)]
pub(super) struct Search<'a> {
    pub(super) text: &'a str,
    pub(super) plan: SearchPlan,
    pub(super) customers: Customers<'a>,
    pub(super) documents: Documents<'a>,
    /// PostgreSQL: a word of several that few documents hold, which finds them first.
    pub(super) rare_word: Option<&'a str>,
}

/// The ids of the customers a search names, as SQL for `IN (…)`, or `None` when it names none.
fn named_customers(
    conditions: &mut Conditions,
    backend: Backend,
    text: &str,
    customers: Customers<'_>,
) -> Option<String> {
    match customers {
        Customers::None => None,
        Customers::Listed(ids) => Some(id_list(ids)),
        Customers::Many => Some(customer_source(conditions, backend, text)),
    }
}

/// `1042` or `#1042`: a ticket number.
fn number(text: &str) -> Option<i64> {
    text.trim().trim_start_matches('#').parse::<i64>().ok()
}

/// Whether a search is also looked for inside addresses: one token of three characters or
/// more (the trigram indexes' least), not a number.
fn partial_address(text: &str) -> Option<&str> {
    let text = text.trim_end_matches('*');
    (text.chars().count() >= 3 && !text.contains(char::is_whitespace) && number(text).is_none())
        .then_some(text)
}

/// The ids of the customers a search names, as SQL: an identity whose address is the text or
/// holds it (any case; `lower(address)` and the trigram indexes), or a name holding all its
/// words. A number (`1042`, `#1042`) is looked up by whole address only (a chat account's
/// id), never by name.
fn customer_source(conditions: &mut Conditions, backend: Backend, text: &str) -> String {
    let address = conditions.placeholder(Bind::Text(text.to_owned()));
    let mut sources = vec![format!(
        "SELECT customer_id FROM customer_identities WHERE lower(address) = lower({address})"
    )];
    if let Some(part) = partial_address(text) {
        sources.push(match backend {
            Backend::Sqlite => {
                let phrase = format!("\"{}\"", part.replace('"', "\"\""));
                let phrase = conditions.placeholder(Bind::Text(phrase));
                format!(
                    "SELECT customer_id FROM customer_identities WHERE id IN
                        (SELECT rowid FROM customer_addresses WHERE customer_addresses MATCH {phrase})"
                )
            }
            Backend::Postgres => {
                let escaped = part
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                let part = conditions.placeholder(Bind::Text(escaped));
                format!(
                    "SELECT customer_id FROM customer_identities
                     WHERE lower(address) LIKE '%' || lower({part}) || '%'"
                )
            }
        });
    }
    if number(text).is_none() {
        sources.push(match backend {
            Backend::Sqlite => {
                let words = conditions.placeholder(Bind::Text(fts5_query(text)));
                format!("SELECT rowid FROM customers_fts WHERE customers_fts MATCH {words}")
            }
            Backend::Postgres => format!(
                "SELECT id FROM customers
                 WHERE to_tsvector('simple', COALESCE(name, '')) @@ {}",
                tsquery(conditions, text)
            ),
        });
    }
    sources.join(" UNION ")
}

pub(super) fn search_clause(conditions: &mut Conditions, backend: Backend, search: Search<'_>) {
    let text = search.text.trim();
    let walk = search.plan == SearchPlan::Walk;
    // Collecting, the ticket with that number and the named customers' tickets are more
    // sources of the set: an OR beside the set would make the database test every ticket.
    // Walking, each is one more test per ticket, evaluated once for the statement.
    let mut tests = Vec::new();
    let mut sources = Vec::new();
    if let Some(number) = number(text) {
        let number = conditions.placeholder(Bind::Int(number));
        if walk {
            tests.push(format!("t.number = {number}"));
        } else {
            sources.push(format!("SELECT id FROM tickets WHERE number = {number}"));
        }
    }
    if let Some(customers) = named_customers(conditions, backend, text, search.customers) {
        if walk {
            tests.push(format!("t.customer_id IN ({customers})"));
        } else {
            sources.push(format!(
                "SELECT id FROM tickets WHERE customer_id IN ({customers})"
            ));
        }
    }
    match (backend, walk) {
        // A scalar subquery, not EXISTS: PostgreSQL would turn an EXISTS beside an OR into a
        // hash of every matching document, which is the collecting a walk avoids.
        (Backend::Postgres, true) => {
            let matching = text_match(conditions, backend, text);
            tests.push(format!(
                "(SELECT {matching} FROM ticket_search d WHERE d.ticket_id = t.id)"
            ));
        }
        // SQLite builds the set of matching ids once for the statement and looks each ticket
        // up in it.
        (Backend::Sqlite, true) => {
            let source = text_source(conditions, backend, search);
            tests.push(format!("t.id IN ({source})"));
        }
        (_, false) => sources.push(text_source(conditions, backend, search)),
    }
    let clause = match (walk, backend) {
        (true, _) => format!("({})", tests.join(" OR ")),
        (false, Backend::Sqlite) => format!("t.id IN ({})", sources.join(" UNION ")),
        // An array, not IN: PostgreSQL estimated the set from the words' statistics and
        // joined it to a scan of every ticket (550 ms for `question 333333` at a million);
        // against an array it looks the ids up in the primary key (3 ms).
        (false, Backend::Postgres) => format!("t.id = ANY(ARRAY({}))", sources.join(" UNION ")),
    };
    conditions.push(clause);
}

/// The matching tickets with their score, best highest, as SQL with the columns `id` and
/// `score`: bm25 on SQLite (the subject weighs four times the messages), `ts_rank` on
/// PostgreSQL (the subject has weight A). The ticket a number names comes first; tickets found
/// only by their customer come after those the words found.
pub(super) fn ranked_source(
    conditions: &mut Conditions,
    backend: Backend,
    text: &str,
    customers: Customers<'_>,
) -> String {
    let text = text.trim();
    let mut sources = vec![match backend {
        Backend::Sqlite => {
            let query = conditions.placeholder(Bind::Text(fts5_query(text)));
            format!(
                // `rank` with its weights, as bm25() is refused inside a union.
                "SELECT rowid & 4294967295 AS id, -rank AS score FROM ticket_search
                 WHERE ticket_search MATCH {query} AND rank MATCH 'bm25(4.0, 1.0)'"
            )
        }
        Backend::Postgres => {
            let query = tsquery(conditions, text);
            format!(
                "SELECT d.ticket_id AS id, ts_rank(d.document, {query})::FLOAT8 AS score
                 FROM ticket_search d WHERE d.document @@ {query}"
            )
        }
    }];
    if let Some(number) = number(text) {
        let number = conditions.placeholder(Bind::Int(number));
        sources.push(format!(
            "SELECT id, 1e9 AS score FROM tickets WHERE number = {number}"
        ));
    }
    if let Some(customers) = named_customers(conditions, backend, text, customers) {
        sources.push(format!(
            "SELECT id, -1e9 AS score FROM tickets WHERE customer_id IN ({customers})"
        ));
    }
    format!(
        "SELECT id, MAX(score) AS score FROM ({}) scored GROUP BY id",
        sources.join(" UNION ALL ")
    )
}

/// What the caller of a probe knows of the matching documents.
#[derive(Debug, Clone, Copy)]
pub(super) enum Known {
    /// Nothing: the probe counts them.
    Nothing,
    /// How many there are.
    Documents(i64),
    /// Their number decides nothing (SQLite reads the page from its key range, and no total
    /// is asked for): the probe does not count them.
    Unneeded,
}

/// How many named customers the probe lists by id; with more, each statement looks them up.
const LISTED_CUSTOMERS: i64 = 500;

/// What the probe found out about a search before it is run.
pub(super) struct Probe {
    /// So many tickets match (by their documents or their customers) that walking the list
    /// finds a page sooner than collecting every match, and counting them is not worth it.
    pub(super) common: bool,
    /// The named customers that have tickets; `None` when there are too many to list.
    customer_ids: Option<Vec<i64>>,
    /// The named customers alone have [`COMMON_SEARCH`] tickets or more.
    pub(super) common_customers: bool,
    /// PostgreSQL: of several words, one in at most [`RARE_WORD`] documents beside a
    /// common one.
    pub(super) rare_word: Option<String>,
}

impl Probe {
    pub(super) fn customers(&self) -> Customers<'_> {
        match &self.customer_ids {
            None => Customers::Many,
            Some(ids) if ids.is_empty() => Customers::None,
            Some(ids) => Customers::Listed(ids),
        }
    }
}

/// Finds the customers `text` names, with their tickets counted up to [`COMMON_SEARCH`], and
/// how many documents match: as the caller knows them (see [`Known`]), else on
/// SQLite counted up to the same cap, on PostgreSQL as the planner estimates them from the
/// column's statistics (a capped count of a common word read 5,000 rows from the heap: 110 ms
/// for `printer`). The customers are looked up once here, not again by each statement.
pub(super) async fn probe_search(store: &Store, text: &str, documents: Known) -> Result<Probe> {
    let text = text.trim();
    let backend = store.backend();
    let mut conditions = Conditions::default();
    let cap = conditions.placeholder(Bind::Int(COMMON_SEARCH));
    let customers = customer_source(&mut conditions, backend, text);
    let listed = conditions.placeholder(Bind::Int(LISTED_CUSTOMERS + 1));
    let sql = format!(
        "SELECT named.customer_id,
                (SELECT COUNT(*) FROM (SELECT 1 FROM tickets
                                       WHERE customer_id = named.customer_id LIMIT {cap}) c)
         FROM ({customers}) named LIMIT {listed}"
    );
    let named: Vec<(i64, i64)> = on_pool!(store, pool => {
        bind_all!(sqlx::query_as(AssertSqlSafe(sql.clone())), &conditions.binds)
            .fetch_all(pool)
            .await
    })?;
    let many = named.len() as i64 > LISTED_CUSTOMERS;
    let customer_tickets = named
        .iter()
        .map(|(_, tickets)| tickets)
        .sum::<i64>()
        .min(COMMON_SEARCH);
    let (documents, rare_word) = match documents {
        Known::Documents(documents) => (documents, None),
        Known::Unneeded => (0, None),
        Known::Nothing => document_count(store, text).await?,
    };
    Ok(Probe {
        common: documents + customer_tickets >= COMMON_SEARCH,
        customer_ids: (!many).then(|| {
            named
                .iter()
                .filter(|(_, tickets)| *tickets > 0)
                .map(|(id, _)| *id)
                .collect()
        }),
        common_customers: many || customer_tickets >= COMMON_SEARCH,
        rare_word,
    })
}

/// A word in at most so many documents leads a search of several words on PostgreSQL.
const RARE_WORD: i64 = 1_000;

/// The documents matching `text`, up to [`COMMON_SEARCH`]: counted on SQLite, estimated on
/// PostgreSQL, where only clearly common words reach the cap; and on PostgreSQL the rarest of
/// several words when it is rare.
async fn document_count(store: &Store, text: &str) -> Result<(i64, Option<String>)> {
    let backend = store.backend();
    let mut conditions = Conditions::default();
    let matching = text_match(&mut conditions, backend, text);
    match store {
        Store::Sqlite { pool, .. } => {
            let cap = conditions.placeholder(Bind::Int(COMMON_SEARCH));
            let sql = format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM ticket_search WHERE {matching} LIMIT {cap})"
            );
            let count: i64 = bind_all!(sqlx::query_scalar(AssertSqlSafe(sql)), &conditions.binds)
                .fetch_one(pool)
                .await?;
            Ok((count, None))
        }
        Store::Postgres { pool } => {
            let rows = estimate(pool, &matching, &conditions).await?;
            // The planner's guess for a word it has no statistics on is a fixed fraction
            // (5,000 at a million): only clearly common words are walked.
            let count = if rows >= 2.0 * COMMON_SEARCH as f64 {
                COMMON_SEARCH
            } else {
                0
            };
            Ok((count, rare_word(pool, text).await?))
        }
    }
}

/// PostgreSQL: of several words, one held by at most [`RARE_WORD`] documents when another is
/// common (expected in [`COMMON_SEARCH`] documents or more), so that the index finds the few
/// first. The planner's statistics name only the commonest words; any other it guesses at a
/// fixed fraction, so the candidate's documents are counted (up to the cap) before it is
/// chosen.
async fn rare_word(pool: &sqlx::PgPool, text: &str) -> Result<Option<String>> {
    let plain = words(text).plain;
    if plain.len() < 2 {
        return Ok(None);
    }
    let mut estimates = Vec::with_capacity(plain.len());
    for word in plain {
        let mut conditions = Conditions::default();
        let matching = text_match(&mut conditions, Backend::Postgres, word);
        estimates.push((estimate(pool, &matching, &conditions).await?, word));
    }
    estimates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (Some((fewest, word)), Some((most, _))) = (estimates.first(), estimates.last()) else {
        return Ok(None);
    };
    if *fewest >= COMMON_SEARCH as f64 || *most < COMMON_SEARCH as f64 {
        return Ok(None);
    }
    let mut conditions = Conditions::default();
    let matching = text_match(&mut conditions, Backend::Postgres, word);
    let cap = conditions.placeholder(Bind::Int(RARE_WORD + 1));
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM ticket_search d WHERE {matching} LIMIT {cap}) m"
    );
    let count: i64 = bind_all!(sqlx::query_scalar(AssertSqlSafe(sql)), &conditions.binds)
        .fetch_one(pool)
        .await?;
    Ok((count <= RARE_WORD).then(|| (*word).to_owned()))
}

/// PostgreSQL: how many documents the planner expects to match `matching`.
async fn estimate(pool: &sqlx::PgPool, matching: &str, conditions: &Conditions) -> Result<f64> {
    let sql = format!("EXPLAIN SELECT 1 FROM ticket_search d WHERE {matching}");
    // The first line: "Bitmap Heap Scan on ticket_search d  (cost=… rows=64333 width=4)".
    let plan: String = bind_all!(sqlx::query_scalar(AssertSqlSafe(sql)), &conditions.binds)
        .fetch_one(pool)
        .await?;
    Ok(plan
        .split_once(" rows=")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|rows| rows.parse::<f64>().ok())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_and_prefixes_kept() {
        assert_eq!(fts5_query("refund invoice"), "\"refund\" \"invoice\"");
        assert_eq!(fts5_query("pri* a\"b"), "\"a\"\"b\" \"pri\"*");
        assert_eq!(fts5_query("*"), "\"*\"");
    }

    #[test]
    fn only_single_tokens_of_three_characters_search_addresses() {
        assert_eq!(partial_address("ada@example"), Some("ada@example"));
        assert_eq!(partial_address("ex*"), None);
        assert_eq!(partial_address("#1042"), None);
        assert_eq!(partial_address("ada lovelace"), None);
    }
}
