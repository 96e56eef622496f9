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

/// Most bound values in one look-up statement (SQLite allows 32,766).
const LOOKUP_VALUES: usize = 8000;

/// For each of `lookups`, as if each were asked alone: the sender's customer and the tickets
/// the message may continue, in the order of [`ThreadedBy`]; among tickets found the same way,
/// the one with the newest message referred to (or the oldest reply that arrived before)
/// first. Sibling replies are [`find_sibling`]'s. One query per few hundred look-ups: every
/// statement is a round trip, and intake asks for a whole batch at once.
pub async fn find_threads(tx: &mut Tx, lookups: &[ThreadLookup<'_>]) -> Result<Vec<ThreadMatch>> {
    let mut found = Vec::with_capacity(lookups.len());
    let mut start = 0;
    while start < lookups.len() {
        let mut end = start;
        let mut values = 0;
        while end < lookups.len() && (end == start || values < LOOKUP_VALUES) {
            values += 7 + 2 * lookups[end].referenced_ids.len();
            end += 1;
        }
        found.extend(find_some(tx, &lookups[start..end]).await?);
        start = end;
    }
    Ok(found)
}

/// When nothing a message refers to is here, and nothing here refers to it, another message
/// may refer to the same ids (a sibling reply): its ticket becomes the best of `found`. Asked
/// only then, as it is rare and costs a query.
pub async fn find_sibling(
    tx: &mut Tx,
    lookup: &ThreadLookup<'_>,
    found: &mut ThreadMatch,
) -> Result<()> {
    let ids = lookup.referenced_ids;
    if !ids.is_empty()
        && !found
            .candidates
            .iter()
            .any(|c| c.by < ThreadedBy::SharedReference)
        && let Some(sibling) = shared_reference(tx, lookup.channel, ids).await?
    {
        found
            .candidates
            .retain(|c| c.ticket.id != sibling.ticket.id);
        found.candidates.insert(0, sibling);
    }
    Ok(())
}

/// One statement's worth of [`find_threads`].
async fn find_some(tx: &mut Tx, lookups: &[ThreadLookup<'_>]) -> Result<Vec<ThreadMatch>> {
    // Per look-up: its place, channel, tag, own id, conversation and the sender's identity;
    // then per referenced id: the look-up's place and the id.
    let mut placeholders = crate::store::Placeholders::new(tx);
    let mut placeholder = || placeholders.next();
    let asked: Vec<String> = lookups
        .iter()
        .map(|_| {
            let [i, channel, tag, own, conversation, sender_channel, address] =
                std::array::from_fn(|_| placeholder());
            format!(
                "(CAST({i} AS BIGINT), CAST({channel} AS TEXT), CAST({tag} AS BIGINT), \
                 CAST({own} AS TEXT), CAST({conversation} AS TEXT), \
                 CAST({sender_channel} AS TEXT), CAST({address} AS TEXT))"
            )
        })
        .collect();
    let referred: Vec<String> = lookups
        .iter()
        .flat_map(|lookup| lookup.referenced_ids.iter())
        .map(|_| {
            let [i, id] = std::array::from_fn(|_| placeholder());
            format!("(CAST({i} AS BIGINT), CAST({id} AS TEXT))")
        })
        .collect();
    let (refs_cte, by_reference) = if referred.is_empty() {
        (String::new(), "")
    } else {
        (
            format!(", r (i, external_id) AS (VALUES {})", referred.join(", ")),
            " UNION ALL
             SELECT r.i, m.ticket_id, 1, m.id FROM r
             JOIN q ON q.i = r.i
             JOIN messages m ON m.channel = q.channel AND m.external_id = r.external_id",
        )
    };
    let sql = format!(
        "WITH q (i, channel, tag, own, conversation, sender_channel, address) AS
             (VALUES {asked}){refs_cte},
         c (i, ticket_id, rank, recency) AS (
             SELECT q.i, m.ticket_id, 2, -m.id FROM q
             JOIN message_references mr
               ON mr.channel = q.channel AND mr.referenced_external_id = q.own
             JOIN messages m ON m.id = mr.message_id
             UNION ALL
             SELECT q.i, t.id, 4, 0 FROM q JOIN tickets t ON t.number = q.tag
             UNION ALL
             SELECT q.i, t.id, 5, t.id FROM q
             JOIN tickets t ON t.channel = q.channel AND t.conversation = q.conversation
                           AND t.status <> 'closed'{by_reference})
         SELECT q.i, ci.customer_id, ci.display_name, found.id, found.number, found.status,
                found.rank, found.customer_id, found.merged_into_ticket_id
         FROM q
         LEFT JOIN customer_identities ci
           ON ci.channel = q.sender_channel AND ci.address = q.address
         LEFT JOIN (SELECT c.i, t.id, t.number, t.status, t.customer_id,
                           t.merged_into_ticket_id,
                           CAST(MIN(c.rank) AS BIGINT) AS rank, MAX(c.recency) AS recency
                    FROM c JOIN tickets t ON t.id = c.ticket_id
                    GROUP BY c.i, t.id, t.number, t.status, t.customer_id,
                             t.merged_into_ticket_id) found ON found.i = q.i
         ORDER BY q.i, found.rank, found.recency DESC",
        asked = asked.join(", ")
    );
    type Row = (
        i64,
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
        let mut query = sqlx::query_as(AssertSqlSafe(sql));
        for (i, lookup) in lookups.iter().enumerate() {
            query = query
                .bind(i as i64)
                .bind(lookup.channel.as_str())
                .bind(lookup.ticket_number)
                .bind(lookup.external_id)
                .bind(lookup.conversation)
                .bind(lookup.sender.channel.as_str())
                .bind(&lookup.sender.address);
        }
        for (i, lookup) in lookups.iter().enumerate() {
            for id in lookup.referenced_ids {
                query = query.bind(i as i64).bind(*id);
            }
        }
        query.fetch_all(&mut *conn).await
    })?;
    let mut found: Vec<ThreadMatch> = lookups
        .iter()
        .map(|_| ThreadMatch {
            customer: None,
            candidates: Vec::new(),
        })
        .collect();
    for (i, customer_id, name, id, number, status, rank, ticket_customer, merged_into) in rows {
        let Some(found) = usize::try_from(i).ok().and_then(|i| found.get_mut(i)) else {
            continue;
        };
        if let Some(customer_id) = customer_id {
            found.customer = Some((customer_id, name));
        }
        if let (Some(id), Some(number), Some(status), Some(rank), Some(customer_id)) =
            (id, number, status, rank, ticket_customer)
        {
            found.candidates.push(Candidate {
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
    Ok(found)
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
