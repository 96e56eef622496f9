//! The channels page: what each channel reports about its health, per instance.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};

use crate::web::AppState;
use crate::web::auth::Viewer;
use crate::web::error::WebResult;
use crate::web::pages::{Nav, render};
use helpdesk_channel::ChannelKind;

struct ChannelRow {
    name: &'static str,
    /// "enabled", "enabled on another instance" (a running one), or "not enabled".
    state: &'static str,
    /// The running instances that have it enabled.
    instances: Vec<crate::store::instances::Instance>,
    connections: Vec<crate::store::health::ChannelHealth>,
    last_message: Option<DateTime<Utc>>,
    failed_intake_24h: i64,
    last_intake_error: Option<String>,
}

/// A mailbox with its IMAP connection's last report.
pub(crate) struct MailboxRow {
    pub(crate) mailbox: crate::channels::mailboxes::MailboxSummary,
    pub(crate) health: Option<crate::store::health::ChannelHealth>,
}

/// The mailboxes of `config`, each with its row of `health`.
pub(crate) fn mailbox_rows(
    mailboxes: &[crate::channels::mailboxes::MailboxSummary],
    health: &[crate::store::health::ChannelHealth],
) -> Vec<MailboxRow> {
    mailboxes
        .iter()
        .map(|mailbox| MailboxRow {
            health: health
                .iter()
                .find(|row| {
                    row.channel == ChannelKind::Email.as_str() && row.name == mailbox.health_name
                })
                .cloned(),
            mailbox: mailbox.clone(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "web/channels.html")]
struct ChannelsPage {
    nav: Option<Nav>,
    channels: Vec<ChannelRow>,
    /// This instance's mailboxes (`[email]`).
    mailboxes: Vec<MailboxRow>,
    /// Every running instance, with its channels.
    instances: Vec<crate::store::instances::Instance>,
    /// Which instance runs each consumer.
    consumers: Vec<crate::store::leases::Holder>,
}

pub async fn channels(State(state): State<AppState>, viewer: Viewer) -> WebResult<Response> {
    viewer.require_admin()?;
    let config = &state.config;
    let since = Utc::now() - chrono::Duration::hours(24);
    let health = crate::store::health::list(&state.store).await?;
    let running = crate::store::instances::running(&state.store, Utc::now()).await?;
    let mut rows = Vec::new();
    for (channel, configured) in [
        (ChannelKind::Email, config.email_enabled),
        (ChannelKind::Telegram, config.telegram_enabled),
        (ChannelKind::Discord, config.discord_enabled),
    ] {
        let name = channel.as_str();
        let intake = crate::store::raw::channel_intake(&state.store, channel, since).await?;
        let connections: Vec<_> = health
            .iter()
            .filter(|connection| connection.channel == name)
            .cloned()
            .collect();
        // What runs is what running instances say, not what connections once reported
        // (their rows stay after an instance stops).
        let instances: Vec<_> = running
            .iter()
            .filter(|instance| instance.runs(channel))
            .cloned()
            .collect();
        let state = match (configured, instances.is_empty()) {
            (true, _) => "enabled",
            (false, false) => "enabled on another instance",
            (false, true) => "not enabled",
        };
        rows.push(ChannelRow {
            name,
            state,
            instances,
            connections,
            last_message: intake.last_message,
            failed_intake_24h: intake.failed_since,
            last_intake_error: intake.last_error,
        });
    }
    render(&ChannelsPage {
        nav: Nav::of(&viewer, "channels"),
        mailboxes: mailbox_rows(&config.mailboxes, &health),
        channels: rows,
        instances: running,
        consumers: crate::store::leases::holders(&state.store).await?,
    })
}
