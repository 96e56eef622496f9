//! Delivery of replies on the customer's channel, retried with exponential backoff and a cap;
//! after the last attempt the reply is marked failed, shown on the ticket, never dropped.
//! Answers to agents in their own chat go out through the same channels
//! ([`super::chat_answer`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use helpdesk_channel::{
    Attachment, ChannelKind, Deliver, Delivered, DeliveryError, Identity, OutboundMessage,
};
use serde::{Deserialize, Serialize};

use super::{Job, JobContext, JobError};
use crate::store::blobs::BlobStore;
use crate::store::jobs::About;
use crate::store::outbound::{self, PendingDelivery};
use crate::store::tickets::{Actor, NewEvent, record_event};
use crate::store::{self, health};
use crate::store::{Result, Store, Tx};

/// Attempts before a reply is marked failed.
pub const MAX_DELIVERY_ATTEMPTS: i64 = 8;
const FIRST_RETRY: Duration = Duration::seconds(30);
const LONGEST_RETRY: Duration = Duration::hours(1);

/// Deliver one stored reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverMessage {
    pub message_id: i64,
}

impl Job for DeliverMessage {
    const QUEUE: &'static str = "helpdesk.deliver";

    async fn run(self, context: &JobContext) -> Result<(), JobError> {
        let outcome = deliver_message(
            &context.store,
            &context.deliverers,
            self.message_id,
            Utc::now(),
        )
        .await?;
        tracing::debug!(message_id = self.message_id, ?outcome, "delivery ran");
        Ok(())
    }

    fn about(&self) -> Option<About> {
        Some(About::Message(self.message_id))
    }
}

/// [`Deliver`] for a registry of channels (its futures are boxed so channels can differ).
pub trait DynDeliver: Send + Sync {
    fn deliver_boxed<'a>(
        &'a self,
        message: &'a OutboundMessage,
    ) -> Pin<Box<dyn Future<Output = Result<Delivered, DeliveryError>> + Send + 'a>>;
}

impl<T: Deliver> DynDeliver for T {
    fn deliver_boxed<'a>(
        &'a self,
        message: &'a OutboundMessage,
    ) -> Pin<Box<dyn Future<Output = Result<Delivered, DeliveryError>> + Send + 'a>> {
        Box::pin(self.deliver(message))
    }
}

/// The enabled channels, by kind, and where the files attached to replies are kept.
#[derive(Clone, Default)]
pub struct Deliverers {
    channels: HashMap<ChannelKind, Arc<dyn DynDeliver>>,
    attachments: Option<BlobStore>,
    /// Mail senders by mailbox name, in the configured order, each with its signature.
    mailboxes: Vec<(String, MailboxSender)>,
    /// Sends agents their notices by mail (the first mailbox's sender), when mail is set up.
    notice_mail: Option<Arc<helpdesk_email::smtp::SmtpSender>>,
}

/// How mail goes out from one mailbox: its sender (From: its address) and its signature.
#[derive(Clone)]
pub struct MailboxSender {
    pub deliver: Arc<dyn DynDeliver>,
    pub signature: Option<String>,
}

impl Deliverers {
    /// Where attachment contents are read from; a reply with attachments cannot go out
    /// without it.
    pub fn with_attachments(mut self, blobs: BlobStore) -> Deliverers {
        self.attachments = Some(blobs);
        self
    }

    pub fn with(mut self, channel: ChannelKind, deliver: Arc<dyn DynDeliver>) -> Deliverers {
        self.channels.insert(channel, deliver);
        self
    }

    pub fn get(&self, channel: ChannelKind) -> Option<&Arc<dyn DynDeliver>> {
        self.channels.get(&channel)
    }

    /// Adds the sender of mailbox `name`; the first one added also delivers the mail of
    /// tickets without a mailbox (unless an email deliverer was given with [`Self::with`]).
    pub fn with_mailbox(mut self, name: &str, sender: MailboxSender) -> Deliverers {
        self.channels
            .entry(ChannelKind::Email)
            .or_insert_with(|| Arc::clone(&sender.deliver));
        self.mailboxes.push((name.to_owned(), sender));
        self
    }

    /// Who sends the mail of a ticket that came in through `mailbox`: that mailbox's sender,
    /// else the first mailbox's, else the email channel's without a signature.
    pub fn mail_from(&self, mailbox: Option<&str>) -> Option<MailboxSender> {
        mailbox
            .and_then(|name| self.mailboxes.iter().find(|(known, _)| known == name))
            .or(self.mailboxes.first())
            .map(|(_, sender)| sender.clone())
            .or_else(|| {
                self.get(ChannelKind::Email).map(|deliver| MailboxSender {
                    deliver: Arc::clone(deliver),
                    signature: None,
                })
            })
    }

    /// Mails agents their notices through `sender`.
    pub fn with_notice_mail(mut self, sender: Arc<helpdesk_email::smtp::SmtpSender>) -> Deliverers {
        self.notice_mail = Some(sender);
        self
    }

    pub fn notice_mail(&self) -> Option<&helpdesk_email::smtp::SmtpSender> {
        self.notice_mail.as_deref()
    }

    /// The channels this process delivers on, in a fixed order.
    pub fn channels(&self) -> Vec<ChannelKind> {
        let mut channels: Vec<ChannelKind> = self.channels.keys().copied().collect();
        channels.sort_by_key(|channel| channel.as_str());
        channels
    }
}

/// The wait before attempt `attempt + 1`, after `attempt` failed ones: 30 s, 1 min, 2 min, …,
/// at most an hour.
pub fn backoff(failed_attempts: i64) -> Duration {
    let doublings = u32::try_from(failed_attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let wait = FIRST_RETRY * 2i32.saturating_pow(doublings);
    wait.min(LONGEST_RETRY)
}

/// What one run of a delivery job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Sent {
        external_id: String,
    },
    /// Failed for now; the next attempt is queued for this time.
    RetryAt(DateTime<Utc>),
    /// Failed for good, with the reason; the ticket's history says so.
    Failed(String),
    /// Already sent or failed (a repeated job), or no such reply.
    NothingToDo,
}

/// Queues attempt `attempt` of reply `message_id` inside `tx`, due at `at`; each attempt is
/// queued once.
pub async fn enqueue(tx: &mut Tx, message_id: i64, attempt: i64, at: DateTime<Utc>) -> Result<()> {
    DeliverMessage { message_id }
        .enqueue(tx, &format!("deliver:{message_id}:{attempt}"), at)
        .await
}

fn outbound_message(pending: &PendingDelivery, recipient: &Identity) -> OutboundMessage {
    let subject = if pending.subject.to_lowercase().starts_with("re:") {
        pending.subject.clone()
    } else {
        format!("Re: {}", pending.subject)
    };
    OutboundMessage {
        channel: pending.channel,
        external_id: pending.external_id.clone(),
        ticket_number: pending.ticket_number.get(),
        recipient: recipient.clone(),
        subject,
        text: pending.text.clone(),
        html: pending.html.clone(),
        attachments: Vec::new(),
        thread: pending.thread.clone(),
        automatic: pending.automatic,
        choices: Vec::new(),
    }
}

/// Appends the agent's signature (replies only) and then the mailbox's to a mail.
fn sign(message: &mut OutboundMessage, pending: &PendingDelivery, mailbox: Option<&str>) {
    let agent = if pending.automatic {
        None
    } else {
        pending.agent_signature.as_deref()
    };
    let signatures: Vec<&str> = agent.into_iter().chain(mailbox).collect();
    let (text, html) =
        crate::domain::signature::append(&message.text, message.html.as_deref(), &signatures);
    message.text = text;
    message.html = html;
}

/// The buttons an automatic message carries on chat: a survey's ratings.
async fn choices_of(
    store: &Store,
    pending: &PendingDelivery,
) -> Result<Vec<helpdesk_channel::Choice>> {
    if !pending.automatic || pending.channel == ChannelKind::Email {
        return Ok(Vec::new());
    }
    Ok(
        match store::surveys::of_message(store, pending.message_id).await? {
            Some(survey) => crate::surveys::choices(survey.ticket_id),
            None => Vec::new(),
        },
    )
}

/// How long a reply waits before it is offered again when this process does not run its
/// channel but another running instance does (it is not counted as an attempt).
const HAND_OVER_AFTER: Duration = Duration::seconds(2);

/// What one attempt came to before it is recorded.
enum Attempt {
    /// The channel answered (or a reason that is not the channel's fault came up first).
    Made(Result<Delivered, DeliveryError>),
    /// No channel here to try with.
    NoChannelHere,
}

/// Makes one delivery attempt for a stored reply at time `now`.
///
/// Every path ends within [`MAX_DELIVERY_ATTEMPTS`] counted attempts: a permanent refusal, a
/// reply without a recipient or with a lost attachment fails at once; a temporary failure, and
/// a channel that no running instance has enabled any more, are retried with [`backoff`] and
/// then fail. Only when this process lacks the channel while another running instance has it
/// is the reply handed over without counting, for that instance's workers to take.
pub async fn deliver_message(
    store: &Store,
    deliverers: &Deliverers,
    message_id: i64,
    now: DateTime<Utc>,
) -> Result<DeliveryOutcome> {
    let Some(pending) = outbound::pending_delivery(store, message_id).await? else {
        return Ok(DeliveryOutcome::NothingToDo);
    };
    if pending.status != "pending" {
        return Ok(DeliveryOutcome::NothingToDo);
    }
    // Mail goes out from the ticket's mailbox, signed; chat goes out as written.
    let sender = match pending.channel {
        ChannelKind::Email => deliverers.mail_from(pending.mailbox.as_deref()),
        other => deliverers.get(other).map(|deliver| MailboxSender {
            deliver: Arc::clone(deliver),
            signature: None,
        }),
    };
    let attempt = match (&pending.recipient, sender) {
        (Err(why), _) => Attempt::Made(Err(DeliveryError::Permanent(why.clone()))),
        (Ok(_), None) => Attempt::NoChannelHere,
        (Ok(recipient), Some(sender)) => {
            Attempt::Made(match attached_files(store, deliverers, message_id).await? {
                Err(error) => Err(error),
                Ok(files) => {
                    let mut message = outbound_message(&pending, recipient);
                    message.attachments = files;
                    if pending.channel == ChannelKind::Email {
                        sign(&mut message, &pending, sender.signature.as_deref());
                    }
                    message.choices = choices_of(store, &pending).await?;
                    let started = std::time::Instant::now();
                    let sent = sender.deliver.deliver_boxed(&message).await;
                    let outcome = match &sent {
                        Ok(_) => "sent",
                        Err(DeliveryError::Temporary(_)) => "temporary",
                        Err(DeliveryError::Permanent(_)) => "permanent",
                    };
                    crate::telemetry::metrics().delivery(
                        pending.channel,
                        outcome,
                        started.elapsed(),
                    );
                    sent
                }
            })
        }
    };
    let attempts = pending.attempts + 1;
    let mut tx = store.begin_write().await?;
    let channel = pending.channel.as_str();
    let result = match attempt {
        Attempt::Made(result) => {
            match &result {
                Ok(_) => health::record_delivery(&mut tx, channel, Ok(()), now).await?,
                // A reply with nobody to send to says nothing about the connection.
                Err(_) if pending.recipient.is_err() => {}
                Err(error) => {
                    let reason = error.to_string();
                    let permanent = matches!(error, DeliveryError::Permanent(_));
                    health::record_delivery(&mut tx, channel, Err((&reason, permanent)), now)
                        .await?;
                }
            }
            result
        }
        Attempt::NoChannelHere => {
            if crate::store::instances::channel_running(&mut tx, pending.channel, now).await? {
                let at = now + HAND_OVER_AFTER;
                hand_over(&mut tx, message_id, attempts, at).await?;
                tx.commit().await?;
                return Ok(DeliveryOutcome::RetryAt(at));
            }
            Err(DeliveryError::Temporary(format!(
                "the {channel} channel is not enabled on any running instance \
                 (setting {channel}.enabled)"
            )))
        }
    };
    let outcome = match result {
        Ok(delivered) => {
            outbound::record_attempt(&mut tx, message_id, Ok(&delivered.external_id), now).await?;
            DeliveryOutcome::Sent {
                external_id: delivered.external_id,
            }
        }
        Err(error) => {
            let permanent = matches!(error, DeliveryError::Permanent(_));
            let reason = error.to_string();
            if permanent || attempts >= MAX_DELIVERY_ATTEMPTS {
                outbound::record_attempt(&mut tx, message_id, Err((&reason, true)), now).await?;
                let why = format!("after {attempts} attempts: {reason}");
                record_event(
                    &mut tx,
                    &NewEvent {
                        ticket_id: pending.ticket_id,
                        actor: Actor::System,
                        kind: "delivery_failed",
                        old_value: None,
                        new_value: Some(channel),
                        reason: Some(&why),
                        at: now,
                    },
                )
                .await?;
                tracing::warn!(message_id, ticket = %pending.ticket_number, %reason, "delivery failed for good");
                DeliveryOutcome::Failed(why)
            } else {
                outbound::record_attempt(&mut tx, message_id, Err((&reason, false)), now).await?;
                let at = now + backoff(attempts);
                enqueue(&mut tx, message_id, attempts + 1, at).await?;
                DeliveryOutcome::RetryAt(at)
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Queues attempt `attempt` of a reply again, due at `at`, without counting the one this
/// process could not make. Each hand-over has a key of its own (the attempt's key is taken
/// by the job that handed over).
async fn hand_over(tx: &mut Tx, message_id: i64, attempt: i64, at: DateTime<Utc>) -> Result<()> {
    let key = format!(
        "deliver:{message_id}:{attempt}:handed-over:{:016x}",
        fastrand::u64(..)
    );
    DeliverMessage { message_id }.enqueue(tx, &key, at).await
}

/// The files attached to outbound message `message_id`, read from the attachment store; a
/// file that is gone fails the delivery for good (it will not come back), an unreachable store
/// only for now (the queue tries again).
async fn attached_files(
    store: &Store,
    deliverers: &Deliverers,
    message_id: i64,
) -> Result<std::result::Result<Vec<Attachment>, DeliveryError>> {
    let listed = store::attachments::of_message(store, message_id).await?;
    if listed.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    let Some(blobs) = deliverers.attachments.as_ref() else {
        return Ok(Err(DeliveryError::Temporary(
            "no attachment store is configured for delivery".into(),
        )));
    };
    let mut files = Vec::with_capacity(listed.len());
    for attachment in listed {
        let Some(sha256) = attachment.sha256.as_deref() else {
            return Ok(Err(DeliveryError::Permanent(format!(
                "attachment {} was not kept",
                attachment.filename
            ))));
        };
        let content = match blobs.get(sha256).await {
            Ok(content) => content,
            Err(error) => {
                let reason = format!("attachment {} cannot be read: {error}", attachment.filename);
                return Ok(Err(if error.is_missing() {
                    DeliveryError::Permanent(reason)
                } else {
                    DeliveryError::Temporary(reason)
                }));
            }
        };
        files.push(Attachment {
            filename: attachment.filename,
            content_type: attachment.content_type,
            content,
            inline: attachment.inline,
            content_id: None,
        });
    }
    Ok(Ok(files))
}
