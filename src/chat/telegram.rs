//! The Telegram channel wired to the application: the update offset kept in
//! `channel_cursors`, updates handed to the [`ChatDesk`].

use std::future::Future;

use helpdesk_telegram::{ChatEvent, Cursor, Sink, Telegram, TelegramError, TelegramSettings};

use super::ChatDesk;
use crate::config::Settings;
use crate::intake::IntakeError;
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

/// Polls Telegram until `shutdown` completes.
pub fn start(
    telegram: Telegram,
    desk: ChatDesk,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(telegram.run(StoredOffset::new(store), DeskSink::new(desk), shutdown))
}
