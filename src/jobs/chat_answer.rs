//! Answers to agents in their own chat ("reply is on its way", a refusal, the help text),
//! sent through the channels that deliver replies, on a queue of their own with shorter waits:
//! an answer is worth something only while the agent still waits for it.

use chrono::{DateTime, Duration, Utc};
use helpdesk_channel::{ChannelKind, DeliveryError, OutboundMessage};
use serde::{Deserialize, Serialize};

use super::deliver::Deliverers;
use super::{Job, JobContext, JobError};
use crate::domain::TicketNumber;
use crate::store::jobs::About;
use crate::store::{Result, Store, Tx, health};

/// Attempts at an answer to an agent before it is given up: it is worth something only while
/// the agent still waits for it, so the retries are close together (2 s, 4 s, … 32 s).
pub const MAX_CHAT_ANSWER_ATTEMPTS: i64 = 6;
const FIRST_CHAT_ANSWER_RETRY: Duration = Duration::seconds(2);

/// An answer to an agent in the agents' place ("reply is on its way", a refusal, the help
/// text), sent as a reply to the agent's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatAnswer {
    pub channel: ChannelKind,
    /// The group chat, or the Discord channel or thread.
    pub place: String,
    /// The agent's message it answers: the same message is answered once.
    pub answers: String,
    /// Reply to this message; `None` posts plainly in the place.
    pub reply_to: Option<String>,
    /// The ticket it is about: the posted answer then counts as a post of the ticket, so
    /// replying to it works too.
    pub ticket_number: Option<TicketNumber>,
    pub text: String,
    /// Starts at 1.
    pub attempt: i64,
}

impl Job for ChatAnswer {
    const QUEUE: &'static str = "helpdesk.chat_answer";
    /// One run per attempt: the retries are jobs of their own, with their waits.
    const MAX_ATTEMPTS: usize = 1;

    async fn run(self, context: &JobContext) -> Result<(), JobError> {
        let outcome = deliver(&context.store, &context.deliverers, &self, Utc::now()).await?;
        tracing::debug!(place = self.place, ?outcome, "chat answer ran");
        Ok(())
    }

    fn about(&self) -> Option<About> {
        self.ticket_number.map(About::Number)
    }
}

/// What one run of a chat answer job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatAnswerOutcome {
    Sent {
        external_id: String,
    },
    RetryAt(DateTime<Utc>),
    /// Given up, with the reason.
    Failed(String),
}

/// The wait before attempt `attempt + 1` of a chat answer.
fn chat_answer_backoff(failed_attempts: i64) -> Duration {
    let doublings = u32::try_from(failed_attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(10);
    FIRST_CHAT_ANSWER_RETRY * 2i32.saturating_pow(doublings)
}

/// Queues `answer` inside `tx`, due at `at`; queuing the same answer (same message, same
/// attempt) twice is a no-op.
pub async fn enqueue(tx: &mut Tx, answer: &ChatAnswer, at: DateTime<Utc>) -> Result<()> {
    let key = format!(
        "chat-answer:{}:{}:{}",
        answer.channel, answer.answers, answer.attempt
    );
    answer.enqueue(tx, &key, at).await
}

/// Makes one attempt to send a chat answer; a temporary failure queues the next attempt.
pub async fn deliver(
    store: &Store,
    deliverers: &Deliverers,
    answer: &ChatAnswer,
    now: DateTime<Utc>,
) -> Result<ChatAnswerOutcome> {
    let message = OutboundMessage {
        channel: answer.channel,
        external_id: None,
        ticket_number: answer.ticket_number.unwrap_or_default().get(),
        recipient: helpdesk_channel::Identity {
            channel: answer.channel,
            address: answer.place.clone(),
            display_name: None,
            handle: None,
        },
        subject: String::new(),
        text: answer.text.clone(),
        html: None,
        attachments: Vec::new(),
        thread: helpdesk_channel::ThreadHints {
            reply_to: answer.reply_to.clone(),
            ..helpdesk_channel::ThreadHints::default()
        },
        automatic: true,
        choices: Vec::new(),
    };
    let here = deliverers.get(answer.channel).is_some();
    let result = match deliverers.get(answer.channel) {
        Some(channel) => channel.deliver_boxed(&message).await,
        None => Err(DeliveryError::Temporary(format!(
            "the {} channel is not enabled",
            answer.channel
        ))),
    };
    let channel = answer.channel.as_str();
    let mut tx = store.begin_write().await?;
    let outcome = match result {
        Ok(delivered) => {
            health::record_delivery(&mut tx, channel, Ok(()), now).await?;
            if let Some(number) = answer.ticket_number
                && let Some((ticket_id, _)) =
                    crate::store::chat::ticket_channel(&mut tx, number).await?
            {
                crate::store::chat::record_post(
                    &mut tx,
                    answer.channel,
                    &delivered.external_id,
                    ticket_id,
                    now,
                )
                .await?;
            }
            ChatAnswerOutcome::Sent {
                external_id: delivered.external_id,
            }
        }
        Err(error) => {
            let permanent = matches!(error, DeliveryError::Permanent(_));
            let reason = error.to_string();
            // A channel this process does not run has no connection here to speak of.
            if here {
                health::record_delivery(&mut tx, channel, Err((&reason, permanent)), now).await?;
            }
            if permanent || answer.attempt >= MAX_CHAT_ANSWER_ATTEMPTS {
                tracing::warn!(
                    channel,
                    place = answer.place,
                    attempts = answer.attempt,
                    %reason,
                    "answer in the agents' place given up"
                );
                ChatAnswerOutcome::Failed(reason)
            } else {
                let at = now + chat_answer_backoff(answer.attempt);
                let next = ChatAnswer {
                    attempt: answer.attempt + 1,
                    ..answer.clone()
                };
                enqueue(&mut tx, &next, at).await?;
                tracing::debug!(channel, %reason, "answer in the agents' place not sent; retrying");
                ChatAnswerOutcome::RetryAt(at)
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}
