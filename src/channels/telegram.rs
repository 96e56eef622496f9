//! The Telegram channel wired to the application: the update offset kept in
//! `channel_cursors`, updates (polled, or posted to the webhook listener) handed to the
//! [`ChatDesk`].

use std::future::{Future, IntoFuture};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use helpdesk_telegram::{
    ChatEvent, Cursor, HealthState, Received, SECRET_HEADER, Sink, Telegram, TelegramError,
    TelegramSettings, WebhookSettings,
};

use super::ChatDesk;
use crate::config::{Settings, TelegramMode};
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
        webhook: (settings.telegram.mode == TelegramMode::Webhook).then(|| WebhookSettings {
            url: settings.telegram.webhook_url.trim().to_owned(),
            secret: settings.telegram.webhook_secret.clone(),
        }),
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

/// What the webhook listener needs to take an update.
#[derive(Clone)]
struct WebhookState {
    telegram: Telegram,
    cursor: StoredOffset,
    sink: DeskSink,
}

/// Takes updates Telegram posts to the webhook on `listener` (at the path of
/// `telegram.webhook_url`) and keeps the webhook set, until `shutdown` completes; health is
/// reported to the database. The listener is the channel's own, not the web server's: only
/// this path needs to be reachable from Telegram.
pub fn start_webhook(
    telegram: Telegram,
    desk: ChatDesk,
    store: Store,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let health = telegram.health();
    let path = telegram
        .webhook_path()
        .unwrap_or_else(|| "/telegram/webhook".to_owned());
    let routes = Router::new()
        .route(&path, post(webhook_update))
        .with_state(WebhookState {
            telegram: telegram.clone(),
            cursor: StoredOffset::new(store.clone()),
            sink: DeskSink::new(desk),
        });
    tokio::spawn(async move {
        let reporter = {
            let health = health.clone();
            tokio::spawn(super::report_health(store.clone(), move || {
                webhook_health_report(&health.get())
            }))
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let server = {
            let mut stopped = stopped.clone();
            axum::serve(listener, routes).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
        };
        let keeper = telegram.run_webhook(async move {
            shutdown.await;
            stop.send(true).ok();
        });
        let (served, ()) = tokio::join!(server.into_future(), keeper);
        if let Err(error) = served {
            tracing::error!(%error, "Telegram webhook listener failed");
        }
        reporter.abort();
        health.disconnected();
        super::write_health(&store, &webhook_health_report(&health.get())).await;
    })
}

/// One update posted by Telegram: 200 once handled (or known), 401 without the right secret,
/// 400 for what is no update, 500 while it cannot be stored (Telegram sends it again).
async fn webhook_update(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let secret = headers.get(SECRET_HEADER).map(|value| value.as_bytes());
    match state
        .telegram
        .receive(&state.cursor, &state.sink, secret, &body)
        .await
    {
        Received::Handled | Received::AlreadyHandled => StatusCode::OK,
        Received::Unauthorized => StatusCode::UNAUTHORIZED,
        Received::Malformed(error) => {
            tracing::warn!(%error, "Telegram webhook: not an update");
            StatusCode::BAD_REQUEST
        }
        Received::NotStored(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The connection's row in `channel_health`.
fn health_report(state: &HealthState) -> ChannelHealth {
    report_of(state, "long polling")
}

fn webhook_health_report(state: &HealthState) -> ChannelHealth {
    report_of(state, "webhook")
}

fn report_of(state: &HealthState, mode: &str) -> ChannelHealth {
    ChannelHealth {
        channel: "telegram".to_owned(),
        name: HEALTH_NAME.to_owned(),
        connected: state.connected,
        detail: Some(match state.last_event_at {
            Some(at) => format!("{mode}; last update {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
            None => mode.to_owned(),
        }),
        last_success_at: state.last_success_at,
        last_error: state.last_error.clone(),
        last_error_at: state.last_error_at,
        consecutive_failures: i64::from(state.consecutive_failures),
        backlog: i64::from(state.pending_updates),
        updated_at: chrono::Utc::now(),
    }
}
