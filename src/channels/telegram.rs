//! The Telegram channel wired to the application: the update offset kept in
//! `channel_cursors` ([`StoredCursor`]), updates (polled, or posted to the webhook listener)
//! handed to the [`ChatDesk`].

use std::future::{Future, IntoFuture};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use helpdesk_channel::{ChannelKind, HealthState};
use helpdesk_telegram::{
    Received, SECRET_HEADER, Telegram, TelegramError, TelegramSettings, WebhookSettings,
};

use super::{ChatDesk, StoredCursor};
use crate::config::{Settings, TelegramMode};
use crate::store::Store;
use crate::store::health::ChannelHealth;

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
    let cursor = StoredCursor::new(store.clone(), ChannelKind::Telegram);
    tokio::spawn(super::run_reported(
        store,
        health,
        health_report,
        telegram.run(cursor, desk, shutdown),
    ))
}

/// What the webhook listener needs to take an update.
#[derive(Clone)]
struct WebhookState {
    telegram: Telegram,
    cursor: StoredCursor,
    desk: ChatDesk,
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
            cursor: StoredCursor::new(store.clone(), ChannelKind::Telegram),
            desk,
        });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let run = async move {
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
    };
    tokio::spawn(super::run_reported(
        store,
        health,
        webhook_health_report,
        run,
    ))
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
        .receive(&state.cursor, &state.desk, secret, &body)
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
    let detail = match state.last_event_at {
        Some(at) => format!("{mode}; last update {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
        None => mode.to_owned(),
    };
    super::health_row(ChannelKind::Telegram, HEALTH_NAME, detail, state)
}
