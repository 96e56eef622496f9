//! Telling people what concerns them: each person's choice of how, the agents a note mentions,
//! and the notices already sent (so a job run again sends nothing twice).

use chrono::{DateTime, Utc};

use super::{Result, Store, Tx, on_pool, on_tx};
use crate::domain::notice::{NoticeEvent, NoticeWay};
use crate::domain::{TicketId, TicketNumber};

/// The ways a person chose, event by event; an event they left at its default is absent.
pub async fn chosen(store: &Store, agent_id: i64) -> Result<Vec<(NoticeEvent, NoticeWay)>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT event, how FROM notification_preferences WHERE agent_id = $1",
    )
    .bind(agent_id)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// Sets how a person is told of each event named; `None` puts an event back to its default.
/// One transaction: all or nothing.
pub async fn choose(
    store: &Store,
    agent_id: i64,
    choices: &[(NoticeEvent, Option<NoticeWay>)],
) -> Result<()> {
    let mut tx = store.begin_write().await?;
    for (event, way) in choices {
        on_tx!(&mut tx, conn => sqlx::query(
            "DELETE FROM notification_preferences WHERE agent_id = $1 AND event = $2",
        )
        .bind(agent_id)
        .bind(event.as_str())
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
        if let Some(way) = way {
            on_tx!(&mut tx, conn => sqlx::query(
                "INSERT INTO notification_preferences (agent_id, event, how) VALUES ($1, $2, $3)",
            )
            .bind(agent_id)
            .bind(event.as_str())
            .bind(way.as_str())
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))?;
        }
    }
    tx.commit().await
}

/// A person as a notice needs them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Person {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub active: bool,
}

pub async fn person(store: &Store, agent_id: i64) -> Result<Option<Person>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, email, name, active FROM agents WHERE id = $1",
    )
    .bind(agent_id)
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// A person's linked chat accounts as (channel, user id).
pub async fn chat_accounts(store: &Store, agent_id: i64) -> Result<Vec<(String, String)>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT channel, address FROM agent_identities WHERE agent_id = $1 ORDER BY channel",
    )
    .bind(agent_id)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// The active agents who may see ticket `ticket_id` (admins, its assignee, its department's
/// agents) as (id, email, name): whom a note on it can mention.
pub async fn mentionable_in(
    tx: &mut Tx,
    ticket_id: TicketId,
) -> Result<Vec<(i64, String, String)>> {
    let rows = on_tx!(tx, conn => sqlx::query_as(
        "SELECT a.id, a.email, a.name FROM agents a, tickets t
         WHERE t.id = $1 AND a.active
           AND (a.role = 'admin' OR a.id = t.assignee_id
                OR t.department_id IN (SELECT department_id FROM agent_departments
                                       WHERE agent_id = a.id))
         ORDER BY a.id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await)?;
    Ok(rows)
}

/// Records that note `message_id` mentions these agents.
pub async fn record_mentions(tx: &mut Tx, message_id: i64, agent_ids: &[i64]) -> Result<()> {
    for agent_id in agent_ids {
        on_tx!(tx, conn => sqlx::query(
            "INSERT INTO message_mentions (message_id, agent_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(message_id)
        .bind(agent_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    }
    Ok(())
}

/// The agents note `message_id` mentions.
pub async fn mentioned(store: &Store, message_id: i64) -> Result<Vec<i64>> {
    let ids = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT agent_id FROM message_mentions WHERE message_id = $1 ORDER BY agent_id",
    )
    .bind(message_id)
    .fetch_all(pool)
    .await)?;
    Ok(ids)
}

/// An outbox entry as a notice job reads it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Happened {
    pub kind: String,
    pub ticket_id: TicketId,
    pub message_id: Option<i64>,
    /// Who caused it; they are not told.
    pub actor_agent_id: Option<i64>,
}

pub async fn happened(store: &Store, outbox_id: i64) -> Result<Option<Happened>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT kind, ticket_id, message_id, actor_agent_id FROM outbox WHERE id = $1",
    )
    .bind(outbox_id)
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// The ticket as a notice names it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketFacts {
    pub number: TicketNumber,
    pub subject: String,
    pub assignee_id: Option<i64>,
    pub department_id: Option<i64>,
    pub customer: String,
}

pub async fn ticket(store: &Store, ticket_id: TicketId) -> Result<Option<TicketFacts>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT t.number, t.subject, t.assignee_id, t.department_id,
                COALESCE(c.name, (SELECT ci.address FROM customer_identities ci
                                  WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1),
                         '') AS customer
         FROM tickets t JOIN customers c ON c.id = t.customer_id WHERE t.id = $1",
    )
    .bind(ticket_id)
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// A message's text and its author's name (an agent's, else the customer's).
pub async fn message(store: &Store, message_id: i64) -> Result<Option<(String, Option<String>)>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT m.body_text, COALESCE(a.name, c.name) FROM messages m
         LEFT JOIN agents a ON a.id = m.author_agent_id
         LEFT JOIN customers c ON c.id = m.author_customer_id
         WHERE m.id = $1",
    )
    .bind(message_id)
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// The active agents of department `department_id` and all active admins.
pub async fn department_and_admins(store: &Store, department_id: Option<i64>) -> Result<Vec<i64>> {
    let ids = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT a.id FROM agents a
         WHERE a.active AND (a.role = 'admin' OR a.id IN
               (SELECT agent_id FROM agent_departments WHERE department_id = $1))
         ORDER BY a.id",
    )
    .bind(department_id)
    .fetch_all(pool)
    .await)?;
    Ok(ids)
}

/// Whether `agent_id` was already told of outbox entry `outbox_id` this way.
pub async fn was_sent(store: &Store, outbox_id: i64, agent_id: i64, medium: &str) -> Result<bool> {
    let found: Option<i64> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT agent_id FROM notices_sent
         WHERE outbox_id = $1 AND agent_id = $2 AND medium = $3",
    )
    .bind(outbox_id)
    .bind(agent_id)
    .bind(medium)
    .fetch_optional(pool)
    .await)?;
    Ok(found.is_some())
}

/// Records that `agent_id` was told of outbox entry `outbox_id` this way.
pub async fn record_sent(
    store: &Store,
    outbox_id: i64,
    agent_id: i64,
    medium: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    super::on_writer!(store, conn => sqlx::query(
        "INSERT INTO notices_sent (outbox_id, agent_id, medium, sent_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(outbox_id)
    .bind(agent_id)
    .bind(medium)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()));
    Ok(())
}

/// How a person is told of one event, as the account page and the API show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preference {
    pub event: NoticeEvent,
    pub way: NoticeWay,
    /// Not chosen: the default for someone with (or without) a linked chat account.
    pub is_default: bool,
}

/// How a person is told of each event, in [`NoticeEvent::ALL`]'s order.
pub async fn preferences(store: &Store, agent_id: i64) -> Result<Vec<Preference>> {
    let chosen = chosen(store, agent_id).await?;
    let has_chat = !chat_accounts(store, agent_id).await?.is_empty();
    Ok(NoticeEvent::ALL
        .iter()
        .map(|event| match chosen.iter().find(|(e, _)| e == event) {
            Some((_, way)) => Preference {
                event: *event,
                way: *way,
                is_default: false,
            },
            None => Preference {
                event: *event,
                way: NoticeWay::default_for(has_chat),
                is_default: true,
            },
        })
        .collect())
}
