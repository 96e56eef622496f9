//! Satisfaction surveys: one row per ticket in `satisfaction_surveys` (sent = a row, rated = a
//! rating), what deciding to send one needs to know, the per-department switch, and the keys
//! survey links are signed with.

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;

use super::tickets::{Actor, NewEvent, record_event};
use super::{Result, Store, StoreError, Tx, on_pool, on_tx, on_writer};
use crate::domain::{TicketId, TicketNumber};

/// What deciding whether ticket `ticket_id` gets a survey needs.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketFacts {
    pub ticket_id: TicketId,
    pub number: TicketNumber,
    pub subject: String,
    pub status: String,
    pub channel: String,
    /// The customer's name, if known.
    pub customer_name: Option<String>,
    pub department_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub merged_into_ticket_id: Option<i64>,
    pub opened_by_automatic: bool,
    /// The department's switch; `None` without a department.
    pub department_surveys: Option<bool>,
    /// The customer's address on the ticket's channel, if there is one.
    pub address: Option<String>,
}

pub async fn ticket_facts(tx: &mut Tx, ticket_id: TicketId) -> Result<Option<TicketFacts>> {
    Ok(on_tx!(tx, conn => sqlx::query_as(
        "SELECT t.id AS ticket_id, t.number, t.subject, t.status, t.channel,
                c.name AS customer_name, t.department_id,
                t.assignee_id, t.merged_into_ticket_id, t.opened_by_automatic,
                d.surveys_enabled AS department_surveys,
                (SELECT ci.address FROM customer_identities ci
                 WHERE ci.customer_id = t.customer_id AND ci.channel = t.channel
                 ORDER BY ci.id LIMIT 1) AS address
         FROM tickets t JOIN customers c ON c.id = t.customer_id
         LEFT JOIN departments d ON d.id = t.department_id
         WHERE t.id = $1",
    )
    .bind(ticket_id)
    .fetch_optional(&mut *conn)
    .await)?)
}

/// A survey about to be sent.
#[derive(Debug, Clone)]
pub struct NewSurvey<'a> {
    pub ticket_id: TicketId,
    pub channel: &'a str,
    pub agent_id: Option<i64>,
    pub department_id: Option<i64>,
    pub sent_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Records that ticket `ticket_id` is asked; false when it was asked before (at most one survey
/// per ticket, whatever happened since).
pub async fn insert(tx: &mut Tx, survey: &NewSurvey<'_>) -> Result<bool> {
    let inserted = on_tx!(tx, conn => sqlx::query(
        "INSERT INTO satisfaction_surveys
             (ticket_id, channel, agent_id, department_id, sent_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (ticket_id) DO NOTHING",
    )
    .bind(survey.ticket_id)
    .bind(survey.channel)
    .bind(survey.agent_id)
    .bind(survey.department_id)
    .bind(survey.sent_at)
    .bind(survey.expires_at)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(inserted == 1)
}

/// Links the survey of `ticket_id` to the outbound message that carries it.
pub async fn set_message(tx: &mut Tx, ticket_id: TicketId, message_id: i64) -> Result<()> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE satisfaction_surveys SET message_id = $1 WHERE ticket_id = $2",
    )
    .bind(message_id)
    .bind(ticket_id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(())
}

/// A ticket's survey as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Survey {
    pub ticket_id: TicketId,
    pub number: TicketNumber,
    pub customer_id: i64,
    pub channel: String,
    pub sent_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub rating: Option<i64>,
    pub rated_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    pub message_id: Option<i64>,
}

const SURVEY_COLUMNS: &str = "s.ticket_id, t.number, t.customer_id, s.channel, s.sent_at,
    s.expires_at, CAST(s.rating AS BIGINT) AS rating, s.rated_at, s.comment, s.message_id
    FROM satisfaction_surveys s JOIN tickets t ON t.id = s.ticket_id";

/// The survey of ticket `ticket_id`, if one was sent.
pub async fn of_ticket(store: &Store, ticket_id: TicketId) -> Result<Option<Survey>> {
    let sql = format!("SELECT {SURVEY_COLUMNS} WHERE s.ticket_id = $1");
    Ok(
        on_pool!(store, pool => sqlx::query_as(AssertSqlSafe(sql.clone()))
        .bind(ticket_id)
        .fetch_optional(pool)
        .await)?,
    )
}

/// The survey the outbound message `message_id` carries, if it carries one.
pub async fn of_message(store: &Store, message_id: i64) -> Result<Option<Survey>> {
    let sql = format!("SELECT {SURVEY_COLUMNS} WHERE s.message_id = $1");
    Ok(
        on_pool!(store, pool => sqlx::query_as(AssertSqlSafe(sql.clone()))
        .bind(message_id)
        .fetch_optional(pool)
        .await)?,
    )
}

/// Whether `address` on `channel` is an identity of the customer of ticket `ticket_id`.
pub async fn is_customer(
    store: &Store,
    ticket_id: TicketId,
    channel: &str,
    address: &str,
) -> Result<bool> {
    let found: Option<i64> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT ci.id FROM tickets t
         JOIN customer_identities ci ON ci.customer_id = t.customer_id
         WHERE t.id = $1 AND ci.channel = $2 AND ci.address = $3 LIMIT 1",
    )
    .bind(ticket_id)
    .bind(channel)
    .bind(address)
    .fetch_optional(pool)
    .await)?;
    Ok(found.is_some())
}

/// Sets the rating of ticket `ticket_id`'s survey and records it in the history as the
/// customer's (`rated`, old → new). Returns the rating it replaced.
pub async fn rate(
    tx: &mut Tx,
    survey: &Survey,
    rating: i64,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    let value = i32::try_from(rating)
        .ok()
        .filter(|value| (1..=5).contains(value))
        .ok_or_else(|| StoreError::Invalid(format!("{rating} is not a rating from 1 to 5")))?;
    let previous: Option<Option<i64>> = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT CAST(rating AS BIGINT) FROM satisfaction_surveys WHERE ticket_id = $1",
    )
    .bind(survey.ticket_id)
    .fetch_optional(&mut *conn)
    .await)?;
    let Some(previous) = previous else {
        return Err(StoreError::NotFound(format!(
            "ticket #{} has no survey",
            survey.number
        )));
    };
    if previous == Some(rating) {
        return Ok(previous);
    }
    on_tx!(tx, conn => sqlx::query(
        "UPDATE satisfaction_surveys SET rating = $1, rated_at = $2 WHERE ticket_id = $3",
    )
    .bind(value)
    .bind(now)
    .bind(survey.ticket_id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    let old = previous.map(|old| old.to_string());
    let new = rating.to_string();
    record_event(
        tx,
        &NewEvent {
            ticket_id: survey.ticket_id,
            actor: Actor::Customer(survey.customer_id),
            kind: "rated",
            old_value: old.as_deref(),
            new_value: Some(&new),
            reason: None,
            at: now,
        },
    )
    .await?;
    Ok(previous)
}

/// Keeps the customer's comment on their rating (blank removes it) and records it in the
/// history.
pub async fn comment(
    tx: &mut Tx,
    survey: &Survey,
    comment: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE satisfaction_surveys SET comment = $1 WHERE ticket_id = $2",
    )
    .bind(comment)
    .bind(survey.ticket_id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    record_event(
        tx,
        &NewEvent {
            ticket_id: survey.ticket_id,
            actor: Actor::Customer(survey.customer_id),
            kind: "rating_comment",
            old_value: None,
            new_value: None,
            reason: comment,
            at: now,
        },
    )
    .await
}

/// Marks a ticket as opened by an automatic message: it is never surveyed.
pub async fn mark_opened_by_automatic(tx: &mut Tx, ticket_id: TicketId) -> Result<()> {
    on_tx!(tx, conn => sqlx::query("UPDATE tickets SET opened_by_automatic = TRUE WHERE id = $1")
        .bind(ticket_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// Each department's switch: (id, surveys enabled).
pub async fn department_switches(store: &Store) -> Result<Vec<(i64, bool)>> {
    Ok(on_pool!(store, pool => sqlx::query_as(
        "SELECT id, surveys_enabled FROM departments ORDER BY id",
    )
    .fetch_all(pool)
    .await)?)
}

/// Turns surveys on or off for department `id`; false when there is no such department.
pub async fn set_department_switch(store: &Store, id: i64, enabled: bool) -> Result<bool> {
    let changed = on_writer!(store, conn => sqlx::query(
        "UPDATE departments SET surveys_enabled = $1 WHERE id = $2",
    )
    .bind(enabled)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()));
    Ok(changed == 1)
}

/// The signing key called `name`, made (32 random bytes, hex) on first use. Every instance on
/// the database reads the same key.
pub async fn signing_key(store: &Store, name: &str, now: DateTime<Utc>) -> Result<String> {
    let read = || async {
        let key: Option<String> = on_pool!(store, pool => sqlx::query_scalar(
            "SELECT secret FROM signing_keys WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(pool)
        .await)?;
        Ok::<_, StoreError>(key)
    };
    if let Some(key) = read().await? {
        return Ok(key);
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(StoreError::NoRandom)?;
    let made = hex::encode(bytes);
    on_writer!(store, conn => sqlx::query(
        "INSERT INTO signing_keys (name, secret, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(&made)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()));
    // Another instance may have made it first: its key is the one.
    read()
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("signing key {name} was not kept")))
}
