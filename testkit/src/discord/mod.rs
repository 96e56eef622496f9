//! A fake Discord on a local port: the REST API under `/api/v10` and a gateway websocket, after
//! <https://discord.com/developers/docs>.
//!
//! REST: `GET /gateway`, `GET /gateway/bot`, `GET /users/@me`, `GET /oauth2/applications/@me`,
//! `POST /users/@me/channels` (open a DM), `GET /channels/{id}`, `GET /channels/{id}/messages`
//! (history: `after` or `before`, `limit` 1-100, default 50, newest first), `POST
//! /channels/{id}/messages` (JSON, or multipart with `payload_json` and `files[n]`), `POST
//! /channels/{id}/messages/{message}/threads`, `PUT` (and `POST`) application commands, global
//! or per guild, and `POST /interactions/{id}/{token}/callback` (a message, type 4, for a
//! command or a button; the choices, type 8, for an autocomplete interaction; a deferred or
//! direct update of the message, types 6 and 7, for a button). Messages may carry components:
//! action rows of buttons, checked as Discord checks them; a user pressing one
//! ([`FakeDiscord::customer_presses_button`]) dispatches a MESSAGE_COMPONENT interaction
//! (type 3) with the button's `custom_id`. Files users send are served
//! under `/attachments/...`, as Discord's CDN would. Errors come as `{"code", "message"}` with
//! the HTTP status Discord uses.
//!
//! Gateway: Hello (op 10) on connect; Identify (op 2) → READY; Heartbeat (op 1) → ACK (op 11);
//! Resume (op 6) → the dispatches after the client's sequence number again, then RESUMED;
//! Reconnect (op 7) on demand. Every dispatch of a session has the next `s`.
//!
//! Tests play the people: [`FakeDiscord::customer_writes`] and friends dispatch events, and
//! [`FakeDiscord::wait_for_sent`] waits for what the bot sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use tokio::sync::watch;

mod control;
mod gateway;
mod rest;

use self::gateway::*;
use self::rest::*;

pub const BOT_ID: u64 = 900_000_000_000_000_001;
pub const BOT_NAME: &str = "helpdesk-test-bot";
pub const APPLICATION_ID: u64 = 900_000_000_000_000_002;
pub const GUILD_ID: u64 = 900_000_000_000_000_003;
/// The guild text channel the agents work in.
pub const AGENTS_CHANNEL_ID: u64 = 900_000_000_000_000_004;
/// Milliseconds between heartbeats the fake asks for (Discord asks for about 41 s; short here
/// so that tests see heartbeats).
pub const HEARTBEAT_INTERVAL_MS: u64 = 1_000;

/// A person on the fake platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: u64,
    /// The name shown (`global_name`).
    pub name: String,
    /// The account's username; the name when not set.
    pub username: Option<String>,
}

impl User {
    pub fn new(id: u64, name: &str) -> User {
        User {
            id,
            name: name.to_owned(),
            username: None,
        }
    }

    fn json(&self) -> Value {
        let username = self.username.as_deref().unwrap_or(&self.name);
        json!({
            "id": self.id.to_string(), "username": username, "global_name": self.name,
            "discriminator": "0", "avatar": null, "bot": false, "public_flags": 0,
        })
    }
}

/// A file a user sends.
#[derive(Debug, Clone)]
pub struct Upload {
    pub file_name: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// What the bot sent: a message in a channel, or an answer to an interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The channel (or thread) it went to; for an interaction answer, the interaction's channel.
    pub channel_id: u64,
    pub message_id: u64,
    pub content: String,
    /// The message it replies to (`message_reference`).
    pub reply_to: Option<u64>,
    /// Files sent with it: name and bytes.
    pub files: Vec<(String, Vec<u8>)>,
    /// The interaction it answers, for interaction responses.
    pub interaction: Option<u64>,
    /// Only the one who ran the command sees it.
    pub ephemeral: bool,
    /// The message's components (action rows of buttons), as sent.
    pub components: Vec<Value>,
}

/// A thread the bot started from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub id: u64,
    pub parent_id: u64,
    pub name: String,
}

/// A failure the next matching request gets instead of its answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    /// 429 with `retry_after`.
    TooManyRequests { retry_after: f64 },
    /// 502 Bad Gateway.
    BadGateway,
    /// 403 "Cannot send messages to this user" (code 50007).
    CannotMessageUser,
}

struct Session {
    id: String,
    /// Every dispatch of the session: `s` is the index + 1.
    dispatches: Vec<Value>,
}

#[derive(Default)]
struct Inner {
    token: String,
    next_id: u64,
    /// DM channel of each user.
    dms: HashMap<u64, u64>,
    /// Every message, by id, for references, edits and deletes.
    messages: HashMap<u64, Value>,
    threads: Vec<Thread>,
    sent: Vec<Sent>,
    files: HashMap<String, Vec<u8>>,
    commands: Vec<(String, Value)>,
    /// Interactions not yet answered: id → (token, channel id).
    interactions: HashMap<u64, (String, u64)>,
    /// Of those, the button presses: id → the message the button is under.
    component_interactions: HashMap<u64, u64>,
    /// Autocomplete interactions not yet answered: id → token.
    autocompletes: HashMap<u64, String>,
    /// The choices autocomplete interactions were answered with: id → `[{name, value}]`.
    choices: HashMap<u64, Vec<Value>>,
    sessions: Vec<Session>,
    failures: HashMap<String, Vec<Failure>>,
    /// DMs written the moment the next session is ready: (customer, text).
    when_ready: Vec<(User, String)>,
    identifies: usize,
    resumes: usize,
    heartbeats: usize,
    /// Every REST request, as "METHOD /path".
    calls: Vec<String>,
}

impl Inner {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    address: SocketAddr,
    /// Moves on whenever a dispatch is added to a session.
    dispatched: watch::Sender<u64>,
    /// Moves on whenever the bot sent something.
    sent: watch::Sender<u64>,
    /// Moves on to cut every open gateway connection (close code in the value's low bits).
    cut: watch::Sender<(u64, u16)>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a dispatch to every session (a bot that is not connected gets it on resume).
    fn dispatch(&self, event: &str, data: Value) {
        let mut inner = self.lock();
        for session in &mut inner.sessions {
            session.dispatches.push(json!({"t": event, "d": data}));
        }
        drop(inner);
        self.dispatched.send_modify(|count| *count += 1);
    }
}

/// The fake Discord; stops when dropped.
pub struct FakeDiscord {
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = now.as_secs();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        now.subsec_micros()
    )
}

fn bot_user() -> Value {
    json!({
        "id": BOT_ID.to_string(), "username": BOT_NAME, "global_name": null,
        "discriminator": "0", "avatar": null, "bot": true, "public_flags": 0,
    })
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

fn failure_response(failure: Failure) -> Response {
    match failure {
        Failure::TooManyRequests { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("retry-after", format!("{}", retry_after.ceil())),
                ("x-ratelimit-scope", "user".to_owned()),
            ],
            axum::Json(json!({
                "message": "You are being rate limited.", "retry_after": retry_after,
                "global": false, "code": 0,
            })),
        )
            .into_response(),
        Failure::BadGateway => error(StatusCode::BAD_GATEWAY, 0, "502: Bad Gateway"),
        Failure::CannotMessageUser => error(
            StatusCode::FORBIDDEN,
            50007,
            "Cannot send messages to this user",
        ),
    }
}

fn snowflake(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.as_u64(),
        _ => None,
    }
}
