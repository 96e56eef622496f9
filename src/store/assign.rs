//! What assignment reads and writes: the tickets to assign, departments with their strategy
//! and candidates, and what a round decided (`jobs::assign` decides).

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;

use super::{Result, Store, Tx, id_list, on_pool, on_tx};
use crate::domain::assignment::Candidate;
use crate::domain::{AssignmentStrategy, Priority, Status, TicketId};

/// Whether agent `a` can act on a ticket: signs in with a password or answers from a chat
/// account. One condition for the strategies' candidates and the agents rules name.
macro_rules! can_act {
    () => {
        "(a.password_hash IS NOT NULL \
         OR EXISTS (SELECT 1 FROM agent_identities i WHERE i.agent_id = a.id))"
    };
}

#[derive(sqlx::FromRow)]
pub struct TicketRow {
    pub id: TicketId,
    pub channel: String,
    pub subject: String,
    pub department_id: Option<i64>,
    pub priority: Priority,
    pub assignee_id: Option<i64>,
    pub status: Status,
    pub routed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub sender: Option<String>,
    pub first_text: Option<String>,
}

/// The tickets of `tickets` as assignment reads them (on PostgreSQL locked, in id order): with
/// the sender's first address and the first message's text, which rules look at.
pub async fn ticket_rows(tx: &mut Tx, tickets: &[TicketId]) -> Result<Vec<TicketRow>> {
    let lock = match tx {
        Tx::Sqlite { .. } => "",
        Tx::Postgres { .. } => "FOR UPDATE OF t",
    };
    let ids = id_list(tickets);
    let sql = format!(
        "SELECT t.id, t.channel, t.subject, t.department_id, t.priority, t.assignee_id, t.status,
                t.routed_at, t.created_at,
                (SELECT ci.address FROM customer_identities ci
                 WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1) AS sender,
                (SELECT m.body_text FROM messages m
                 WHERE m.ticket_id = t.id ORDER BY m.id LIMIT 1) AS first_text
         FROM tickets t WHERE t.id IN ({ids}) ORDER BY t.id {lock}"
    );
    let rows = on_tx!(tx, conn => sqlx::query_as(AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await)?;
    Ok(rows)
}

/// Active tickets nobody is assigned to that assignment should look at again, oldest first:
/// those with a department (an agent may have become available), and those assignment never
/// finished for since `stale_before` (their job was lost with a crashed process).
pub async fn waiting(
    store: &Store,
    limit: i64,
    stale_before: DateTime<Utc>,
) -> Result<Vec<TicketId>> {
    let ids = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT id FROM tickets
         WHERE assignee_id IS NULL AND status IN ('new', 'open', 'pending')
           AND (department_id IS NOT NULL OR (routed_at IS NULL AND created_at < $2))
         ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .bind(stale_before)
    .fetch_all(pool)
    .await)?;
    Ok(ids)
}

/// Tags a rule added to ticket `ticket_id` (those it has already stay as they are).
pub async fn add_tags(tx: &mut Tx, ticket_id: TicketId, tags: &[String]) -> Result<()> {
    for tag in tags {
        on_tx!(tx, conn => sqlx::query(
            "INSERT INTO ticket_tags (ticket_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(ticket_id)
        .bind(tag)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    }
    Ok(())
}

/// An agent a rule names, as assignment needs to know them.
#[derive(sqlx::FromRow)]
pub struct NamedAgent {
    pub name: String,
    pub active: bool,
    /// Signs in with a password or answers from a chat account: the same test as
    /// [`candidates`], so a rule cannot give a ticket to someone who cannot act on it.
    pub reachable: bool,
}

/// Agent `agent_id`, if there is one.
pub async fn named_agent(tx: &mut Tx, agent_id: i64) -> Result<Option<NamedAgent>> {
    let row = on_tx!(tx, conn => sqlx::query_as(
        concat!("SELECT a.name, a.active, ", can_act!(), " AS reachable FROM agents a WHERE a.id = $1"),
    )
    .bind(agent_id)
    .fetch_optional(&mut *conn)
    .await)?;
    Ok(row)
}

/// The name of department `id`.
pub async fn department_name(tx: &mut Tx, id: i64) -> Result<Option<String>> {
    let name = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT name FROM departments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await)?;
    Ok(name)
}

/// The id of the department called `name`.
pub async fn department_id(tx: &mut Tx, name: &str) -> Result<Option<i64>> {
    let id = on_tx!(tx, conn => sqlx::query_scalar("SELECT id FROM departments WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await)?;
    Ok(id)
}

/// One ticket's row as assignment leaves it.
pub struct RoutedTicket {
    pub id: TicketId,
    pub department: Option<i64>,
    pub priority: &'static str,
    pub assignee: Option<i64>,
}

/// Writes the tickets' department, priority and assignee, and marks them routed, in one
/// statement.
pub async fn update_tickets(
    tx: &mut Tx,
    tickets: &[RoutedTicket],
    now: DateTime<Utc>,
) -> Result<()> {
    let rows = (0..tickets.len())
        .map(|row| {
            let at = row * 4;
            format!(
                "(CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS TEXT), CAST(${} AS BIGINT))",
                at + 2,
                at + 3,
                at + 4,
                at + 5
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "WITH v (id, department_id, priority, assignee_id) AS (VALUES {rows})
         UPDATE tickets SET department_id = v.department_id, priority = v.priority,
                routed_at = COALESCE(routed_at, $1),
                assignee_id = COALESCE(v.assignee_id, tickets.assignee_id)
         FROM v WHERE tickets.id = v.id"
    );
    on_tx!(tx, conn => {
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now);
        for ticket in tickets {
            query = query
                .bind(ticket.id)
                .bind(ticket.department)
                .bind(ticket.priority)
                .bind(ticket.assignee);
        }
        query.execute(&mut *conn).await.map(|done| done.rows_affected())
    })?;
    Ok(())
}

/// The agents given a ticket at `now`, for the strategies that look at who had one last.
pub async fn mark_assigned_at(tx: &mut Tx, agents: &[i64], now: DateTime<Utc>) -> Result<()> {
    if agents.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE agents SET last_assigned_at = $1 WHERE id IN ({})",
        id_list(agents)
    );
    on_tx!(tx, conn => sqlx::query(AssertSqlSafe(sql))
        .bind(now)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// Who department `id` gave its last ticket to (round robin goes on from them).
pub async fn set_last_assigned(tx: &mut Tx, id: i64, agent: Option<i64>) -> Result<()> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE departments SET last_assigned_agent_id = $1 WHERE id = $2",
    )
    .bind(agent)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(())
}

/// The department's strategy and who it gave its last ticket to; on PostgreSQL its row stays
/// locked until commit.
pub async fn department_strategy(
    tx: &mut Tx,
    department: i64,
) -> Result<(AssignmentStrategy, Option<i64>)> {
    // On PostgreSQL the department's row is locked until commit, so assignments running at
    // once take their turn here and each sees who the one before it chose.
    let lock = match tx {
        Tx::Sqlite { .. } => "",
        Tx::Postgres { .. } => "FOR UPDATE",
    };
    let sql = format!(
        "SELECT assignment_strategy, last_assigned_agent_id FROM departments WHERE id = $1 {lock}"
    );
    let (strategy, last): (String, Option<i64>) = on_tx!(tx, conn => sqlx::query_as(AssertSqlSafe(sql))
    .bind(department)
    .fetch_one(&mut *conn)
    .await)?;
    Ok((strategy.parse()?, last))
}

#[derive(sqlx::FromRow)]
struct CandidateRow {
    id: i64,
    name: String,
    active: bool,
    available: bool,
    max_open_tickets: Option<i64>,
    last_assigned_at: Option<DateTime<Utc>>,
    open_tickets: i64,
}

/// The department's agents who can act on a ticket: those who sign in with a password or
/// answer from a chat account. Someone with neither (made through the API or the agents page
/// and never given either) would hold tickets no one answers, so is never a candidate.
pub async fn candidates(tx: &mut Tx, department: i64) -> Result<Vec<Candidate>> {
    let rows: Vec<CandidateRow> = on_tx!(tx, conn => sqlx::query_as(concat!(
        "SELECT a.id, a.name, a.active, a.available, a.max_open_tickets, a.last_assigned_at,
                (SELECT COUNT(*) FROM tickets t
                 WHERE t.assignee_id = a.id AND t.status IN ('new', 'open', 'pending'))
                    AS open_tickets
         FROM agents a JOIN agent_departments ad ON ad.agent_id = a.id
         WHERE ad.department_id = $1 AND ",
        can_act!(),
        " ORDER BY a.id"),
    )
    .bind(department)
    .fetch_all(&mut *conn)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|row| Candidate {
            agent_id: row.id,
            name: row.name,
            active: row.active,
            available: row.available,
            open_tickets: row.open_tickets,
            max_open_tickets: row.max_open_tickets,
            last_assigned_at: row.last_assigned_at,
        })
        .collect())
}
