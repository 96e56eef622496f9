//! The Discord channel of helpdesk (serenity): the gateway's events turned into neutral
//! messages, and delivery through the REST API.
//!
//! Customers write to the bot in DMs (the DM channel is the conversation); agents work in one
//! guild text channel, where each ticket gets a post and a thread started from it. Agents act by
//! writing in the thread, by replying to a post, or with the bot's slash commands, which are
//! registered for the agents' guild at start. The crate knows nothing of tickets: agents'
//! messages are passed on as [`ChatEvent::Agent`] for the application to interpret.
//!
//! The gateway does not wait for an acknowledgement: serenity reconnects and resumes a dropped
//! session (Discord replays what was missed), and events are handed to the [`Sink`] one at a
//! time, in the order they arrived, and retried until stored. What a new session cannot
//! replay — DMs sent while the bot was away — is fetched: the last message id handled in each
//! DM channel is kept ([`DmCursors`]), and on READY and RESUMED the messages after it are
//! handled, oldest first, before any live event; a message at or below a channel's cursor is
//! never handled again.

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
pub use helpdesk_channel::{AgentMessage, ChatEvent};
use helpdesk_channel::{
    Attachment, AutomationMarks, ChannelKind, Deliver, Delivered, DeliveryError, Identity,
    InboundMessage, OutboundMessage, ThreadHints,
};
use serenity::all::{
    AutoArchiveDuration, Channel, ChannelId, ClientBuilder, CollectorCallback,
    CommandDataOptionValue, CommandInteraction, CommandOptionType, Context, CreateAllowedMentions,
    CreateAttachment, CreateCommand, CreateCommandOption, CreateInteractionResponse,
    CreateInteractionResponseMessage, CreateMessage, CreateThread, Event, EventHandler,
    GatewayIntents, GetMessages, GuildChannel, GuildId, Http, HttpBuilder, HttpError, Interaction,
    Message, MessageId, MessageUpdateEvent, Ready, ShardStageUpdateEvent, UserId,
};
use serenity::gateway::ConnectionStage;
use tokio::sync::{mpsc, watch};

/// Discord's own API; any other `api_url` is a proxy or a test fake.
pub const DEFAULT_API_URL: &str = "https://discord.com";
/// Discord refuses longer message texts.
const MAX_TEXT_CHARS: usize = 2000;
/// At most this many files go with one message.
const MAX_FILES_PER_MESSAGE: usize = 10;
/// Thread names are at most 100 characters.
const MAX_THREAD_NAME_CHARS: usize = 100;
/// How long to wait after a failed start or a failed hand-over before trying again.
const RETRY_PAUSE: Duration = Duration::from_secs(2);
/// Messages per history request: Discord's maximum.
const HISTORY_PAGE: u8 = 100;
/// Tries at fetching one DM channel's history before it waits for the next READY.
const HISTORY_TRIES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("discord.api_url {0:?} is not an http(s) URL")]
    ApiUrl(String),
    #[error("discord.token is empty")]
    NoToken,
}

/// What the channel needs from `[discord]`.
#[derive(Debug, Clone)]
pub struct DiscordSettings {
    pub token: String,
    /// Discord's base URL (the real one, an API proxy, or a test fake).
    pub api_url: String,
    /// The guild text channel agents work in; 0 when there is none.
    pub agents_channel_id: u64,
    /// Files larger than this are not downloaded (the message says so).
    pub max_file_bytes: u64,
}

/// The last message id handled in each DM channel, kept where the application keeps state.
pub trait DmCursors: Send + Sync {
    type Error: std::fmt::Display + Send;
    /// Every DM channel seen, with its last handled message id.
    fn load(&self) -> impl Future<Output = Result<Vec<(u64, u64)>, Self::Error>> + Send;
    fn save(
        &self,
        channel: u64,
        message: u64,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Takes events; returns only once they are stored for good.
pub trait Sink: Send + Sync {
    type Error: std::fmt::Display + Send;
    fn accept(
        &self,
        events: Vec<ChatEvent>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// The connection's state, for the admin page and /metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthState {
    pub connected: bool,
    /// When the gateway last said the session is ready or resumed.
    pub last_success_at: Option<DateTime<Utc>>,
    /// When the last event was stored.
    pub last_event_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Failures since the last success; 0 when healthy.
    pub consecutive_failures: u32,
    /// Sessions resumed after a dropped connection.
    pub resumes: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Health(Arc<Mutex<HealthState>>);

impl Health {
    pub fn get(&self) -> HealthState {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn update(&self, change: impl FnOnce(&mut HealthState)) {
        change(
            &mut self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
    }

    fn succeeded(&self) {
        self.update(|state| {
            state.connected = true;
            state.last_success_at = Some(Utc::now());
            state.consecutive_failures = 0;
        });
    }

    fn failed(&self, error: &str) {
        self.update(|state| {
            state.consecutive_failures = state.consecutive_failures.saturating_add(1);
            state.last_error = Some(error.to_owned());
            state.last_error_at = Some(Utc::now());
        });
    }

    /// The gateway connection stopped.
    pub fn disconnected(&self) {
        self.update(|state| state.connected = false);
    }
}

/// What the bot learned while running.
#[derive(Debug, Default)]
struct Known {
    own_id: u64,
    /// Channels seen: their parent channel (threads) or `None`, and whether they are guild
    /// channels.
    channels: HashMap<u64, ChannelFacts>,
    /// Slash commands not yet answered: interaction id → token.
    interactions: HashMap<u64, String>,
    commands_registered: bool,
    /// DM channel → the last message id handled there (the stored cursors, kept up to date).
    dm_cursors: HashMap<u64, u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChannelFacts {
    guild: bool,
    parent: Option<u64>,
}

/// The bot: follows the gateway and delivers messages.
#[derive(Clone)]
pub struct Discord {
    http: Arc<Http>,
    settings: DiscordSettings,
    health: Health,
    known: Arc<Mutex<Known>>,
    downloads: reqwest::Client,
}

impl std::fmt::Debug for Discord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discord")
            .field("api_url", &self.settings.api_url)
            .field("agents_channel_id", &self.settings.agents_channel_id)
            .finish()
    }
}

/// A slash command agents get in their guild.
#[derive(Debug, Clone, Copy)]
pub struct AgentCommand {
    pub name: &'static str,
    pub about: &'static str,
    /// The text argument it takes, if any.
    pub argument: Option<CommandArgument>,
}

#[derive(Debug, Clone, Copy)]
pub struct CommandArgument {
    pub name: &'static str,
    pub about: &'static str,
}

const fn command(name: &'static str, about: &'static str) -> AgentCommand {
    AgentCommand {
        name,
        about,
        argument: None,
    }
}

const fn command_with(
    name: &'static str,
    about: &'static str,
    argument: &'static str,
    argument_about: &'static str,
) -> AgentCommand {
    AgentCommand {
        name,
        about,
        argument: Some(CommandArgument {
            name: argument,
            about: argument_about,
        }),
    }
}

/// The agents' slash commands, the same as their text commands.
pub const AGENT_COMMANDS: [AgentCommand; 8] = [
    command("claim", "Take the ticket yourself"),
    command_with(
        "assign",
        "Give the ticket to an agent",
        "agent",
        "Email, name or Discord id of the agent",
    ),
    command_with(
        "note",
        "Add an internal note, never sent to the customer",
        "text",
        "The note",
    ),
    command_with(
        "status",
        "Set the status",
        "status",
        "open, pending or resolved",
    ),
    command_with(
        "priority",
        "Set the priority",
        "priority",
        "low, normal, high or urgent",
    ),
    command("close", "Close the ticket"),
    command("reopen", "Reopen a resolved ticket"),
    command("help", "What the bot understands"),
];

/// The external id of an interaction, as an agent's message.
fn interaction_external_id(id: u64) -> String {
    format!("interaction:{id}")
}

/// The message id at the start of an external id ("123", "123:edit:…").
fn message_id_of(external_id: &str) -> Option<u64> {
    external_id.split(':').next()?.parse().ok()
}

/// What the gateway handler passes on, in arrival order.
enum Incoming {
    /// A new session; the receiver completes once the session's collector is in place.
    Ready(Box<Ready>, tokio::sync::oneshot::Receiver<()>),
    Resumed,
    Stage(bool),
    Message(Box<Message>),
    Update(Box<MessageUpdateEvent>),
    Deleted {
        channel: ChannelId,
        message: MessageId,
        guild: Option<GuildId>,
    },
    Command(Box<CommandInteraction>),
    Thread(Box<GuildChannel>),
}

/// Passes gateway events on in the order they arrived. serenity runs each event handler call
/// as a task of its own, and tokio may run a burst of them in any order (a resumed session
/// replays many at once), so only READY and stage changes come through the handler: from READY
/// on, a collector, which the shard runner calls in sequence, passes on the rest.
struct Handler {
    events: mpsc::UnboundedSender<Incoming>,
    /// The newest collector's number; older ones (of a replaced session) retire.
    collector: Arc<AtomicU64>,
}

impl Handler {
    fn pass(&self, event: Incoming) {
        // Closed only when the bot stops.
        let _ = self.events.send(event);
    }
}

/// What the helpdesk wants of a gateway event.
fn incoming_of(event: &Event) -> Option<Incoming> {
    match event {
        Event::MessageCreate(created) => Some(Incoming::Message(Box::new(created.message.clone()))),
        Event::MessageUpdate(update) => Some(Incoming::Update(Box::new(update.clone()))),
        Event::MessageDelete(deleted) => Some(Incoming::Deleted {
            channel: deleted.channel_id,
            message: deleted.message_id,
            guild: deleted.guild_id,
        }),
        Event::InteractionCreate(created) => match &created.interaction {
            Interaction::Command(command) => Some(Incoming::Command(Box::new(command.clone()))),
            _ => None,
        },
        Event::ThreadCreate(created) => Some(Incoming::Thread(Box::new(created.thread.clone()))),
        Event::Resumed(_) => Some(Incoming::Resumed),
        _ => None,
    }
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, context: Context, ready: Ready) {
        // READY goes first, so live events queue behind it (and behind what it catches up on);
        // the catch-up waits for the collector, so a DM sent before the collector was in place
        // is in the history it fetches.
        let (collecting, collector_in_place) = tokio::sync::oneshot::channel();
        self.pass(Incoming::Ready(Box::new(ready), collector_in_place));
        let number = self.collector.fetch_add(1, Ordering::SeqCst) + 1;
        let newest = self.collector.clone();
        let events = self.events.clone();
        context
            .shard
            .add_collector(CollectorCallback(Box::new(move |event| {
                if newest.load(Ordering::SeqCst) != number {
                    return false;
                }
                if let Some(incoming) = incoming_of(event) {
                    let _ = events.send(incoming);
                }
                true
            })));
        let _ = collecting.send(());
    }

    async fn shard_stage_update(&self, _: Context, event: ShardStageUpdateEvent) {
        self.pass(Incoming::Stage(event.new == ConnectionStage::Connected));
    }
}

impl Discord {
    pub fn new(settings: DiscordSettings) -> Result<Discord, DiscordError> {
        if settings.token.trim().is_empty() {
            return Err(DiscordError::NoToken);
        }
        let api_url = settings.api_url.trim_end_matches('/');
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            return Err(DiscordError::ApiUrl(settings.api_url.clone()));
        }
        Ok(Discord {
            http: Arc::new(http_client(&settings)),
            settings,
            health: Health::default(),
            known: Arc::default(),
            downloads: reqwest::Client::new(),
        })
    }

    pub fn health(&self) -> Health {
        self.health.clone()
    }

    fn known(&self) -> MutexGuard<'_, Known> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Follows the gateway until `shutdown` completes, handing each event to `sink`; DMs sent
    /// while the bot was away are caught up through `cursors`.
    pub async fn run<S: Sink, C: DmCursors>(
        self,
        sink: S,
        cursors: C,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        let (stop, stopped) = watch::channel(false);
        let (events, mut incoming) = mpsc::unbounded_channel();
        let gateway = self.gateway(events, async move {
            shutdown.await;
            stop.send(true).ok();
        });
        tokio::pin!(gateway);
        loop {
            tokio::select! {
                () = &mut gateway => break,
                event = incoming.recv() => match event {
                    Some(event) => self.take(event, &sink, &cursors, &stopped).await,
                    None => break,
                },
            }
        }
        self.health.disconnected();
    }

    /// Runs serenity's client (which reconnects and resumes by itself) until `shutdown`.
    async fn gateway(
        &self,
        events: mpsc::UnboundedSender<Incoming>,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        tokio::pin!(shutdown);
        let intents = GatewayIntents::GUILDS
            | GatewayIntents::GUILD_MESSAGES
            | GatewayIntents::DIRECT_MESSAGES
            | GatewayIntents::MESSAGE_CONTENT;
        loop {
            // The token and the gateway's URL first: serenity itself would fall back to
            // Discord's public gateway, whatever the API URL, and retry a refused token forever.
            let checked = tokio::select! {
                () = &mut shutdown => return,
                checked = self.check() => checked,
            };
            if let Err(error) = checked {
                tracing::warn!(%error, "Discord not reachable; trying again");
                self.health.failed(&error.to_string());
                self.health.disconnected();
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(RETRY_PAUSE) => {}
                }
                continue;
            }
            let built = ClientBuilder::new_with_http(http_client(&self.settings), intents)
                .event_handler(Handler {
                    events: events.clone(),
                    collector: Arc::default(),
                })
                .into_future();
            let built = tokio::select! {
                () = &mut shutdown => return,
                client = built => client,
            };
            match built {
                Ok(mut client) => {
                    let shards = client.shard_manager.clone();
                    tokio::select! {
                        () = &mut shutdown => {
                            shards.shutdown_all().await;
                            return;
                        }
                        ended = client.start() => {
                            let error = match ended {
                                Ok(()) => "the gateway connection ended".to_owned(),
                                Err(error) => error.to_string(),
                            };
                            tracing::warn!(%error, "Discord gateway stopped; starting again");
                            self.health.failed(&error);
                            self.health.disconnected();
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "Discord client not built; trying again");
                    self.health.failed(&error.to_string());
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(RETRY_PAUSE) => {}
            }
        }
    }

    /// Checks the token (the bot's own user) and that the API names a gateway.
    async fn check(&self) -> Result<(), serenity::Error> {
        let me = self.http.get_current_user().await?;
        self.known().own_id = me.id.get();
        self.http.get_gateway().await?;
        Ok(())
    }

    /// Handles one gateway event; what it means for the helpdesk goes to `sink` until stored.
    async fn take<S: Sink, C: DmCursors>(
        &self,
        event: Incoming,
        sink: &S,
        cursors: &C,
        stopped: &watch::Receiver<bool>,
    ) {
        let chat_event = match event {
            Incoming::Ready(ready, collector_in_place) => {
                self.known().own_id = ready.user.id.get();
                self.http.set_application_id(ready.application.id);
                self.health.succeeded();
                tracing::info!(bot = ready.user.name, "Discord session ready");
                self.register_commands().await;
                // Dropped unsent only if the handler stopped; catching up is right either way.
                let _ = collector_in_place.await;
                self.catch_up(sink, cursors, stopped).await;
                None
            }
            Incoming::Resumed => {
                self.health.succeeded();
                self.health.update(|state| state.resumes += 1);
                tracing::info!("Discord session resumed");
                self.catch_up(sink, cursors, stopped).await;
                None
            }
            Incoming::Stage(connected) => {
                if connected {
                    self.health.succeeded();
                } else {
                    self.health.disconnected();
                }
                None
            }
            Incoming::Thread(thread) => {
                self.known().channels.insert(
                    thread.id.get(),
                    ChannelFacts {
                        guild: true,
                        parent: thread.parent_id.map(ChannelId::get),
                    },
                );
                None
            }
            Incoming::Message(message) => {
                self.take_message(&message, sink, cursors, stopped).await;
                None
            }
            Incoming::Update(update) => self.event_of_update(&update).await,
            Incoming::Deleted {
                channel,
                message,
                guild,
            } => {
                // Deletions in the agents' place are their own business.
                (guild.is_none()).then(|| ChatEvent::Removed {
                    channel: ChannelKind::Discord,
                    conversation: channel.get().to_string(),
                    external_id: message.get().to_string(),
                    raw: serde_json::to_vec(&serde_json::json!({
                        "t": "MESSAGE_DELETE",
                        "d": {"id": message.get().to_string(), "channel_id": channel.get().to_string()},
                    }))
                    .unwrap_or_default(),
                })
            }
            Incoming::Command(command) => self.event_of_command(&command).await,
        };
        if let Some(chat_event) = chat_event {
            self.hand_over(chat_event, sink, stopped).await;
        }
    }

    /// Hands `chat_event` to `sink` until it is stored (or the bot stops); true once stored.
    async fn hand_over<S: Sink>(
        &self,
        chat_event: ChatEvent,
        sink: &S,
        stopped: &watch::Receiver<bool>,
    ) -> bool {
        loop {
            match sink.accept(vec![chat_event.clone()]).await {
                Ok(()) => {
                    self.health
                        .update(|state| state.last_event_at = Some(Utc::now()));
                    return true;
                }
                Err(error) => {
                    tracing::warn!(%error, "Discord event not stored; trying again");
                    self.health.failed(&error.to_string());
                    let mut stopped = stopped.clone();
                    tokio::select! {
                        _ = stopped.wait_for(|stop| *stop) => return false,
                        () = tokio::time::sleep(RETRY_PAUSE) => {}
                    }
                }
            }
        }
    }

    /// Handles a message, live or fetched. In a DM, one at or below the channel's cursor was
    /// handled before and is skipped; once handled, the cursor moves to it.
    async fn take_message<S: Sink, C: DmCursors>(
        &self,
        message: &Message,
        sink: &S,
        cursors: &C,
        stopped: &watch::Receiver<bool>,
    ) {
        let is_dm = message.guild_id.is_none();
        let channel = message.channel_id.get();
        let id = message.id.get();
        if is_dm
            && self
                .known()
                .dm_cursors
                .get(&channel)
                .is_some_and(|last| id <= *last)
        {
            return;
        }
        if let Some(chat_event) = self.event_of_message(message).await
            && !self.hand_over(chat_event, sink, stopped).await
        {
            return;
        }
        if !is_dm {
            return;
        }
        self.known().dm_cursors.insert(channel, id);
        if let Err(error) = cursors.save(channel, id).await {
            // The message is stored; a later catch-up finds it known to intake.
            tracing::warn!(%error, channel, "Discord DM cursor not saved");
        }
    }

    /// Fetches and handles, oldest first, what was written in each known DM channel after its
    /// cursor: DMs sent while the bot was away, which no gateway session replays.
    async fn catch_up<S: Sink, C: DmCursors>(
        &self,
        sink: &S,
        cursors: &C,
        stopped: &watch::Receiver<bool>,
    ) {
        let stored = match cursors.load().await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(%error, "Discord DM cursors unreadable; no catch-up");
                self.health.failed(&error.to_string());
                return;
            }
        };
        let channels: Vec<(u64, u64)> = {
            let mut known = self.known();
            for (channel, last) in stored {
                let kept = known.dm_cursors.entry(channel).or_insert(last);
                *kept = (*kept).max(last);
            }
            let mut channels: Vec<(u64, u64)> = known
                .dm_cursors
                .iter()
                .map(|(channel, last)| (*channel, *last))
                .collect();
            channels.sort_unstable();
            channels
        };
        let mut caught_up = 0usize;
        for (channel, mut after) in channels {
            loop {
                if *stopped.borrow() {
                    return;
                }
                let Some(mut page) = self.history_after(channel, after).await else {
                    break;
                };
                let full = page.len() >= usize::from(HISTORY_PAGE);
                page.sort_by_key(|message| message.id);
                for message in &page {
                    self.take_message(message, sink, cursors, stopped).await;
                    after = after.max(message.id.get());
                }
                caught_up += page.len();
                if !full {
                    break;
                }
            }
        }
        if caught_up > 0 {
            tracing::info!(messages = caught_up, "Discord DMs caught up");
        }
    }

    /// One page of a channel's messages after `after` (Discord returns them newest first);
    /// `None` when the channel cannot be read (it is gone, or Discord keeps failing).
    async fn history_after(&self, channel: u64, after: u64) -> Option<Vec<Message>> {
        for attempt in 1..=HISTORY_TRIES {
            let request = GetMessages::new()
                .after(MessageId::new(after.max(1)))
                .limit(HISTORY_PAGE);
            match ChannelId::new(channel).messages(&self.http, request).await {
                Ok(page) => return Some(page),
                Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(response)))
                    if response.status_code.is_client_error() =>
                {
                    tracing::warn!(channel, error = %response.error.message, "Discord DM history refused");
                    return None;
                }
                Err(error) => {
                    tracing::warn!(channel, attempt, %error, "Discord DM history not fetched");
                    self.health.failed(&error.to_string());
                    if attempt < HISTORY_TRIES {
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
        }
        None
    }

    /// Registers the agents' slash commands for the guild of the agents' channel (so they are
    /// not offered to customers in DMs), once per run.
    async fn register_commands(&self) {
        if self.settings.agents_channel_id == 0 || self.known().commands_registered {
            return;
        }
        let result = async {
            let channel = self
                .http
                .get_channel(ChannelId::new(self.settings.agents_channel_id))
                .await?;
            let Channel::Guild(channel) = channel else {
                return Ok::<_, serenity::Error>(None);
            };
            let commands = AGENT_COMMANDS
                .iter()
                .map(|agent_command| {
                    let mut command =
                        CreateCommand::new(agent_command.name).description(agent_command.about);
                    // Required options come first, as Discord demands.
                    if let Some(argument) = agent_command.argument {
                        command = command.add_option(
                            CreateCommandOption::new(
                                CommandOptionType::String,
                                argument.name,
                                argument.about,
                            )
                            .required(true),
                        );
                    }
                    if agent_command.name != "help" {
                        command = command.add_option(
                            CreateCommandOption::new(
                                CommandOptionType::Integer,
                                "ticket",
                                "The ticket's number; in a ticket's thread it is that ticket",
                            )
                            .required(false),
                        );
                    }
                    command
                })
                .collect::<Vec<_>>();
            channel.guild_id.set_commands(&self.http, commands).await?;
            Ok(Some(channel.guild_id))
        }
        .await;
        match result {
            Ok(Some(guild)) => {
                self.known().commands_registered = true;
                tracing::info!(guild = guild.get(), "Discord slash commands registered");
            }
            Ok(None) => {
                tracing::warn!(
                    channel = self.settings.agents_channel_id,
                    "discord.agents_channel_id is not a guild channel; no slash commands"
                );
            }
            Err(error) => {
                tracing::warn!(%error, "Discord slash commands not registered");
                self.health.failed(&error.to_string());
            }
        }
    }

    /// What a channel is: a guild channel (and its parent, for threads) or a DM.
    async fn channel_facts(&self, channel: u64) -> Option<ChannelFacts> {
        if let Some(facts) = self.known().channels.get(&channel) {
            return Some(*facts);
        }
        let facts = match self.http.get_channel(ChannelId::new(channel)).await {
            Ok(Channel::Guild(found)) => ChannelFacts {
                guild: true,
                parent: found.parent_id.map(ChannelId::get),
            },
            Ok(_) => ChannelFacts {
                guild: false,
                parent: None,
            },
            Err(error) => {
                tracing::warn!(channel, %error, "Discord channel unknown");
                return None;
            }
        };
        self.known().channels.insert(channel, facts);
        Some(facts)
    }

    /// The agents' channel itself, or a thread in it.
    async fn in_agents_place(&self, channel: u64) -> bool {
        let agents = self.settings.agents_channel_id;
        if agents == 0 {
            return false;
        }
        if channel == agents {
            return true;
        }
        self.channel_facts(channel)
            .await
            .is_some_and(|facts| facts.parent == Some(agents))
    }

    fn is_own(&self, user: UserId) -> bool {
        user.get() == self.known().own_id
    }

    async fn event_of_message(&self, message: &Message) -> Option<ChatEvent> {
        if message.author.bot || self.is_own(message.author.id) {
            return None;
        }
        let sender = identity(&message.author);
        let channel = message.channel_id.get();
        let (attachments, left_out) = self.attachments_of(&message.attachments).await;
        let text = with_notes(&message.content, left_out);
        let reply_to = message
            .message_reference
            .as_ref()
            .and_then(|reference| reference.message_id)
            .map(|id| id.get().to_string());
        if message.guild_id.is_none() {
            return Some(ChatEvent::Customer(InboundMessage {
                channel: ChannelKind::Discord,
                external_id: message.id.get().to_string(),
                sender,
                subject: None,
                text,
                html: None,
                attachments,
                thread: ThreadHints {
                    conversation: Some(channel.to_string()),
                    reply_to,
                    ..ThreadHints::default()
                },
                automation: AutomationMarks::default(),
                sent_at: DateTime::from_timestamp(message.timestamp.unix_timestamp(), 0),
                raw: serde_json::to_vec(message).unwrap_or_default(),
            }));
        }
        if !self.in_agents_place(channel).await {
            return None;
        }
        let reply_to_own_text = message
            .referenced_message
            .as_ref()
            .filter(|parent| self.is_own(parent.author.id))
            .map(|parent| parent.content.clone());
        Some(ChatEvent::Agent(AgentMessage {
            channel: ChannelKind::Discord,
            sender,
            place: channel.to_string(),
            external_id: message.id.get().to_string(),
            reply_to,
            reply_to_own_text,
            text,
            attachments,
        }))
    }

    /// A customer's edit is kept as a message of its own; edits in guilds are ignored.
    async fn event_of_update(&self, update: &MessageUpdateEvent) -> Option<ChatEvent> {
        if update.guild_id.is_some() {
            return None;
        }
        // Discord also sends updates for embeds it resolved; only a new text is an edit.
        let (Some(author), Some(content), Some(edited)) =
            (&update.author, &update.content, update.edited_timestamp)
        else {
            return None;
        };
        if author.bot || self.is_own(author.id) {
            return None;
        }
        let text = format!("(edited message)\n{content}");
        Some(ChatEvent::Customer(InboundMessage {
            channel: ChannelKind::Discord,
            external_id: format!("{}:edit:{}", update.id.get(), edited.unix_timestamp()),
            sender: identity(author),
            subject: None,
            text,
            html: None,
            // The files of an edited message were kept with the original.
            attachments: Vec::new(),
            thread: ThreadHints {
                conversation: Some(update.channel_id.get().to_string()),
                ..ThreadHints::default()
            },
            automation: AutomationMarks::default(),
            sent_at: DateTime::from_timestamp(edited.unix_timestamp(), 0),
            raw: serde_json::to_vec(update).unwrap_or_default(),
        }))
    }

    /// A slash command from the agents' place becomes an agent's message ("/claim #12");
    /// anywhere else it is refused on the spot.
    async fn event_of_command(&self, command: &CommandInteraction) -> Option<ChatEvent> {
        let channel = command.channel_id.get();
        if command.guild_id.is_none() || !self.in_agents_place(channel).await {
            let refusal = CreateInteractionResponse::Message(
                CreateInteractionResponseMessage::new()
                    .content(
                        "These commands are for the support team. Just write your message \
                         here and it goes to your ticket.",
                    )
                    .ephemeral(true),
            );
            if let Err(error) = self
                .http
                .create_interaction_response(command.id, &command.token, &refusal, Vec::new())
                .await
            {
                tracing::warn!(%error, "Discord interaction not answered");
            }
            return None;
        }
        self.known()
            .interactions
            .insert(command.id.get(), command.token.clone());
        let mut text = format!("/{}", command.data.name);
        let mut argument = None;
        for option in &command.data.options {
            match (&option.value, option.name.as_str()) {
                (CommandDataOptionValue::Integer(number), "ticket") => {
                    text.push_str(&format!(" #{number}"));
                }
                (CommandDataOptionValue::String(value), _) => argument = Some(value.clone()),
                (CommandDataOptionValue::Integer(value), _) => argument = Some(value.to_string()),
                _ => {}
            }
        }
        if let Some(argument) = argument {
            text.push(' ');
            text.push_str(&argument);
        }
        Some(ChatEvent::Agent(AgentMessage {
            channel: ChannelKind::Discord,
            sender: identity(&command.user),
            place: channel.to_string(),
            external_id: interaction_external_id(command.id.get()),
            reply_to: None,
            reply_to_own_text: None,
            text,
            attachments: Vec::new(),
        }))
    }

    /// The files of a message, and a note for each file that was too large or unreachable.
    async fn attachments_of(
        &self,
        files: &[serenity::all::Attachment],
    ) -> (Vec<Attachment>, Vec<String>) {
        let mut attachments = Vec::new();
        let mut left_out = Vec::new();
        for file in files {
            if u64::from(file.size) > self.settings.max_file_bytes {
                left_out.push(format!(
                    "[file {} not kept: {} bytes is more than the limit of {} bytes]",
                    file.filename, file.size, self.settings.max_file_bytes
                ));
                continue;
            }
            match self.download(&file.url).await {
                Ok(content) => attachments.push(Attachment {
                    filename: file.filename.clone(),
                    content_type: file
                        .content_type
                        .clone()
                        .unwrap_or_else(|| "application/octet-stream".to_owned()),
                    content,
                    inline: false,
                    content_id: None,
                }),
                Err(error) => {
                    tracing::warn!(file = file.filename, %error, "Discord file not downloaded");
                    self.health.failed(&error);
                    left_out.push(format!(
                        "[file {} could not be fetched: {error}]",
                        file.filename
                    ));
                }
            }
        }
        (attachments, left_out)
    }

    /// A file's content, at most `max_file_bytes` of it: a download that grows past the limit
    /// (the attachment's size was told wrong) is given up, not held in memory whole.
    async fn download(&self, url: &str) -> Result<Vec<u8>, String> {
        let limit = self.settings.max_file_bytes;
        let too_large = |size: u64| format!("{size} bytes is more than the limit of {limit} bytes");
        let mut response = self
            .downloads
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| error.to_string())?;
        if let Some(length) = response.content_length()
            && length > limit
        {
            return Err(too_large(length));
        }
        let mut content = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
            let size = (content.len() + chunk.len()) as u64;
            if size > limit {
                return Err(format!("more than the limit of {limit} bytes"));
            }
            content.extend_from_slice(&chunk);
        }
        Ok(content)
    }

    /// Where a message goes: the conversation if there is one, else the recipient as a
    /// channel or thread, else the recipient as a user (their DM, opened if need be).
    async fn target(&self, message: &OutboundMessage) -> Result<ChannelId, serenity::Error> {
        if let Some(conversation) = message
            .thread
            .conversation
            .as_deref()
            .and_then(|id| id.parse::<u64>().ok())
            .filter(|id| *id != 0)
        {
            return Ok(ChannelId::new(conversation));
        }
        let address: u64 = message
            .recipient
            .address
            .parse()
            .ok()
            .filter(|id| *id != 0)
            .ok_or_else(|| serenity::Error::Other("the recipient is not a Discord id"))?;
        if address == self.settings.agents_channel_id
            || self.channel_facts_cached(address).is_some()
        {
            return Ok(ChannelId::new(address));
        }
        if self.channel_facts(address).await.is_some() {
            return Ok(ChannelId::new(address));
        }
        let dm = UserId::new(address).create_dm_channel(&self.http).await?;
        self.known().channels.insert(
            dm.id.get(),
            ChannelFacts {
                guild: false,
                parent: None,
            },
        );
        Ok(dm.id)
    }

    fn channel_facts_cached(&self, channel: u64) -> Option<ChannelFacts> {
        self.known().channels.get(&channel).copied()
    }

    async fn send(&self, message: &OutboundMessage) -> Result<Delivered, serenity::Error> {
        // An answer to a slash command goes back as its interaction response while it may.
        if let Some(interaction) = message
            .thread
            .reply_to
            .as_deref()
            .and_then(|id| id.strip_prefix("interaction:"))
            .and_then(|id| id.parse::<u64>().ok())
        {
            let token = self.known().interactions.remove(&interaction);
            if let Some(token) = token {
                let answer = CreateInteractionResponse::Message(
                    CreateInteractionResponseMessage::new()
                        .content(truncated(&message.text, MAX_TEXT_CHARS))
                        .allowed_mentions(CreateAllowedMentions::new()),
                );
                match self
                    .http
                    .create_interaction_response(interaction.into(), &token, &answer, Vec::new())
                    .await
                {
                    Ok(()) => {
                        return Ok(Delivered {
                            external_id: format!("{}:answer", interaction_external_id(interaction)),
                        });
                    }
                    Err(error) => {
                        // Expired (answers are due within seconds): say it in the channel.
                        tracing::warn!(%error, "Discord interaction answer refused; posting it");
                    }
                }
            }
        }
        let channel = self.target(message).await?;
        let reply_to = message
            .thread
            .reply_to
            .as_deref()
            .filter(|id| !id.starts_with("interaction:"))
            .and_then(message_id_of);
        // The text in pieces; the files go with the last piece, ten to a message.
        let mut plan: Vec<(String, &[Attachment])> = chunks(&message.text, MAX_TEXT_CHARS)
            .into_iter()
            .map(|text| (text, &[][..]))
            .collect();
        for (index, batch) in message
            .attachments
            .chunks(MAX_FILES_PER_MESSAGE)
            .enumerate()
        {
            match plan.last_mut() {
                Some(last) if index == 0 => last.1 = batch,
                _ => plan.push((String::new(), batch)),
            }
        }
        let mut first: Option<Message> = None;
        for (text, files) in plan {
            let mut builder = CreateMessage::new()
                .allowed_mentions(CreateAllowedMentions::new())
                .add_files(files.iter().map(|file| {
                    CreateAttachment::bytes(file.content.clone(), file.filename.clone())
                }));
            if !text.is_empty() {
                builder = builder.content(text);
            }
            if first.is_none()
                && let Some(parent) = reply_to
            {
                builder = builder.reference_message(
                    serenity::all::MessageReference::from((channel, MessageId::new(parent)))
                        .fail_if_not_exists(false),
                );
            }
            let sent = channel.send_message(&self.http, builder).await?;
            first.get_or_insert(sent);
        }
        let first = first.ok_or(serenity::Error::Other("nothing to send"))?;
        Ok(Delivered {
            external_id: first.id.get().to_string(),
        })
    }

    /// Posts about a ticket in the agents' channel and starts the ticket's thread from the
    /// post; returns the post and, if the thread was started, its id (the post's id).
    pub async fn post_with_thread(
        &self,
        message: &OutboundMessage,
        thread_name: &str,
    ) -> Result<(Delivered, Option<String>), DeliveryError> {
        let posted = self.deliver(message).await?;
        let Ok(post) = posted.external_id.parse::<u64>() else {
            return Ok((posted, None));
        };
        let channel = ChannelId::new(self.settings.agents_channel_id);
        let name = truncated(thread_name, MAX_THREAD_NAME_CHARS);
        match channel
            .create_thread_from_message(
                &self.http,
                MessageId::new(post),
                CreateThread::new(name).auto_archive_duration(AutoArchiveDuration::OneWeek),
            )
            .await
        {
            Ok(thread) => {
                self.known().channels.insert(
                    thread.id.get(),
                    ChannelFacts {
                        guild: true,
                        parent: Some(channel.get()),
                    },
                );
                Ok((posted, Some(thread.id.get().to_string())))
            }
            Err(error) => {
                // The post stands; agents can still reply to it.
                tracing::warn!(%error, post, "Discord thread not started");
                Ok((posted, None))
            }
        }
    }

    /// The agents' channel, if one is set.
    pub fn agents_channel_id(&self) -> u64 {
        self.settings.agents_channel_id
    }
}

fn http_client(settings: &DiscordSettings) -> Http {
    let api_url = settings.api_url.trim_end_matches('/');
    let builder = HttpBuilder::new(&settings.token);
    if api_url == DEFAULT_API_URL {
        builder.build()
    } else {
        // serenity's rate limiter sends to discord.com whatever the proxy: a proxy or fake
        // limits on its own.
        builder.proxy(api_url).ratelimiter_disabled(true).build()
    }
}

fn identity(user: &serenity::all::User) -> Identity {
    Identity {
        channel: ChannelKind::Discord,
        address: user.id.get().to_string(),
        display_name: Some(
            user.global_name
                .clone()
                .unwrap_or_else(|| user.name.clone()),
        )
        .filter(|name| !name.trim().is_empty()),
    }
}

fn with_notes(text: &str, notes: Vec<String>) -> String {
    let mut text = text.to_owned();
    for note in notes {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&note);
    }
    text
}

fn truncated(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit - 1).collect();
    cut.push('…');
    cut
}

/// A text in pieces Discord accepts, cut at line ends where possible; one empty piece for an
/// empty text.
fn chunks(text: &str, limit: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while rest.len() > limit {
        let cut = rest[..limit]
            .iter()
            .rposition(|c| *c == '\n')
            .filter(|at| *at > limit / 2)
            .map(|at| at + 1)
            .unwrap_or(limit);
        pieces.push(rest[..cut].iter().collect());
        rest = rest[cut..].to_vec();
    }
    pieces.push(rest.into_iter().collect());
    if pieces.len() > 1 {
        pieces.retain(|piece: &String| !piece.is_empty());
    }
    pieces
}

/// How a failed request counts for the delivery queue: rate limits and server trouble are
/// worth another try, other refusals are not.
fn delivery_error(error: serenity::Error) -> DeliveryError {
    use serenity::http::HttpError;
    match &error {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => {
            let status = response.status_code.as_u16();
            let text = format!(
                "Discord answered {status}: {} (code {})",
                response.error.message, response.error.code
            );
            match status {
                429 | 500..=599 => DeliveryError::Temporary(text),
                401 => DeliveryError::Temporary(format!(
                    "{text}; the Discord token was refused: fix discord.token"
                )),
                _ => DeliveryError::Permanent(text),
            }
        }
        serenity::Error::Http(HttpError::Request(_)) | serenity::Error::Io(_) => {
            DeliveryError::Temporary(error.to_string())
        }
        serenity::Error::Model(_) | serenity::Error::Other(_) => {
            DeliveryError::Permanent(error.to_string())
        }
        _ => DeliveryError::Temporary(error.to_string()),
    }
}

impl Deliver for Discord {
    fn channel(&self) -> ChannelKind {
        ChannelKind::Discord
    }

    async fn deliver(&self, message: &OutboundMessage) -> Result<Delivered, DeliveryError> {
        if message.text.trim().is_empty() && message.attachments.is_empty() {
            return Err(DeliveryError::Permanent(
                "an empty message cannot be sent on Discord".to_owned(),
            ));
        }
        self.send(message).await.map_err(delivery_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_into_pieces_discord_takes() {
        let long = format!("{}\n{}", "a".repeat(1500), "b".repeat(1500));
        let pieces = chunks(&long, MAX_TEXT_CHARS);
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|p| p.chars().count() <= MAX_TEXT_CHARS));
        assert_eq!(pieces.concat(), long, "nothing is lost");
        let unbroken = "x".repeat(4500);
        let pieces = chunks(&unbroken, MAX_TEXT_CHARS);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), unbroken);
        assert_eq!(chunks("short", MAX_TEXT_CHARS), ["short"]);
        assert_eq!(chunks("", MAX_TEXT_CHARS), [""]);
    }

    #[test]
    fn message_ids_come_from_external_ids() {
        assert_eq!(message_id_of("1234"), Some(1234));
        assert_eq!(message_id_of("1234:edit:99"), Some(1234));
        assert_eq!(message_id_of("interaction:5"), None);
        assert_eq!(interaction_external_id(5), "interaction:5");
    }

    #[test]
    fn commands_fit_discords_rules() {
        for command in AGENT_COMMANDS {
            let name = command.name;
            assert!(name.len() <= 32 && name.chars().all(|c| c.is_ascii_lowercase()));
            assert!(!command.about.is_empty() && command.about.chars().count() <= 100);
            if let Some(argument) = command.argument {
                assert!(argument.name.chars().all(|c| c.is_ascii_lowercase()));
                assert!(argument.about.chars().count() <= 100);
            }
        }
    }
}
