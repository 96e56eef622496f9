//! The `ticket_changes` feed the database keeps, which live pages and webhooks follow.

use crate::domain::{TicketId, TicketNumber};
use crate::store::{Result, Store, StoreError, on_pool, on_writer};

/// A change to a ticket, from the `ticket_changes` feed the database keeps.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct TicketChange {
    pub id: i64,
    pub ticket_id: TicketId,
    pub number: TicketNumber,
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

/// Where a PostgreSQL snapshot stood: transactions below `xmin` had ended, those from `xmax` on
/// had not begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    pub xmin: u64,
    pub xmax: u64,
}

/// Changes after `after_id` and those of `also` (ids once skipped), oldest first, with the
/// horizon of the snapshot that read them (PostgreSQL): one statement, so the horizon is that
/// of the rows' own snapshot. `None` when the statement returned no row.
pub async fn changes_with_horizon(
    pool: &sqlx::PgPool,
    after_id: i64,
    also: &[i64],
    limit: i64,
) -> Result<Option<(Horizon, Vec<TicketChange>)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        xmin: String,
        xmax: String,
        id: Option<i64>,
        ticket_id: Option<TicketId>,
        number: Option<TicketNumber>,
        kind: Option<String>,
        assignee_id: Option<i64>,
        previous_assignee_id: Option<i64>,
        department_id: Option<i64>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "WITH horizon AS (
             SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin,
                    pg_snapshot_xmax(pg_current_snapshot())::text AS xmax)
         SELECT h.xmin, h.xmax, c.id, c.ticket_id, c.number, c.kind, c.assignee_id,
                c.previous_assignee_id, c.department_id
         FROM horizon h LEFT JOIN LATERAL (
             SELECT * FROM ticket_changes WHERE id > $1 OR id = ANY($2)
             ORDER BY id LIMIT $3) c ON TRUE
         ORDER BY c.id",
    )
    .bind(after_id)
    .bind(also)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let parse = |text: &str| {
        text.parse::<u64>()
            .map_err(|_| StoreError::Invalid(format!("transaction id {text:?}")))
    };
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let horizon = Horizon {
        xmin: parse(&first.xmin)?,
        xmax: parse(&first.xmax)?,
    };
    let changes = rows
        .into_iter()
        .filter_map(|row| {
            Some(TicketChange {
                id: row.id?,
                ticket_id: row.ticket_id?,
                number: row.number?,
                kind: row.kind?,
                assignee_id: row.assignee_id,
                previous_assignee_id: row.previous_assignee_id,
                department_id: row.department_id,
            })
        })
        .collect();
    Ok(Some((horizon, changes)))
}

/// Forgets the changes below id `first_kept`.
pub async fn forget_changes_before(store: &Store, first_kept: i64) -> Result<()> {
    on_writer!(store, conn => sqlx::query("DELETE FROM ticket_changes WHERE id < $1")
        .bind(first_kept)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    Ok(())
}

/// A NOTIFY on `channel` (PostgreSQL; nothing on SQLite), in its own transaction that is not
/// flushed to disk at commit: what is announced is a hint the listeners can do without.
pub async fn notify(store: &Store, channel: &str, payload: &str) -> Result<()> {
    let Store::Postgres { pool } = store else {
        return Ok(());
    };
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
