//! The Telegram channel of helpdesk (teloxide): updates, by long polling or by webhook, turned
//! into neutral messages, and delivery through the Bot API.
//!
//! Customers write to the bot in private chats; agents work in one group. The poller hands
//! each batch of updates to a [`Sink`](helpdesk_channel::Sink) and moves the stored update offset ([`Cursor`]) only
//! after the sink returned, so a restart loses nothing and, as intake drops known messages,
//! repeats nothing. In webhook mode Telegram posts each update to us instead
//! ([`Telegram::receive`]): the same cursor tells a redelivered update from a new one, and an
//! update that could not be stored is refused so that Telegram sends it again. The crate knows
//! nothing of tickets: agents' messages are passed on as [`ChatEvent::Agent`] for the
//! application to interpret.
//!
//! By concern: `polling` (getUpdates), `webhook` (updates posted to us), `inbound` (an update
//! as a neutral event), `choices` (buttons pressed under our messages), `commands` (the agents'
//! command menu), `delivery` (sending).

mod choices;
mod commands;
mod delivery;
mod inbound;
mod polling;
mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use helpdesk_channel::Cursor;
pub use helpdesk_channel::{AgentMessage, ChatEvent, Health, HealthState};
use teloxide::payloads::SetMyCommandsSetters;
use teloxide::prelude::Requester;
use teloxide::types::{BotCommand, BotCommandScope, ChatId, Recipient};
use teloxide::{Bot, RequestError};

pub use commands::{AGENT_COMMANDS, command_name};
pub use webhook::{Received, SECRET_HEADER, WebhookSettings, valid_secret};

/// How long to wait after a failed poll or a failed hand-over before trying again.
const RETRY_PAUSE: Duration = Duration::from_secs(2);
/// The cursor position that holds the next update id to ask for.
const CURSOR_NAME: &str = "updates";

#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    #[error("telegram.api_url {0:?} is not a URL")]
    ApiUrl(String),
    #[error("telegram.webhook_url {0:?} is not an http(s) URL")]
    WebhookUrl(String),
    #[error(
        "telegram.webhook_secret must be 1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)"
    )]
    WebhookSecret,
    #[error("Telegram API: {0}")]
    Request(#[from] RequestError),
}

/// What the channel needs from `[telegram]`.
#[derive(Debug, Clone)]
pub struct TelegramSettings {
    pub token: String,
    /// The Bot API's base URL (the real one, or a local Bot API server or test fake).
    pub api_url: String,
    /// The agents' group; 0 when there is none.
    pub agents_chat_id: i64,
    /// Long-polling wait per getUpdates call.
    pub poll_seconds: u32,
    /// Files larger than this are not downloaded (the message says so).
    pub max_file_bytes: u64,
    /// Set for webhook mode; `None` polls.
    pub webhook: Option<WebhookSettings>,
}

/// The bot: polls for updates and delivers messages.
#[derive(Clone)]
pub struct Telegram {
    bot: Bot,
    settings: TelegramSettings,
    health: Health,
    /// The bot's own user id, known after [`Telegram::prepare`].
    own_id: Arc<std::sync::atomic::AtomicU64>,
    /// [`Telegram::prepare`] succeeded: webhook updates are taken from then on.
    prepared: Arc<AtomicBool>,
    /// Webhook mode: one update at a time between the cursor's check and its move, so an
    /// update Telegram sends again while the first delivery is still at work waits and is
    /// then known.
    receiving: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Telegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telegram")
            .field("api_url", &self.settings.api_url)
            .field("agents_chat_id", &self.settings.agents_chat_id)
            .finish()
    }
}

/// An external id of a Telegram message: message ids are unique only within their chat.
pub fn external_id(chat: i64, message: i32) -> String {
    format!("{chat}:{message}")
}

/// The chat and message of an external id made by [`external_id`].
pub fn parse_external_id(id: &str) -> Option<(i64, i32)> {
    let (chat, message) = id.split_once(':')?;
    Some((chat.parse().ok()?, message.parse().ok()?))
}

/// The next update id to ask for, as `cursor` keeps it (0 before the first update).
async fn stored_offset<C: Cursor>(cursor: &C) -> Result<i64, String> {
    match cursor.position(CURSOR_NAME).await {
        Ok(None) => Ok(0),
        Ok(Some(value)) => value
            .parse()
            .map_err(|_| format!("Telegram offset {value:?} is not a number")),
        Err(error) => Err(error.to_string()),
    }
}

impl Telegram {
    pub fn new(settings: TelegramSettings) -> Result<Telegram, TelegramError> {
        let url = url::Url::parse(&settings.api_url)
            .map_err(|_| TelegramError::ApiUrl(settings.api_url.clone()))?;
        let bot = Bot::new(settings.token.clone()).set_api_url(url);
        if let Some(webhook) = &settings.webhook {
            let parsed = url::Url::parse(&webhook.url)
                .map_err(|_| TelegramError::WebhookUrl(webhook.url.clone()))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(TelegramError::WebhookUrl(webhook.url.clone()));
            }
            if !valid_secret(&webhook.secret) {
                return Err(TelegramError::WebhookSecret);
            }
        }
        Ok(Telegram {
            bot,
            settings,
            health: Health::default(),
            own_id: Arc::default(),
            prepared: Arc::default(),
            receiving: Arc::default(),
        })
    }

    /// The path of the webhook's public URL ("/telegram/webhook"), where updates arrive.
    pub fn webhook_path(&self) -> Option<String> {
        let webhook = self.settings.webhook.as_ref()?;
        let url = url::Url::parse(&webhook.url).ok()?;
        Some(url.path().to_owned())
    }

    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// Checks the token (getMe), sets the webhook (webhook mode) or leaves webhook mode
    /// (polling), and registers the command menus: /start and /help for private chats, the
    /// agents' commands in the agents' group.
    pub async fn prepare(&self) -> Result<(), TelegramError> {
        let me = self.bot.get_me().await?;
        self.own_id
            .store(me.user.id.0, std::sync::atomic::Ordering::Relaxed);
        // Updates can be taken once the bot knows itself: Telegram posts to a webhook as soon
        // as it is set, before the command menus below are registered.
        self.prepared.store(true, Ordering::SeqCst);
        tracing::info!(
            bot = me.user.username.as_deref().unwrap_or(""),
            "Telegram bot ready"
        );
        match &self.settings.webhook {
            Some(_) => self.set_webhook().await?,
            None => {
                let webhook = self.bot.get_webhook_info().await?;
                if webhook.url.is_some() {
                    // getUpdates refuses to work while a webhook is set.
                    self.bot.delete_webhook().await?;
                }
            }
        }
        self.bot
            .set_my_commands(vec![
                BotCommand::new("start", "Start a conversation with support"),
                BotCommand::new("help", "How this works"),
            ])
            .scope(BotCommandScope::AllPrivateChats)
            .await?;
        if self.settings.agents_chat_id != 0 {
            let commands = AGENT_COMMANDS
                .iter()
                .map(|(name, about)| BotCommand::new(*name, *about))
                .collect::<Vec<_>>();
            self.bot
                .set_my_commands(commands)
                .scope(BotCommandScope::Chat {
                    chat_id: Recipient::Id(ChatId(self.settings.agents_chat_id)),
                })
                .await?;
        }
        Ok(())
    }

    /// Gets ready (retrying until `shutdown`); false if `shutdown` came first.
    async fn prepare_until(&self, shutdown: &mut (impl Future<Output = ()> + Unpin)) -> bool {
        loop {
            let prepared = tokio::select! {
                () = &mut *shutdown => return false,
                prepared = self.prepare() => prepared,
            };
            match prepared {
                Ok(()) => {
                    self.health.succeeded();
                    return true;
                }
                Err(error) => {
                    tracing::warn!(%error, "Telegram not ready; trying again");
                    self.health.failed(&error.to_string());
                    tokio::select! {
                        () = &mut *shutdown => return false,
                        () = tokio::time::sleep(RETRY_PAUSE) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ids_round_trip() {
        assert_eq!(
            parse_external_id(&external_id(-100123, 42)),
            Some((-100123, 42))
        );
        assert_eq!(parse_external_id("12"), None);
    }
}
