//! The Discord channel wired to the application: gateway events handed to the [`ChatDesk`],
//! each ticket's posts kept in one thread of the agents' channel, and the connection's health
//! in `channel_health`.

use std::future::Future;

use helpdesk_channel::{
    ChannelKind, Deliver, Delivered, DeliveryError, HealthState, OutboundMessage,
};
use helpdesk_discord::{DEFAULT_API_URL, Discord, DiscordError, DiscordSettings};

use super::{ChatDesk, StoredCursor};
use crate::config::Settings;
use crate::domain::TicketNumber;
use crate::store::Store;
use crate::store::health::ChannelHealth;

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
    fn ticket_post(&self, message: &OutboundMessage) -> Option<TicketNumber> {
        let agents = self.discord.agents_channel_id();
        (agents != 0
            && message.recipient.address == agents.to_string()
            && message.thread.conversation.is_none()
            && message.thread.reply_to.is_none())
        .then_some(message.thread.ticket_number)
        .flatten()
        .map(TicketNumber)
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
        let thread =
            crate::store::chat::thread_of_ticket(&self.store, ChannelKind::Discord, number)
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
            && let Err(error) = crate::store::chat::remember_thread(
                &self.store,
                ChannelKind::Discord,
                number,
                &thread,
            )
            .await
        {
            // The post is out; without the record the next news starts another thread.
            tracing::warn!(%error, %number, "ticket thread not remembered");
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
    let cursor = StoredCursor::new(store.clone(), ChannelKind::Discord);
    tokio::spawn(super::run_reported(
        store,
        health,
        health_report,
        discord.run(desk, cursor, shutdown),
    ))
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
    super::health_row(ChannelKind::Discord, HEALTH_NAME, detail, state)
}
