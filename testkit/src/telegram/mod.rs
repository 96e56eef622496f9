//! A fake Telegram Bot API on a local port, after <https://core.telegram.org/bots/api>.
//!
//! It answers the methods the helpdesk bot uses — getMe, getWebhookInfo, deleteWebhook,
//! setWebhook, getUpdates (offsets, long polling), sendMessage (with an inline keyboard),
//! sendDocument, sendPhoto, getFile, setMyCommands, answerCallbackQuery — and serves `GET /file/bot<token>/<path>`. Requests are `POST
//! /bot<token>/<method>` with a JSON or multipart body; answers are `{"ok": true, "result": …}`
//! or `{"ok": false, "error_code": …, "description": …}` as the real API sends them.
//!
//! Tests play the people: [`FakeTelegram::customer_writes`] and friends queue updates, and
//! [`FakeTelegram::wait_for_sent`] waits for what the bot sent. A user pressing a button of an
//! inline keyboard ([`FakeTelegram::press_button`]) queues a `callback_query` update; the bot
//! answers it once with answerCallbackQuery ([`FakeTelegram::wait_for_callback_answer`]).
//!
//! Webhooks as the API describes them: while a webhook is set, getUpdates answers 409
//! Conflict, and queued updates are posted to the webhook's URL as JSON, with the secret token
//! in `X-Telegram-Bot-Api-Secret-Token`. An update leaves the queue only on a 2xx answer; any
//! other answer (or no connection) is recorded for getWebhookInfo's `last_error_*` and the
//! update is posted again after a pause. Updates go one at a time, oldest first, as Telegram
//! does for a webhook with `max_connections` 1 (the fake never opens more).
//!
//! One poller per bot: a getUpdates that arrives while another still waits ends the waiting
//! one with 409 "Conflict: terminated by other getUpdates request" (counted in
//! [`FakeTelegram::get_updates_conflicts`]), as Telegram does when two instances poll.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::watch;

mod api;
mod control;

use self::api::*;

/// The bot's own user id.
pub const BOT_ID: i64 = 7_000_000_001;
pub const BOT_USERNAME: &str = "helpdesk_test_bot";

/// A person on the fake platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub first_name: String,
    pub username: Option<String>,
}

impl User {
    pub fn new(id: i64, first_name: &str) -> User {
        User {
            id,
            first_name: first_name.to_owned(),
            username: None,
        }
    }

    fn json(&self) -> Value {
        let mut user = json!({"id": self.id, "is_bot": false, "first_name": self.first_name});
        if let Some(username) = &self.username {
            user["username"] = json!(username);
        }
        user
    }
}

/// A file a user sends.
#[derive(Debug, Clone)]
pub struct Upload {
    pub file_name: String,
    pub mime_type: String,
    pub content: Vec<u8>,
}

/// What the bot sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub method: String,
    pub chat_id: i64,
    pub message_id: i64,
    pub text: Option<String>,
    pub reply_to: Option<i64>,
    /// sendDocument / sendPhoto: the file's name and bytes.
    pub file: Option<(String, Vec<u8>)>,
    /// The inline keyboard sent with it (`reply_markup`), as JSON.
    pub reply_markup: Option<Value>,
}

/// How the bot answered a callback query (answerCallbackQuery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAnswer {
    pub callback_query_id: String,
    pub text: Option<String>,
    pub show_alert: bool,
}

/// One attempt to post an update to the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub update_id: i64,
    /// The HTTP status the webhook answered; `None` when it could not be reached.
    pub status: Option<u16>,
}

/// How long the fake waits before posting a refused update again (Telegram waits longer).
const WEBHOOK_RETRY_PAUSE: Duration = Duration::from_millis(300);

/// A failure the next call of a method gets instead of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 429 with `parameters.retry_after`.
    TooManyRequests { retry_after: u32 },
    /// 502 Bad Gateway, as Telegram answers when it is having trouble.
    BadGateway,
    /// 403 "Forbidden: bot was blocked by the user".
    Blocked,
}

#[derive(Default)]
struct State_ {
    token: String,
    next_update_id: i64,
    /// Updates not yet confirmed by a getUpdates with a higher offset.
    pending: VecDeque<Value>,
    /// Every message in every chat, by (chat id, message id), for `reply_to_message`.
    messages: HashMap<(i64, i64), Value>,
    next_message_id: HashMap<i64, i64>,
    sent: Vec<Sent>,
    files: HashMap<String, (String, Vec<u8>)>,
    /// Files whose size is left out of messages and getFile.
    untold_sizes: HashSet<String>,
    next_file: u64,
    commands: Vec<Value>,
    webhook_url: String,
    webhook_secret: Option<String>,
    webhook_max_connections: Option<i64>,
    /// Unix time and text of the last failed webhook delivery.
    webhook_last_error: Option<(i64, String)>,
    /// Every webhook delivery attempt, in order.
    webhook_deliveries: Vec<WebhookDelivery>,
    /// Updates delivered (answered 2xx) by webhook, for a redelivery.
    delivered: HashMap<i64, Value>,
    failures: HashMap<String, VecDeque<Failure>>,
    /// Every method called, in order, for tests that check what the client asked.
    calls: Vec<String>,
    get_updates_offsets: Vec<i64>,
    /// The getUpdates call waiting now, and the ones a newer call ended (answered 409).
    active_poll: Option<u64>,
    next_poll: u64,
    terminated_polls: HashSet<u64>,
    /// How many getUpdates calls were ended by a concurrent one: two pollers on one bot.
    get_updates_conflicts: usize,
    /// Callback queries sent to the bot: id → answered yet.
    callback_queries: HashMap<String, bool>,
    callback_answers: Vec<CallbackAnswer>,
    next_callback: u64,
}

impl State_ {
    fn message_id(&mut self, chat_id: i64) -> i64 {
        let next = self.next_message_id.entry(chat_id).or_insert(1);
        let id = *next;
        *next += 1;
        id
    }
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<State_>>,
    /// Moves on whenever an update is queued or the webhook changes, to wake long polls and
    /// the webhook poster.
    updates: watch::Sender<u64>,
    sent: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State_> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The fake Bot API server; stops when dropped.
pub struct FakeTelegram {
    address: SocketAddr,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
    poster: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.server.abort();
        self.poster.abort();
    }
}

fn ok(result: Value) -> Response {
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

fn error(code: u16, description: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        axum::Json(json!({"ok": false, "error_code": code, "description": description})),
    )
        .into_response()
}

fn failure_response(failure: Failure) -> Response {
    match failure {
        Failure::TooManyRequests { retry_after } => {
            let status = StatusCode::TOO_MANY_REQUESTS;
            (
                status,
                axum::Json(json!({
                    "ok": false, "error_code": 429,
                    "description": format!("Too Many Requests: retry after {retry_after}"),
                    "parameters": {"retry_after": retry_after},
                })),
            )
                .into_response()
        }
        Failure::BadGateway => error(502, "Bad Gateway"),
        Failure::Blocked => error(403, "Forbidden: bot was blocked by the user"),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default()
}

fn private_chat(user: &User) -> Value {
    let mut chat = json!({"id": user.id, "type": "private", "first_name": user.first_name});
    if let Some(username) = &user.username {
        chat["username"] = json!(username);
    }
    chat
}

fn group_chat(chat_id: i64) -> Value {
    json!({"id": chat_id, "type": "supergroup", "title": "Support agents"})
}

fn chat_of(chat_id: i64) -> Value {
    if chat_id < 0 {
        group_chat(chat_id)
    } else {
        json!({"id": chat_id, "type": "private", "first_name": "Customer"})
    }
}

fn bot_user() -> Value {
    json!({"id": BOT_ID, "is_bot": true, "first_name": "Helpdesk", "username": BOT_USERNAME})
}

/// A parameter as an integer, whether it came as a JSON number or (multipart) a string.
fn integer(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The message id a send request replies to (`reply_parameters.message_id`, or the older
/// `reply_to_message_id`), and whether it may be sent without it when that message is gone.
fn reply_target(params: &Value) -> (Option<i64>, bool) {
    let reply = params.get("reply_parameters").map(|reply| match reply {
        // Multipart bodies carry nested objects as JSON text.
        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        other => other.clone(),
    });
    let without = reply
        .as_ref()
        .and_then(|reply| reply.get("allow_sending_without_reply"))
        .is_some_and(|allow| allow == &json!(true));
    let target = reply
        .and_then(|reply| integer(reply.get("message_id")))
        .or_else(|| integer(params.get("reply_to_message_id")));
    (target, without)
}
