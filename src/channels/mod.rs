//! The channels wired to the application, in one place: each channel crate implements the
//! contract of `helpdesk_channel` (sink, cursor, health, delivery), and this module supplies the
//! application's side of it.
//!
//! - [`StoredCursor`]: every channel's positions, kept in `channel_cursors`.
//! - [`email::IntakeSink`] and the [`ChatDesk`]: the sinks — mail goes to intake; chat events
//!   go to the desk, which hands customers' messages to intake and acts on agents' messages.
//! - [`run_reported`]: runs a channel with its [`Health`] copied to `channel_health`.
//!
//! [`email`], [`telegram`] and [`discord`] map the settings and start each channel;
//! [`commands`] reads agents' commands (`canned` sends canned responses and suggests their
//! names), [`store`] keeps what the chat side needs.

mod canned;
mod choices;
pub mod commands;
pub mod desk;
pub mod discord;
pub mod email;
pub mod mailboxes;
mod notify_command;
pub mod telegram;

use std::future::Future;

use helpdesk_channel::{ChannelKind, Cursor, Health, HealthState};

pub use desk::{AgentOutcome, ChatDesk};

use crate::store::health::ChannelHealth;
use crate::store::{Store, StoreError};

/// A channel's cursor positions, kept in `channel_cursors` under the channel's name.
#[derive(Debug, Clone)]
pub struct StoredCursor {
    store: Store,
    channel: ChannelKind,
    /// Put before every name (`billing/imap:INBOX`), so that several connections of one
    /// channel (mailboxes) keep their positions apart.
    scope: String,
}

impl StoredCursor {
    pub fn new(store: Store, channel: ChannelKind) -> StoredCursor {
        StoredCursor {
            store,
            channel,
            scope: String::new(),
        }
    }

    /// A cursor whose names are kept under `scope`; `None` is [`StoredCursor::new`]'s.
    pub fn scoped(store: Store, channel: ChannelKind, scope: Option<&str>) -> StoredCursor {
        StoredCursor {
            store,
            channel,
            scope: scope.map(|scope| format!("{scope}/")).unwrap_or_default(),
        }
    }
}

impl Cursor for StoredCursor {
    type Error = StoreError;

    async fn position(&self, name: &str) -> Result<Option<String>, StoreError> {
        let name = format!("{}{name}", self.scope);
        crate::store::cursors::get(&self.store, self.channel.as_str(), &name).await
    }

    async fn set_position(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let name = format!("{}{name}", self.scope);
        crate::store::cursors::set(&self.store, self.channel.as_str(), &name, value).await
    }

    async fn positions(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let positions = crate::store::cursors::list(&self.store, self.channel.as_str()).await?;
        let prefix = format!("{}{prefix}", self.scope);
        Ok(positions
            .into_iter()
            .filter(|(name, _)| name.starts_with(&prefix))
            .filter_map(|(name, value)| {
                name.strip_prefix(&self.scope)
                    .map(|name| (name.to_owned(), value))
            })
            .collect())
    }
}

/// How often a connection's health is checked for changes worth writing, and how old the
/// written report may grow before it is written again, so readers can tell a live report from
/// a stale one.
const HEALTH_CHECK: std::time::Duration = std::time::Duration::from_secs(5);
const HEALTH_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// A connection's row in `channel_health`: `state` under `channel` and `name`, with `detail`
/// saying what the connection is doing.
pub fn health_row(
    channel: ChannelKind,
    name: &str,
    detail: String,
    state: &HealthState,
) -> ChannelHealth {
    ChannelHealth {
        channel: channel.as_str().to_owned(),
        name: name.to_owned(),
        connected: state.connected,
        detail: Some(detail),
        last_success_at: state.last_success_at,
        last_error: state.last_error.clone(),
        last_error_at: state.last_error_at,
        consecutive_failures: i64::from(state.consecutive_failures),
        backlog: i64::try_from(state.backlog).unwrap_or(i64::MAX),
        updated_at: chrono::Utc::now(),
    }
}

/// Runs a channel (`run`) until it returns, with `health` copied to `channel_health` as
/// `describe` makes a row of it; at the end the row says the connection stopped.
pub async fn run_reported<D>(
    store: Store,
    health: Health,
    describe: D,
    run: impl Future<Output = ()>,
) where
    D: Fn(&HealthState) -> ChannelHealth + Clone + Send + Sync + 'static,
{
    let reporter = StopsWith(tokio::spawn(report_health(
        store.clone(),
        health.clone(),
        describe.clone(),
    )));
    run.await;
    drop(reporter);
    health.disconnected();
    write_health(&store, &describe(&health.get())).await;
}

/// A task that ends when this is dropped: the health reporter stops with its channel also
/// when the channel's task is aborted (its lease lost).
struct StopsWith(tokio::task::JoinHandle<()>);

impl Drop for StopsWith {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Copies a connection's health to `channel_health` whenever its connection state, error,
/// detail or backlog changed, and at least every [`HEALTH_REFRESH`].
async fn report_health(
    store: Store,
    health: Health,
    describe: impl Fn(&HealthState) -> ChannelHealth,
) {
    let mut last: Option<(ChannelHealth, tokio::time::Instant)> = None;
    loop {
        let now = describe(&health.get());
        let due = match &last {
            // A poll answered every few seconds is not news; a change of state is.
            Some((reported, at)) => {
                (
                    reported.connected,
                    &reported.last_error,
                    &reported.detail,
                    reported.backlog,
                ) != (now.connected, &now.last_error, &now.detail, now.backlog)
                    || at.elapsed() >= HEALTH_REFRESH
            }
            None => true,
        };
        if due {
            write_health(&store, &now).await;
            last = Some((now, tokio::time::Instant::now()));
        }
        tokio::time::sleep(HEALTH_CHECK).await;
    }
}

async fn write_health(store: &Store, report: &ChannelHealth) {
    if let Err(error) = crate::store::health::report(store, report).await {
        tracing::warn!(channel = report.channel, %error, "channel health not recorded");
    }
}
