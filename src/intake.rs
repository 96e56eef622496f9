//! Intake: an inbound message becomes part of a ticket, in one transaction.
//!
//! The raw message is stored first, so it is kept whatever happens next; a duplicate (same
//! channel and external id) is dropped and counted; the sender becomes (or is found as) a
//! customer; thread hints find the ticket the message continues, or a new one is opened; the
//! message, its attachments and its thread links are stored; follow-up work goes to the outbox.
//! Only after the commit may a channel acknowledge the message at its source.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use helpdesk_channel::{ChannelKind, Identity, InboundMessage};
use helpdesk_email::RawMail;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::autoreply::{self, AutoReplies, RefusedAttachment};
use crate::domain::{Direction, MessageKind, Priority, Status};
use crate::store::attachments::{BlobStore, NewAttachment};
use crate::store::outbox::OutboxKind;
use crate::store::raw::RawInsert;
use crate::store::tickets::{
    Actor, Candidate, NewEvent, NewMessage, NewTicket, ThreadLookup, ThreadMatch, ThreadedBy,
    TicketRef,
};
use crate::store::{self, Store, StoreError, Tx};

/// Most thread references looked at per message; long References chains keep their newest.
const MAX_THREAD_REFERENCES: usize = 50;
/// Subjects made from chat text are cut to this many characters.
const SUBJECT_FROM_TEXT_CHARS: usize = 80;
/// Newest mails of a ticket whose To and Cc are looked through for a sender that names the
/// ticket by its subject tag alone.
const RECIPIENT_MAILS: i64 = 50;
/// Tries of a message whose transaction lost a deadlock to a concurrent intake.
const MAX_ATTEMPTS: u32 = 3;

/// What becomes of a message that names a ticket only by its subject tag (`[#1042]`) and comes
/// from an address that is not on that ticket (`intake.unknown_sender_tag`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownSenderTag {
    /// It opens a new ticket, linked to the one it names: ticket numbers are easy to guess.
    #[default]
    NewTicket,
    /// It joins the ticket it names.
    Join,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Per attachment: the stored content's sha256, or why it was not kept.
pub type StoredAttachments = Vec<Result<String, String>>;

/// A prepared message of a batch: its place in the batch, the message, its attachments and
/// why its body was not read, if it was not.
type ReadyMessage = (
    usize,
    Box<InboundMessage>,
    StoredAttachments,
    Option<String>,
);

/// A message made ready for the database: parsed, checked, attachment contents on disk.
#[derive(Debug)]
pub enum Prepared {
    Message {
        message: Box<InboundMessage>,
        attachments: StoredAttachments,
        /// Why only the message's headers were read (it was too large), for its raw row.
        body_omitted: Option<String>,
    },
    /// Cannot become part of a ticket; kept raw with the reason.
    Unreadable {
        channel: ChannelKind,
        external_id: String,
        raw: Vec<u8>,
        reason: String,
    },
}

fn stopped(join_error: tokio::task::JoinError) -> IntakeError {
    IntakeError::Store(StoreError::Join {
        what: "message preparation",
        source: join_error,
    })
}

/// Size limits from the `[intake]` settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_attachment_bytes: u64,
    pub max_message_bytes: u64,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A new ticket was opened.
    Created { number: i64, message_id: i64 },
    /// The message joined an existing ticket (reopening it if it was resolved or pending).
    Threaded {
        number: i64,
        message_id: i64,
        reopened: bool,
    },
    /// A bounce of mail we sent: kept on that mail's ticket, which counts it as failed.
    Bounced { number: i64, message_id: i64 },
    /// The same message was taken in before; nothing changed.
    Duplicate,
    /// The message was kept raw with this error and is not part of a ticket.
    Rejected { reason: String },
}

impl Outcome {
    pub fn ticket_number(&self) -> Option<i64> {
        match self {
            Outcome::Created { number, .. }
            | Outcome::Threaded { number, .. }
            | Outcome::Bounced { number, .. } => Some(*number),
            Outcome::Duplicate | Outcome::Rejected { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Intake {
    store: Store,
    blobs: BlobStore,
    limits: Limits,
    committed: Arc<Notify>,
    /// Acknowledgements and notices to mail customers; none when importing or when mail is
    /// off.
    auto_replies: Option<Arc<AutoReplies>>,
    unknown_sender_tag: UnknownSenderTag,
}

impl Intake {
    pub fn new(store: Store, blobs: BlobStore, limits: Limits) -> Intake {
        Intake {
            store,
            blobs,
            limits,
            committed: Arc::new(Notify::new()),
            auto_replies: None,
            unknown_sender_tag: UnknownSenderTag::default(),
        }
    }

    /// What a message that names a ticket by its tag alone, from someone not on it, does.
    pub fn with_unknown_sender_tag(mut self, policy: UnknownSenderTag) -> Intake {
        self.unknown_sender_tag = policy;
        self
    }

    /// Answers new mail tickets with an acknowledgement, and tells senders of attachments that
    /// were too large, in the intake transaction.
    pub fn with_auto_replies(mut self, auto_replies: AutoReplies) -> Intake {
        self.auto_replies = Some(Arc::new(auto_replies));
        self
    }

    /// Woken after every commit that took messages in, so the job relay of this process need
    /// not wait for its next poll.
    pub fn committed(&self) -> Arc<Notify> {
        Arc::clone(&self.committed)
    }

    /// Where attachment contents are kept.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Parses and takes in one RFC 822 message; a message that cannot be parsed is kept raw
    /// with the parser's error.
    pub async fn accept_email(&self, raw: Vec<u8>) -> Result<Outcome, IntakeError> {
        let intake = self.clone();
        // Parsing and writing attachment files are blocking work: keep them off the async
        // worker threads.
        let prepared = tokio::task::spawn_blocking(move || intake.prepare_email(raw))
            .await
            .map_err(stopped)?;
        self.accept_prepared(prepared).await
    }

    /// Takes in one message a channel has parsed (a chat message, say).
    pub async fn accept(&self, message: InboundMessage) -> Result<Outcome, IntakeError> {
        let intake = self.clone();
        let prepared = tokio::task::spawn_blocking(move || intake.prepare(message))
            .await
            .map_err(stopped)?;
        self.accept_prepared(prepared).await
    }

    /// Parses a mail and stores its attachment contents: the part of intake that needs no
    /// database, so it can run in parallel ahead of the writing. A mail larger than
    /// `max_message_bytes` is taken in by its headers only (see [`Intake::prepare_oversized`]).
    pub fn prepare_email(&self, mail: impl Into<RawMail>) -> Prepared {
        let raw = match mail.into() {
            RawMail::Oversized { headers, size } => return self.prepare_oversized(headers, size),
            RawMail::Whole(raw) if raw.len() as u64 > self.limits.max_message_bytes => {
                let headers = helpdesk_email::header_section(&raw).to_vec();
                return self.prepare_oversized(headers, raw.len() as u64);
            }
            RawMail::Whole(raw) => raw,
        };
        match helpdesk_email::parse_message(&raw) {
            Ok(message) => self.prepare(message),
            Err(error) => Prepared::Unreadable {
                channel: ChannelKind::Email,
                external_id: helpdesk_email::fallback_message_id(&raw),
                raw,
                reason: error.to_string(),
            },
        }
    }

    /// Checks a parsed message's size, makes its text storable and stores its attachment
    /// contents.
    pub fn prepare(&self, mut message: InboundMessage) -> Prepared {
        make_storable(&mut message);
        if let Some(reason) = self.too_large(message.raw.len()) {
            return Prepared::Unreadable {
                channel: message.channel,
                external_id: message.external_id,
                raw: message.raw,
                reason,
            };
        }
        let attachments = self.store_attachment_contents(&message);
        Prepared::Message {
            message: Box::new(message),
            attachments,
            body_omitted: None,
        }
    }

    /// A mail too large to take in, of which only `headers` were read: it becomes a message
    /// that says so, from its sender and with its subject and thread, so the agents see what
    /// arrived; its raw row keeps the headers and the same note. Headers that name no sender
    /// are kept raw with the note as the error.
    fn prepare_oversized(&self, headers: Vec<u8>, size: u64) -> Prepared {
        let limit = self.limits.max_message_bytes;
        let note = format!(
            "This mail was too large to take in: {} ({size} bytes), more than the limit of {} \
             ({limit} bytes, intake.max_message_bytes). Only its headers were kept; its text and \
             attachments were not read. Ask the sender to send it again in smaller parts.",
            autoreply::human_size(size),
            autoreply::human_size(limit),
        );
        match helpdesk_email::parse_message(&headers) {
            Ok(mut message) => {
                make_storable(&mut message);
                message.text = note.clone();
                message.html = None;
                message.attachments.clear();
                Prepared::Message {
                    message: Box::new(message),
                    attachments: Vec::new(),
                    body_omitted: Some(note),
                }
            }
            Err(error) => Prepared::Unreadable {
                channel: ChannelKind::Email,
                external_id: helpdesk_email::fallback_message_id(&headers),
                raw: headers,
                reason: format!("{note} Its headers cannot be read: {error}"),
            },
        }
    }

    /// Takes in one prepared message in its own transaction. If the transaction fails, the raw
    /// message is still kept, with the error, and the outcome says so.
    pub async fn accept_prepared(&self, prepared: Prepared) -> Result<Outcome, IntakeError> {
        let (message, attachments, body_omitted) = match prepared {
            Prepared::Message {
                message,
                attachments,
                body_omitted,
            } => (message, attachments, body_omitted),
            Prepared::Unreadable {
                channel,
                external_id,
                raw,
                reason,
            } => return self.reject(channel, &external_id, &raw, &reason).await,
        };
        let mut attempt = 1;
        loop {
            let mut tx = self.store.begin_write().await?;
            match self
                .take_in(
                    &mut tx,
                    &message,
                    &attachments,
                    body_omitted.as_deref(),
                    Utc::now(),
                )
                .await
            {
                Ok(outcome) => {
                    tx.commit().await?;
                    self.committed.notify_one();
                    return Ok(outcome);
                }
                Err(error) if error.is_unavailable() => {
                    // Nothing is wrong with the message: it stays at its source, unacknowledged,
                    // to be taken in when the database works again.
                    tx.rollback().await.ok();
                    return Err(error.into());
                }
                Err(error) => {
                    // Rolling back also drops the raw row: keep it again, with the error.
                    tx.rollback().await.ok();
                    if attempt < MAX_ATTEMPTS && worth_retrying(&error) {
                        tracing::info!(%error, attempt, "intake met a concurrent one; again");
                        attempt += 1;
                        continue;
                    }
                    let reason = match &body_omitted {
                        Some(note) => format!("{note} Intake failed: {error}"),
                        None => format!("intake failed: {error}"),
                    };
                    return self
                        .reject(message.channel, &message.external_id, &message.raw, &reason)
                        .await;
                }
            }
        }
    }

    /// Takes in several prepared messages with one commit (group commit): each message is
    /// still all or nothing, and a source must acknowledge none of them before this returns.
    /// Should any message fail, the batch is rolled back and every message taken in alone, so
    /// one bad message never costs another its place; if the database is unavailable (full,
    /// unreachable), every message fails with that error instead. Outcomes are in the order
    /// given.
    pub async fn accept_batch(&self, batch: Vec<Prepared>) -> Vec<Result<Outcome, IntakeError>> {
        let mut outcomes: Vec<Option<Result<Outcome, IntakeError>>> =
            batch.iter().map(|_| None).collect();
        let mut readable = Vec::with_capacity(batch.len());
        for (index, prepared) in batch.into_iter().enumerate() {
            match prepared {
                Prepared::Message {
                    message,
                    attachments,
                    body_omitted,
                } => readable.push((index, message, attachments, body_omitted)),
                unreadable => outcomes[index] = Some(self.accept_prepared(unreadable).await),
            }
        }
        parents_first(&mut readable);
        if readable.len() > 1 {
            match self.take_in_together(&readable).await {
                Ok(taken) => {
                    for (index, outcome) in taken {
                        outcomes[index] = Some(Ok(outcome));
                    }
                    readable.clear();
                }
                // One by one each would meet the same outage.
                Err(Some(error)) => {
                    for (index, ..) in readable.drain(..) {
                        outcomes[index] = Some(Err(StoreError::Unavailable(error.clone()).into()));
                    }
                }
                Err(None) => {}
            }
        }
        for (index, message, attachments, body_omitted) in readable {
            let prepared = Prepared::Message {
                message,
                attachments,
                body_omitted,
            };
            outcomes[index] = Some(self.accept_prepared(prepared).await);
        }
        outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or(Ok(Outcome::Duplicate)))
            .collect()
    }

    /// All of `messages` in one transaction, or an error if any of it failed (then nothing of
    /// it is stored): `Some(reason)` when the database is unavailable, `None` when the messages
    /// should be taken in one by one.
    async fn take_in_together(
        &self,
        messages: &[ReadyMessage],
    ) -> Result<Vec<(usize, Outcome)>, Option<String>> {
        let outage = |error: &StoreError| error.is_unavailable().then(|| error.to_string());
        let mut tx = self
            .store
            .begin_write()
            .await
            .map_err(|error| outage(&error))?;
        // Every message's thread locks at once, in one sorted order: taken message by message,
        // two batches could each hold what the other waits for.
        let keys: Vec<ThreadKeys> = messages
            .iter()
            .map(|(_, message, ..)| ThreadKeys::of(message))
            .collect();
        let all: Vec<&str> = keys.iter().flat_map(ThreadKeys::all).collect();
        if let Err(error) = store::tickets::lock_thread(&mut tx, &all).await {
            tracing::info!(%error, "batch could not lock its threads; taking its messages in one by one");
            tx.rollback().await.ok();
            return Err(outage(&error));
        }
        let mut taken = Vec::with_capacity(messages.len());
        for (index, message, attachments, body_omitted) in messages {
            match self
                .take_in(
                    &mut tx,
                    message,
                    attachments,
                    body_omitted.as_deref(),
                    Utc::now(),
                )
                .await
            {
                Ok(outcome) => taken.push((*index, outcome)),
                Err(error) => {
                    tracing::info!(%error, "batch rolled back");
                    tx.rollback().await.ok();
                    return Err(outage(&error));
                }
            }
        }
        match tx.commit().await {
            Ok(()) => {
                self.committed.notify_one();
                Ok(taken)
            }
            Err(error) => {
                tracing::info!(%error, "batch commit failed");
                Err(outage(&error))
            }
        }
    }

    /// Keeps a message that cannot be taken in, with the reason.
    pub async fn reject(
        &self,
        channel: ChannelKind,
        external_id: &str,
        raw: &[u8],
        reason: &str,
    ) -> Result<Outcome, IntakeError> {
        tracing::warn!(%channel, external_id, reason, "message kept raw, not taken in");
        store::raw::keep_failed(&self.store, channel, external_id, raw, reason, Utc::now()).await?;
        Ok(Outcome::Rejected {
            reason: reason.to_owned(),
        })
    }

    /// The attachments of `message` that were not kept for their size.
    fn refused_attachments(&self, message: &InboundMessage) -> Vec<RefusedAttachment> {
        message
            .attachments
            .iter()
            .filter(|a| a.content.len() as u64 > self.limits.max_attachment_bytes)
            .map(|a| RefusedAttachment {
                filename: a.filename.clone(),
                size: autoreply::human_size(a.content.len() as u64),
            })
            .collect()
    }

    /// Why a parsed message is refused for its size. Mail over the limit never gets this far
    /// (see [`Intake::prepare_oversized`]); a chat message this large is kept raw, refused.
    fn too_large(&self, size: usize) -> Option<String> {
        (size as u64 > self.limits.max_message_bytes).then(|| {
            format!(
                "message is {size} bytes, larger than intake.max_message_bytes ({})",
                self.limits.max_message_bytes
            )
        })
    }

    /// Writes attachment contents to the blob store before the transaction, so file I/O does
    /// not hold the database's write lock. A content written for a transaction that then rolls
    /// back is only an unreferenced file.
    fn store_attachment_contents(&self, message: &InboundMessage) -> StoredAttachments {
        message
            .attachments
            .iter()
            .map(|attachment| {
                let size = attachment.content.len() as u64;
                if size > self.limits.max_attachment_bytes {
                    return Err(format!(
                        "not kept: {size} bytes is larger than intake.max_attachment_bytes ({})",
                        self.limits.max_attachment_bytes
                    ));
                }
                self.blobs.put(&attachment.content).map_err(|error| {
                    tracing::error!(filename = attachment.filename, %error, "attachment not stored");
                    format!("not kept: {error}")
                })
            })
            .collect()
    }

    async fn take_in(
        &self,
        tx: &mut Tx,
        message: &InboundMessage,
        attachments: &[Result<String, String>],
        body_omitted: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let channel = message.channel;
        let raw_id =
            match store::raw::insert(tx, channel, &message.external_id, &message.raw, now).await? {
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
            return take_in_bounce(tx, message, raw_id, attachments, now).await;
        }
        // An auto-reply (out of office) on a ticket is kept, but is not the customer writing
        // again: it reopens nothing and notifies no one.
        let automatic = message.automation.auto_reply;
        let found = find_thread(tx, message).await?;
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
                if let Some(named) = named {
                    let why = format!(
                        "the subject names #{}, but {} is not on that ticket",
                        named.number, message.sender.address
                    );
                    store::tickets::link(tx, &ticket, &named, &why, now).await?;
                }
                (ticket, true, false)
            }
        };

        // A mail reply on an open ticket shows what is new; what it quotes is kept beside it.
        let reply = (channel == ChannelKind::Email && !created)
            .then(|| helpdesk_email::quote::split_reply(&message.text));
        let body_text = reply
            .as_ref()
            .map_or(message.text.as_str(), |r| r.new.as_str());
        let kind = if automatic && !created {
            MessageKind::System
        } else {
            MessageKind::Public
        };
        let Some(message_id) = store::tickets::insert_message(
            tx,
            &NewMessage {
                ticket_id: ticket.id,
                direction: Direction::Inbound,
                kind,
                author_customer_id: Some(customer_id),
                author_agent_id: None,
                channel,
                external_id: Some(&message.external_id),
                subject: message.subject.as_deref(),
                body_text,
                body_html: message.html.as_deref(),
                raw_message_id: Some(raw_id),
                sent_at: message.sent_at,
                now,
                sender_address: Some(&message.sender.address),
            },
        )
        .await?
        else {
            // Only reachable if a message row exists without its raw row; treat it as known.
            return Ok(Outcome::Duplicate);
        };

        if let Some(quoted) = reply.as_ref().and_then(|r| r.quoted.as_deref()) {
            store::tickets::set_quoted_text(tx, message_id, quoted).await?;
        }
        let references = thread_references(message);
        store::tickets::insert_references(tx, message_id, channel, &references).await?;
        store_attachments(tx, message_id, message, attachments, now).await?;

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
            return Ok(Outcome::Threaded {
                number: ticket.number,
                message_id,
                reopened: false,
            });
        }
        let outbox = if created {
            OutboxKind::TicketCreated
        } else if reopened {
            OutboxKind::TicketReopened
        } else {
            OutboxKind::CustomerReplied
        };
        store::outbox::record(tx, outbox, ticket.id, Some(message_id), now).await?;

        Ok(if created {
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
        })
    }
}

/// Orders a batch so that every message comes after the messages of the batch it refers to,
/// keeping the given order otherwise: the message a reply answers opens the ticket, whatever
/// order a mailbox or an mbox file lists them in.
fn parents_first(batch: &mut Vec<ReadyMessage>) {
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

/// The attachments of a message, with where their contents went.
async fn store_attachments(
    tx: &mut Tx,
    message_id: i64,
    message: &InboundMessage,
    stored: &[Result<String, String>],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for (attachment, stored) in message.attachments.iter().zip(stored) {
        store::attachments::insert(
            tx,
            message_id,
            &NewAttachment {
                filename: &attachment.filename,
                content_type: &attachment.content_type,
                size: i64::try_from(attachment.content.len()).unwrap_or(i64::MAX),
                inline: attachment.inline,
                content_id: attachment.content_id.as_deref(),
                stored: stored.clone(),
            },
            now,
        )
        .await?;
    }
    Ok(())
}

/// A bounce of mail we sent joins that mail's ticket as a system message, and the mail counts
/// as failed. A bounce of anything else becomes no ticket (it would only start a loop); it is
/// kept raw with the reason.
async fn take_in_bounce(
    tx: &mut Tx,
    message: &InboundMessage,
    raw_id: i64,
    attachments: &[Result<String, String>],
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
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
            Some(number) => store::tickets::find_by_number(tx, number)
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
    let Some(message_id) = store::tickets::insert_message(
        tx,
        &NewMessage {
            ticket_id,
            direction: Direction::Inbound,
            kind: MessageKind::System,
            author_customer_id: None,
            author_agent_id: None,
            channel: message.channel,
            external_id: Some(&message.external_id),
            subject: message.subject.as_deref(),
            body_text: &message.text,
            body_html: message.html.as_deref(),
            raw_message_id: Some(raw_id),
            sent_at: message.sent_at,
            now,
            sender_address: Some(&message.sender.address),
        },
    )
    .await?
    else {
        return Ok(Outcome::Duplicate);
    };
    store_attachments(tx, message_id, message, attachments, now).await?;
    if let Some(sent) = sent {
        let reason = format!("the mail came back: {}", bounce_reason(message));
        store::outbound::mark_bounced(tx, sent, &reason, now).await?;
    }
    Ok(Outcome::Bounced { number, message_id })
}

/// The most telling line of a delivery failure report: its Diagnostic-Code or Status, else its
/// subject.
fn bounce_reason(message: &InboundMessage) -> String {
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

/// Longest message id kept as it is; longer ones (hostile or broken mail) are replaced by a
/// digest, the same for every mention, so threading still works and indexes stay small.
const MAX_ID_BYTES: usize = 512;
/// Longest sender address kept as it is (RFC 5321 allows 254).
const MAX_ADDRESS_BYTES: usize = 320;

/// Text the database can store whatever the sender put in: NUL characters removed (PostgreSQL
/// refuses them in text), overlong ids and addresses replaced by digests. The raw message keeps
/// the original.
fn make_storable(message: &mut InboundMessage) {
    fn strip_nul(text: &mut String) {
        if text.contains('\0') {
            text.retain(|c| c != '\0');
        }
    }
    fn bounded(id: &mut String, limit: usize) {
        strip_nul(id);
        if id.len() > limit {
            *id = format!("long-{}", hex::encode(Sha256::digest(id.as_bytes())));
        }
    }
    bounded(&mut message.external_id, MAX_ID_BYTES);
    bounded(&mut message.sender.address, MAX_ADDRESS_BYTES);
    for id in message
        .thread
        .in_reply_to
        .iter_mut()
        .chain(message.thread.references.iter_mut())
        .chain(message.thread.reply_to.iter_mut())
        .chain(message.thread.conversation.iter_mut())
    {
        bounded(id, MAX_ID_BYTES);
    }
    strip_nul(&mut message.text);
    for text in [
        message.subject.as_mut(),
        message.html.as_mut(),
        message.sender.display_name.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        strip_nul(text);
    }
    for attachment in &mut message.attachments {
        strip_nul(&mut attachment.filename);
        strip_nul(&mut attachment.content_type);
        if let Some(content_id) = attachment.content_id.as_mut() {
            bounded(content_id, MAX_ID_BYTES);
        }
    }
}

/// The Message-IDs a mail points to, newest first, at most [`MAX_THREAD_REFERENCES`].
fn thread_references(message: &InboundMessage) -> Vec<&str> {
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

/// The ticket a message continues: by the messages it replies to, by a `[#1042]` subject tag,
/// by an earlier-arrived reply that points to it, or by its chat conversation.
async fn find_thread(tx: &mut Tx, message: &InboundMessage) -> Result<ThreadMatch, StoreError> {
    let channel = message.channel;
    let references = thread_references(message);
    let conversation = message.thread.conversation.as_deref();
    let keys = ThreadKeys::of(message);
    store::tickets::lock_thread(tx, &keys.all().collect::<Vec<_>>()).await?;
    store::tickets::find_thread(
        tx,
        &ThreadLookup {
            channel,
            sender: &message.sender,
            referenced_ids: &references,
            ticket_number: message.thread.ticket_number,
            // Chat replies always name what they answer; only mail arrives out of order.
            external_id: (channel == ChannelKind::Email).then_some(message.external_id.as_str()),
            conversation,
        },
    )
    .await
}

/// What a message's intake locks (see [`store::tickets::lock_thread`]): the ids it refers to,
/// its own id, its chat conversation, and the sender's identity (merging customer records
/// moves identities under this lock).
struct ThreadKeys<'a> {
    message: &'a InboundMessage,
    references: Vec<&'a str>,
    conversation: Option<String>,
    identity: String,
}

impl<'a> ThreadKeys<'a> {
    fn of(message: &'a InboundMessage) -> ThreadKeys<'a> {
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

    fn all(&self) -> impl Iterator<Item = &str> {
        self.references
            .iter()
            .copied()
            .chain([self.message.external_id.as_str()])
            .chain(self.conversation.as_deref())
            .chain([self.identity.as_str()])
    }
}

/// A conflict with a concurrent transaction that going again resolves: PostgreSQL's deadlock
/// and serialization failures.
fn worth_retrying(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Database(sqlx::Error::Database(db))
            if matches!(db.code().as_deref(), Some("40P01" | "40001"))
    )
}

/// Whether the sender of a message that names `ticket` by its subject tag alone is on that
/// ticket: an address of its customer, someone who wrote on it, an agent, or someone its mails
/// were written to (To, Cc).
async fn on_ticket(tx: &mut Tx, ticket: &TicketRef, sender: &Identity) -> Result<bool, StoreError> {
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

/// The ticket a message continues. When its headers tie it to more than one open ticket of the
/// same customer, the conversation was split (a reply taken in before the mails between it and
/// what it answers): the tickets become one, the oldest, as an agent's merge would leave them.
async fn join_split_conversation(
    tx: &mut Tx,
    best: &Candidate,
    found: &ThreadMatch,
    now: DateTime<Utc>,
) -> Result<TicketRef, StoreError> {
    let open = |candidate: &&Candidate| {
        candidate.by.by_headers()
            && !candidate.merged
            && candidate.ticket.status != Status::Closed
            && candidate.customer_id == best.customer_id
    };
    let split: Vec<TicketRef> = found
        .candidates
        .iter()
        .filter(open)
        .map(|candidate| candidate.ticket)
        .collect();
    let Some(target) = split.iter().min_by_key(|ticket| ticket.number).copied() else {
        return Ok(best.ticket);
    };
    if split.len() < 2 || !open(&best) {
        return Ok(best.ticket);
    }
    for duplicate in split.iter().filter(|ticket| ticket.id != target.id) {
        tracing::info!(
            duplicate = duplicate.number,
            into = target.number,
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

async fn open_ticket(
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
fn ticket_subject(message: &InboundMessage) -> String {
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
