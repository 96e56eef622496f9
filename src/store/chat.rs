//! What the chat channels keep: the bot's posts about tickets, agents' actions already done.

use chrono::{DateTime, Utc};
use helpdesk_channel::ChannelKind;

use super::{Result, Store, StoreError, Tx, on_pool, on_tx};
use crate::domain::Priority;
use crate::domain::{TicketId, TicketNumber};

/// Remembers that the bot's message `external_id` on `channel` is about `ticket_id`.
pub async fn record_post(
    tx: &mut Tx,
    channel: ChannelKind,
    external_id: &str,
    ticket_id: TicketId,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO chat_posts (channel, external_id, ticket_id, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT (channel, external_id) DO NOTHING",
    )
    .bind(channel.as_str())
    .bind(external_id)
    .bind(ticket_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(())
}

/// [`record_post`] in a transaction of its own.
pub async fn remember_post(
    store: &Store,
    channel: ChannelKind,
    external_id: &str,
    ticket_id: TicketId,
) -> Result<()> {
    let mut tx = store.begin_write().await?;
    record_post(&mut tx, channel, external_id, ticket_id, Utc::now()).await?;
    tx.commit().await
}

/// The number of the ticket the first of `external_ids` that is a known post is about.
pub async fn ticket_of_post(
    store: &Store,
    channel: ChannelKind,
    external_ids: &[&str],
) -> Result<Option<i64>> {
    for external_id in external_ids {
        let number = on_pool!(store, pool => sqlx::query_scalar(
            "SELECT t.number FROM chat_posts p JOIN tickets t ON t.id = p.ticket_id
             WHERE p.channel = $1 AND p.external_id = $2",
        )
        .bind(channel.as_str())
        .bind(*external_id)
        .fetch_optional(pool)
        .await)?;
        if number.is_some() {
            return Ok(number);
        }
    }
    Ok(None)
}

/// The post made for a ticket on a channel first (a Discord thread is made from it).
pub async fn first_post(
    store: &Store,
    channel: ChannelKind,
    ticket_id: TicketId,
) -> Result<Option<String>> {
    let id = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT external_id FROM chat_posts WHERE channel = $1 AND ticket_id = $2
         ORDER BY id LIMIT 1",
    )
    .bind(channel.as_str())
    .bind(ticket_id)
    .fetch_optional(pool)
    .await)?;
    Ok(id)
}

/// An active agent known by their identity on a chat channel: id and name.
pub async fn agent_by_identity(
    store: &Store,
    channel: ChannelKind,
    address: &str,
) -> Result<Option<(i64, String)>> {
    let agent = on_pool!(store, pool => sqlx::query_as(
        "SELECT a.id, a.name FROM agent_identities i JOIN agents a ON a.id = i.agent_id
         WHERE i.channel = $1 AND i.address = $2 AND a.active",
    )
    .bind(channel.as_str())
    .bind(address)
    .fetch_optional(pool)
    .await)?;
    Ok(agent)
}

/// An active agent named by `who`: their email, the part of it before the @, their name, or
/// their chat id on `channel`; case and a leading @ do not matter.
pub async fn agent_named(
    store: &Store,
    channel: ChannelKind,
    who: &str,
) -> Result<Option<(i64, String)>> {
    let who = who.trim().trim_start_matches('@').to_lowercase();
    if who.is_empty() {
        return Ok(None);
    }
    let candidates: Vec<(i64, String, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, name, email FROM agents WHERE active ORDER BY id",
    )
    .fetch_all(pool)
    .await)?;
    let squash = |text: &str| text.to_lowercase().replace(char::is_whitespace, "");
    if let Some((id, name, _)) = candidates.iter().find(|(_, name, email)| {
        *email == who
            || email.split('@').next() == Some(who.as_str())
            || squash(name) == squash(&who)
    }) {
        return Ok(Some((*id, name.clone())));
    }
    agent_by_identity(store, channel, &who).await
}

/// Marks an agent's chat message as acted on; `false` if it was already.
pub async fn mark_action(
    tx: &mut Tx,
    channel: ChannelKind,
    external_id: &str,
    agent_id: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let inserted = on_tx!(tx, conn => sqlx::query(
        "INSERT INTO chat_actions (channel, external_id, agent_id, done_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (channel, external_id) DO NOTHING",
    )
    .bind(channel.as_str())
    .bind(external_id)
    .bind(agent_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(inserted == 1)
}

/// The newest ticket of a chat conversation that is not closed: number and status.
pub async fn open_ticket_of_conversation(
    store: &Store,
    channel: ChannelKind,
    conversation: &str,
) -> Result<Option<TicketNumber>> {
    let number = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT number FROM tickets WHERE channel = $1 AND conversation = $2 AND status <> 'closed'
         ORDER BY id DESC LIMIT 1",
    )
    .bind(channel.as_str())
    .bind(conversation)
    .fetch_optional(pool)
    .await)?;
    Ok(number)
}

/// The channel a ticket's customer wrote on.
pub async fn ticket_channel(
    tx: &mut Tx,
    number: TicketNumber,
) -> Result<Option<(TicketId, ChannelKind)>> {
    let row: Option<(TicketId, String)> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT id, channel FROM tickets WHERE number = $1",
    )
    .bind(number)
    .fetch_optional(&mut *conn)
    .await)?;
    row.map(|(id, channel)| {
        channel.parse().map(|channel| (id, channel)).map_err(
            |error: helpdesk_channel::UnknownChannel| StoreError::Invalid(error.to_string()),
        )
    })
    .transpose()
}

/// Marks the post a ticket's thread was started from (a Discord thread has that post's id).
const THREAD_MARK: &str = "thread:";

/// Remembers that the ticket's thread on `channel` is `thread_id`.
pub async fn remember_thread(
    store: &Store,
    channel: ChannelKind,
    number: TicketNumber,
    thread_id: &str,
) -> Result<()> {
    let mut tx = store.begin_write().await?;
    if let Some((ticket_id, _)) = ticket_channel(&mut tx, number).await? {
        record_post(
            &mut tx,
            channel,
            &format!("{THREAD_MARK}{thread_id}"),
            ticket_id,
            Utc::now(),
        )
        .await?;
    }
    tx.commit().await
}

/// The newest thread started for ticket `number` on `channel`.
pub async fn thread_of_ticket(
    store: &Store,
    channel: ChannelKind,
    number: TicketNumber,
) -> Result<Option<String>> {
    let marked: Option<String> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT p.external_id FROM chat_posts p JOIN tickets t ON t.id = p.ticket_id
         WHERE p.channel = $1 AND t.number = $2 AND p.external_id LIKE $3
         ORDER BY p.id DESC LIMIT 1",
    )
    .bind(channel.as_str())
    .bind(number)
    .bind(format!("{THREAD_MARK}%"))
    .fetch_optional(pool)
    .await)?;
    Ok(marked.and_then(|marked| marked.strip_prefix(THREAD_MARK).map(str::to_owned)))
}

/// What a customer wrote in a chat message known by its external id (its latest edit if it
/// was edited), and who wrote it: text, address and display name.
pub async fn customer_message(
    store: &Store,
    channel: ChannelKind,
    external_id: &str,
) -> Result<Option<(String, String, Option<String>)>> {
    let found = on_pool!(store, pool => sqlx::query_as(
        "SELECT m.body_text, ci.address, ci.display_name FROM messages m
         JOIN customer_identities ci
           ON ci.customer_id = m.author_customer_id AND ci.channel = m.channel
         WHERE m.channel = $1 AND m.direction = 'inbound'
           AND (m.external_id = $2 OR m.external_id LIKE $3)
         ORDER BY m.id DESC, ci.id LIMIT 1",
    )
    .bind(channel.as_str())
    .bind(external_id)
    .bind(format!("{external_id}:edit:%"))
    .fetch_optional(pool)
    .await)?;
    Ok(found)
}

/// The customer of the newest ticket of a chat conversation that is not closed: address and
/// display name on that channel.
pub async fn customer_of_conversation(
    store: &Store,
    channel: ChannelKind,
    conversation: &str,
) -> Result<Option<(String, Option<String>)>> {
    let found = on_pool!(store, pool => sqlx::query_as(
        "SELECT ci.address, ci.display_name FROM tickets t
         JOIN customer_identities ci ON ci.customer_id = t.customer_id AND ci.channel = t.channel
         WHERE t.channel = $1 AND t.conversation = $2 AND t.status <> 'closed'
         ORDER BY t.id DESC, ci.id LIMIT 1",
    )
    .bind(channel.as_str())
    .bind(conversation)
    .fetch_optional(pool)
    .await)?;
    Ok(found)
}

/// A ticket as the agents' places are told of it.
#[derive(sqlx::FromRow)]
pub struct AnnouncedTicket {
    pub number: TicketNumber,
    pub subject: String,
    pub priority: Priority,
    pub channel: String,
    pub customer: String,
    /// The address the announced mail came from: someone new to the helpdesk is known by it.
    /// None for chat messages.
    pub sender_address: Option<String>,
    pub assignee: Option<String>,
    /// What the customer wrote, so agents can answer from their chat.
    pub quoted: Option<String>,
}

/// Ticket `ticket_id` as an announcement of message `message_id` (or else its newest inbound
/// message) shows it.
pub async fn announced_ticket(
    store: &Store,
    ticket_id: TicketId,
    message_id: Option<i64>,
) -> Result<Option<AnnouncedTicket>> {
    let facts = on_pool!(store, pool => sqlx::query_as(
        "SELECT t.number, t.subject, t.priority, t.channel,
                COALESCE(c.name, (SELECT ci.address FROM customer_identities ci
                                  WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1),
                         '') AS customer,
                CASE WHEN m.channel = 'email'
                     THEN COALESCE(m.sender_address,
                                   (SELECT ci.address FROM customer_identities ci
                                    WHERE ci.customer_id = t.customer_id AND ci.channel = 'email'
                                    ORDER BY ci.id LIMIT 1))
                END AS sender_address,
                a.name AS assignee, m.body_text AS quoted
         FROM tickets t JOIN customers c ON c.id = t.customer_id
         LEFT JOIN agents a ON a.id = t.assignee_id
         LEFT JOIN messages m
                ON m.id = COALESCE(CAST($2 AS BIGINT),
                                   (SELECT l.id FROM messages l
                                    WHERE l.ticket_id = t.id AND l.direction = 'inbound'
                                    ORDER BY l.id DESC LIMIT 1))
         WHERE t.id = $1",
    )
    .bind(ticket_id)
    .bind(message_id)
    .fetch_optional(pool)
    .await)?;
    Ok(facts)
}
