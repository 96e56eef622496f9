//! Tickets with their messages and history events: what writes them. Threading (which ticket
//! a message continues) is in [`thread`], what the pages and commands read in [`read`].

use chrono::{DateTime, Utc};
use helpdesk_channel::ChannelKind;
use sqlx::AssertSqlSafe;

use super::{Result, StoreError, Tx, on_tx};
use crate::domain::{Direction, MessageKind, Priority, Status};
use crate::domain::{TicketId, TicketNumber};

mod read;
mod thread;

pub use read::{
    AssignmentAudit, EventView, MessageView, TicketDetail, TicketFilter, TicketSummary, Totals,
    assignment_audit, detail, events, list, messages, number_of, number_of_message,
    resolved_before, summary, totals,
};
pub use thread::{
    Candidate, ThreadLookup, ThreadMatch, ThreadedBy, find_sibling, find_threads, is_known_writer,
    link, lock_thread, recent_inbound_mail_headers,
};

/// The few facts about a ticket that threading needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketRef {
    pub id: TicketId,
    pub number: TicketNumber,
    pub status: Status,
}

type TicketRefRow = (TicketId, TicketNumber, String);

fn to_ref(row: Option<TicketRefRow>) -> Result<Option<TicketRef>> {
    row.map(|(id, number, status)| {
        Ok(TicketRef {
            id,
            number,
            status: status.parse()?,
        })
    })
    .transpose()
}

pub async fn find_by_number(tx: &mut Tx, number: TicketNumber) -> Result<Option<TicketRef>> {
    let row = on_tx!(tx, conn => sqlx::query_as(
        "SELECT id, number, status FROM tickets WHERE number = $1",
    )
    .bind(number)
    .fetch_optional(&mut *conn)
    .await)?;
    to_ref(row)
}

pub struct NewTicket<'a> {
    pub subject: &'a str,
    pub priority: Priority,
    pub customer_id: i64,
    pub channel: ChannelKind,
    pub conversation: Option<&'a str>,
    pub follows_ticket_id: Option<TicketId>,
    pub now: DateTime<Utc>,
}

/// Opens a ticket with the next human number.
pub async fn create(tx: &mut Tx, ticket: &NewTicket<'_>) -> Result<TicketRef> {
    let created = create_all(tx, std::slice::from_ref(ticket)).await?;
    created
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::NotFound("the ticket just created".to_owned()))
}

/// Opens tickets numbered on in the order given, one statement per hundred.
pub async fn create_all(tx: &mut Tx, tickets: &[NewTicket<'_>]) -> Result<Vec<TicketRef>> {
    let mut created = Vec::with_capacity(tickets.len());
    for chunk in tickets.chunks(100) {
        let mut placeholders = super::Placeholders::new(tx);
        let rows: Vec<String> = (0..chunk.len())
            .map(|row| {
                // SQLite computes every row of an INSERT that fires triggers before it stores
                // the first, so each row counts on from the same counter value.
                let number = match tx {
                    Tx::Sqlite { .. } => format!(
                        "(SELECT value + {} FROM counters WHERE name = 'ticket_number')",
                        row + 1
                    ),
                    Tx::Postgres { .. } => "nextval('ticket_numbers')".to_owned(),
                };
                let values: Vec<String> = (0..9).map(|_| placeholders.next()).collect();
                format!("({number}, 'new', {})", values.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO tickets (number, status, subject, priority, customer_id, channel,
                                  conversation, follows_ticket_id, created_at, updated_at,
                                  last_customer_message_at)
             VALUES {}
             RETURNING id, number",
            rows.join(", ")
        );
        let mut numbered: Vec<(TicketId, TicketNumber)> = on_tx!(tx, conn => {
            let mut query = sqlx::query_as(AssertSqlSafe(sql));
            for ticket in chunk {
                query = query
                    .bind(ticket.subject)
                    .bind(ticket.priority.as_str())
                    .bind(ticket.customer_id)
                    .bind(ticket.channel.as_str())
                    .bind(ticket.conversation)
                    .bind(ticket.follows_ticket_id)
                    .bind(ticket.now)
                    .bind(ticket.now)
                    .bind(ticket.now);
            }
            query.fetch_all(&mut *conn).await
        })?;
        // Numbers follow the order of the VALUES list.
        numbered.sort_unstable_by_key(|(_, number)| *number);
        created.extend(numbered.into_iter().map(|(id, number)| TicketRef {
            id,
            number,
            status: Status::New,
        }));
    }
    Ok(created)
}

/// Reopens a ticket its customer wrote to again (its `updated_at` moves with the message).
pub async fn reopen(tx: &mut Tx, ticket_id: TicketId, to: Status) -> Result<()> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE tickets SET status = $1, resolved_at = NULL WHERE id = $2",
    )
    .bind(to.as_str())
    .bind(ticket_id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(())
}

pub struct NewMessage<'a> {
    pub ticket_id: TicketId,
    pub direction: Direction,
    pub kind: MessageKind,
    pub author_customer_id: Option<i64>,
    pub author_agent_id: Option<i64>,
    pub channel: ChannelKind,
    pub external_id: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub body_text: &'a str,
    pub body_html: Option<&'a str>,
    /// The quoted mail and signature of a reply, kept beside its new text.
    pub quoted_text: Option<&'a str>,
    pub raw_message_id: Option<i64>,
    pub sent_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    /// The address it came from, for a message someone sent in.
    pub sender_address: Option<&'a str>,
}

/// Stores a message; `None` when a message with the same external id is already on the channel.
pub async fn insert_message(tx: &mut Tx, message: &NewMessage<'_>) -> Result<Option<i64>> {
    let ids = insert_messages(tx, std::slice::from_ref(message)).await?;
    Ok(ids.into_iter().next().flatten())
}

/// Stores messages, one statement per hundred; per message, in the order given, its id, or
/// `None` when a message with the same external id is already on the channel.
pub async fn insert_messages(tx: &mut Tx, messages: &[NewMessage<'_>]) -> Result<Vec<Option<i64>>> {
    let mut ids = Vec::with_capacity(messages.len());
    for chunk in messages.chunks(100) {
        let sql = format!(
            "INSERT INTO messages (ticket_id, direction, kind, author_customer_id, author_agent_id,
                                   channel, external_id, subject, body_text, body_html,
                                   raw_message_id, sent_at, created_at, sender_address, quoted_text)
             VALUES {}
             ON CONFLICT (channel, external_id) DO NOTHING
             RETURNING id, channel, external_id",
            super::value_rows(tx, chunk.len(), 15)
        );
        let stored: Vec<(i64, String, Option<String>)> = on_tx!(tx, conn => {
            let mut query = sqlx::query_as(AssertSqlSafe(sql));
            for message in chunk {
                query = query
                    .bind(message.ticket_id)
                    .bind(message.direction.as_str())
                    .bind(message.kind.as_str())
                    .bind(message.author_customer_id)
                    .bind(message.author_agent_id)
                    .bind(message.channel.as_str())
                    .bind(message.external_id)
                    .bind(message.subject)
                    .bind(message.body_text)
                    .bind(message.body_html)
                    .bind(message.raw_message_id)
                    .bind(message.sent_at)
                    .bind(message.now)
                    .bind(message.sender_address)
                    .bind(message.quoted_text);
            }
            query.fetch_all(&mut *conn).await
        })?;
        // Only a message with an external id can meet one already stored; those without are
        // numbered in the order of the VALUES list.
        let mut by_external_id = std::collections::HashMap::new();
        let mut without = Vec::new();
        for (id, channel, external_id) in stored {
            match external_id {
                Some(external_id) => {
                    by_external_id.insert((channel, external_id), id);
                }
                None => without.push(id),
            }
        }
        without.sort_unstable();
        let mut without = without.into_iter();
        for message in chunk {
            ids.push(match message.external_id {
                Some(external_id) => by_external_id
                    .remove(&(message.channel.as_str().to_owned(), external_id.to_owned())),
                None => without.next(),
            });
        }
    }
    Ok(ids)
}

/// The ids a message pointed to.
#[derive(Debug, Clone, Copy)]
pub struct References<'a> {
    pub message_id: i64,
    pub channel: ChannelKind,
    pub referenced: &'a [&'a str],
}

/// Remembers the ids messages pointed to, for replies that arrive before their parents, one
/// statement per thousand.
pub async fn insert_references(tx: &mut Tx, messages: &[References<'_>]) -> Result<()> {
    let rows: Vec<(i64, &str, &str)> = messages
        .iter()
        .flat_map(|message| {
            message
                .referenced
                .iter()
                .map(|id| (message.message_id, message.channel.as_str(), *id))
        })
        .collect();
    for chunk in rows.chunks(1000) {
        let sql = format!(
            "INSERT INTO message_references (message_id, channel, referenced_external_id)
             VALUES {} ON CONFLICT DO NOTHING",
            super::value_rows(tx, chunk.len(), 3)
        );
        on_tx!(tx, conn => {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (message_id, channel, external_id) in chunk {
                query = query.bind(*message_id).bind(*channel).bind(*external_id);
            }
            query.execute(&mut *conn).await.map(|done| done.rows_affected())
        })?;
    }
    Ok(())
}

/// Who did something to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    System,
    Agent(i64),
    Customer(i64),
}

pub struct NewEvent<'a> {
    pub ticket_id: TicketId,
    pub actor: Actor,
    pub kind: &'a str,
    pub old_value: Option<&'a str>,
    pub new_value: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub at: DateTime<Utc>,
}

pub async fn record_event(tx: &mut Tx, event: &NewEvent<'_>) -> Result<()> {
    record_events(tx, std::slice::from_ref(event)).await
}

/// Records `events` in this order, in one statement per thousand.
pub async fn record_events(tx: &mut Tx, events: &[NewEvent<'_>]) -> Result<()> {
    for chunk in events.chunks(1000) {
        let sql = format!(
            "INSERT INTO ticket_events (ticket_id, at, actor_agent_id, actor_customer_id, kind,
                                        old_value, new_value, reason)
             VALUES {}",
            super::value_rows(tx, chunk.len(), 8)
        );
        on_tx!(tx, conn => {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for event in chunk {
                let (agent, customer) = match event.actor {
                    Actor::System => (None, None),
                    Actor::Agent(id) => (Some(id), None),
                    Actor::Customer(id) => (None, Some(id)),
                };
                query = query
                    .bind(event.ticket_id)
                    .bind(event.at)
                    .bind(agent)
                    .bind(customer)
                    .bind(event.kind)
                    .bind(event.old_value)
                    .bind(event.new_value)
                    .bind(event.reason);
            }
            query.execute(&mut *conn).await.map(|done| done.rows_affected())
        })?;
    }
    Ok(())
}

/// Changes a ticket's status along the workflow and records who did it and why.
/// Raises ticket `ticket_id`'s priority from `from` to `to` for a missed SLA target and records
/// it as the system's change. Not activity: `updated_at` stays.
pub async fn escalate_priority(
    tx: &mut Tx,
    ticket_id: TicketId,
    from: Priority,
    to: Priority,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, conn => sqlx::query("UPDATE tickets SET priority = $1 WHERE id = $2")
        .bind(to.as_str())
        .bind(ticket_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    record_event(
        tx,
        &NewEvent {
            ticket_id,
            actor: Actor::System,
            kind: "priority",
            old_value: Some(from.as_str()),
            new_value: Some(to.as_str()),
            reason: Some(&format!("escalation: {reason}")),
            at: now,
        },
    )
    .await
}

pub async fn change_status(
    tx: &mut Tx,
    number: TicketNumber,
    to: Status,
    actor: Actor,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<TicketRef> {
    let ticket = find_by_number(tx, number)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no ticket #{number}")))?;
    ticket
        .status
        .transition(to)
        .map_err(|error| StoreError::Conflict(format!("ticket #{number}: {error}")))?;
    on_tx!(tx, conn => sqlx::query(
        "UPDATE tickets SET status = $1, updated_at = $2,
             resolved_at = CASE WHEN $1 = 'resolved' THEN $2
                                WHEN $1 IN ('new', 'open', 'pending') THEN NULL
                                ELSE resolved_at END,
             closed_at = CASE WHEN $1 = 'closed' THEN $2 ELSE closed_at END
         WHERE id = $3",
    )
    .bind(to.as_str())
    .bind(now)
    .bind(ticket.id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    record_event(
        tx,
        &NewEvent {
            ticket_id: ticket.id,
            actor,
            kind: "status",
            old_value: Some(ticket.status.as_str()),
            new_value: Some(to.as_str()),
            reason,
            at: now,
        },
    )
    .await?;
    Ok(TicketRef {
        status: to,
        ..ticket
    })
}
