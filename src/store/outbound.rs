//! Outbound messages: agents' replies and notes, and what became of their delivery.

use chrono::{DateTime, Utc};
use helpdesk_channel::{ChannelKind, Identity, ThreadHints};

use super::tickets::{
    Actor, NewEvent, NewMessage, TicketRef, find_by_number, insert_message, record_event,
};
use super::{Result, Store, StoreError, Tx, on_pool, on_tx};
use crate::domain::{Direction, MessageKind, Status};
use crate::domain::{TicketId, TicketNumber};

/// What an agent wrote on a ticket.
#[derive(Debug, Clone)]
pub struct NewReply<'a> {
    pub number: TicketNumber,
    pub agent_id: i64,
    pub text: &'a str,
    /// Public (goes to the customer) or internal (a note, never sent).
    pub kind: MessageKind,
    /// For mail: the Message-ID the reply will carry, chosen now so every delivery attempt
    /// sends the same message.
    pub external_id: Option<&'a str>,
    /// The channels enabled in the process that writes the reply; a public reply is refused
    /// unless its ticket's channel is one of them or runs on another instance.
    pub channels_here: &'a [ChannelKind],
    pub now: DateTime<Utc>,
}

/// The stored reply: its message id, and whether it waits for delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredReply {
    pub ticket: TicketRef,
    pub message_id: i64,
    pub to_deliver: bool,
}

/// Stores an agent's reply or note. A public reply on a new ticket opens it and counts as the
/// first response; it is marked pending delivery (the caller enqueues the job in `tx`).
pub async fn add_reply(tx: &mut Tx, reply: &NewReply<'_>) -> Result<StoredReply> {
    let ticket = find_by_number(tx, reply.number)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no ticket #{}", reply.number)))?;
    let (channel, merged_into): (String, Option<i64>) = on_tx!(tx, conn => sqlx::query_as(
        "SELECT t.channel, m.number FROM tickets t
         LEFT JOIN tickets m ON m.id = t.merged_into_ticket_id WHERE t.id = $1",
    )
    .bind(ticket.id)
    .fetch_one(&mut *conn)
    .await)?;
    if let Some(into) = merged_into {
        return Err(StoreError::Conflict(format!(
            "ticket #{} was merged into #{into}; write on #{into}",
            reply.number
        )));
    }
    if ticket.status == Status::Closed {
        return Err(StoreError::Conflict(format!(
            "ticket #{} is closed; a new message opens a follow-up ticket",
            reply.number
        )));
    }
    if reply.text.trim().is_empty() {
        return Err(StoreError::Conflict("an empty reply cannot be sent".into()));
    }
    let channel: ChannelKind =
        channel
            .parse()
            .map_err(|error: helpdesk_channel::UnknownChannel| {
                StoreError::Invalid(error.to_string())
            })?;
    let public = reply.kind == MessageKind::Public;
    // Refused now rather than queued for a channel nothing delivers on; notes never leave.
    if public && !super::instances::can_deliver(tx, channel, reply.channels_here, reply.now).await?
    {
        return Err(StoreError::Conflict(super::instances::not_enabled(channel)));
    }
    let message_id = insert_message(
        tx,
        &NewMessage {
            ticket_id: ticket.id,
            direction: Direction::Outbound,
            kind: reply.kind,
            author_customer_id: None,
            author_agent_id: Some(reply.agent_id),
            channel,
            external_id: reply.external_id,
            subject: None,
            body_text: reply.text,
            body_html: None,
            quoted_text: None,
            raw_message_id: None,
            sent_at: None,
            now: reply.now,
            sender_address: None,
        },
    )
    .await?
    .ok_or_else(|| StoreError::Conflict("a message with this id exists already".into()))?;
    if public {
        on_tx!(tx, conn => sqlx::query(
            "UPDATE messages SET delivery_status = 'pending' WHERE id = $1",
        )
        .bind(message_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
        on_tx!(tx, conn => sqlx::query(
            "UPDATE tickets SET first_response_at = COALESCE(first_response_at, $1) WHERE id = $2",
        )
        .bind(reply.now)
        .bind(ticket.id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    }
    let ticket = if public && ticket.status == Status::New {
        super::tickets::change_status(
            tx,
            ticket.number,
            Status::Open,
            Actor::Agent(reply.agent_id),
            Some("first reply"),
            reply.now,
        )
        .await?
    } else {
        ticket
    };
    record_event(
        tx,
        &NewEvent {
            ticket_id: ticket.id,
            actor: Actor::Agent(reply.agent_id),
            kind: if public { "replied" } else { "note" },
            old_value: None,
            new_value: None,
            reason: None,
            at: reply.now,
        },
    )
    .await?;
    Ok(StoredReply {
        ticket,
        message_id,
        to_deliver: public,
    })
}

/// A message the helpdesk sends on its own to a ticket's customer (an acknowledgement, a
/// notice): kind `system`, no author, pending delivery.
#[derive(Debug, Clone)]
pub struct NewAutomatic<'a> {
    pub ticket_id: TicketId,
    pub channel: ChannelKind,
    /// Chosen now so every delivery attempt sends the same message (mail); `None` where the
    /// channel gives the id on delivery (chat).
    pub external_id: Option<&'a str>,
    pub text: &'a str,
    pub html: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// Stores an automatic message, pending delivery (the caller enqueues the job in `tx`). It is
/// not a response: first-response time and status stay as they are.
pub async fn add_automatic(tx: &mut Tx, message: &NewAutomatic<'_>) -> Result<i64> {
    let message_id = insert_message(
        tx,
        &NewMessage {
            ticket_id: message.ticket_id,
            direction: Direction::Outbound,
            kind: MessageKind::System,
            author_customer_id: None,
            author_agent_id: None,
            channel: message.channel,
            external_id: message.external_id,
            subject: None,
            body_text: message.text,
            body_html: message.html,
            quoted_text: None,
            raw_message_id: None,
            sent_at: None,
            now: message.now,
            sender_address: None,
        },
    )
    .await?
    .ok_or_else(|| StoreError::Conflict("a message with this id exists already".into()))?;
    on_tx!(tx, conn => sqlx::query(
        "UPDATE messages SET delivery_status = 'pending' WHERE id = $1",
    )
    .bind(message_id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(message_id)
}

/// Everything a channel needs to deliver one stored reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    pub message_id: i64,
    pub ticket_id: TicketId,
    pub ticket_number: TicketNumber,
    pub channel: ChannelKind,
    /// The customer's identity on the ticket's channel, or why there is none (the reply can
    /// then never go out).
    pub recipient: std::result::Result<Identity, String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// Sent by the helpdesk on its own (kind `system`), not written by an agent.
    pub automatic: bool,
    pub external_id: Option<String>,
    pub attempts: i64,
    pub status: String,
    pub thread: ThreadHints,
    /// The mailbox the ticket came in through, which mail replies go out from.
    pub mailbox: Option<String>,
    /// The writing agent's signature, for a reply by mail.
    pub agent_signature: Option<String>,
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    ticket_id: TicketId,
    number: TicketNumber,
    channel: String,
    subject: String,
    body_text: String,
    body_html: Option<String>,
    kind: String,
    external_id: Option<String>,
    delivery_attempts: i64,
    delivery_status: Option<String>,
    address: Option<String>,
    display_name: Option<String>,
    conversation: Option<String>,
    mailbox: Option<String>,
    agent_signature: Option<String>,
}

/// The reply with id `message_id` and where it goes: the customer's identity on the ticket's
/// channel, and the ids of the customer's messages for threading (newest last).
pub async fn pending_delivery(store: &Store, message_id: i64) -> Result<Option<PendingDelivery>> {
    let row: Option<PendingRow> = on_pool!(store, pool => sqlx::query_as(
        "SELECT t.id AS ticket_id, t.number, t.channel, t.subject, m.body_text, m.body_html,
                m.kind, m.external_id,
                m.delivery_attempts, m.delivery_status, ci.address, ci.display_name,
                t.conversation, t.mailbox, a.signature AS agent_signature
         FROM messages m JOIN tickets t ON t.id = m.ticket_id
         LEFT JOIN customer_identities ci
                ON ci.customer_id = t.customer_id AND ci.channel = t.channel
         LEFT JOIN agents a ON a.id = m.author_agent_id
         WHERE m.id = $1 AND m.direction = 'outbound'
         ORDER BY ci.id LIMIT 1",
    )
    .bind(message_id)
    .fetch_optional(pool)
    .await)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let channel: ChannelKind =
        row.channel
            .parse()
            .map_err(|error: helpdesk_channel::UnknownChannel| {
                StoreError::Invalid(error.to_string())
            })?;
    let recipient = match row.address {
        Some(address) => Ok(Identity {
            channel,
            address,
            display_name: row.display_name,
            handle: None,
        }),
        None => Err(format!(
            "the customer of ticket #{} has no {channel} identity to reply to",
            row.number
        )),
    };
    let references: Vec<String> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT external_id FROM messages
         WHERE ticket_id = $1 AND external_id IS NOT NULL AND id < $2
           AND (kind = 'public' OR (kind = 'system' AND direction = 'outbound'))
         ORDER BY id",
    )
    .bind(row.ticket_id)
    .bind(message_id)
    .fetch_all(pool)
    .await)?;
    let last_inbound: Option<String> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT external_id FROM messages
         WHERE ticket_id = $1 AND direction = 'inbound' AND external_id IS NOT NULL AND id < $2
         ORDER BY id DESC LIMIT 1",
    )
    .bind(row.ticket_id)
    .bind(message_id)
    .fetch_optional(pool)
    .await)?;
    Ok(Some(PendingDelivery {
        message_id,
        ticket_id: row.ticket_id,
        ticket_number: row.number,
        channel,
        recipient,
        subject: row.subject,
        text: row.body_text,
        html: row.body_html,
        automatic: row.kind == MessageKind::System.as_str(),
        external_id: row.external_id,
        attempts: row.delivery_attempts,
        status: row.delivery_status.unwrap_or_default(),
        thread: ThreadHints {
            in_reply_to: last_inbound.clone().into_iter().collect(),
            references,
            ticket_number: Some(row.number.get()),
            conversation: row.conversation,
            reply_to: last_inbound,
        },
        mailbox: row.mailbox,
        agent_signature: row.agent_signature,
    }))
}

/// Records one delivery attempt: sent (with the id the channel gave), or failed for good, or
/// (`final_failure: false`) failed for now.
pub async fn record_attempt(
    tx: &mut Tx,
    message_id: i64,
    result: std::result::Result<&str, (&str, bool)>,
    now: DateTime<Utc>,
) -> Result<()> {
    match result {
        Ok(external_id) => on_tx!(tx, conn => sqlx::query(
            "UPDATE messages SET delivery_status = 'sent', delivered_at = $1, delivery_error = NULL,
                    delivery_attempts = delivery_attempts + 1,
                    external_id = COALESCE(external_id, $2)
             WHERE id = $3",
        )
        .bind(now)
        .bind(external_id)
        .bind(message_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?,
        Err((error, final_failure)) => on_tx!(tx, conn => sqlx::query(
            "UPDATE messages SET delivery_error = $1, delivery_attempts = delivery_attempts + 1,
                    delivery_status = CASE WHEN $2 THEN 'failed' ELSE delivery_status END
             WHERE id = $3",
        )
        .bind(error)
        .bind(final_failure)
        .bind(message_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?,
    };
    Ok(())
}

/// How many replies wait for delivery and how many failed for good.
pub async fn delivery_counts(store: &Store) -> Result<(i64, i64)> {
    let counts = on_pool!(store, pool => sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN delivery_status = 'pending' THEN 1 ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN delivery_status = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT)
         FROM messages WHERE delivery_status IS NOT NULL",
    )
    .fetch_one(pool)
    .await)?;
    Ok(counts)
}

/// An outbound message found by the id it went out with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct SentMessage {
    pub message_id: i64,
    pub ticket_id: TicketId,
    pub number: TicketNumber,
}

/// The message we sent on `channel` with one of `ids` (the first that matches), if any.
pub async fn find_sent(
    tx: &mut Tx,
    channel: ChannelKind,
    ids: &[&str],
) -> Result<Option<SentMessage>> {
    for id in ids {
        let found: Option<SentMessage> = on_tx!(tx, conn => sqlx::query_as(
            "SELECT m.id AS message_id, m.ticket_id, t.number
             FROM messages m JOIN tickets t ON t.id = m.ticket_id
             WHERE m.channel = $1 AND m.external_id = $2 AND m.direction = 'outbound'",
        )
        .bind(channel.as_str())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await)?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Records that a delivered message came back: it counts as failed, with the reason, and the
/// ticket's history says so.
pub async fn mark_bounced(
    tx: &mut Tx,
    sent: SentMessage,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE messages SET delivery_status = 'failed', delivery_error = $1 WHERE id = $2",
    )
    .bind(reason)
    .bind(sent.message_id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    record_event(
        tx,
        &NewEvent {
            ticket_id: sent.ticket_id,
            actor: Actor::System,
            kind: "delivery_failed",
            old_value: None,
            new_value: Some("email"),
            reason: Some(reason),
            at: now,
        },
    )
    .await
}

/// The messages of ticket `number` after `seen` that its writer `agent_id` has not seen,
/// oldest first: what the customer wrote, and what other agents replied or noted. The
/// writer's own messages and those the helpdesk wrote by itself (acknowledgements, no author)
/// say nothing new to answer, so they do not count.
pub async fn unseen_since(
    tx: &mut Tx,
    number: TicketNumber,
    agent_id: i64,
    seen: i64,
) -> Result<Vec<i64>> {
    let ids: Vec<(i64,)> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT m.id FROM messages m JOIN tickets t ON t.id = m.ticket_id
         WHERE t.number = $1 AND m.id > $2
           AND (m.direction = 'inbound'
                OR (m.author_agent_id IS NOT NULL AND m.author_agent_id <> $3))
         ORDER BY m.id",
    )
    .bind(number)
    .bind(seen)
    .bind(agent_id)
    .fetch_all(&mut *conn)
    .await)?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}
