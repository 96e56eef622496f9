//! Intake: an inbound message becomes part of a ticket, in one transaction.
//!
//! The raw message is stored first, so it is kept whatever happens next; a duplicate (same
//! channel and external id) is dropped and counted; the sender becomes (or is found as) a
//! customer; thread hints find the ticket the message continues, or a new one is opened; the
//! message, its attachments and its thread links are stored; follow-up work goes to the outbox.
//! Only after the commit may a channel acknowledge the message at its source.
//!
//! By concern: `prepare` (a message made ready for the database, outside any transaction),
//! `threading` (finding the ticket a message continues), `storing` (the transaction that
//! takes a message in).

pub mod autoreply;
mod prepare;
mod storing;
mod threading;
mod together;

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use helpdesk_channel::{ChannelKind, InboundMessage};
use tokio::sync::Notify;

use crate::domain::TicketNumber;
use crate::store::blobs::BlobStore;
use crate::store::raw::{NewRaw, RawInsert};
use crate::store::{self, Store, StoreError};
use autoreply::AutoReplies;
use storing::{Arrival, Deferred};
use threading::{ThreadKeys, parents_first};
use together::Batch;

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

/// A message made ready for the database: parsed, checked, attachment contents named by hash.
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

impl Prepared {
    pub fn channel(&self) -> ChannelKind {
        match self {
            Prepared::Message { message, .. } => message.channel,
            Prepared::Unreadable { channel, .. } => *channel,
        }
    }
}

/// One message's time in intake, for `helpdesk_intake_duration_seconds`.
fn measured(channel: ChannelKind, outcome: &Result<Outcome, IntakeError>, started: Instant) {
    let outcome = match outcome {
        Ok(Outcome::Created { .. } | Outcome::Threaded { .. } | Outcome::Bounced { .. }) => "taken",
        Ok(Outcome::Duplicate) => "duplicate",
        Ok(Outcome::Rejected { .. }) => "rejected",
        Err(_) => "error",
    };
    crate::telemetry::metrics().intake(channel, outcome, started.elapsed());
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
    Created {
        number: TicketNumber,
        message_id: i64,
    },
    /// The message joined an existing ticket (reopening it if it was resolved or pending).
    Threaded {
        number: TicketNumber,
        message_id: i64,
        reopened: bool,
    },
    /// A bounce of mail we sent: kept on that mail's ticket, which counts it as failed.
    Bounced {
        number: TicketNumber,
        message_id: i64,
    },
    /// The same message was taken in before; nothing changed.
    Duplicate,
    /// The message was kept raw with this error and is not part of a ticket.
    Rejected { reason: String },
}

impl Outcome {
    pub fn ticket_number(&self) -> Option<TicketNumber> {
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
    /// The mailbox this intake takes mail in from, when it serves one of several.
    mailbox: Option<Arc<MailboxOrigin>>,
}

/// The mailbox an intake takes mail in from: new tickets remember it and start in its
/// department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxOrigin {
    pub name: String,
    pub department: Option<String>,
    pub address: String,
    pub display_name: Option<String>,
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
            mailbox: None,
        }
    }

    /// This intake for mail taken in from `mailbox`: its new tickets remember it and start in
    /// its department, and automatic answers come from its address.
    pub fn in_mailbox(mut self, mailbox: &crate::config::Mailbox) -> Intake {
        let origin = MailboxOrigin {
            name: mailbox.name.clone(),
            department: mailbox.department.clone(),
            address: mailbox.address.clone(),
            display_name: mailbox.display_name.clone(),
        };
        if let Some(auto_replies) = &self.auto_replies {
            self.auto_replies = Some(Arc::new(auto_replies.from_mailbox(&origin)));
        }
        self.mailbox = Some(Arc::new(origin));
        self
    }

    /// The mailbox this intake serves, if it serves one.
    pub fn mailbox(&self) -> Option<&MailboxOrigin> {
        self.mailbox.as_deref()
    }

    /// What a message that names a ticket by its tag alone, from someone not on it, does.
    pub fn with_unknown_sender_tag(mut self, policy: UnknownSenderTag) -> Intake {
        self.unknown_sender_tag = policy;
        self
    }

    /// Answers new mail tickets with an acknowledgement, and tells senders of attachments that
    /// were too large, in the intake transaction.
    pub fn with_auto_replies(mut self, auto_replies: AutoReplies) -> Intake {
        let auto_replies = match &self.mailbox {
            Some(origin) => auto_replies.from_mailbox(origin),
            None => auto_replies,
        };
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
        // Parsing and hashing are blocking work: keep them off the async
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

    /// Takes in one prepared message in its own transaction. If the transaction fails, the raw
    /// message is still kept, with the error, and the outcome says so.
    pub async fn accept_prepared(&self, prepared: Prepared) -> Result<Outcome, IntakeError> {
        let started = Instant::now();
        let channel = prepared.channel();
        let outcome = self.store_prepared(prepared).await;
        measured(channel, &outcome, started);
        outcome
    }

    async fn store_prepared(&self, prepared: Prepared) -> Result<Outcome, IntakeError> {
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
        self.write_attachment_contents(&message, &attachments)
            .await?;
        self.take_in_alone(message, attachments, body_omitted).await
    }

    /// One message whose attachment contents are written, in its own transaction.
    async fn take_in_alone(
        &self,
        message: Box<InboundMessage>,
        attachments: StoredAttachments,
        body_omitted: Option<String>,
    ) -> Result<Outcome, IntakeError> {
        let mut attempt = 1;
        loop {
            let mut tx = self.store.begin_write().await?;
            let one = [Arrival {
                message: &message,
                attachments: &attachments,
                body_omitted: body_omitted.as_deref(),
            }];
            let taken = self.take_in_all(&mut tx, &one).await.map(|outcomes| {
                // One message in, one outcome out.
                outcomes.into_iter().next().unwrap_or(Outcome::Duplicate)
            });
            match taken {
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
        let started = Instant::now();
        let mut outcomes: Vec<Option<Result<Outcome, IntakeError>>> =
            batch.iter().map(|_| None).collect();
        let mut readable = Vec::with_capacity(batch.len());
        for (index, prepared) in batch.into_iter().enumerate() {
            match prepared {
                Prepared::Message {
                    message,
                    attachments,
                    body_omitted,
                } => match self.write_attachment_contents(&message, &attachments).await {
                    Ok(()) => readable.push((index, message, attachments, body_omitted)),
                    Err(error) => outcomes[index] = Some(Err(error.into())),
                },
                unreadable => outcomes[index] = Some(self.accept_prepared(unreadable).await),
            }
        }
        parents_first(&mut readable);
        if readable.len() > 1 {
            // Each message of a group commit took the group's time.
            match self.take_in_together(&readable).await {
                Ok(taken) => {
                    for ((index, outcome), (_, message, ..)) in taken.into_iter().zip(&readable) {
                        let outcome = Ok(outcome);
                        measured(message.channel, &outcome, started);
                        outcomes[index] = Some(outcome);
                    }
                    readable.clear();
                }
                // One by one each would meet the same outage.
                Err(Some(error)) => {
                    for (index, message, ..) in readable.drain(..) {
                        let outcome = Err(StoreError::Unavailable(error.clone()).into());
                        measured(message.channel, &outcome, started);
                        outcomes[index] = Some(outcome);
                    }
                }
                Err(None) => {}
            }
        }
        for (index, message, attachments, body_omitted) in readable {
            outcomes[index] = Some(self.take_in_alone(message, attachments, body_omitted).await);
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
        let all: Vec<_> = messages
            .iter()
            .map(|(_, message, attachments, body_omitted)| Arrival {
                message,
                attachments,
                body_omitted: body_omitted.as_deref(),
            })
            .collect();
        let taken = self.take_in_all(&mut tx, &all).await.map(|outcomes| {
            let indexes = messages.iter().map(|(index, ..)| *index);
            indexes.zip(outcomes).collect::<Vec<_>>()
        });
        let taken = match taken {
            Ok(taken) => taken,
            Err(error) => {
                tracing::info!(%error, "batch rolled back");
                tx.rollback().await.ok();
                return Err(outage(&error));
            }
        };
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

    /// Takes in `messages` inside `tx`: their threads locked and their raw forms stored in
    /// one statement each, then the messages in waves ([`together`]), then what they defer
    /// (follow-up work, attachments) in one statement each. Outcomes are in the order given.
    async fn take_in_all(
        &self,
        tx: &mut store::Tx,
        messages: &[Arrival<'_>],
    ) -> Result<Vec<Outcome>, StoreError> {
        // Every message's thread locks at once, first, in one sorted order: taken message by
        // message, two batches could each hold what the other waits for.
        let keys: Vec<ThreadKeys> = messages
            .iter()
            .map(|arrival| ThreadKeys::of(arrival.message))
            .collect();
        let all: Vec<&str> = keys.iter().flat_map(ThreadKeys::all).collect();
        store::tickets::lock_thread(tx, &all).await?;
        let now = Utc::now();
        let raws: Vec<NewRaw> = messages
            .iter()
            .map(|arrival| raw_of(arrival.message))
            .collect();
        let raws = store::raw::insert_all(tx, &raws, now).await?;
        let mut outcomes: Vec<Option<Outcome>> = vec![None; messages.len()];
        let mut pending = Vec::new();
        for (index, raw) in raws.iter().enumerate() {
            match raw {
                RawInsert::Known(_) => outcomes[index] = Some(Outcome::Duplicate),
                RawInsert::New(_) | RawInsert::Failed(_) => pending.push(index),
            }
        }
        let mut deferred = Deferred::default();
        let mut batch = Batch {
            messages,
            keys: &keys,
            raws: &raws,
            outcomes: &mut outcomes,
            deferred: &mut deferred,
        };
        while !pending.is_empty() {
            pending = self.take_in_wave(tx, &mut batch, pending, now).await?;
        }
        deferred.write(tx, now).await?;
        Ok(outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or(Outcome::Duplicate))
            .collect())
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
}

/// What of `message` its raw row keeps.
fn raw_of(message: &InboundMessage) -> NewRaw<'_> {
    NewRaw {
        channel: message.channel,
        external_id: &message.external_id,
        content: &message.raw,
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
