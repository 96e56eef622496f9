//! The agents' desk in chat: customers' messages go to intake, agents' messages in the agents'
//! place become replies, notes and ticket commands.
//! (Long because the customer side and the agent side share the desk's state and its answers
//! in chat; the commands themselves are parsed in `commands`.)
//!
//! Channel-neutral: Telegram and Discord hand over the same [`ChatEvent`]s (the desk is their
//! [`Sink`]), and answers go out through the channel's own [`Deliverers`] entry.

use chrono::Utc;
use helpdesk_channel::{
    AgentMessage, ChannelKind, ChatEvent, Identity, InboundMessage, OutboundMessage, Sink,
    ThreadHints,
};

use super::commands::{self, Command};
use crate::domain::Status;
use crate::domain::TicketNumber;
use crate::domain::tags::TagChange;
use crate::intake::{Intake, IntakeError, Outcome};
use crate::jobs::chat_answer::{self, ChatAnswer};
use crate::jobs::deliver::{self, Deliverers};
use crate::store::{Store, StoreError, chat, outbound};

/// The first `#1042` in a text the bot wrote about a ticket.
fn first_ticket_tag(text: &str) -> Option<i64> {
    text.split('#').skip(1).find_map(|after| {
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// The text of a reply that is only files.
fn files_named(message: &AgentMessage) -> String {
    let names: Vec<&str> = message
        .attachments
        .iter()
        .map(|attachment| attachment.filename.as_str())
        .collect();
    format!("Attached: {}", names.join(", "))
}

/// Longest quote of a deleted message kept on its ticket.
const DELETED_EXCERPT_CHARS: usize = 300;

/// How often, and how far apart, an agent's reply is matched to the bot's posts before it is
/// taken for agents' own talk (see [`ChatDesk::ticket_of_posts`]).
const POST_LOOKUP_TRIES: u32 = 5;
const POST_LOOKUP_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// Takes the events of chat channels: the application's side of a chat channel's sink.
#[derive(Clone)]
pub struct ChatDesk {
    intake: Intake,
    deliverers: Deliverers,
    /// From: of mail replies, for the Message-IDs of replies to email tickets.
    support_address: String,
}

/// What an agent's message did, for the answer in the agents' place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentOutcome {
    /// Not a message for the helpdesk (agents talking among themselves).
    Ignored,
    /// The same message was acted on before.
    AlreadyDone,
    /// Answered in the agents' place with this text.
    Answered(String),
}

impl ChatDesk {
    pub fn new(intake: Intake, deliverers: Deliverers, support_address: &str) -> ChatDesk {
        ChatDesk {
            intake,
            deliverers,
            support_address: support_address.to_owned(),
        }
    }

    pub(super) fn store(&self) -> &Store {
        self.intake.store()
    }

    /// Handles one event; returns once what it changed is committed.
    pub async fn handle(&self, event: ChatEvent) -> Result<(), IntakeError> {
        match event {
            ChatEvent::Customer(message) => self.customer_wrote(message).await,
            ChatEvent::Start {
                customer,
                conversation,
            } => self.customer_started(customer, conversation).await,
            ChatEvent::Agent(message) => {
                self.agent_wrote(message).await?;
                Ok(())
            }
            ChatEvent::Removed {
                channel,
                conversation,
                external_id,
                raw,
            } => {
                self.customer_removed(channel, &conversation, &external_id, raw)
                    .await
            }
        }
    }

    /// Records on the ticket that the customer deleted a message, with what it said if it was
    /// kept. A deletion opens no ticket: without an open one it is only logged.
    async fn customer_removed(
        &self,
        channel: ChannelKind,
        conversation: &str,
        external_id: &str,
        raw: Vec<u8>,
    ) -> Result<(), IntakeError> {
        let original = chat::customer_message(self.store(), channel, external_id).await?;
        let customer = match &original {
            Some((_, address, name)) => Some((address.clone(), name.clone())),
            None => chat::customer_of_conversation(self.store(), channel, conversation).await?,
        };
        let open = chat::open_ticket_of_conversation(self.store(), channel, conversation).await?;
        let (Some((address, display_name)), Some(_)) = (customer, open) else {
            tracing::info!(%channel, conversation, external_id, "deleted message of no open ticket");
            return Ok(());
        };
        let text = match original.as_ref().map(|(text, _, _)| text.trim()) {
            Some(words) if !words.is_empty() => {
                let mut excerpt: String = words.chars().take(DELETED_EXCERPT_CHARS).collect();
                if words.chars().count() > DELETED_EXCERPT_CHARS {
                    excerpt.push('…');
                }
                format!("(the customer deleted a message: {excerpt})")
            }
            _ => "(the customer deleted a message)".to_owned(),
        };
        let message = InboundMessage {
            channel,
            external_id: format!("{external_id}:delete"),
            sender: Identity {
                channel,
                address,
                display_name,
                handle: None,
            },
            subject: None,
            text,
            html: None,
            attachments: Vec::new(),
            thread: ThreadHints {
                conversation: Some(conversation.to_owned()),
                ..ThreadHints::default()
            },
            automation: Default::default(),
            sent_at: Some(Utc::now()),
            raw,
        };
        self.intake.accept(message).await?;
        Ok(())
    }

    async fn customer_wrote(&self, message: InboundMessage) -> Result<(), IntakeError> {
        let channel = message.channel;
        if let Outcome::Created { number, .. } = self.intake.accept(message).await? {
            let text = format!(
                "Thank you for writing. Your ticket number is #{number}; we will answer here. \
                 Anything you add in this chat goes to the same ticket."
            );
            if let Err(error) = self.greet(channel, number, &text).await {
                tracing::warn!(%channel, %number, %error, "greeting not queued");
            }
        }
        Ok(())
    }

    /// Queues the greeting of a new chat ticket as an automatic message of the ticket, so the
    /// delivery job sends it (as a reply to the customer's message) and retries it on rate
    /// limits and outages. Only where this process delivers on the channel.
    async fn greet(
        &self,
        channel: ChannelKind,
        number: TicketNumber,
        text: &str,
    ) -> Result<(), StoreError> {
        if self.deliverers.get(channel).is_none() {
            return Ok(());
        }
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        let Some((ticket_id, _)) = chat::ticket_channel(&mut tx, number).await? else {
            return Ok(());
        };
        let message_id = outbound::add_automatic(
            &mut tx,
            &outbound::NewAutomatic {
                ticket_id,
                channel,
                external_id: None,
                text,
                html: None,
                now,
            },
        )
        .await?;
        deliver::enqueue(&mut tx, message_id, 1, now).await?;
        tx.commit().await
    }

    async fn customer_started(
        &self,
        customer: Identity,
        conversation: String,
    ) -> Result<(), IntakeError> {
        let open = chat::open_ticket_of_conversation(self.store(), customer.channel, &conversation)
            .await?;
        let text = match open {
            Some(number) => {
                format!("Welcome back. Your ticket #{number} is open; write here to add to it.")
            }
            None => "Hello! Write your question here and we will open a ticket for you; \
                     the answer comes to this chat."
                .to_owned(),
        };
        self.say(
            customer.channel,
            &customer.address,
            Some(&conversation),
            None,
            open.unwrap_or_default(),
            &text,
        )
        .await;
        Ok(())
    }

    /// Sends a short text on a chat channel right away, not through a queue: the welcome after
    /// /start (the customer is there and waiting, and a lost one is not worth a retry), and
    /// the answer to a Discord slash command (due within seconds). Returns the posted
    /// message's id.
    async fn say(
        &self,
        channel: ChannelKind,
        recipient: &str,
        conversation: Option<&str>,
        reply_to: Option<&str>,
        ticket_number: TicketNumber,
        text: &str,
    ) -> Option<String> {
        let deliverer = self.deliverers.get(channel)?;
        let message = OutboundMessage {
            channel,
            external_id: None,
            ticket_number: ticket_number.get(),
            recipient: Identity {
                channel,
                address: recipient.to_owned(),
                display_name: None,
                handle: None,
            },
            subject: String::new(),
            text: text.to_owned(),
            html: None,
            attachments: Vec::new(),
            thread: ThreadHints {
                conversation: conversation.map(str::to_owned),
                reply_to: reply_to.map(str::to_owned),
                ..ThreadHints::default()
            },
            automatic: true,
            choices: Vec::new(),
        };
        match deliverer.deliver_boxed(&message).await {
            Ok(delivered) => Some(delivered.external_id),
            Err(error) => {
                tracing::warn!(%channel, recipient, %error, "chat answer not sent");
                None
            }
        }
    }

    /// The ticket a post (or Discord thread) belongs to. The bot records its post right after
    /// the platform accepted it, so an agent quick enough to answer in those milliseconds
    /// would find no record yet: a reply, or a message in a Discord thread, is looked up a few
    /// times before it counts as agents talking among themselves.
    async fn ticket_of_posts(
        &self,
        message: &AgentMessage,
        posts: &[&str],
    ) -> Result<Option<i64>, StoreError> {
        let may_be_early = message.reply_to.is_some() || message.channel == ChannelKind::Discord;
        let tries = if may_be_early { POST_LOOKUP_TRIES } else { 1 };
        for attempt in 1..=tries {
            if let Some(number) = chat::ticket_of_post(self.store(), message.channel, posts).await?
            {
                return Ok(Some(number));
            }
            if attempt < tries {
                tokio::time::sleep(POST_LOOKUP_PAUSE).await;
            }
        }
        Ok(None)
    }

    /// Acts on a message in the agents' place and answers there.
    pub async fn agent_wrote(&self, message: AgentMessage) -> Result<AgentOutcome, StoreError> {
        let channel = message.channel;
        let command = match commands::parse(&message.text) {
            // Only files: the reply names them.
            Ok(commands::Parsed {
                command: Command::Reply(text),
                ticket,
            }) if text.is_empty() && !message.attachments.is_empty() => Ok(commands::Parsed {
                command: Command::Reply(files_named(&message)),
                ticket,
            }),
            parsed => parsed,
        };
        let Some(agent) =
            chat::agent_by_identity(self.store(), channel, &message.sender.address).await?
        else {
            let is_command =
                !matches!(&command, Ok(parsed) if matches!(parsed.command, Command::Reply(_)));
            let addressed = is_command || message.reply_to.is_some();
            if !addressed {
                return Ok(AgentOutcome::Ignored);
            }
            let text = format!(
                "Sorry, only the support team's agents can act on tickets here. An admin can add \
                 you with: helpdesk user add --{channel}-id {}",
                message.sender.address
            );
            self.answer(&message, None, &text).await?;
            return Ok(AgentOutcome::Answered(text));
        };
        let parsed = match command {
            Ok(parsed) => parsed,
            Err(problem) => {
                let text = format!("{problem}\n\n{}", commands::HELP);
                self.answer(&message, None, &text).await?;
                return Ok(AgentOutcome::Answered(text));
            }
        };
        if parsed.command == Command::Help {
            self.answer(&message, None, commands::HELP).await?;
            return Ok(AgentOutcome::Answered(commands::HELP.to_owned()));
        }
        if let Command::Notify(change) = parsed.command {
            let text = super::notify_command::answer(self.store(), agent.0, change).await?;
            self.answer(&message, None, &text).await?;
            return Ok(AgentOutcome::Answered(text));
        }
        let mut posts: Vec<&str> = message.reply_to.iter().map(String::as_str).collect();
        // Inside a Discord thread made for a ticket, the thread is the post.
        posts.push(&message.place);
        let number = match parsed.ticket {
            Some(number) => Some(number),
            None => self.ticket_of_posts(&message, &posts).await?.or_else(|| {
                message
                    .reply_to_own_text
                    .as_deref()
                    .and_then(first_ticket_tag)
            }),
        };
        let Some(number) = number.map(TicketNumber) else {
            if matches!(parsed.command, Command::Reply(_)) {
                // Agents talking among themselves.
                return Ok(AgentOutcome::Ignored);
            }
            let text = "Which ticket? Reply to the ticket's post, or name it: /claim #1042";
            self.answer(&message, None, text).await?;
            return Ok(AgentOutcome::Answered(text.to_owned()));
        };
        let text = match self.act(&message, agent, number, &parsed.command).await {
            Ok(Some(text)) => {
                // Queued with the action, unless it must go out at once.
                if answered_directly(&message) {
                    self.answer(&message, Some(number), &text).await?;
                }
                text
            }
            Ok(None) => return Ok(AgentOutcome::AlreadyDone),
            Err(StoreError::Conflict(problem) | StoreError::NotFound(problem)) => {
                self.answer(&message, Some(number), &problem).await?;
                problem
            }
            Err(error) => return Err(error),
        };
        Ok(AgentOutcome::Answered(text))
    }

    /// Carries out a command on ticket `number` in one transaction that also marks the
    /// message as done; `None` if it was done before.
    async fn act(
        &self,
        message: &AgentMessage,
        (agent_id, agent_name): (i64, String),
        number: TicketNumber,
        command: &Command,
    ) -> Result<Option<String>, StoreError> {
        let now = Utc::now();
        // Files of a reply or note are kept before the transaction (disk, not database).
        let files = match command {
            Command::Reply(_) | Command::Note(_) if !message.attachments.is_empty() => {
                crate::ops::keep_files(self.intake.blobs(), message.attachments.clone()).await?
            }
            _ => Vec::new(),
        };
        let mut tx = self.store().begin_write().await?;
        if !chat::mark_action(
            &mut tx,
            message.channel,
            &message.external_id,
            agent_id,
            now,
        )
        .await?
        {
            tx.rollback().await?;
            return Ok(None);
        }
        let Some((_, ticket_channel)) = chat::ticket_channel(&mut tx, number).await? else {
            return Err(StoreError::NotFound(format!(
                "There is no ticket #{number}."
            )));
        };
        let answer = match command {
            Command::Reply(text) | Command::Note(text) => {
                let public = matches!(command, Command::Reply(_));
                let mail_id = (public && ticket_channel == ChannelKind::Email)
                    .then(|| crate::domain::new_mail_message_id(&self.support_address, number));
                let stored = crate::ops::reply::add_in(
                    &mut tx,
                    &outbound::NewReply {
                        number,
                        agent_id,
                        text,
                        kind: crate::ops::reply_kind(!public),
                        external_id: mail_id.as_deref(),
                        channels_here: &self.deliverers.channels(),
                        now,
                    },
                    &files,
                    None,
                )
                .await?;
                if stored.to_deliver {
                    format!("Reply to #{number} is on its way to the customer ({ticket_channel}).")
                } else {
                    format!("Note added to #{number}; the customer does not see it.")
                }
            }
            Command::Claim => {
                assign(&mut tx, number, agent_id, agent_id, now).await?;
                format!("#{number} is yours, {agent_name}.")
            }
            Command::Assign(who) => {
                let Some((id, name)) =
                    chat::agent_named(self.store(), message.channel, who).await?
                else {
                    return Err(StoreError::NotFound(format!(
                        "No agent is called {who}; name them by email, name or chat id."
                    )));
                };
                assign(&mut tx, number, id, agent_id, now).await?;
                format!("#{number} assigned to {name}.")
            }
            Command::Status(status) => {
                self.change_status(&mut tx, number, *status, agent_id, now)
                    .await?
            }
            Command::Close => {
                self.change_status(&mut tx, number, Status::Closed, agent_id, now)
                    .await?
            }
            Command::Reopen => {
                self.change_status(&mut tx, number, Status::Open, agent_id, now)
                    .await?
            }
            Command::Priority(priority) => {
                crate::ops::apply_in(
                    &mut tx,
                    number,
                    crate::ops::ChangedBy { agent_id, now },
                    &crate::ops::TicketChange {
                        priority: Some(*priority),
                        reason: Some("set in chat".into()),
                        ..Default::default()
                    },
                )
                .await?;
                format!("#{number} now has {priority} priority.")
            }
            Command::Tag(names) | Command::Untag(names) => {
                let adding = matches!(command, Command::Tag(_));
                let (add, remove) = if adding {
                    (names.clone(), Vec::new())
                } else {
                    (Vec::new(), names.clone())
                };
                let changed = crate::ops::apply_in(
                    &mut tx,
                    number,
                    crate::ops::ChangedBy { agent_id, now },
                    &crate::ops::TicketChange {
                        tags: Some(TagChange::Edit { add, remove }),
                        reason: Some("set in chat".into()),
                        ..Default::default()
                    },
                )
                .await?;
                let tags = crate::store::manage::tags_in(&mut tx, number).await?;
                let now_has = if tags.is_empty() {
                    "no tags".to_owned()
                } else {
                    format!("tags: {}", tags.join(", "))
                };
                if changed {
                    format!("#{number} now has {now_has}.")
                } else {
                    format!("#{number} is unchanged; it has {now_has}.")
                }
            }
            Command::Canned(name) => {
                super::canned::send(
                    &mut tx,
                    &super::canned::CannedCommand {
                        number,
                        ticket_channel,
                        agent_id,
                        name,
                        support_address: &self.support_address,
                        channels_here: &self.deliverers.channels(),
                        now,
                    },
                )
                .await?
            }
            Command::Help | Command::Notify(_) => commands::HELP.to_owned(),
        };
        // The answer is queued with the action it reports: both happen, or neither does.
        if !answered_directly(message) {
            chat_answer::enqueue(&mut tx, &chat_answer(message, Some(number), &answer), now)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(answer))
    }

    /// Puts the files of an agent's message in the attachment store; returns their sha256.
    /// A file that cannot be kept fails the action (it is tried again), rather than sending
    /// the reply without it.
    async fn change_status(
        &self,
        tx: &mut crate::store::Tx,
        number: TicketNumber,
        to: Status,
        agent_id: i64,
        now: chrono::DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let changed = crate::ops::apply_in(
            tx,
            number,
            crate::ops::ChangedBy { agent_id, now },
            &crate::ops::TicketChange {
                status: Some(to),
                reason: Some("set in chat".into()),
                ..Default::default()
            },
        )
        .await
        .map_err(|error| match error {
            StoreError::Conflict(problem) if to == Status::Open => StoreError::Conflict(format!(
                "{problem}. Only resolved tickets reopen; a closed ticket stays closed and the \
                 customer's next message opens a follow-up."
            )),
            other => other,
        })?;
        Ok(if changed {
            format!("#{number} is now {to}.")
        } else {
            format!("#{number} is already {to}.")
        })
    }

    /// Answers an agent in the agents' place, as a reply to their message; an answer about a
    /// ticket is remembered as a post of that ticket, so replying to it works as well. The
    /// answer goes through the chat answer queue, which retries it on rate limits and outages;
    /// only a Discord slash command is answered at once (Discord wants its answer within three
    /// seconds), and should that fail, the answer follows through the queue as a message.
    async fn answer(
        &self,
        message: &AgentMessage,
        ticket: Option<TicketNumber>,
        text: &str,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        if !answered_directly(message) {
            let mut tx = self.store().begin_write().await?;
            chat_answer::enqueue(&mut tx, &chat_answer(message, ticket, text), now).await?;
            return tx.commit().await;
        }
        let posted = self
            .say(
                message.channel,
                &message.place,
                None,
                Some(&message.external_id),
                ticket.unwrap_or_default(),
                text,
            )
            .await;
        let mut tx = self.store().begin_write().await?;
        match posted {
            Some(posted) => {
                if let Some(number) = ticket
                    && let Some((ticket_id, _)) = chat::ticket_channel(&mut tx, number).await?
                {
                    chat::record_post(&mut tx, message.channel, &posted, ticket_id, now).await?;
                }
            }
            None => {
                let follow_up = ChatAnswer {
                    reply_to: None,
                    ..chat_answer(message, ticket, text)
                };
                chat_answer::enqueue(&mut tx, &follow_up, now).await?;
            }
        }
        tx.commit().await
    }
}

/// Takes a batch of chat events one by one; returns only once all are committed.
impl Sink<ChatEvent> for ChatDesk {
    type Error = IntakeError;

    async fn accept(&self, events: Vec<ChatEvent>) -> Result<(), IntakeError> {
        for event in events {
            self.handle(event).await?;
        }
        Ok(())
    }
}

/// Whether an agent's message is answered at once rather than through the queue: a Discord
/// slash command, whose answer is due within seconds.
/// Assigns a ticket from chat through the one ticket change, and tells the agents' places
/// (a claim or an assignment in chat is news to the others there).
async fn assign(
    tx: &mut crate::store::Tx,
    number: TicketNumber,
    to: i64,
    by: i64,
    now: chrono::DateTime<Utc>,
) -> Result<(), StoreError> {
    let reason = if to == by {
        "claimed in chat"
    } else {
        "assigned in chat"
    };
    // The change records the assignment's outbox entry, which tells the agents' places.
    crate::ops::apply_in(
        tx,
        number,
        crate::ops::ChangedBy { agent_id: by, now },
        &crate::ops::TicketChange {
            assignee: Some(Some(to)),
            reason: Some(reason.into()),
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

fn answered_directly(message: &AgentMessage) -> bool {
    message.channel == ChannelKind::Discord && message.external_id.starts_with("interaction:")
}

/// The first attempt at answering `message` in its place, as a reply to it.
fn chat_answer(message: &AgentMessage, ticket: Option<TicketNumber>, text: &str) -> ChatAnswer {
    ChatAnswer {
        channel: message.channel,
        place: message.place.clone(),
        answers: message.external_id.clone(),
        reply_to: Some(message.external_id.clone()),
        ticket_number: ticket,
        text: text.to_owned(),
        attempt: 1,
    }
}
