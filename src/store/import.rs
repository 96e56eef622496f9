//! Tickets from another system (`helpdesk import csv`): one checked row becomes a ticket with
//! its customer, first message, history and tags in one transaction.

use chrono::{DateTime, Utc};
use helpdesk_channel::{ChannelKind, Identity};

use super::tickets::{Actor, NewEvent, NewMessage, NewTicket, TicketRef};
use super::{Result, Store, StoreError, Tx, on_pool, on_tx};
use crate::domain::TicketId;
use crate::domain::TicketNumber;
use crate::domain::{Direction, MessageKind, Priority, Status};

/// One row of an import, checked.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: u64,
    pub number: Option<i64>,
    pub subject: String,
    pub customer_email: String,
    pub customer_name: Option<String>,
    pub status: Status,
    pub priority: Priority,
    pub department: Option<String>,
    pub assignee: Option<String>,
    pub created_at: DateTime<Utc>,
    pub body: String,
    pub tags: Vec<String>,
    /// Identifies the row's content, so a second import of it changes nothing.
    pub fingerprint: String,
}

/// What a row became.
pub enum Stored {
    Ticket(TicketNumber),
    AlreadyImported,
}

/// Stores `row` as a ticket in a transaction of its own: its customer, ticket, first message,
/// history and tags together or not at all. A department or assignee that does not exist, or a
/// number taken, is a `NotFound` or `Conflict` naming it.
pub async fn store_row(store: &Store, row: &ImportRow) -> Result<Stored> {
    let department: Option<(i64, String)> = match &row.department {
        None => None,
        Some(name) => {
            let found = super::agents::department_by_name(store, name)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("no department named {name:?}")))?;
            Some((found.id, found.name))
        }
    };
    let assignee: Option<(i64, String)> = match &row.assignee {
        None => None,
        Some(email) => {
            let found: Option<(i64, String)> = on_pool!(store, pool => sqlx::query_as(
                "SELECT id, name FROM agents WHERE email = $1",
            )
            .bind(email)
            .fetch_optional(pool)
            .await)?;
            Some(
                found
                    .ok_or_else(|| StoreError::NotFound(format!("no agent with email {email}")))?,
            )
        }
    };
    let mut tx = store.begin_write().await?;
    match store_in(&mut tx, row, department, assignee).await {
        Ok(stored) => {
            tx.commit().await?;
            Ok(stored)
        }
        Err(error) => {
            tx.rollback().await.ok();
            Err(error)
        }
    }
}

async fn store_in(
    tx: &mut Tx,
    row: &ImportRow,
    department: Option<(i64, String)>,
    assignee: Option<(i64, String)>,
) -> Result<Stored> {
    let known: Option<i64> = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT id FROM messages WHERE channel = 'email' AND external_id = $1",
    )
    .bind(&row.fingerprint)
    .fetch_optional(&mut *conn)
    .await)?;
    if known.is_some() {
        return Ok(Stored::AlreadyImported);
    }
    let at = row.created_at;
    let identity = Identity {
        channel: ChannelKind::Email,
        address: row.customer_email.clone(),
        display_name: row.customer_name.clone(),
        handle: None,
    };
    let customer: Option<(i64, Option<String>)> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT customer_id, display_name FROM customer_identities
         WHERE channel = 'email' AND address = $1",
    )
    .bind(&row.customer_email)
    .fetch_optional(&mut *conn)
    .await)?;
    let customer_id = super::customers::resolve(tx, &identity, customer, at).await?;
    let ticket = match row.number {
        None => {
            super::tickets::create(
                tx,
                &NewTicket {
                    subject: &row.subject,
                    priority: row.priority,
                    customer_id,
                    channel: ChannelKind::Email,
                    conversation: None,
                    follows_ticket_id: None,
                    now: at,
                },
            )
            .await?
        }
        Some(number) => create_numbered(tx, row, TicketNumber(number), customer_id).await?,
    };
    super::tickets::insert_message(
        tx,
        &NewMessage {
            ticket_id: ticket.id,
            direction: Direction::Inbound,
            kind: MessageKind::Public,
            author_customer_id: Some(customer_id),
            author_agent_id: None,
            channel: ChannelKind::Email,
            external_id: Some(&row.fingerprint),
            subject: Some(&row.subject),
            body_text: &row.body,
            body_html: None,
            quoted_text: None,
            raw_message_id: None,
            sent_at: Some(at),
            now: at,
            sender_address: Some(&row.customer_email),
        },
    )
    .await?
    .ok_or_else(|| StoreError::Conflict("the same row is being imported twice".into()))?;
    let why = format!("imported from CSV line {}", row.line);
    let event =
        |kind: &'static str, old: Option<&'static str>, new: Option<String>| (kind, old, new);
    let mut events = vec![event("imported", None, None)];
    if row.priority != Priority::Normal {
        events.push(event(
            "priority",
            Some(Priority::Normal.as_str()),
            Some(row.priority.as_str().to_owned()),
        ));
    }
    if let Some((id, name)) = &department {
        on_tx!(tx, conn => sqlx::query("UPDATE tickets SET department_id = $1 WHERE id = $2")
            .bind(*id)
            .bind(ticket.id)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))?;
        events.push(event("department", None, Some(name.clone())));
    }
    if let Some((id, name)) = &assignee {
        on_tx!(tx, conn => sqlx::query("UPDATE tickets SET assignee_id = $1 WHERE id = $2")
            .bind(*id)
            .bind(ticket.id)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))?;
        events.push(event("assignee", None, Some(name.clone())));
    }
    for (kind, old, new) in &events {
        super::tickets::record_event(
            tx,
            &NewEvent {
                ticket_id: ticket.id,
                actor: Actor::System,
                kind,
                old_value: *old,
                new_value: new.as_deref(),
                reason: Some(&why),
                at,
            },
        )
        .await?;
    }
    if row.status != Status::New {
        super::tickets::change_status(tx, ticket.number, row.status, Actor::System, Some(&why), at)
            .await?;
    }
    for tag in &row.tags {
        on_tx!(tx, conn => sqlx::query(
            "INSERT INTO ticket_tags (ticket_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(ticket.id)
        .bind(tag)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    }
    Ok(Stored::Ticket(ticket.number))
}

/// A ticket with the number the other system gave it; the counter moves past it, so new
/// tickets never take it.
async fn create_numbered(
    tx: &mut Tx,
    row: &ImportRow,
    number: TicketNumber,
    customer_id: i64,
) -> Result<TicketRef> {
    let taken: Option<i64> = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT id FROM tickets WHERE number = $1",
    )
    .bind(number)
    .fetch_optional(&mut *conn)
    .await)?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!(
            "ticket #{number} exists already"
        )));
    }
    let id: TicketId = on_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO tickets (number, subject, status, priority, customer_id, channel,
                              created_at, updated_at, last_customer_message_at)
         VALUES ($1, $2, 'new', $3, $4, 'email', $5, $5, $5)
         RETURNING id",
    )
    .bind(number)
    .bind(&row.subject)
    .bind(row.priority.as_str())
    .bind(customer_id)
    .bind(row.created_at)
    .fetch_one(&mut *conn)
    .await)?;
    // SQLite's counter follows by trigger; PostgreSQL's sequence is moved here.
    if let Tx::Postgres { transaction } = tx {
        sqlx::query(
            "SELECT setval('ticket_numbers', GREATEST($1, (SELECT last_value FROM ticket_numbers)))",
        )
        .bind(number)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(TicketRef {
        id,
        number,
        status: Status::New,
    })
}
