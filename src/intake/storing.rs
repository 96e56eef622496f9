//! Storing a message: the one transaction that takes a prepared message in (customer, ticket,
//! message, attachments, thread links, follow-up work), and the record of a bounce.

use chrono::{DateTime, Utc};
use helpdesk_channel::{ChannelKind, InboundMessage};

use super::autoreply;
use super::threading::{join_split_conversation, on_ticket, thread_references};
use super::{Intake, Outcome, UnknownSenderTag};
use crate::domain::{Direction, MessageKind, Priority, Status};
use crate::domain::{TicketId, TicketNumber};
use crate::store::attachments::NewAttachment;
use crate::store::outbox::{NewEntry, OutboxKind};
use crate::store::raw::RawInsert;
use crate::store::tickets::{
    Actor, NewEvent, NewMessage, NewTicket, References, ThreadMatch, ThreadedBy, TicketRef,
};
use crate::store::{self, StoreError, Tx};

/// Subjects made from chat text are cut to this many characters.
const SUBJECT_FROM_TEXT_CHARS: usize = 80;

impl Intake {
    /// Takes in one message whose raw form `raw` stored and whose thread look-up `found` is,
    /// inside `tx`, statement by statement; what it writes that nothing reads back before the
    /// commit goes to `deferred`, for the caller to write.
    pub(super) async fn take_in<'a>(
        &self,
        tx: &mut Tx,
        arrival: Arrival<'a>,
        raw: RawInsert,
        found: ThreadMatch,
        deferred: &mut Deferred<'a>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let Arrival {
            message,
            attachments,
            body_omitted,
        } = arrival;
        let channel = message.channel;
        let raw_id = match raw {
            RawInsert::New(id) => id,
            RawInsert::Known(_) => return Ok(Outcome::Duplicate),
            RawInsert::Failed(id) => {
                store::raw::clear_error(tx, id).await?;
                id
            }
        };
        if let Some(note) = body_omitted {
            store::raw::record_body_omitted(tx, raw_id, note).await?;
        }
        if channel == ChannelKind::Email && message.automation.bounce {
            return take_in_bounce(tx, arrival, raw_id, deferred, now).await;
        }
        // An auto-reply (out of office) on a ticket is kept, but is not the customer writing
        // again: it reopens nothing and notifies no one.
        let automatic = message.automation.auto_reply;
        let customer_id =
            store::customers::resolve(tx, &message.sender, found.customer.clone(), now).await?;
        let best = found.best().copied();
        // Found by its subject tag alone, from someone not on that ticket: the ticket it
        // names, which it does not join.
        let named = match best {
            Some(best)
                if best.by == ThreadedBy::Tag
                    && self.unknown_sender_tag == UnknownSenderTag::NewTicket =>
            {
                let stranger = !on_ticket(tx, &best.ticket, &message.sender).await?;
                stranger.then_some(best.ticket)
            }
            _ => None,
        };
        let continued = match best {
            Some(_) if named.is_some() => None,
            Some(best) => Some(join_split_conversation(tx, &best, &found, now).await?),
            None => None,
        };

        let (ticket, created, reopened) = match continued {
            Some(ticket) if ticket.status != Status::Closed => {
                let new_status = ticket.status.after_customer_reply().filter(|_| !automatic);
                if let Some(status) = new_status {
                    store::tickets::reopen(tx, ticket.id, status).await?;
                    store::tickets::record_event(
                        tx,
                        &NewEvent {
                            ticket_id: ticket.id,
                            actor: Actor::Customer(customer_id),
                            kind: "status",
                            old_value: Some(ticket.status.as_str()),
                            new_value: Some(status.as_str()),
                            reason: Some("the customer wrote again"),
                            at: now,
                        },
                    )
                    .await?;
                }
                (ticket, false, new_status.is_some())
            }
            closed => {
                let ticket = open_ticket(tx, message, customer_id, closed, now).await?;
                if let (ChannelKind::Email, Some(mailbox)) = (channel, self.mailbox()) {
                    let department = mailbox.department.as_deref();
                    let placed = store::mailboxes::place_ticket(
                        tx,
                        ticket.id,
                        &mailbox.name,
                        department,
                        now,
                    )
                    .await?;
                    if !placed && let Some(department) = department {
                        tracing::warn!(
                            mailbox = mailbox.name,
                            department,
                            "the mailbox's department does not exist; the ticket has none"
                        );
                    }
                }
                if let Some(named) = named {
                    let why = format!(
                        "the subject names #{}, but {} is not on that ticket",
                        named.number, message.sender.address
                    );
                    store::tickets::link(tx, &ticket, &named, &why, now).await?;
                }
                if automatic {
                    // Nobody there to ask how we did.
                    store::surveys::mark_opened_by_automatic(tx, ticket.id).await?;
                }
                (ticket, true, false)
            }
        };

        let reply = new_text_of(message, created);
        let kind = if automatic && !created {
            MessageKind::System
        } else {
            MessageKind::Public
        };
        let row = inbound_row(
            message,
            ticket.id,
            Some(customer_id),
            kind,
            raw_id,
            &reply,
            now,
        );
        let Some(message_id) = store::tickets::insert_message(tx, &row).await? else {
            // Only reachable if a message row exists without its raw row; treat it as known.
            return Ok(Outcome::Duplicate);
        };
        let referenced = thread_references(message);
        let references = References {
            message_id,
            channel,
            referenced: &referenced,
        };
        store::tickets::insert_references(tx, &[references]).await?;
        deferred.attachments_of(message_id, message, attachments);

        if let Some(auto_replies) = &self.auto_replies {
            let refused = self.refused_attachments(message);
            autoreply::answer(
                tx,
                auto_replies,
                &autoreply::Occasion {
                    message,
                    ticket_id: ticket.id,
                    number: ticket.number,
                    subject: &ticket_subject(message),
                    created,
                    refused: &refused,
                    attachment_limit: self.limits.max_attachment_bytes,
                },
                now,
            )
            .await?;
        }

        if automatic && !created {
            let outcome = Outcome::Threaded {
                number: ticket.number,
                message_id,
                reopened: false,
            };
            return Ok(outcome);
        }
        Ok(deferred.taken(ticket, message_id, created, reopened))
    }
}

/// A mail reply on an open ticket shows what is new; what it quotes is kept beside it.
pub(super) fn new_text_of(
    message: &InboundMessage,
    created: bool,
) -> Option<helpdesk_email::quote::Reply> {
    (message.channel == ChannelKind::Email && !created)
        .then(|| helpdesk_email::quote::split_reply(&message.text))
}

/// The row of a message a customer sent in, `reply` its text split by [`new_text_of`].
pub(super) fn inbound_row<'m>(
    message: &'m InboundMessage,
    ticket_id: TicketId,
    customer_id: Option<i64>,
    kind: MessageKind,
    raw_id: i64,
    reply: &'m Option<helpdesk_email::quote::Reply>,
    now: DateTime<Utc>,
) -> NewMessage<'m> {
    NewMessage {
        ticket_id,
        direction: Direction::Inbound,
        kind,
        author_customer_id: customer_id,
        author_agent_id: None,
        channel: message.channel,
        external_id: Some(&message.external_id),
        subject: message.subject.as_deref(),
        body_text: reply
            .as_ref()
            .map_or(message.text.as_str(), |r| r.new.as_str()),
        body_html: message.html.as_deref(),
        quoted_text: reply.as_ref().and_then(|r| r.quoted.as_deref()),
        raw_message_id: Some(raw_id),
        sent_at: message.sent_at,
        now,
        sender_address: Some(&message.sender.address),
    }
}

/// A message to take in, as `prepare` made it ready.
#[derive(Debug, Clone, Copy)]
pub(super) struct Arrival<'a> {
    pub message: &'a InboundMessage,
    /// Per attachment: the stored content's hash, or why it was not kept.
    pub attachments: &'a [Result<String, String>],
    /// Why only the message's headers were read, if so.
    pub body_omitted: Option<&'a str>,
}

/// What the messages of one transaction write after all of them, each kind in one statement
/// (every statement is a round trip to the database): their follow-up work and their
/// attachments' rows, which nothing in intake reads back. Thread references are written at
/// once: a sibling reply later in the same batch looks for them.
#[derive(Debug, Default)]
pub(super) struct Deferred<'a> {
    /// The follow-up work of each message, by its place in the batch: written in the batch's
    /// order, whatever order its messages were written in.
    outbox: Vec<(usize, NewEntry)>,
    attachments: Vec<(i64, NewAttachment<'a>)>,
    /// The place in the batch of the message being taken in.
    place: usize,
}

impl<'a> Deferred<'a> {
    /// What follows is of the message at `place` in the batch.
    pub(super) fn at(&mut self, place: usize) -> &mut Self {
        self.place = place;
        self
    }

    /// The attachments of a message, with where their contents went.
    pub(super) fn attachments_of(
        &mut self,
        message_id: i64,
        message: &'a InboundMessage,
        stored: &'a [Result<String, String>],
    ) {
        for (attachment, stored) in message.attachments.iter().zip(stored) {
            let row = NewAttachment {
                filename: &attachment.filename,
                content_type: &attachment.content_type,
                size: i64::try_from(attachment.content.len()).unwrap_or(i64::MAX),
                inline: attachment.inline,
                content_id: attachment.content_id.as_deref(),
                stored: stored.clone(),
            };
            self.attachments.push((message_id, row));
        }
    }

    /// A message taken in (not an automatic reply on its ticket): its follow-up work, and its
    /// outcome.
    pub(super) fn taken(
        &mut self,
        ticket: TicketRef,
        message_id: i64,
        created: bool,
        reopened: bool,
    ) -> Outcome {
        let kind = if created {
            OutboxKind::TicketCreated
        } else if reopened {
            OutboxKind::TicketReopened
        } else {
            OutboxKind::CustomerReplied
        };
        let entry = NewEntry {
            kind,
            ticket_id: ticket.id,
            message_id: Some(message_id),
        };
        self.outbox.push((self.place, entry));
        if created {
            Outcome::Created {
                number: ticket.number,
                message_id,
            }
        } else {
            Outcome::Threaded {
                number: ticket.number,
                message_id,
                reopened,
            }
        }
    }

    pub(super) async fn write(mut self, tx: &mut Tx, now: DateTime<Utc>) -> Result<(), StoreError> {
        store::attachments::insert_all(tx, &self.attachments, now).await?;
        self.outbox.sort_by_key(|(place, _)| *place);
        let outbox: Vec<NewEntry> = self.outbox.into_iter().map(|(_, entry)| entry).collect();
        store::outbox::record_all(tx, &outbox, now).await
    }
}

/// A bounce of mail we sent joins that mail's ticket as a system message, and the mail counts
/// as failed. A bounce of anything else becomes no ticket (it would only start a loop); it is
/// kept raw with the reason.
pub(super) async fn take_in_bounce<'a>(
    tx: &mut Tx,
    arrival: Arrival<'a>,
    raw_id: i64,
    deferred: &mut Deferred<'a>,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let message = arrival.message;
    let returned: Vec<&str> = message
        .thread
        .references
        .iter()
        .map(String::as_str)
        .collect();
    let sent = store::outbound::find_sent(tx, message.channel, &returned).await?;
    let ticket = match sent {
        Some(sent) => Some((sent.ticket_id, sent.number)),
        None => match message.thread.ticket_number {
            Some(number) => store::tickets::find_by_number(tx, TicketNumber(number))
                .await?
                .map(|ticket| (ticket.id, ticket.number)),
            None => None,
        },
    };
    let Some((ticket_id, number)) = ticket else {
        let reason = "a delivery failure report for no mail sent from here; not made a ticket";
        store::raw::record_error(tx, raw_id, reason).await?;
        return Ok(Outcome::Rejected {
            reason: reason.to_owned(),
        });
    };
    let row = inbound_row(
        message,
        ticket_id,
        None,
        MessageKind::System,
        raw_id,
        &None,
        now,
    );
    let Some(message_id) = store::tickets::insert_message(tx, &row).await? else {
        return Ok(Outcome::Duplicate);
    };
    deferred.attachments_of(message_id, message, arrival.attachments);
    if let Some(sent) = sent {
        let reason = format!("the mail came back: {}", bounce_reason(message));
        store::outbound::mark_bounced(tx, sent, &reason, now).await?;
    }
    Ok(Outcome::Bounced { number, message_id })
}

/// The most telling line of a delivery failure report: its Diagnostic-Code or Status, else its
/// subject.
pub(super) fn bounce_reason(message: &InboundMessage) -> String {
    let raw = String::from_utf8_lossy(&message.raw);
    let field = |name: &str| {
        raw.lines().find_map(|line| {
            let (field, value) = line.split_once(':')?;
            field
                .trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        })
    };
    field("Diagnostic-Code")
        .or_else(|| field("Status").map(|status| format!("status {status}")))
        .or_else(|| message.subject.clone())
        .unwrap_or_else(|| "delivery failed".to_owned())
        .chars()
        .take(300)
        .collect()
}

pub(super) async fn open_ticket(
    tx: &mut Tx,
    message: &InboundMessage,
    customer_id: i64,
    closed_predecessor: Option<TicketRef>,
    now: DateTime<Utc>,
) -> Result<TicketRef, StoreError> {
    let subject = ticket_subject(message);
    let ticket = store::tickets::create(
        tx,
        &NewTicket {
            subject: &subject,
            priority: Priority::Normal,
            customer_id,
            channel: message.channel,
            conversation: message.thread.conversation.as_deref(),
            follows_ticket_id: closed_predecessor.map(|closed| closed.id),
            now,
        },
    )
    .await?;
    Ok(ticket)
}

/// The subject of a new ticket: the message's subject, else the start of its text.
pub(super) fn ticket_subject(message: &InboundMessage) -> String {
    if let Some(subject) = message.subject.as_deref().map(str::trim)
        && !subject.is_empty()
    {
        return subject.to_owned();
    }
    let first_line = message
        .text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("");
    if first_line.is_empty() {
        return "(no subject)".to_owned();
    }
    let mut subject: String = first_line.chars().take(SUBJECT_FROM_TEXT_CHARS).collect();
    if first_line.chars().count() > SUBJECT_FROM_TEXT_CHARS {
        subject.push('…');
    }
    subject
}
