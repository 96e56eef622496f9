//! The Telegram channel wired to the application: the update offset kept in
//! `channel_cursors`, updates handed to the [`ChatDesk`].

use std::future::Future;

use helpdesk_telegram::{
    ChatEvent, Cursor, HealthState, Sink, Telegram, TelegramError, TelegramSettings,
};

use super::ChatDesk;
use crate::config::Settings;
use crate::intake::IntakeError;
use crate::store::health::ChannelHealth;
use crate::store::{self, Store, StoreError};

/// How long one getUpdates call waits for news. teloxide's HTTP client gives up after 17 s.
const POLL_SECONDS: u32 = 10;

/// The channel's settings from `[telegram]`, with the attachment limit of `[intake]`.
pub fn telegram_settings(settings: &Settings) -> TelegramSettings {
    TelegramSettings {
        token: settings.telegram.token.clone(),
        api_url: settings.telegram.api_url.clone(),
        agents_chat_id: settings.telegram.agents_chat_id,
        poll_seconds: POLL_SECONDS,
        max_file_bytes: settings.intake.max_attachment_bytes,
    }
}

pub fn client(settings: &Settings) -> Result<Telegram, TelegramError> {
    Telegram::new(telegram_settings(settings))
}

/// The next update id to ask for, kept as the cursor `telegram` / `updates`.
#[derive(Debug, Clone)]
pub struct StoredOffset {
    store: Store,
}

impl StoredOffset {
    pub fn new(store: Store) -> StoredOffset {
        StoredOffset { store }
    }
}

impl Cursor for StoredOffset {
    type Error = StoreError;

    async fn load(&self) -> Result<Option<i64>, StoreError> {
        let Some(value) = store::cursors::get(&self.store, "telegram", "updates").await? else {
            return Ok(None);
        };
        value
            .parse()
            .map(Some)
            .map_err(|_| StoreError::Invalid(format!("Telegram offset {value:?} is not a number")))
    }

    async fn save(&self, offset: i64) -> Result<(), StoreError> {
        store::cursors::set(&self.store, "telegram", "updates", &offset.to_string()).await
    }
}

/// Hands updates to the desk one by one; returns only once all are committed.
#[derive(Clone)]
pub struct DeskSink {
    desk: ChatDesk,
}

impl DeskSink {
    pub fn new(desk: ChatDesk) -> DeskSink {
        DeskSink { desk }
    }
}

impl Sink for DeskSink {
    type Error = IntakeError;

    async fn accept(&self, events: Vec<ChatEvent>) -> Result<(), IntakeError> {
        for event in events {
            self.desk.handle(event).await?;
        }
        Ok(())
    }
}

/// The poller's row in `channel_health`.
const HEALTH_NAME: &str = "updates";

/// Polls Telegram until `shutdown` completes, with its health reported to the database.
pub fn start(
    telegram: Telegram,
    desk: ChatDesk,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let health = telegram.health();
    tokio::spawn(async move {
        let reporter = {
            let health = health.clone();
            tokio::spawn(super::report_health(store.clone(), move || {
                health_report(&health.get())
            }))
        };
        telegram
            .run(
                StoredOffset::new(store.clone()),
                DeskSink::new(desk),
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
    ChannelHealth {
        channel: "telegram".to_owned(),
        name: HEALTH_NAME.to_owned(),
        connected: state.connected,
        detail: Some(match state.last_event_at {
            Some(at) => format!(
                "long polling; last update {}",
                at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            None => "long polling".to_owned(),
        }),
        last_success_at: state.last_success_at,
        last_error: state.last_error.clone(),
        last_error_at: state.last_error_at,
        consecutive_failures: i64::from(state.consecutive_failures),
        backlog: 0,
        updated_at: chrono::Utc::now(),
    }
}
