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
//! DM channel is kept (in the [`Cursor`], as `dm:<channel>`), and on READY and RESUMED the
//! messages after it are handled, oldest first, before any live event; a message at or below a
//! channel's cursor is never handled again.
//!
//! By concern: `gateway` (serenity's client and the order of events), `inbound` (an event as a
//! neutral message), `catch_up` (DMs sent while away), `commands` (slash commands and the
//! choices offered while an argument is typed), `choices` (buttons pressed under the bot's
//! messages), `delivery` (sending through the REST API).

mod catch_up;
mod choices;
mod commands;
mod delivery;
mod gateway;
mod inbound;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use commands::{AGENT_COMMANDS, AgentCommand, CommandArgument};
pub use helpdesk_channel::{AgentMessage, ChatEvent, Health, HealthState};
use helpdesk_channel::{ChannelKind, Choose, Cursor, Identity, Sink, Suggest};
use serenity::all::{Channel, ChannelId, Http, HttpBuilder, UserId};
use tokio::sync::{mpsc, watch};

/// Discord's own API; any other `api_url` is a proxy or a test fake.
pub const DEFAULT_API_URL: &str = "https://discord.com";

/// How long to wait after a failed start or a failed hand-over before trying again.
const RETRY_PAUSE: Duration = Duration::from_secs(2);

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

/// The external id of an interaction, as an agent's message.
pub(crate) fn interaction_external_id(id: u64) -> String {
    format!("interaction:{id}")
}

/// The message id at the start of an external id ("123", "123:edit:…").
pub(crate) fn message_id_of(external_id: &str) -> Option<u64> {
    external_id.split(':').next()?.parse().ok()
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

    pub(crate) fn known(&self) -> MutexGuard<'_, Known> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Follows the gateway until `shutdown` completes, handing each event to `sink`; DMs sent
    /// while the bot was away are caught up through `cursors`. The sink also offers the choices
    /// of slash command arguments while agents type them, and says what a button pressed under
    /// one of the bot's messages means.
    pub async fn run<S: Sink<ChatEvent> + Suggest + Choose, C: Cursor>(
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

    /// The agents' channel, if one is set.
    pub fn agents_channel_id(&self) -> u64 {
        self.settings.agents_channel_id
    }

    /// What a channel is: a guild channel (and its parent, for threads) or a DM.
    pub(crate) async fn channel_facts(&self, channel: u64) -> Option<ChannelFacts> {
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

    pub(crate) fn channel_facts_cached(&self, channel: u64) -> Option<ChannelFacts> {
        self.known().channels.get(&channel).copied()
    }

    /// The agents' channel itself, or a thread in it.
    pub(crate) async fn in_agents_place(&self, channel: u64) -> bool {
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

    pub(crate) fn is_own(&self, user: UserId) -> bool {
        user.get() == self.known().own_id
    }
}

pub(crate) fn http_client(settings: &DiscordSettings) -> Http {
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

/// A Discord user: the id, the name they chose to be shown by (else their username), and the
/// username, which is what others type to find them.
pub(crate) fn identity(user: &serenity::all::User) -> Identity {
    let handle = Some(user.name.clone()).filter(|name| !name.trim().is_empty());
    Identity {
        channel: ChannelKind::Discord,
        address: user.id.get().to_string(),
        display_name: user
            .global_name
            .clone()
            .filter(|name| !name.trim().is_empty())
            .or_else(|| handle.clone()),
        handle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_come_from_external_ids() {
        assert_eq!(message_id_of("1234"), Some(1234));
        assert_eq!(message_id_of("1234:edit:99"), Some(1234));
        assert_eq!(message_id_of("interaction:5"), None);
        assert_eq!(interaction_external_id(5), "interaction:5");
    }
}
