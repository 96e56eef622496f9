//! The channels over the API (admins): each connection's health, and the mailboxes with their
//! address, department and IMAP connection; the JSON twin of /admin/channels.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::caller::Caller;
use super::problem::{ApiResult, Problem};
use crate::store::health::ChannelHealth;
use crate::web::AppState;
use crate::web::admin::mailbox_rows;

/// One connection of a channel as it last reported.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Connection {
    /// email, telegram or discord.
    pub channel: String,
    /// Which connection: "imap:INBOX", "imap:billing/INBOX", "delivery", …
    pub name: String,
    pub connected: bool,
    pub detail: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i64,
    pub backlog: i64,
    pub updated_at: DateTime<Utc>,
}

impl From<ChannelHealth> for Connection {
    fn from(h: ChannelHealth) -> Self {
        Connection {
            channel: h.channel,
            name: h.name,
            connected: h.connected,
            detail: h.detail,
            last_success_at: h.last_success_at,
            last_error: h.last_error,
            last_error_at: h.last_error_at,
            consecutive_failures: h.consecutive_failures,
            backlog: h.backlog,
            updated_at: h.updated_at,
        }
    }
}

/// A mailbox this instance reads (`[email]`, `[[email.mailboxes]]`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MailboxInfo {
    pub name: String,
    pub address: String,
    pub display_name: Option<String>,
    /// The department new tickets from it start in; absent: rules and the default decide.
    pub department: Option<String>,
    pub has_signature: bool,
    /// Its IMAP connection; absent until it first reported.
    pub connection: Option<Connection>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Channels {
    /// Every connection that has reported, by channel and name.
    pub connections: Vec<Connection>,
    /// The mailboxes of the instance that answers; empty when mail is off there.
    pub mailboxes: Vec<MailboxInfo>,
}

/// The channels' connections and the mailboxes, with their health.
#[utoipa::path(
    get, path = "/channels", tag = "channels",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Channels),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Channels>> {
    caller.require_admin()?;
    let health = crate::store::health::list(&state.store).await?;
    let mailboxes = mailbox_rows(&state.config.mailboxes, &health)
        .into_iter()
        .map(|row| MailboxInfo {
            name: row.mailbox.name,
            address: row.mailbox.address,
            display_name: row.mailbox.display_name,
            department: row.mailbox.department,
            has_signature: row.mailbox.has_signature,
            connection: row.health.map(Connection::from),
        })
        .collect();
    Ok(Json(Channels {
        connections: health.into_iter().map(Connection::from).collect(),
        mailboxes,
    }))
}
