//! The Telegram channel of helpdesk (teloxide): updates, by long polling or by webhook, turned
//! into neutral messages, and delivery through the Bot API.
//!
//! Customers write to the bot in private chats; agents work in one group. The poller hands
//! each batch of updates to a [`Sink`] and moves the stored update offset ([`Cursor`]) only
//! after the sink returned, so a restart loses nothing and, as intake drops known messages,
//! repeats nothing. In webhook mode Telegram posts each update to us instead
//! ([`Telegram::receive`]): the same cursor tells a redelivered update from a new one, and an
//! update that could not be stored is refused so that Telegram sends it again. The crate knows
//! nothing of tickets: agents' messages are passed on as [`ChatEvent::Agent`] for the
//! application to interpret.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
pub use helpdesk_channel::{AgentMessage, ChatEvent};
use helpdesk_channel::{
    Attachment, AutomationMarks, ChannelKind, Deliver, Delivered, DeliveryError, Identity,
    InboundMessage, OutboundMessage, ThreadHints,
};
use teloxide::net::Download;
use teloxide::payloads::{
    GetUpdatesSetters, SendDocumentSetters, SendMessageSetters, SetMyCommandsSetters,
    SetWebhookSetters,
};
use teloxide::prelude::Requester;
use teloxide::types::{
    BotCommand, BotCommandScope, ChatId, FileId, InputFile, Message, MessageId, Recipient,
    ReplyParameters, Update, UpdateKind,
};
use teloxide::{ApiError, Bot, RequestError};

/// Telegram refuses longer texts in one message.
const MAX_TEXT_CHARS: usize = 4096;
/// Captions of documents are shorter.
const MAX_CAPTION_CHARS: usize = 1024;
/// How long to wait after a failed poll or a failed hand-over before trying again.
const RETRY_PAUSE: Duration = Duration::from_secs(2);
/// How often webhook mode asks Telegram how its deliveries to us go (getWebhookInfo).
const WEBHOOK_CHECK: Duration = Duration::from_secs(30);
/// The header in which Telegram sends the webhook's secret token.
pub const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

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

/// Where Telegram posts updates in webhook mode.
#[derive(Clone)]
pub struct WebhookSettings {
    /// The public HTTPS address Telegram posts to.
    pub url: String,
    /// Sent back by Telegram in [`SECRET_HEADER`] with every update.
    pub secret: String,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Whether a secret token is one Telegram accepts: 1-256 characters of `A-Za-z0-9_-`.
pub fn valid_secret(secret: &str) -> bool {
    (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// Compares in time that does not depend on where the texts differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |differs, (a, b)| differs | (a ^ b))
            == 0
}

/// What became of an update posted to the webhook; the HTTP side answers accordingly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Stored (or nothing to store): answer 2xx.
    Handled,
    /// Handled before, under the cursor: answer 2xx so Telegram stops sending it.
    AlreadyHandled,
    /// The secret header is missing or wrong: not from Telegram.
    Unauthorized,
    /// Not an update.
    Malformed(String),
    /// Not stored (yet): answer 5xx so Telegram sends it again later.
    NotStored(String),
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

/// Where the poller stands: the next update id to ask for.
pub trait Cursor: Send + Sync {
    type Error: std::fmt::Display + Send;
    fn load(&self) -> impl Future<Output = Result<Option<i64>, Self::Error>> + Send;
    fn save(&self, offset: i64) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Takes the events of one batch; returns only once they are stored for good.
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
    /// The last getUpdates that Telegram answered.
    pub last_success_at: Option<DateTime<Utc>>,
    /// When the last batch of updates was stored.
    pub last_event_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Failures since the last success; 0 when healthy.
    pub consecutive_failures: u32,
    /// Webhook mode: updates Telegram holds for us, as getWebhookInfo last said.
    pub pending_updates: u32,
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
            state.connected = false;
            state.consecutive_failures = state.consecutive_failures.saturating_add(1);
            state.last_error = Some(error.to_owned());
            state.last_error_at = Some(Utc::now());
        });
    }

    /// The poller stopped.
    pub fn disconnected(&self) {
        self.update(|state| state.connected = false);
    }
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

/// The commands agents get in the group's command menu.
pub const AGENT_COMMANDS: [(&str, &str); 8] = [
    ("claim", "Take the ticket yourself"),
    ("assign", "Give the ticket to an agent: /assign @name"),
    ("note", "Add an internal note, never sent to the customer"),
    ("status", "Set the status: open, pending, resolved"),
    ("priority", "Set the priority: low, normal, high, urgent"),
    ("close", "Close the ticket"),
    ("reopen", "Reopen a resolved ticket"),
    ("help", "What the bot understands"),
];

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
        self.prepared.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Asks Telegram to post updates to our webhook. Updates it holds (from polling, or from
    /// while we were away) follow there. One connection at a time: Telegram then posts updates
    /// in order and holds back the later ones while one is refused, so the cursor (the highest
    /// handled update + 1) never passes an update still to come.
    async fn set_webhook(&self) -> Result<(), TelegramError> {
        let Some(webhook) = &self.settings.webhook else {
            return Ok(());
        };
        let url = url::Url::parse(&webhook.url)
            .map_err(|_| TelegramError::WebhookUrl(webhook.url.clone()))?;
        self.bot
            .set_webhook(url)
            .secret_token(webhook.secret.clone())
            .max_connections(1)
            .await?;
        tracing::info!(url = webhook.url, "Telegram webhook set");
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

    /// Webhook mode: sets the webhook, then watches Telegram's view of its deliveries
    /// (getWebhookInfo) for the health report until `shutdown` completes. Updates arrive
    /// through [`Telegram::receive`]. The webhook stays set when we stop, so Telegram keeps
    /// what comes in meanwhile and posts it once we are back.
    pub async fn run_webhook(self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        if !self.prepare_until(&mut shutdown).await {
            return;
        }
        let mut last_error_seen = None;
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(WEBHOOK_CHECK) => {}
            }
            let info = match self.bot.get_webhook_info().await {
                Ok(info) => info,
                Err(error) => {
                    tracing::warn!(%error, "Telegram getWebhookInfo failed");
                    self.health.failed(&error.to_string());
                    continue;
                }
            };
            self.health
                .update(|state| state.pending_updates = info.pending_update_count);
            let ours = self
                .settings
                .webhook
                .as_ref()
                .map(|webhook| webhook.url.as_str());
            if info.url.as_ref().map(url::Url::as_str) != ours {
                // Someone removed or moved it (a polling instance, a manual deleteWebhook).
                tracing::warn!(url = ?info.url, "Telegram webhook is not ours; setting it again");
                self.health.failed("the webhook was removed or changed");
                if let Err(error) = self.set_webhook().await {
                    self.health.failed(&error.to_string());
                }
                continue;
            }
            if let (Some(at), Some(message)) = (info.last_error_date, &info.last_error_message)
                && last_error_seen != Some(at)
            {
                last_error_seen = Some(at);
                // Telegram could not reach us, or we refused an update: it tries again.
                tracing::warn!(message, "Telegram reports a failed webhook delivery");
                self.health
                    .failed(&format!("Telegram could not deliver an update: {message}"));
                continue;
            }
            self.health.succeeded();
        }
    }

    /// Takes one update Telegram posted to the webhook: checks the secret header, skips an
    /// update the cursor says was handled, hands it to `sink` and moves the cursor on. An update
    /// that could not be stored is [`Received::NotStored`]: refuse it, Telegram sends it again.
    pub async fn receive<C: Cursor, S: Sink>(
        &self,
        cursor: &C,
        sink: &S,
        secret_header: Option<&[u8]>,
        body: &[u8],
    ) -> Received {
        let Some(webhook) = &self.settings.webhook else {
            return Received::Unauthorized;
        };
        if !secret_header.is_some_and(|given| same_secret(given, webhook.secret.as_bytes())) {
            return Received::Unauthorized;
        }
        let update: Update = match serde_json::from_slice(body) {
            Ok(update) => update,
            Err(error) => return Received::Malformed(error.to_string()),
        };
        if !self.prepared.load(Ordering::SeqCst) {
            // The bot's own id is not known yet; Telegram sends it again shortly.
            return Received::NotStored("the bot is not ready yet".to_owned());
        }
        let _one_at_a_time = self.receiving.lock().await;
        let offset = match cursor.load().await {
            Ok(offset) => offset.unwrap_or(0),
            Err(error) => return Received::NotStored(format!("cursor unreadable: {error}")),
        };
        let id = i64::from(update.id.0);
        if id < offset {
            return Received::AlreadyHandled;
        }
        let events: Vec<ChatEvent> = self.event_of(&update).await.into_iter().collect();
        if let Err(error) = sink.accept(events).await {
            tracing::warn!(%error, "Telegram webhook update not stored; Telegram will send it again");
            self.health.failed(&error.to_string());
            return Received::NotStored(error.to_string());
        }
        if let Err(error) = cursor.save(id + 1).await {
            // Stored all the same: refusing it now would have it handled twice.
            tracing::warn!(%error, "Telegram offset not saved");
        }
        self.health.succeeded();
        self.health
            .update(|state| state.last_event_at = Some(Utc::now()));
        Received::Handled
    }

    /// Polls until `shutdown` completes. Each batch goes to `sink`; only then does the offset
    /// move on, in the cursor first and with Telegram at the next poll.
    pub async fn run<C: Cursor, S: Sink>(
        self,
        cursor: C,
        sink: S,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        tokio::pin!(shutdown);
        if !self.prepare_until(&mut shutdown).await {
            return;
        }
        let mut offset = loop {
            match cursor.load().await {
                Ok(offset) => break offset.unwrap_or(0),
                Err(error) => {
                    tracing::warn!(%error, "Telegram cursor unreadable; trying again");
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(RETRY_PAUSE) => {}
                    }
                }
            }
        };
        loop {
            let polled = tokio::select! {
                () = &mut shutdown => return,
                polled = self.poll(offset) => polled,
            };
            let updates = match polled {
                Ok(updates) => updates,
                Err(error) => {
                    let pause = match &error {
                        RequestError::RetryAfter(seconds) => seconds.duration(),
                        _ => RETRY_PAUSE,
                    };
                    tracing::warn!(%error, "Telegram getUpdates failed");
                    self.health.failed(&error.to_string());
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                    continue;
                }
            };
            self.health.succeeded();
            let Some(next) = updates
                .iter()
                .map(|update| i64::from(update.id.0) + 1)
                .max()
            else {
                continue;
            };
            let mut events = Vec::with_capacity(updates.len());
            for update in &updates {
                if let Some(event) = self.event_of(update).await {
                    events.push(event);
                }
            }
            // The batch is handed over until it is stored: nothing is confirmed before that.
            loop {
                match sink.accept(events.clone()).await {
                    Ok(()) => break,
                    Err(error) => {
                        tracing::warn!(%error, "Telegram updates not stored; trying again");
                        self.health.failed(&error.to_string());
                        tokio::select! {
                            () = &mut shutdown => return,
                            () = tokio::time::sleep(RETRY_PAUSE) => {}
                        }
                    }
                }
            }
            if let Err(error) = cursor.save(next).await {
                // Telegram will send the batch again; intake knows it by then.
                tracing::warn!(%error, "Telegram offset not saved");
            }
            offset = next;
            self.health
                .update(|state| state.last_event_at = Some(Utc::now()));
        }
    }

    async fn poll(&self, offset: i64) -> Result<Vec<Update>, RequestError> {
        let mut request = self.bot.get_updates().timeout(self.settings.poll_seconds);
        if offset > 0 {
            request = request.offset(i32::try_from(offset).unwrap_or(i32::MAX));
        }
        request.await
    }

    /// What an update means to the helpdesk; `None` for what it ignores (channel posts,
    /// other groups, the bot's own messages).
    async fn event_of(&self, update: &Update) -> Option<ChatEvent> {
        let (message, edited) = match &update.kind {
            UpdateKind::Message(message) => (message, false),
            UpdateKind::EditedMessage(message) => (message, true),
            _ => return None,
        };
        let from = message.from.as_ref()?;
        if from.is_bot {
            return None;
        }
        let raw = serde_json::to_vec(update).unwrap_or_default();
        let sender = Identity {
            channel: ChannelKind::Telegram,
            address: from.id.0.to_string(),
            display_name: Some(from.full_name()).filter(|name| !name.trim().is_empty()),
        };
        let chat = message.chat.id.0;
        let own_id = external_id(chat, message.id.0);
        let mut text = message
            .text()
            .or_else(|| message.caption())
            .unwrap_or_default()
            .to_owned();
        let (attachments, left_out) = self.attachments_of(message).await;
        for note in left_out {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&note);
        }
        if message.chat.is_private() {
            if !edited && command_name(&text) == Some("start") {
                return Some(ChatEvent::Start {
                    customer: sender,
                    conversation: chat.to_string(),
                });
            }
            let (message_id, text) = if edited {
                let when = message
                    .edit_date()
                    .map(|date| date.timestamp())
                    .unwrap_or_else(|| Utc::now().timestamp());
                (
                    format!("{own_id}:edit:{when}"),
                    format!("(edited message)\n{text}"),
                )
            } else {
                (own_id.clone(), text)
            };
            return Some(ChatEvent::Customer(InboundMessage {
                channel: ChannelKind::Telegram,
                external_id: message_id,
                sender,
                subject: None,
                text,
                html: None,
                attachments,
                thread: ThreadHints {
                    conversation: Some(chat.to_string()),
                    reply_to: message
                        .reply_to_message()
                        .map(|parent| external_id(chat, parent.id.0))
                        .or_else(|| edited.then(|| own_id.clone())),
                    ..ThreadHints::default()
                },
                automation: AutomationMarks::default(),
                sent_at: Some(message.date),
                raw,
            }));
        }
        if chat == self.settings.agents_chat_id && !edited {
            return Some(ChatEvent::Agent(AgentMessage {
                channel: ChannelKind::Telegram,
                sender,
                place: chat.to_string(),
                external_id: own_id,
                reply_to: message
                    .reply_to_message()
                    .map(|parent| external_id(chat, parent.id.0)),
                reply_to_own_text: message
                    .reply_to_message()
                    .filter(|parent| {
                        parent.from.as_ref().is_some_and(|author| {
                            author.id.0 == self.own_id.load(std::sync::atomic::Ordering::Relaxed)
                        })
                    })
                    .and_then(|parent| parent.text().or_else(|| parent.caption()))
                    .map(str::to_owned),
                text,
                attachments,
            }));
        }
        None
    }

    /// The files of a message (a document, or the largest size of a photo), and a note for
    /// each file that was too large to fetch.
    async fn attachments_of(&self, message: &Message) -> (Vec<Attachment>, Vec<String>) {
        let mut wanted = Vec::new();
        if let Some(document) = message.document() {
            wanted.push((
                document.file.id.clone(),
                document.file.size,
                document
                    .file_name
                    .clone()
                    .unwrap_or_else(|| "document".to_owned()),
                document
                    .mime_type
                    .as_ref()
                    .map(|mime| mime.to_string())
                    .unwrap_or_else(|| "application/octet-stream".to_owned()),
            ));
        }
        if let Some(largest) = message
            .photo()
            .and_then(|sizes| sizes.iter().max_by_key(|size| size.width * size.height))
        {
            wanted.push((
                largest.file.id.clone(),
                largest.file.size,
                format!("photo-{}.jpg", message.id.0),
                "image/jpeg".to_owned(),
            ));
        }
        let mut attachments = Vec::new();
        let mut left_out = Vec::new();
        for (file_id, size, filename, content_type) in wanted {
            // teloxide reads a missing file_size as u32::MAX: unknown, so the download is
            // what is limited.
            if size != u32::MAX && u64::from(size) > self.settings.max_file_bytes {
                left_out.push(format!(
                    "[file {filename} not kept: {size} bytes is more than the limit of {} bytes]",
                    self.settings.max_file_bytes
                ));
                continue;
            }
            let content = match self.download(file_id).await {
                Ok(Some(content)) => content,
                Ok(None) => {
                    left_out.push(format!(
                        "[file {filename} not kept: more than the limit of {} bytes]",
                        self.settings.max_file_bytes
                    ));
                    continue;
                }
                Err(error) => {
                    tracing::warn!(filename, %error, "Telegram file not downloaded");
                    self.health.failed(&error);
                    left_out.push(format!("[file {filename} could not be fetched: {error}]"));
                    continue;
                }
            };
            attachments.push(Attachment {
                filename,
                content_type,
                content,
                inline: false,
                content_id: None,
            });
        }
        (attachments, left_out)
    }

    /// A file's content, or `None` if it is larger than `max_file_bytes`: a download that
    /// grows past the limit (its size was not told, or told wrong) is given up, not held in
    /// memory whole.
    async fn download(&self, file_id: FileId) -> Result<Option<Vec<u8>>, String> {
        let limit = self.settings.max_file_bytes;
        let file = self
            .bot
            .get_file(file_id)
            .await
            .map_err(|error| error.to_string())?;
        if file.size != u32::MAX && u64::from(file.size) > limit {
            return Ok(None);
        }
        let mut content = Capped {
            content: Vec::new(),
            limit,
            overflowed: false,
        };
        let done = self.bot.download_file(&file.path, &mut content).await;
        match done {
            _ if content.overflowed => Ok(None),
            Ok(()) => Ok(Some(content.content)),
            Err(error) => Err(error.to_string()),
        }
    }

    async fn send(&self, message: &OutboundMessage) -> Result<Delivered, RequestError> {
        let chat: i64 = message.recipient.address.parse().map_err(|_| {
            RequestError::Api(ApiError::Unknown(format!(
                "{:?} is not a Telegram chat id",
                message.recipient.address
            )))
        })?;
        let reply_to = message
            .thread
            .reply_to
            .as_deref()
            .and_then(parse_external_id)
            .filter(|(reply_chat, _)| *reply_chat == chat)
            .map(|(_, id)| ReplyParameters::new(MessageId(id)).allow_sending_without_reply());
        let mut last = None;
        let text = truncated(&message.text, MAX_TEXT_CHARS);
        if !text.trim().is_empty() || message.attachments.is_empty() {
            let mut request = self.bot.send_message(ChatId(chat), text);
            if let Some(reply) = reply_to.clone() {
                request = request.reply_parameters(reply);
            }
            last = Some(request.await?);
        }
        for attachment in &message.attachments {
            let file = InputFile::memory(attachment.content.clone())
                .file_name(attachment.filename.clone());
            let mut request = self
                .bot
                .send_document(ChatId(chat), file)
                .caption(truncated(&attachment.filename, MAX_CAPTION_CHARS));
            if let Some(reply) = reply_to.clone() {
                request = request.reply_parameters(reply);
            }
            last = Some(request.await?);
        }
        let sent = last.ok_or_else(|| RequestError::Api(ApiError::MessageTextIsEmpty))?;
        Ok(Delivered {
            external_id: external_id(chat, sent.id.0),
        })
    }
}

/// A download's content, refused once it would grow past `limit` bytes.
struct Capped {
    content: Vec<u8>,
    limit: u64,
    overflowed: bool,
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if (self.content.len() + buf.len()) as u64 > self.limit {
            self.overflowed = true;
            return std::task::Poll::Ready(Err(std::io::Error::other(format!(
                "more than the limit of {} bytes",
                self.limit
            ))));
        }
        self.content.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

fn truncated(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit - 1).collect();
    cut.push('…');
    cut
}

/// The command a text starts with, without its slash and `@botname`: "/claim@bot 12" → "claim".
pub fn command_name(text: &str) -> Option<&str> {
    let word = text.split_whitespace().next()?.strip_prefix('/')?;
    let name = word.split('@').next().unwrap_or(word);
    (!name.is_empty()).then_some(name)
}

/// How a failed request counts for the delivery queue.
fn delivery_error(error: RequestError) -> DeliveryError {
    match error {
        RequestError::RetryAfter(seconds) => DeliveryError::Temporary(format!(
            "Telegram rate limit: retry after {} s",
            seconds.seconds()
        )),
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => {
            DeliveryError::Temporary(error.to_string())
        }
        // Server trouble and errors teloxide does not know are worth another try.
        RequestError::Api(ApiError::Unknown(text)) => DeliveryError::Temporary(text),
        RequestError::Api(ApiError::InvalidToken) => DeliveryError::Temporary(
            "the Telegram token was refused; fix telegram.token".to_owned(),
        ),
        RequestError::Api(_) | RequestError::MigrateToChatId(_) => {
            DeliveryError::Permanent(error.to_string())
        }
    }
}

impl Deliver for Telegram {
    fn channel(&self) -> ChannelKind {
        ChannelKind::Telegram
    }

    async fn deliver(&self, message: &OutboundMessage) -> Result<Delivered, DeliveryError> {
        self.send(message).await.map_err(delivery_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_lose_slash_and_bot_name() {
        assert_eq!(command_name("/claim@helpdesk_bot 12"), Some("claim"));
        assert_eq!(command_name("  /start"), Some("start"));
        assert_eq!(command_name("hello /start"), None);
        assert_eq!(command_name("/"), None);
    }

    #[test]
    fn external_ids_round_trip() {
        assert_eq!(
            parse_external_id(&external_id(-100123, 42)),
            Some((-100123, 42))
        );
        assert_eq!(parse_external_id("12"), None);
    }

    #[test]
    fn secrets_follow_telegrams_rule_and_compare_exactly() {
        assert!(valid_secret("abc_DEF-123"));
        assert!(!valid_secret(""));
        assert!(!valid_secret("with space"));
        assert!(!valid_secret(&"x".repeat(257)));
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cret", b"s3creT"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
    }

    #[test]
    fn long_texts_are_cut_to_the_limit() {
        let long = "x".repeat(5000);
        assert_eq!(
            truncated(&long, MAX_TEXT_CHARS).chars().count(),
            MAX_TEXT_CHARS
        );
        assert_eq!(truncated("short", MAX_TEXT_CHARS), "short");
    }
}
