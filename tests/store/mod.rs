//! The store's pooled PostgreSQL connections. A request cancelled while its transaction is
//! being opened (a client that disconnects, a timeout, a task stopped at shutdown) must not
//! leave its connection inside a transaction for the next borrower, whose writes would run in
//! it, unseen by every other connection, and be lost when it closes. vendor/README.md has the
//! sqlx patch these tests hold in place.

use crate::support::{self, TestStore};
use helpdesk::store::Store;
use sqlx::{Connection, PgConnection, PgPool};
use std::task::Poll;

/// A store with one connection, so the one a cancelled request left behind is the next one
/// used; the test's own database is kept alive beside it.
async fn one_connection(test: &str) -> Option<(TestStore, Store, PgConnection)> {
    let Some(server) = support::postgres_url() else {
        eprintln!("SKIPPED: DATABASE_URL is not set; these tests need PostgreSQL");
        return None;
    };
    let db = support::postgres(&server, test).await;
    let store = Store::connect(&db.url, 1).await.expect("database opens");
    let watcher = PgConnection::connect(&db.url)
        .await
        .expect("second connection");
    sqlx::query("CREATE TABLE pool_probe (n int)")
        .execute(pool(&store))
        .await
        .expect("probe table");
    Some((db, store, watcher))
}

fn pool(store: &Store) -> &PgPool {
    match store {
        Store::Postgres { pool } => pool,
        Store::Sqlite { .. } => unreachable!("a PostgreSQL URL opens a PostgreSQL store"),
    }
}

/// Writes through the pool, and whether another connection then sees the write.
async fn a_write_is_seen(store: &Store, watcher: &mut PgConnection, n: i32) -> bool {
    sqlx::query("INSERT INTO pool_probe (n) VALUES ($1)")
        .bind(n)
        .execute(pool(store))
        .await
        .expect("insert");
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM pool_probe WHERE n = $1")
        .bind(n)
        .fetch_one(watcher)
        .await
        .expect("count");
    seen == 1
}

async fn state_of(watcher: &mut PgConnection, pid: i32) -> Option<String> {
    sqlx::query_scalar("SELECT state FROM pg_stat_activity WHERE pid = $1")
        .bind(pid)
        .fetch_optional(watcher)
        .await
        .expect("pg_stat_activity")
        .flatten()
}

#[tokio::test]
async fn a_write_after_a_cancelled_begin_is_committed_and_seen() {
    let Some((_db, store, mut watcher)) = one_connection("store_cancelled_begin").await else {
        return;
    };
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool(&store))
        .await
        .expect("backend pid");
    // Poll the opening of a write transaction step by step until the server has run BEGIN,
    // then drop it before its answer is read. A try where the answer was read first (the
    // transaction opened) is given up and tried again; on a busy machine most tries are.
    let mut cancelled_in_flight = 0;
    for attempt in 0..1000 {
        let mut begin = Box::pin(store.begin_write());
        let mut opened = false;
        for _ in 0..20 {
            if let Poll::Ready(result) = futures_util::poll!(&mut begin) {
                result.expect("begin");
                opened = true;
                break;
            }
            if state_of(&mut watcher, pid).await.as_deref() == Some("idle in transaction") {
                break;
            }
        }
        drop(begin);
        if !opened {
            cancelled_in_flight += 1;
            assert!(
                a_write_is_seen(&store, &mut watcher, attempt).await,
                "a write after a BEGIN cancelled in flight ran inside that leftover transaction"
            );
        }
        if cancelled_in_flight >= 3 {
            break;
        }
    }
    assert!(
        cancelled_in_flight >= 3,
        "BEGIN was never caught in flight ({cancelled_in_flight} times)"
    );
    store.close().await;
}

#[tokio::test]
async fn a_transaction_block_left_open_on_a_connection_is_ended_before_its_reuse() {
    let Some((_db, store, mut watcher)) = one_connection("store_untracked_block").await else {
        return;
    };
    // A block opened outside sqlx's transactions, e.g. by one multi-statement string.
    sqlx::raw_sql("BEGIN; SELECT 1")
        .execute(pool(&store))
        .await
        .expect("raw block");
    assert!(
        a_write_is_seen(&store, &mut watcher, 1).await,
        "the next borrower's write ran inside the block left open"
    );
    store.close().await;
}
