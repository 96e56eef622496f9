//! Webhooks: the URLs admins register for ticket events, the events waiting to be relayed, and
//! each delivery with its attempts.
//!
//! The database writes a `webhook_outbox` row in the transaction of every new ticket, history
//! event and message (triggers, while an active webhook exists). The relay turns each row into
//! one delivery per subscribed webhook, with the payload fixed, and queues the first attempt in
//! the same transaction that removes the row.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Result, Store, StoreError, Tx, on_pool, on_tx, on_writer};
use crate::domain::TicketId;

/// The events a webhook can subscribe to.
pub const EVENTS: &[&str] = &[
    "ticket.created",
    "ticket.updated",
    "ticket.status_changed",
    "ticket.assigned",
    "message.added",
    "ticket.rated",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    #[serde(skip)]
    pub secret: String,
    /// Comma-separated event names, or `*` for all.
    pub events: String,
    pub description: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl Webhook {
    pub fn wants(&self, event: &str) -> bool {
        self.events
            .split(',')
            .map(str::trim)
            .any(|wanted| wanted == "*" || wanted == event)
    }
}

/// Checks a webhook's URL and events; returns the events as stored.
pub fn validate(url: &str, events: &[String]) -> std::result::Result<String, String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("url {url:?} must start with http:// or https://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("url {url:?} is not a valid http(s) URL"));
    }
    if events.is_empty() {
        return Err(format!(
            "events must name at least one of {} (or \"*\")",
            EVENTS.join(", ")
        ));
    }
    for event in events {
        if event != "*" && !EVENTS.contains(&event.as_str()) {
            return Err(format!(
                "unknown event {event:?} (expected one of {}, or \"*\")",
                EVENTS.join(", ")
            ));
        }
    }
    Ok(events.join(","))
}

pub async fn create(
    store: &Store,
    url: &str,
    secret: &str,
    events: &str,
    description: &str,
    now: DateTime<Utc>,
) -> Result<Webhook> {
    let id: i64 = on_writer!(store, conn => sqlx::query_scalar(
        "INSERT INTO webhooks (url, secret, events, description, active, created_at)
         VALUES ($1, $2, $3, $4, TRUE, $5) RETURNING id",
    )
    .bind(url.trim())
    .bind(secret)
    .bind(events)
    .bind(description.trim())
    .bind(now)
    .fetch_one(&mut *conn)
    .await);
    find(store, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("webhook #{id} vanished")))
}

pub async fn list(store: &Store) -> Result<Vec<Webhook>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, url, secret, events, description, active, created_at FROM webhooks ORDER BY id",
    )
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

pub async fn find(store: &Store, id: i64) -> Result<Option<Webhook>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, url, secret, events, description, active, created_at FROM webhooks
         WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// Removes a webhook and its deliveries; queued attempts find nothing to do.
pub async fn delete(store: &Store, id: i64) -> Result<()> {
    let deleted = on_writer!(store, conn => sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    if deleted == 0 {
        return Err(StoreError::NotFound(format!("there is no webhook #{id}")));
    }
    Ok(())
}

/// Turns a webhook off (no new deliveries are made for it; queued attempts still run) or on
/// again.
pub async fn set_active(store: &Store, id: i64, active: bool) -> Result<()> {
    let updated = on_writer!(store, conn => sqlx::query("UPDATE webhooks SET active = $1 WHERE id = $2")
        .bind(active)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    if updated == 0 {
        return Err(StoreError::NotFound(format!("there is no webhook #{id}")));
    }
    Ok(())
}

/// A change waiting to be relayed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub source: String,
    pub source_id: i64,
    pub ticket_id: TicketId,
}

pub async fn pending(store: &Store, limit: i64) -> Result<Vec<OutboxRow>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, source, source_id, ticket_id FROM webhook_outbox ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// Takes an outbox row inside `tx`; false if another relay took it first (on PostgreSQL the
/// second waits for the first to commit, then finds nothing).
pub async fn take(tx: &mut Tx, outbox_id: i64) -> Result<bool> {
    let deleted = on_tx!(tx, conn => sqlx::query("DELETE FROM webhook_outbox WHERE id = $1")
        .bind(outbox_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(deleted == 1)
}

/// A history event as the payload tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct EventRow {
    pub kind: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub reason: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

pub async fn event(store: &Store, id: i64) -> Result<Option<EventRow>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT e.kind, e.old_value, e.new_value, e.reason,
                COALESCE(a.name, c.name,
                         (SELECT ci.address FROM customer_identities ci
                          WHERE ci.customer_id = e.actor_customer_id ORDER BY ci.id LIMIT 1),
                         'system') AS actor,
                e.at
         FROM ticket_events e
         LEFT JOIN agents a ON a.id = e.actor_agent_id
         LEFT JOIN customers c ON c.id = e.actor_customer_id
         WHERE e.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// A message as the payload tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub direction: String,
    pub kind: String,
    pub author: String,
    pub channel: String,
    pub subject: Option<String>,
    pub body_text: String,
    pub created_at: DateTime<Utc>,
}

pub async fn message(store: &Store, id: i64) -> Result<Option<MessageRow>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT m.id, m.direction, m.kind,
                COALESCE(a.name, c.name,
                         (SELECT ci.address FROM customer_identities ci
                          WHERE ci.customer_id = m.author_customer_id ORDER BY ci.id LIMIT 1),
                         'helpdesk') AS author,
                m.channel, m.subject, m.body_text, m.created_at
         FROM messages m
         LEFT JOIN agents a ON a.id = m.author_agent_id
         LEFT JOIN customers c ON c.id = m.author_customer_id
         WHERE m.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// Records a delivery to make, in the relay's transaction; returns its id.
pub async fn insert_delivery(
    tx: &mut Tx,
    webhook_id: i64,
    event: &str,
    ticket_id: TicketId,
    payload: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let id = on_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO webhook_deliveries (webhook_id, event, ticket_id, payload, status, attempts,
                                         created_at)
         VALUES ($1, $2, $3, $4, 'pending', 0, $5) RETURNING id",
    )
    .bind(webhook_id)
    .bind(event)
    .bind(ticket_id)
    .bind(payload)
    .bind(now)
    .fetch_one(&mut *conn)
    .await)?;
    Ok(id)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event: String,
    pub ticket_id: Option<TicketId>,
    #[serde(skip)]
    pub payload: String,
    /// pending, delivered or failed.
    pub status: String,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, event, ticket_id, payload, status, attempts,
    last_status_code, last_error, created_at, last_attempt_at, delivered_at";

pub async fn delivery(store: &Store, id: i64) -> Result<Option<Delivery>> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1");
    let row = on_pool!(store, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(id)
        .fetch_optional(pool)
        .await)?;
    Ok(row)
}

/// A webhook's deliveries, newest first.
pub async fn deliveries(store: &Store, webhook_id: i64, limit: i64) -> Result<Vec<Delivery>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1
         ORDER BY id DESC LIMIT $2"
    );
    let rows = on_pool!(store, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(webhook_id)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
    Ok(rows)
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    Delivered {
        status_code: u16,
    },
    /// Tried again later.
    Retry {
        status_code: Option<u16>,
        error: String,
    },
    /// The last attempt failed too.
    Failed {
        status_code: Option<u16>,
        error: String,
    },
}

/// Records attempt number `attempt` of a delivery, in `tx`.
pub async fn record_attempt(
    tx: &mut Tx,
    delivery_id: i64,
    attempt: i64,
    result: &AttemptResult,
    now: DateTime<Utc>,
) -> Result<()> {
    let (status, code, error, delivered_at) = match result {
        AttemptResult::Delivered { status_code } => {
            ("delivered", Some(i64::from(*status_code)), None, Some(now))
        }
        AttemptResult::Retry { status_code, error } => (
            "pending",
            status_code.map(i64::from),
            Some(error.as_str()),
            None,
        ),
        AttemptResult::Failed { status_code, error } => (
            "failed",
            status_code.map(i64::from),
            Some(error.as_str()),
            None,
        ),
    };
    on_tx!(tx, conn => sqlx::query(
        "UPDATE webhook_deliveries SET status = $1, attempts = $2, last_status_code = $3,
                last_error = COALESCE($4, last_error), last_attempt_at = $5,
                delivered_at = COALESCE($6, delivered_at)
         WHERE id = $7",
    )
    .bind(status)
    .bind(attempt)
    .bind(code)
    .bind(error)
    .bind(now)
    .bind(delivered_at)
    .bind(delivery_id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(())
}

/// Counts of deliveries per status, for /metrics.
pub async fn delivery_counts(store: &Store) -> Result<Vec<(String, i64)>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status ORDER BY status",
    )
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}
