//! Tickets with their messages, history events and thread links.

use chrono::{DateTime, Utc};
use helpdesk_channel::{ChannelKind, Identity};
use sha2::{Digest, Sha256};
use sqlx::AssertSqlSafe;

use super::{Result, Store, StoreError, Tx, on_pool, on_tx};
use crate::domain::{Direction, MessageKind, Priority, Status};

/// The few facts about a ticket that threading needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketRef {
    pub id: i64,
    pub number: i64,
    pub status: Status,
}

type TicketRefRow = (i64, i64, String);

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

/// Serialises transactions that touch the same conversation, so that a reply and the message
/// it answers, taken in at the same moment, still end up on one ticket. SQLite runs one writer
/// at a time anyway; PostgreSQL takes transaction-scoped advisory locks, in sorted order so two
/// transactions never wait on each other crosswise.
pub async fn lock_thread(tx: &mut Tx, keys: &[&str]) -> Result<()> {
    let Tx::Postgres { transaction } = tx else {
        return Ok(());
    };
    let mut hashes: Vec<i64> = keys
        .iter()
        .map(|key| {
            let digest = Sha256::digest(key.as_bytes());
            let mut first = [0u8; 8];
            first.copy_from_slice(&digest[..8]);
            i64::from_be_bytes(first)
        })
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    for hash in hashes {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(hash)
            .execute(&mut **transaction)
            .await?;
    }
    Ok(())
}

/// What a message tells about the ticket it may continue.
#[derive(Debug, Clone, Copy)]
pub struct ThreadLookup<'a> {
    pub channel: ChannelKind,
    /// Who wrote it: their customer record is looked up in the same query.
    pub sender: &'a Identity,
    /// Ids of messages it answers or refers to, any order.
    pub referenced_ids: &'a [&'a str],
    /// A `[#1042]` subject tag.
    pub ticket_number: Option<i64>,
    /// The message's own id, to find replies that arrived before it.
    pub external_id: Option<&'a str>,
    /// A chat conversation whose newest ticket that is not closed it continues.
    pub conversation: Option<&'a str>,
}

/// How a message was found to continue a ticket, most trusted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ThreadedBy {
    /// It refers to a message of the ticket (In-Reply-To, References, a chat reply).
    Reference,
    /// A message of the ticket that arrived before it refers to it.
    LaterReply,
    /// It refers to a message not here yet that a message of the ticket refers to as well:
    /// two replies to the same mail, taken in before it.
    SharedReference,
    /// Only its `[#1042]` subject tag names the ticket.
    Tag,
    /// Its chat conversation.
    Conversation,
}

impl ThreadedBy {
    fn from_rank(rank: i64) -> ThreadedBy {
        match rank {
            1 => ThreadedBy::Reference,
            2 => ThreadedBy::LaterReply,
            3 => ThreadedBy::SharedReference,
            4 => ThreadedBy::Tag,
            _ => ThreadedBy::Conversation,
        }
    }

    /// Found by what the message's headers say of other messages, not by a number anyone can
    /// type or a chat it was written in.
    pub fn by_headers(self) -> bool {
        self <= ThreadedBy::SharedReference
    }
}

/// A ticket a message may continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub ticket: TicketRef,
    pub by: ThreadedBy,
    pub customer_id: i64,
    /// Merged into another ticket (and so closed).
    pub merged: bool,
}

/// The sender's customer, if known, and the tickets the message may continue, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadMatch {
    /// The customer behind the sender's identity, with the name that identity has so far.
    pub customer: Option<(i64, Option<String>)>,
    /// Best first; a ticket appears once, with the most trusted way it was found.
    pub candidates: Vec<Candidate>,
}

impl ThreadMatch {
    pub fn best(&self) -> Option<&Candidate> {
        self.candidates.first()
    }
}

/// Finds, in one query, the sender's customer and the tickets a message may continue, in the
/// order of [`ThreadedBy`]; among tickets found the same way, the one with the newest message
/// referred to (or the oldest reply that arrived before) first.
pub async fn find_thread(tx: &mut Tx, lookup: &ThreadLookup<'_>) -> Result<ThreadMatch> {
    let ids = lookup.referenced_ids;
    // $1 channel, $2 tag, $3 own id, $4 conversation, $5 and $6 the sender's identity,
    // $7… the referenced ids.
    let mut candidates = vec![
        "SELECT m.ticket_id, 2 AS rank, -m.id AS recency FROM message_references r
         JOIN messages m ON m.id = r.message_id
         WHERE r.channel = $1 AND r.referenced_external_id = $3"
            .to_owned(),
        "SELECT id, 4, 0 FROM tickets WHERE number = $2".to_owned(),
        "SELECT id, 5, id FROM tickets
         WHERE channel = $1 AND conversation = $4 AND status <> 'closed'"
            .to_owned(),
    ];
    if !ids.is_empty() {
        let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 7)).collect();
        let placeholders = placeholders.join(", ");
        candidates.push(format!(
            "SELECT ticket_id, 1, id FROM messages
             WHERE channel = $1 AND external_id IN ({placeholders})"
        ));
    }
    let sql = format!(
        "SELECT ci.customer_id, ci.display_name, found.id, found.number, found.status,
                found.rank, found.customer_id, found.merged_into_ticket_id
         FROM (SELECT 1 AS one) base
         LEFT JOIN customer_identities ci ON ci.channel = $5 AND ci.address = $6
         LEFT JOIN (SELECT t.id, t.number, t.status, t.customer_id, t.merged_into_ticket_id,
                           CAST(MIN(c.rank) AS BIGINT) AS rank, MAX(c.recency) AS recency
                    FROM ({}) c JOIN tickets t ON t.id = c.ticket_id
                    GROUP BY t.id, t.number, t.status, t.customer_id, t.merged_into_ticket_id
                    ) found ON 1 = 1
         ORDER BY found.rank, found.recency DESC",
        candidates.join(" UNION ALL ")
    );
    type Row = (
        Option<i64>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let rows: Vec<Row> = on_tx!(tx, conn => {
        let mut query = sqlx::query_as(AssertSqlSafe(sql))
            .bind(lookup.channel.as_str())
            .bind(lookup.ticket_number)
            .bind(lookup.external_id)
            .bind(lookup.conversation)
            .bind(lookup.sender.channel.as_str())
            .bind(&lookup.sender.address);
        for id in ids {
            query = query.bind(*id);
        }
        query.fetch_all(&mut *conn).await
    })?;
    let customer = rows
        .first()
        .and_then(|row| row.0.map(|id| (id, row.1.clone())));
    let mut found: Vec<Candidate> = Vec::new();
    for (_, _, id, number, status, rank, customer_id, merged_into) in rows {
        if let (Some(id), Some(number), Some(status), Some(rank), Some(customer_id)) =
            (id, number, status, rank, customer_id)
        {
            found.push(Candidate {
                ticket: TicketRef {
                    id,
                    number,
                    status: status.parse()?,
                },
                by: ThreadedBy::from_rank(rank),
                customer_id,
                merged: merged_into.is_some(),
            });
        }
    }
    // Nothing it refers to is here, and nothing here refers to it: another message may refer
    // to the same ids (a sibling reply). Asked only then, as it is rare and costs a query.
    if !ids.is_empty()
        && !found.iter().any(|c| c.by < ThreadedBy::SharedReference)
        && let Some(sibling) = shared_reference(tx, lookup.channel, ids).await?
    {
        found.retain(|c| c.ticket.id != sibling.ticket.id);
        found.insert(0, sibling);
    }
    Ok(ThreadMatch {
        customer,
        candidates: found,
    })
}

/// The ticket of the first message that refers to any of `ids`.
async fn shared_reference(
    tx: &mut Tx,
    channel: ChannelKind,
    ids: &[&str],
) -> Result<Option<Candidate>> {
    let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT t.id, t.number, t.status, t.customer_id, t.merged_into_ticket_id
         FROM message_references r
         JOIN messages m ON m.id = r.message_id
         JOIN tickets t ON t.id = m.ticket_id
         WHERE r.channel = $1 AND r.referenced_external_id IN ({})
         ORDER BY m.id LIMIT 1",
        placeholders.join(", ")
    );
    let row: Option<(i64, i64, String, i64, Option<i64>)> = on_tx!(tx, conn => {
        let mut query = sqlx::query_as(AssertSqlSafe(sql)).bind(channel.as_str());
        for id in ids {
            query = query.bind(*id);
        }
        query.fetch_optional(&mut *conn).await
    })?;
    row.map(|(id, number, status, customer_id, merged_into)| {
        Ok(Candidate {
            ticket: TicketRef {
                id,
                number,
                status: status.parse()?,
            },
            by: ThreadedBy::SharedReference,
            customer_id,
            merged: merged_into.is_some(),
        })
    })
    .transpose()
}

/// Whether `sender` belongs on the ticket by what the database knows: one of the addresses of
/// its customer, someone who wrote on it before, or an agent. (Who else a mail was written
/// to is in the raw mails; see [`recent_inbound_mail_headers`].)
pub async fn is_known_writer(tx: &mut Tx, ticket_id: i64, sender: &Identity) -> Result<bool> {
    let known: bool = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM tickets t
                        JOIN customer_identities ci ON ci.customer_id = t.customer_id
                        WHERE t.id = $1 AND ci.channel = $2 AND ci.address = $3)
             OR EXISTS (SELECT 1 FROM messages m
                        JOIN customer_identities ci ON ci.customer_id = m.author_customer_id
                        WHERE m.ticket_id = $1 AND ci.channel = $2 AND ci.address = $3)
             OR ($2 = 'email' AND EXISTS (SELECT 1 FROM agents WHERE lower(email) = $3))",
    )
    .bind(ticket_id)
    .bind(sender.channel.as_str())
    .bind(&sender.address)
    .fetch_one(&mut *conn)
    .await)?;
    Ok(known)
}

/// The start (where the header section is) of the newest mails the ticket received, at most
/// `limit`, for who they were written to.
pub async fn recent_inbound_mail_headers(
    tx: &mut Tx,
    ticket_id: i64,
    limit: i64,
) -> Result<Vec<Vec<u8>>> {
    let heads = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT substr(r.content, 1, 65536) FROM messages m
         JOIN raw_messages r ON r.id = m.raw_message_id
         WHERE m.ticket_id = $1 AND m.channel = 'email' AND m.direction = 'inbound'
         ORDER BY m.id DESC LIMIT $2",
    )
    .bind(ticket_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await)?;
    Ok(heads)
}

/// Records on a new ticket that it was opened apart from the ticket its message named, and on
/// that ticket the link back; `why` goes to both histories.
pub async fn link(
    tx: &mut Tx,
    ticket: &TicketRef,
    named: &TicketRef,
    why: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, conn => sqlx::query("UPDATE tickets SET linked_ticket_id = $1 WHERE id = $2")
        .bind(named.id)
        .bind(ticket.id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    let (this, other) = (format!("#{}", ticket.number), format!("#{}", named.number));
    for (ticket_id, old_value, new_value) in [
        (ticket.id, None, Some(other.as_str())),
        (named.id, Some(this.as_str()), None),
    ] {
        record_event(
            tx,
            &NewEvent {
                ticket_id,
                actor: Actor::System,
                kind: "linked",
                old_value,
                new_value,
                reason: Some(why),
                at,
            },
        )
        .await?;
    }
    Ok(())
}

pub async fn find_by_number(tx: &mut Tx, number: i64) -> Result<Option<TicketRef>> {
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
    pub follows_ticket_id: Option<i64>,
    pub now: DateTime<Utc>,
}

/// Opens a ticket with the next human number.
pub async fn create(tx: &mut Tx, ticket: &NewTicket<'_>) -> Result<TicketRef> {
    let number = match tx {
        Tx::Sqlite { .. } => "(SELECT value + 1 FROM counters WHERE name = 'ticket_number')",
        Tx::Postgres { .. } => "nextval('ticket_numbers')",
    };
    let sql = format!(
        "INSERT INTO tickets (number, subject, status, priority, customer_id, channel,
                              conversation, follows_ticket_id, created_at, updated_at,
                              last_customer_message_at)
         VALUES ({number}, $1, 'new', $2, $3, $4, $5, $6, $7, $7, $7)
         RETURNING id, number"
    );
    let (id, number) = on_tx!(tx, conn => sqlx::query_as(AssertSqlSafe(sql))
    .bind(ticket.subject)
    .bind(ticket.priority.as_str())
    .bind(ticket.customer_id)
    .bind(ticket.channel.as_str())
    .bind(ticket.conversation)
    .bind(ticket.follows_ticket_id)
    .bind(ticket.now)
    .fetch_one(&mut *conn)
    .await)?;
    Ok(TicketRef {
        id,
        number,
        status: Status::New,
    })
}

/// Reopens a ticket its customer wrote to again (its `updated_at` moves with the message).
pub async fn reopen(tx: &mut Tx, ticket_id: i64, to: Status) -> Result<()> {
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
    pub ticket_id: i64,
    pub direction: Direction,
    pub kind: MessageKind,
    pub author_customer_id: Option<i64>,
    pub author_agent_id: Option<i64>,
    pub channel: ChannelKind,
    pub external_id: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub body_text: &'a str,
    pub body_html: Option<&'a str>,
    pub raw_message_id: Option<i64>,
    pub sent_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    /// The address it came from, for a message someone sent in.
    pub sender_address: Option<&'a str>,
}

/// Stores a message; `None` when a message with the same external id is already on the channel.
pub async fn insert_message(tx: &mut Tx, message: &NewMessage<'_>) -> Result<Option<i64>> {
    let id = on_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO messages (ticket_id, direction, kind, author_customer_id, author_agent_id,
                               channel, external_id, subject, body_text, body_html,
                               raw_message_id, sent_at, created_at, sender_address)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (channel, external_id) DO NOTHING
         RETURNING id",
    )
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
    .fetch_optional(&mut *conn)
    .await)?;
    Ok(id)
}

/// Remembers the ids a message pointed to, for replies that arrive before their parents.
pub async fn insert_references(
    tx: &mut Tx,
    message_id: i64,
    channel: ChannelKind,
    referenced: &[&str],
) -> Result<()> {
    if referenced.is_empty() {
        return Ok(());
    }
    let rows: Vec<String> = (0..referenced.len())
        .map(|i| format!("($1, $2, ${})", i + 3))
        .collect();
    let sql = format!(
        "INSERT INTO message_references (message_id, channel, referenced_external_id)
         VALUES {} ON CONFLICT DO NOTHING",
        rows.join(", ")
    );
    on_tx!(tx, conn => {
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(message_id).bind(channel.as_str());
        for external_id in referenced {
            query = query.bind(*external_id);
        }
        query.execute(&mut *conn).await.map(|done| done.rows_affected())
    })?;
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
    pub ticket_id: i64,
    pub actor: Actor,
    pub kind: &'a str,
    pub old_value: Option<&'a str>,
    pub new_value: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub at: DateTime<Utc>,
}

pub async fn record_event(tx: &mut Tx, event: &NewEvent<'_>) -> Result<()> {
    let (agent, customer) = match event.actor {
        Actor::System => (None, None),
        Actor::Agent(id) => (Some(id), None),
        Actor::Customer(id) => (None, Some(id)),
    };
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO ticket_events (ticket_id, at, actor_agent_id, actor_customer_id, kind,
                                    old_value, new_value, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(event.ticket_id)
    .bind(event.at)
    .bind(agent)
    .bind(customer)
    .bind(event.kind)
    .bind(event.old_value)
    .bind(event.new_value)
    .bind(event.reason)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(())
}

/// Changes a ticket's status along the workflow and records who did it and why.
pub async fn change_status(
    tx: &mut Tx,
    number: i64,
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

/// A ticket as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct TicketSummary {
    #[serde(skip)]
    pub id: i64,
    pub number: i64,
    pub subject: String,
    pub status: String,
    pub priority: String,
    pub department: Option<String>,
    pub assignee: Option<String>,
    pub customer: String,
    pub channel: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SUMMARY_COLUMNS: &str = "t.id, t.number, t.subject, t.status, t.priority,
    d.name AS department, a.name AS assignee,
    COALESCE(c.name, (SELECT ci.address FROM customer_identities ci
                      WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1), '') AS customer,
    t.channel, t.created_at, t.updated_at
    FROM tickets t
    JOIN customers c ON c.id = t.customer_id
    LEFT JOIN departments d ON d.id = t.department_id
    LEFT JOIN agents a ON a.id = t.assignee_id";

#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<Status>,
    pub limit: i64,
}

/// The most recently updated tickets first.
pub async fn list(store: &Store, filter: &TicketFilter) -> Result<Vec<TicketSummary>> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}
         WHERE ($1 IS NULL OR t.status = $1)
         ORDER BY t.updated_at DESC, t.id DESC LIMIT $2"
    );
    let status = filter.status.map(Status::as_str);
    let rows = on_pool!(store, pool => sqlx::query_as(AssertSqlSafe(sql.clone()))
        .bind(status)
        .bind(filter.limit)
        .fetch_all(pool)
        .await)?;
    Ok(rows)
}

pub async fn summary(store: &Store, number: i64) -> Result<Option<TicketSummary>> {
    let sql = format!("SELECT {SUMMARY_COLUMNS} WHERE t.number = $1");
    let row = on_pool!(store, pool => sqlx::query_as(AssertSqlSafe(sql.clone()))
        .bind(number)
        .fetch_optional(pool)
        .await)?;
    Ok(row)
}

/// A message as the ticket page and `ticket show` present it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct MessageView {
    pub id: i64,
    pub direction: String,
    pub kind: String,
    pub author: String,
    /// Where it came from: the sender's address (a mail address, a chat user id), or the
    /// agent's mail address; shown beside the name, which a sender may choose freely.
    pub author_address: Option<String>,
    pub channel: String,
    pub external_id: Option<String>,
    pub subject: Option<String>,
    pub body_text: String,
    /// A reply's quoted mail and signature, kept apart from what is new in `body_text`.
    pub quoted_text: Option<String>,
    pub body_html: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Replies: pending, sent or failed; `None` for what the customer wrote.
    pub delivery_status: Option<String>,
    pub delivery_error: Option<String>,
    #[sqlx(skip)]
    pub attachments: Vec<super::attachments::AttachmentView>,
}

pub async fn messages(store: &Store, ticket_id: i64) -> Result<Vec<MessageView>> {
    let mut rows: Vec<MessageView> = on_pool!(store, pool => sqlx::query_as(
        "SELECT m.id, m.direction, m.kind,
                COALESCE(a.name, c.name,
                         (SELECT ci.address FROM customer_identities ci
                          WHERE ci.customer_id = m.author_customer_id ORDER BY ci.id LIMIT 1),
                         'helpdesk') AS author,
                COALESCE(m.sender_address,
                         (SELECT ci.address FROM customer_identities ci
                          WHERE ci.customer_id = m.author_customer_id AND ci.channel = m.channel
                          ORDER BY ci.id LIMIT 1),
                         (SELECT ci.address FROM customer_identities ci
                          WHERE ci.customer_id = m.author_customer_id ORDER BY ci.id LIMIT 1),
                         a.email) AS author_address,
                m.channel, m.external_id, m.subject, m.body_text, m.quoted_text, m.body_html,
                m.created_at, m.delivery_status, m.delivery_error
         FROM messages m
         LEFT JOIN agents a ON a.id = m.author_agent_id
         LEFT JOIN customers c ON c.id = m.author_customer_id
         WHERE m.ticket_id = $1 ORDER BY m.id",
    )
    .bind(ticket_id)
    .fetch_all(pool)
    .await)?;
    let attachments = super::attachments::of_ticket(store, ticket_id).await?;
    for attachment in attachments {
        if let Some(message) = rows.iter_mut().find(|m| m.id == attachment.message_id) {
            message.attachments.push(attachment);
        }
    }
    Ok(rows)
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct EventView {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub reason: Option<String>,
    /// The event as a sentence with names ("Department: General → Billing").
    #[sqlx(skip)]
    pub text: String,
    /// Creation only: the ticket's channel, its customer and the closed ticket it continues.
    #[serde(skip)]
    pub channel: Option<String>,
    #[serde(skip)]
    pub customer_name: Option<String>,
    #[serde(skip)]
    pub customer_address: Option<String>,
    #[serde(skip)]
    pub follows: Option<i64>,
}

impl EventView {
    /// The reason, where the sentence does not say it already.
    pub fn note(&self) -> Option<&str> {
        super::history::note(self)
    }
}

pub async fn events(store: &Store, ticket_id: i64) -> Result<Vec<EventView>> {
    // Creation is not stored as an event: the ticket row records who opened it, when, on
    // which channel and after which closed ticket, and the history shows it first.
    let mut rows: Vec<EventView> = on_pool!(store, pool => sqlx::query_as(
        "SELECT at, actor, kind, old_value, new_value, reason, channel, customer_name,
                customer_address, follows FROM (
            SELECT t.created_at AS at,
                   COALESCE(c.name,
                            (SELECT ci.address FROM customer_identities ci
                             WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1),
                            'customer') AS actor,
                   'created' AS kind, NULL AS old_value, 'new' AS new_value,
                   'new ' || t.channel || ' message' ||
                       CASE WHEN f.number IS NULL THEN ''
                            ELSE ' continuing closed ticket #' || f.number END AS reason,
                   t.channel AS channel, c.name AS customer_name,
                   COALESCE((SELECT ci.address FROM customer_identities ci
                             WHERE ci.customer_id = t.customer_id AND ci.channel = t.channel
                             ORDER BY ci.id LIMIT 1),
                            (SELECT ci.address FROM customer_identities ci
                             WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1))
                       AS customer_address,
                   f.number AS follows,
                   0 AS seq
            FROM tickets t
            JOIN customers c ON c.id = t.customer_id
            LEFT JOIN tickets f ON f.id = t.follows_ticket_id
            WHERE t.id = $1
            UNION ALL
            SELECT e.at,
                   COALESCE(a.name, c.name,
                            (SELECT ci.address FROM customer_identities ci
                             WHERE ci.customer_id = e.actor_customer_id ORDER BY ci.id LIMIT 1),
                            'system'),
                   e.kind, e.old_value, e.new_value, e.reason, NULL, NULL, NULL, NULL, e.id
            FROM ticket_events e
            LEFT JOIN agents a ON a.id = e.actor_agent_id
            LEFT JOIN customers c ON c.id = e.actor_customer_id
            WHERE e.ticket_id = $1
         ) history ORDER BY seq",
    )
    .bind(ticket_id)
    .fetch_all(pool)
    .await)?;
    let names = super::history::Names::for_events(store, &rows).await?;
    for row in &mut rows {
        row.text = super::history::sentence(row, &names);
    }
    Ok(rows)
}

/// Everything about one ticket, as `ticket show --format json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub summary: TicketSummary,
    pub messages: Vec<MessageView>,
    pub history: Vec<EventView>,
    /// The ticket this one was opened apart from: its message named it by the subject tag,
    /// from an address not on it.
    pub linked_to: Option<i64>,
    /// Tickets opened apart from this one that way.
    pub linked_from: Vec<i64>,
}

pub async fn detail(store: &Store, number: i64) -> Result<Option<TicketDetail>> {
    let Some(summary) = summary(store, number).await? else {
        return Ok(None);
    };
    let messages = messages(store, summary.id).await?;
    let history = events(store, summary.id).await?;
    let (linked_to, linked_from) = links(store, summary.id).await?;
    Ok(Some(TicketDetail {
        summary,
        messages,
        history,
        linked_to,
        linked_from,
    }))
}

/// The numbers of the ticket this one links to and of the tickets that link to it.
async fn links(store: &Store, ticket_id: i64) -> Result<(Option<i64>, Vec<i64>)> {
    let rows: Vec<(i64, bool)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT l.number, TRUE FROM tickets t JOIN tickets l ON l.id = t.linked_ticket_id
         WHERE t.id = $1
         UNION ALL
         SELECT number, FALSE FROM tickets WHERE linked_ticket_id = $1
         ORDER BY 1",
    )
    .bind(ticket_id)
    .fetch_all(pool)
    .await)?;
    let linked_to = rows.iter().find(|(_, to)| *to).map(|(number, _)| *number);
    let linked_from = rows
        .into_iter()
        .filter(|(_, to)| !to)
        .map(|(number, _)| number)
        .collect();
    Ok((linked_to, linked_from))
}

/// Totals for summaries and dashboards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub tickets: i64,
    pub messages: i64,
}

pub async fn totals(store: &Store) -> Result<Totals> {
    let (tickets, messages) = on_pool!(store, pool => sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM tickets), (SELECT COUNT(*) FROM messages)",
    )
    .fetch_one(pool)
    .await)?;
    Ok(Totals { tickets, messages })
}

/// Keeps the quoted mail and signature of a reply beside its new text.
pub async fn set_quoted_text(tx: &mut Tx, message_id: i64, quoted: &str) -> Result<()> {
    on_tx!(tx, conn => sqlx::query("UPDATE messages SET quoted_text = $1 WHERE id = $2")
        .bind(quoted)
        .bind(message_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// How assignment went over all tickets: for checks after crashes and across instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AssignmentAudit {
    pub tickets: i64,
    /// Tickets with an assignee.
    pub assigned: i64,
    /// Tickets whose history records more than one assignment by the system.
    pub assigned_twice: i64,
}

pub async fn assignment_audit(store: &Store) -> Result<AssignmentAudit> {
    let (tickets, assigned, assigned_twice) = on_pool!(store, pool => sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM tickets),
                (SELECT COUNT(*) FROM tickets WHERE assignee_id IS NOT NULL),
                (SELECT COUNT(*) FROM (
                    SELECT ticket_id FROM ticket_events
                    WHERE kind = 'assignee' AND actor_agent_id IS NULL
                    GROUP BY ticket_id HAVING COUNT(*) > 1) AS twice)",
    )
    .fetch_one(pool)
    .await)?;
    Ok(AssignmentAudit {
        tickets,
        assigned,
        assigned_twice,
    })
}
