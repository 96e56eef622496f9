//! Finding the ticket a message continues: by its references, its conversation, or the ticket
//! tag in its subject; and the order in which a batch is taken in (parents first).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use helpdesk_channel::{ChannelKind, Identity, InboundMessage};

use super::ReadyMessage;
use crate::domain::Status;
use crate::store::tickets::{Actor, Candidate, ThreadLookup, ThreadMatch, TicketRef};
use crate::store::{self, StoreError, Tx};

/// Most thread references looked at per message; long References chains keep their newest.
const MAX_THREAD_REFERENCES: usize = 50;

/// Newest mails of a ticket whose To and Cc are looked through for a sender that names the
/// ticket by its subject tag alone.
const RECIPIENT_MAILS: i64 = 50;

/// Orders a batch so that every message comes after the messages of the batch it refers to,
/// keeping the given order otherwise: the message a reply answers opens the ticket, whatever
/// order a mailbox or an mbox file lists them in.
pub(super) fn parents_first(batch: &mut Vec<ReadyMessage>) {
    let position: HashMap<&str, usize> = batch
        .iter()
        .enumerate()
        .map(|(index, (_, message, ..))| (message.external_id.as_str(), index))
        .collect();
    let parents: Vec<Vec<usize>> = batch
        .iter()
        .map(|(_, message, ..)| {
            thread_references(message)
                .iter()
                .filter_map(|id| position.get(id).copied())
                .collect()
        })
        .collect();
    // Depth first, without recursion: a message is placed once all it refers to is placed.
    // References that loop (hostile mail) are cut where the loop closes.
    let mut placed = vec![false; batch.len()];
    let mut visiting = vec![false; batch.len()];
    let mut order = Vec::with_capacity(batch.len());
    for start in 0..batch.len() {
        let mut stack = vec![(start, 0usize)];
        while let Some((index, next)) = stack.pop() {
            if placed[index] {
                continue;
            }
            visiting[index] = true;
            match parents[index].get(next) {
                Some(&parent) => {
                    stack.push((index, next + 1));
                    if !placed[parent] && !visiting[parent] {
                        stack.push((parent, 0));
                    }
                }
                None => {
                    visiting[index] = false;
                    placed[index] = true;
                    order.push(index);
                }
            }
        }
    }
    let mut slots: Vec<Option<ReadyMessage>> = batch.drain(..).map(Some).collect();
    batch.extend(order.into_iter().filter_map(|index| slots[index].take()));
}

/// The Message-IDs a mail points to, newest first, at most [`MAX_THREAD_REFERENCES`].
pub(super) fn thread_references(message: &InboundMessage) -> Vec<&str> {
    let mut ids: Vec<&str> = Vec::new();
    let hints = &message.thread;
    for id in hints
        .in_reply_to
        .iter()
        .chain(hints.references.iter().rev())
        .chain(hints.reply_to.iter())
    {
        if ids.len() == MAX_THREAD_REFERENCES {
            break;
        }
        if !id.is_empty() && id != &message.external_id && !ids.contains(&id.as_str()) {
            ids.push(id);
        }
    }
    ids
}

/// What a message's intake locks (see [`store::tickets::lock_thread`]): the ids it refers to,
/// its own id, its chat conversation, and the sender's identity (merging customer records
/// moves identities under this lock).
pub(super) struct ThreadKeys<'a> {
    message: &'a InboundMessage,
    /// What it refers to, newest first (see [`thread_references`]).
    pub(super) references: Vec<&'a str>,
    conversation: Option<String>,
    identity: String,
}

impl<'a> ThreadKeys<'a> {
    pub(super) fn of(message: &'a InboundMessage) -> ThreadKeys<'a> {
        let channel = message.channel;
        ThreadKeys {
            message,
            references: thread_references(message),
            conversation: message
                .thread
                .conversation
                .as_deref()
                .map(|c| format!("{channel}:conversation:{c}")),
            identity: store::customers::identity_lock_key(
                message.sender.channel.as_str(),
                &message.sender.address,
            ),
        }
    }

    /// What finds the ticket the message continues: by the messages it replies to, by a
    /// `[#1042]` subject tag, by an earlier-arrived reply that points to it, or by its chat
    /// conversation.
    pub(super) fn lookup(&self) -> ThreadLookup<'_> {
        let message = self.message;
        let channel = message.channel;
        ThreadLookup {
            channel,
            sender: &message.sender,
            referenced_ids: &self.references,
            ticket_number: message.thread.ticket_number,
            // Chat replies always name what they answer; only mail arrives out of order.
            external_id: (channel == ChannelKind::Email).then_some(message.external_id.as_str()),
            conversation: message.thread.conversation.as_deref(),
        }
    }

    pub(super) fn all(&self) -> impl Iterator<Item = &str> {
        self.references
            .iter()
            .copied()
            .chain([self.message.external_id.as_str()])
            .chain(self.conversation.as_deref())
            .chain([self.identity.as_str()])
    }
}

/// Whether the sender of a message that names `ticket` by its subject tag alone is on that
/// ticket: an address of its customer, someone who wrote on it, an agent, or someone its mails
/// were written to (To, Cc).
pub(super) async fn on_ticket(
    tx: &mut Tx,
    ticket: &TicketRef,
    sender: &Identity,
) -> Result<bool, StoreError> {
    if store::tickets::is_known_writer(tx, ticket.id, sender).await? {
        return Ok(true);
    }
    if sender.channel != ChannelKind::Email {
        return Ok(false);
    }
    let heads = store::tickets::recent_inbound_mail_headers(tx, ticket.id, RECIPIENT_MAILS).await?;
    Ok(heads
        .iter()
        .any(|head| helpdesk_email::recipients(head).contains(&sender.address)))
}

/// The open tickets of one customer a message's headers tie it to, when they are more than
/// one and the best is among them: the conversation was split (a reply taken in before the
/// mails between it and what it answers). Empty otherwise.
pub(super) fn split_conversation(best: &Candidate, found: &ThreadMatch) -> Vec<TicketRef> {
    let open = |candidate: &&Candidate| {
        candidate.by.by_headers()
            && !candidate.merged
            && candidate.ticket.status != Status::Closed
            && candidate.customer_id == best.customer_id
    };
    if !open(&best) {
        return Vec::new();
    }
    let split: Vec<TicketRef> = found
        .candidates
        .iter()
        .filter(open)
        .map(|candidate| candidate.ticket)
        .collect();
    if split.len() < 2 { Vec::new() } else { split }
}

/// The ticket a message continues. When the conversation was split ([`split_conversation`]),
/// the tickets become one, the oldest, as an agent's merge would leave them.
pub(super) async fn join_split_conversation(
    tx: &mut Tx,
    best: &Candidate,
    found: &ThreadMatch,
    now: DateTime<Utc>,
) -> Result<TicketRef, StoreError> {
    let split = split_conversation(best, found);
    let Some(target) = split.iter().min_by_key(|ticket| ticket.number).copied() else {
        return Ok(best.ticket);
    };
    for duplicate in split.iter().filter(|ticket| ticket.id != target.id) {
        tracing::info!(
            duplicate = %duplicate.number,
            into = %target.number,
            "one conversation on two tickets; merging"
        );
        store::manage::move_into(
            tx,
            duplicate,
            &target,
            Actor::System,
            Some("a mail showed both tickets are one conversation"),
            now,
        )
        .await?;
    }
    Ok(target)
}
