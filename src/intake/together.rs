//! Taking a batch in with few statements. Every statement is a round trip to the database
//! (on SQLite a hand-over to its writer thread and back), which is what intake's speed
//! depends on. So a batch goes in waves: the threads of all its messages not yet in are looked
//! up in one query; a message that shares a thread key or a ticket with one before it waits
//! for the next wave, so the rest are found as each would be alone. Of those, the ones with
//! nothing special to do (a new ticket, or a reply to an open one) are written together, one
//! statement per kind; the others are taken in one by one ([`Intake::take_in`]), in their
//! place.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use helpdesk_channel::{ChannelKind, Identity};

use super::storing::{Arrival, Deferred, inbound_row, new_text_of, ticket_subject};
use super::threading::{ThreadKeys, split_conversation};
use super::{Intake, Outcome, UnknownSenderTag};
use crate::domain::{MessageKind, Priority, Status, TicketId};
use crate::store::raw::RawInsert;
use crate::store::tickets::{NewTicket, References, ThreadMatch, ThreadedBy, TicketRef};
use crate::store::{self, StoreError, Tx};

/// A batch's messages not yet taken in, by their place in it, in order.
pub(super) type Pending = Vec<usize>;

/// Where the messages of a batch stand while it is taken in.
pub(super) struct Batch<'b, 'a> {
    pub messages: &'b [Arrival<'a>],
    pub keys: &'b [ThreadKeys<'a>],
    pub raws: &'b [RawInsert],
    pub outcomes: &'b mut [Option<Outcome>],
    pub deferred: &'b mut Deferred<'a>,
}

impl Intake {
    /// Takes in the next wave of `pending`; returns the messages left for the waves after.
    pub(super) async fn take_in_wave(
        &self,
        tx: &mut Tx,
        batch: &mut Batch<'_, '_>,
        pending: Pending,
        now: DateTime<Utc>,
    ) -> Result<Pending, StoreError> {
        // Messages that wait for one before them are looked up too: the tickets they may
        // continue wait with them, so every ticket's messages go in in the batch's order.
        let waits = waiting(batch.keys, &pending);
        let lookups: Vec<_> = pending
            .iter()
            .map(|&index| batch.keys[index].lookup())
            .collect();
        let found = store::tickets::find_threads(tx, &lookups).await?;
        // Tickets a message before may change, and whether one was opened: a later message
        // that may continue the same ticket, or names one by its tag, waits.
        let mut touched: HashSet<TicketId> = HashSet::new();
        let mut opened = false;
        let mut later = Vec::new();
        let mut together = Together::default();
        for (((index, mut found), lookup), waits) in
            pending.into_iter().zip(found).zip(&lookups).zip(waits)
        {
            let arrival = batch.messages[index];
            if !waits {
                store::tickets::find_sibling(tx, lookup, &mut found).await?;
            }
            let tickets: Vec<TicketId> = found.candidates.iter().map(|c| c.ticket.id).collect();
            let clash = waits
                || tickets.iter().any(|ticket| touched.contains(ticket))
                || (opened && arrival.message.thread.ticket_number.is_some());
            touched.extend(tickets);
            if clash {
                later.push(index);
                continue;
            }
            match self.plain(arrival, &batch.raws[index], &found) {
                Some(plain) => {
                    opened |= matches!(plain.ticket, Ticket::Open { .. });
                    together.members.push((index, plain));
                }
                None => {
                    // In its place: what comes before it is written first.
                    together.write(tx, batch, now).await?;
                    let raw = batch.raws[index].clone();
                    let deferred = batch.deferred.at(index);
                    let outcome = self.take_in(tx, arrival, raw, found, deferred, now).await?;
                    opened |= matches!(outcome, Outcome::Created { .. });
                    batch.outcomes[index] = Some(outcome);
                }
            }
        }
        together.write(tx, batch, now).await?;
        Ok(later)
    }

    /// What a message needs written, when that is all it needs: a first arrival, read whole,
    /// from a customer whose identity needs no update, that opens a ticket or joins an open
    /// one without changing it; nothing to answer and no mailbox to place it in. `None` when
    /// it must be taken in one by one.
    fn plain(&self, arrival: Arrival<'_>, raw: &RawInsert, found: &ThreadMatch) -> Option<Plain> {
        let message = arrival.message;
        let RawInsert::New(raw_id) = *raw else {
            return None;
        };
        let email = message.channel == ChannelKind::Email;
        if arrival.body_omitted.is_some()
            || message.automation.bounce
            || message.automation.auto_reply
            || self.auto_replies.is_some()
            || (email && self.mailbox.is_some())
            || message.sender.handle.is_some()
        {
            return None;
        }
        let customer = match &found.customer {
            Some((_, None)) if message.sender.display_name.is_some() => return None,
            Some((id, _)) => Some(*id),
            None => None,
        };
        let ticket = match found.best() {
            None => Ticket::Open { follows: None },
            Some(best) if best.by == ThreadedBy::Tag => match self.unknown_sender_tag {
                UnknownSenderTag::NewTicket => return None,
                UnknownSenderTag::Join => joined(best.ticket)?,
            },
            Some(best) if !split_conversation(best, found).is_empty() => return None,
            Some(best) => joined(best.ticket)?,
        };
        Some(Plain {
            raw_id,
            customer,
            ticket,
        })
    }
}

/// What a message written together does to the ticket it continues, if it may be written
/// together: a closed ticket is followed by a new one; a pending or resolved one is reopened,
/// which is done one by one.
fn joined(ticket: TicketRef) -> Option<Ticket> {
    match ticket.status {
        Status::Closed => Some(Ticket::Open {
            follows: Some(ticket.id),
        }),
        status if status.after_customer_reply().is_some() => None,
        _ => Some(Ticket::Join(ticket)),
    }
}

/// For each of `pending`, whether it shares a thread key (see [`ThreadKeys`]) with a message
/// before it: a message it refers to, one that refers to it, a sibling reply, its
/// conversation, or a message of the same sender (who may be new). It waits for that one.
fn waiting(keys: &[ThreadKeys<'_>], pending: &[usize]) -> Vec<bool> {
    let mut seen: HashSet<&str> = HashSet::new();
    pending
        .iter()
        .map(|&index| {
            let mine: Vec<&str> = keys[index].all().collect();
            let waits = mine.iter().any(|key| seen.contains(key));
            seen.extend(mine);
            waits
        })
        .collect()
}

/// A message of a wave that is written together with others.
struct Plain {
    raw_id: i64,
    /// The sender's customer; `None` for a new one.
    customer: Option<i64>,
    ticket: Ticket,
}

enum Ticket {
    Join(TicketRef),
    Open { follows: Option<TicketId> },
}

/// The plain messages of a wave not yet written, by their place in the batch.
#[derive(Default)]
struct Together {
    members: Vec<(usize, Plain)>,
}

impl Together {
    /// Writes the members, one statement per kind: new customers, new tickets, messages,
    /// thread references; then notes each one's follow-up work and outcome.
    async fn write(
        &mut self,
        tx: &mut Tx,
        batch: &mut Batch<'_, '_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if self.members.is_empty() {
            return Ok(());
        }
        let members = std::mem::take(&mut self.members);
        let message = |index: usize| batch.messages[index].message;

        let new_customers: Vec<&Identity> = members
            .iter()
            .filter(|(_, plain)| plain.customer.is_none())
            .map(|(index, _)| &message(*index).sender)
            .collect();
        let mut created = store::customers::create_all(tx, &new_customers, now)
            .await?
            .into_iter();
        let customers: Vec<i64> = members
            .iter()
            .map(|(_, plain)| plain.customer.or_else(|| created.next()))
            .collect::<Option<_>>()
            .ok_or_else(|| StoreError::NotFound("a customer just created".to_owned()))?;

        let subjects: Vec<(usize, String, Option<TicketId>)> = members
            .iter()
            .enumerate()
            .filter_map(|(member, (index, plain))| match plain.ticket {
                Ticket::Open { follows } => {
                    Some((member, ticket_subject(message(*index)), follows))
                }
                Ticket::Join(_) => None,
            })
            .collect();
        let new_tickets: Vec<NewTicket> = subjects
            .iter()
            .map(|(member, subject, follows)| {
                let message = message(members[*member].0);
                NewTicket {
                    subject,
                    priority: Priority::Normal,
                    customer_id: customers[*member],
                    channel: message.channel,
                    conversation: message.thread.conversation.as_deref(),
                    follows_ticket_id: *follows,
                    now,
                }
            })
            .collect();
        let mut opened = store::tickets::create_all(tx, &new_tickets)
            .await?
            .into_iter();
        let tickets: Vec<(TicketRef, bool)> = members
            .iter()
            .map(|(_, plain)| match plain.ticket {
                Ticket::Join(ticket) => Some((ticket, false)),
                Ticket::Open { .. } => opened.next().map(|ticket| (ticket, true)),
            })
            .collect::<Option<_>>()
            .ok_or_else(|| StoreError::NotFound("a ticket just opened".to_owned()))?;

        let replies: Vec<_> = members
            .iter()
            .zip(&tickets)
            .map(|((index, _), (_, created))| new_text_of(message(*index), *created))
            .collect();
        let rows: Vec<_> = members
            .iter()
            .zip(&tickets)
            .zip(customers.iter().zip(&replies))
            .map(|(((index, plain), (ticket, _)), (customer, reply))| {
                let kind = MessageKind::Public;
                inbound_row(
                    message(*index),
                    ticket.id,
                    Some(*customer),
                    kind,
                    plain.raw_id,
                    reply,
                    now,
                )
            })
            .collect();
        let ids = store::tickets::insert_messages(tx, &rows).await?;

        let references: Vec<References> = members
            .iter()
            .zip(&ids)
            .filter_map(|((index, _), id)| {
                Some(References {
                    message_id: (*id)?,
                    channel: message(*index).channel,
                    referenced: &batch.keys[*index].references,
                })
            })
            .collect();
        store::tickets::insert_references(tx, &references).await?;

        for (((index, _), (ticket, created)), id) in members.iter().zip(tickets).zip(ids) {
            let arrival = batch.messages[*index];
            batch.outcomes[*index] = Some(match id {
                Some(id) => {
                    let deferred = batch.deferred.at(*index);
                    deferred.attachments_of(id, arrival.message, arrival.attachments);
                    deferred.taken(ticket, id, created, false)
                }
                // Only reachable if a message row exists without its raw row; known, then.
                None => Outcome::Duplicate,
            });
        }
        Ok(())
    }
}
