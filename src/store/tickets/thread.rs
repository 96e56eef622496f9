//! Which ticket a message continues: references, replies that came first, subject tags and
//! chat conversations; the lock that keeps one conversation on one ticket; links between
//! tickets opened apart.

use chrono::{DateTime, Utc};
use helpdesk_channel::{ChannelKind, Identity};
use sha2::{Digest, Sha256};
use sqlx::AssertSqlSafe;

use super::{Actor, NewEvent, TicketRef, record_event};
use crate::domain::TicketId;
use crate::domain::TicketNumber;
use crate::store::{Result, Tx, on_tx};

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
    // One statement for all: `unnest` hands the keys out in the array's (sorted) order.
    sqlx::query("SELECT pg_advisory_xact_lock(key) FROM unnest($1::BIGINT[]) AS key")
        .bind(hashes)
        .execute(&mut **transaction)
        .await?;
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
                    id: TicketId(id),
                    number: TicketNumber(number),
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
                id: TicketId(id),
                number: TicketNumber(number),
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
pub async fn is_known_writer(tx: &mut Tx, ticket_id: TicketId, sender: &Identity) -> Result<bool> {
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
    ticket_id: TicketId,
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
