//! SQLite: where in `ticket_search` a search's page lies.
//!
//! A document's rowid is its ticket's second of `updated_at` (from 2000-01-01) times 2^32 plus
//! the ticket's id (migrations/sqlite/0026), so FTS5 hands out a word's matches newest first
//! with `ORDER BY rowid DESC` and a rowid bound. Reading a few hundred rowids from the start
//! of the list (or from the page's cursor) and widening the range to whole seconds gives a
//! range that holds every match newer than its far end; the page is then chosen exactly, by
//! `(updated_at, id)`, among the matches of that range alone. With filters (a department, a
//! status, an agent's visibility) the range grows until it holds a page of matches that pass
//! them, or gives up and covers everything.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, SqlitePool};

use super::{Bind, Conditions};
use crate::store::Result;

/// One second in rowids.
const SECOND: i64 = 1 << 32;
/// 2000-01-01T00:00:00Z, where the rowids' seconds start.
const EPOCH: i64 = 946_684_800;
/// Matches looked at before the range is given up on and every match is collected.
const WINDOW: i64 = 20_000;

/// Where a search's matches lie in `ticket_search`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Matches {
    /// The rowids `[lo, hi)` hold the page.
    Range(i64, i64),
    /// Every matching ticket from the start (the cursor or the end of the list) on.
    Listed(Vec<i64>),
}

/// The first rowid of the second `at` falls in.
fn second_start(at: DateTime<Utc>) -> i64 {
    (at.timestamp() - EPOCH).saturating_mul(SECOND)
}

/// The first rowid of the second `rowid` falls in.
fn floor_second(rowid: i64) -> i64 {
    rowid.div_euclid(SECOND) * SECOND
}

/// The rowids `[lo, hi)` of `ticket_search` that hold the first `want` tickets matching the
/// FTS5 query `fts` and `conditions` (the page's filters and cursor), read newest first when
/// `descending`, from the cursor's time `from`; or, when the matches end within the first
/// batch read, those tickets.
pub(super) async fn text_range(
    pool: &SqlitePool,
    conditions: &Conditions,
    fts: &str,
    descending: bool,
    from: Option<DateTime<Utc>>,
    want: i64,
) -> Result<Matches> {
    // One end stays at the cursor (or the end of the list); the other, the edge, moves.
    let fixed = match (descending, from) {
        (true, Some(at)) => second_start(at).saturating_add(SECOND),
        (true, None) => i64::MAX,
        (false, Some(at)) => second_start(at),
        (false, None) => i64::MIN,
    };
    let mut edge = fixed;
    let range = |edge: i64| {
        if descending {
            (edge, fixed)
        } else {
            (fixed, edge)
        }
    };
    let (lo, hi) = range(if descending { i64::MIN } else { i64::MAX });
    let everything = Matches::Range(lo, hi);
    // The batch's far end and size, and when the matches end within it, their rowids (one
    // row, not one per match: each row is a round trip to the connection's thread).
    let next_batch = if descending {
        "SELECT MIN(k), COUNT(*), CASE WHEN COUNT(*) < $3 THEN group_concat(k) END
         FROM (SELECT rowid AS k FROM ticket_search
               WHERE ticket_search MATCH $1 AND rowid < $2 ORDER BY rowid DESC LIMIT $3)"
    } else {
        "SELECT MAX(k), COUNT(*), CASE WHEN COUNT(*) < $3 THEN group_concat(k) END
         FROM (SELECT rowid AS k FROM ticket_search
               WHERE ticket_search MATCH $1 AND rowid >= $2 ORDER BY rowid ASC LIMIT $3)"
    };
    let mut batch = (want * 4).max(200);
    let (mut found, mut looked) = (0, 0);
    while looked < WINDOW {
        let (far, read, rowids): (Option<i64>, i64, Option<String>) = sqlx::query_as(next_batch)
            .bind(fts)
            .bind(edge)
            .bind(batch)
            .fetch_one(pool)
            .await?;
        let Some(far) = far.filter(|_| read == batch) else {
            // The list of matches ends within this batch; within the first, it is all there.
            if looked > 0 {
                return Ok(everything);
            }
            let listed = rowids
                .unwrap_or_default()
                .split(',')
                .filter_map(|rowid| rowid.parse::<i64>().ok())
                .map(|rowid| rowid & 0xffff_ffff)
                .collect();
            return Ok(Matches::Listed(listed));
        };
        // Whole seconds: the rest of the far end's second may hold newer tickets (by their
        // fractions) than the batch's last.
        let next = if descending {
            floor_second(far)
        } else {
            floor_second(far).saturating_add(SECOND)
        };
        found += if conditions.clauses.is_empty() {
            // Every document has its ticket: the batch alone is enough.
            read
        } else {
            let (lo, hi) = if descending {
                (next, edge)
            } else {
                (edge, next)
            };
            count_passing(pool, conditions, fts, lo, hi, want - found).await?
        };
        edge = next;
        if found >= want {
            let (lo, hi) = range(edge);
            return Ok(Matches::Range(lo, hi));
        }
        looked += read;
        batch *= 2;
    }
    Ok(everything)
}

/// How many of the tickets matching `fts` in `[lo, hi)` pass `conditions`, up to `limit`.
async fn count_passing(
    pool: &SqlitePool,
    conditions: &Conditions,
    fts: &str,
    lo: i64,
    hi: i64,
    limit: i64,
) -> Result<i64> {
    let mut conditions = conditions.clone();
    let fts = conditions.placeholder(Bind::Text(fts.to_owned()));
    let lo = conditions.placeholder(Bind::Int(lo));
    let hi = conditions.placeholder(Bind::Int(hi));
    let limit = conditions.placeholder(Bind::Int(limit));
    conditions.push(format!(
        "t.id IN (SELECT rowid & 4294967295 FROM ticket_search
                  WHERE ticket_search MATCH {fts} AND rowid >= {lo} AND rowid < {hi})"
    ));
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM tickets t {} LIMIT {limit})",
        conditions.sql()
    );
    let count: i64 = bind_all!(sqlx::query_scalar(AssertSqlSafe(sql)), &conditions.binds)
        .fetch_one(pool)
        .await?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_start_where_their_rowids_do() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00.75Z")
            .map(|at| at.with_timezone(&Utc))
            .expect("time");
        let start = second_start(at);
        assert_eq!(floor_second(start + 12345), start);
        assert_eq!(floor_second(start - 1), start - SECOND);
        assert_eq!(floor_second(-5), -SECOND);
    }
}
