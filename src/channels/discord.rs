//! The Discord channel wired to the application: gateway events handed to the [`ChatDesk`],
//! each ticket's posts kept in one thread of the agents' channel, and the connection's health
//! in `channel_health`.

use std::future::Future;

use helpdesk_channel::{
    ChannelKind, ChatEvent, Deliver, Delivered, DeliveryError, OutboundMessage,
};
use helpdesk_discord::{
    DEFAULT_API_URL, Discord, DiscordError, DiscordSettings, DmCursors, HealthState, Sink,
};

use super::ChatDesk;
use super::telegram::DeskSink;
use crate::config::Settings;
use crate::intake::IntakeError;
use crate::store::health::ChannelHealth;
use crate::store::{self, Store, StoreError};

/// The channel's settings from `[discord]`, with the attachment limit of `[intake]`.
pub fn discord_settings(settings: &Settings) -> DiscordSettings {
    let api_url = settings.discord.api_url.trim();
    DiscordSettings {
        token: settings.discord.token.clone(),
        api_url: if api_url.is_empty() {
            DEFAULT_API_URL.to_owned()
        } else {
            api_url.to_owned()
        },
        agents_channel_id: settings.discord.agents_channel_id,
        max_file_bytes: settings.intake.max_attachment_bytes,
    }
}

pub fn client(settings: &Settings) -> Result<Discord, DiscordError> {
    Discord::new(discord_settings(settings))
}

impl Sink for DeskSink {
    type Error = IntakeError;

    async fn accept(&self, events: Vec<ChatEvent>) -> Result<(), IntakeError> {
        helpdesk_telegram::Sink::accept(self, events).await
    }
}

/// The last message handled in each DM channel, kept as the cursors `discord` / `dm:<channel>`.
#[derive(Debug, Clone)]
pub struct StoredDmCursors {
    store: Store,
}

impl StoredDmCursors {
    pub fn new(store: Store) -> StoredDmCursors {
        StoredDmCursors { store }
    }
}

const DM_CURSOR_PREFIX: &str = "dm:";

impl DmCursors for StoredDmCursors {
    type Error = StoreError;

    async fn load(&self) -> Result<Vec<(u64, u64)>, StoreError> {
        let rows = store::cursors::list(&self.store, "discord").await?;
        Ok(rows
            .into_iter()
            .filter_map(|(name, value)| {
                let channel = name.strip_prefix(DM_CURSOR_PREFIX)?.parse().ok()?;
                Some((channel, value.parse().ok()?))
            })
            .collect())
    }

    async fn save(&self, channel: u64, message: u64) -> Result<(), StoreError> {
        store::cursors::set(
            &self.store,
            "discord",
            &format!("{DM_CURSOR_PREFIX}{channel}"),
            &message.to_string(),
        )
        .await
    }
}

/// Delivers on Discord and keeps each ticket's posts in the agents' channel together: the
/// first post about a ticket starts a thread, later ones go into it.
#[derive(Clone)]
pub struct DiscordDelivery {
    discord: Discord,
    store: Store,
}

impl DiscordDelivery {
    pub fn new(discord: Discord, store: Store) -> DiscordDelivery {
        DiscordDelivery { discord, store }
    }

    /// A post about a ticket in the agents' channel (not an answer to someone).
    fn ticket_post(&self, message: &OutboundMessage) -> Option<i64> {
        let agents = self.discord.agents_channel_id();
        (agents != 0
            && message.recipient.address == agents.to_string()
            && message.thread.conversation.is_none()
            && message.thread.reply_to.is_none())
        .then_some(message.thread.ticket_number)
        .flatten()
    }
}

impl Deliver for DiscordDelivery {
    fn channel(&self) -> ChannelKind {
        ChannelKind::Discord
    }

    async fn deliver(&self, message: &OutboundMessage) -> Result<Delivered, DeliveryError> {
        let Some(number) = self.ticket_post(message) else {
            return self.discord.deliver(message).await;
        };
        let thread = super::store::thread_of_ticket(&self.store, ChannelKind::Discord, number)
            .await
            .map_err(|error| DeliveryError::Temporary(error.to_string()))?;
        if let Some(thread) = thread {
            let mut in_thread = message.clone();
            in_thread.recipient.address = thread.clone();
            match self.discord.deliver(&in_thread).await {
                // The thread is gone (deleted): start a new one below.
                Err(DeliveryError::Permanent(error)) => {
                    tracing::warn!(%error, thread, "ticket thread unusable; starting a new one");
                }
                done => return done,
            }
        }
        let name = if message.subject.trim().is_empty() {
            format!("#{number}")
        } else {
            message.subject.clone()
        };
        let (posted, thread) = self.discord.post_with_thread(message, &name).await?;
        if let Some(thread) = thread
            && let Err(error) =
                super::store::remember_thread(&self.store, ChannelKind::Discord, number, &thread)
                    .await
        {
            // The post is out; without the record the next news starts another thread.
            tracing::warn!(%error, number, "ticket thread not remembered");
        }
        Ok(posted)
    }
}

/// The gateway's row in `channel_health`.
const HEALTH_NAME: &str = "gateway";

/// Follows the Discord gateway until `shutdown` completes, with its health reported to the
/// database.
pub fn start(
    discord: Discord,
    desk: ChatDesk,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let health = discord.health();
    tokio::spawn(async move {
        let reporter = {
            let health = health.clone();
            tokio::spawn(super::report_health(store.clone(), move || {
                health_report(&health.get())
            }))
        };
        discord
            .run(
                DeskSink::new(desk),
                StoredDmCursors::new(store.clone()),
                shutdown,
            )
            .await;
        reporter.abort();
        health.disconnected();
        super::write_health(&store, &health_report(&health.get())).await;
    })
}

/// The connection's row in `channel_health`.
fn health_report(state: &HealthState) -> ChannelHealth {
    let mut detail = "gateway".to_owned();
    if let Some(at) = state.last_event_at {
        detail.push_str(&format!(
            "; last event {}",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    if state.resumes > 0 {
        detail.push_str(&format!("; {} resumed after a disconnect", state.resumes));
    }
    ChannelHealth {
        channel: "discord".to_owned(),
        name: HEALTH_NAME.to_owned(),
        connected: state.connected,
        detail: Some(detail),
        last_success_at: state.last_success_at,
        last_error: state.last_error.clone(),
        last_error_at: state.last_error_at,
        consecutive_failures: i64::from(state.consecutive_failures),
        backlog: 0,
        updated_at: chrono::Utc::now(),
    }
}
