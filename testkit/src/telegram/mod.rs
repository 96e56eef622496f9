//! A fake Telegram Bot API on a local port, after <https://core.telegram.org/bots/api>.
//!
//! It answers the methods the helpdesk bot uses — getMe, getWebhookInfo, deleteWebhook,
//! setWebhook, getUpdates (offsets, long polling), sendMessage, sendDocument, sendPhoto,
//! getFile, setMyCommands — and serves `GET /file/bot<token>/<path>`. Requests are `POST
//! /bot<token>/<method>` with a JSON or multipart body; answers are `{"ok": true, "result": …}`
//! or `{"ok": false, "error_code": …, "description": …}` as the real API sends them.
//!
//! Tests play the people: [`FakeTelegram::customer_writes`] and friends queue updates, and
//! [`FakeTelegram::wait_for_sent`] waits for what the bot sent.
//!
//! Webhooks as the API describes them: while a webhook is set, getUpdates answers 409
//! Conflict, and queued updates are posted to the webhook's URL as JSON, with the secret token
//! in `X-Telegram-Bot-Api-Secret-Token`. An update leaves the queue only on a 2xx answer; any
//! other answer (or no connection) is recorded for getWebhookInfo's `last_error_*` and the
//! update is posted again after a pause. Updates go one at a time, oldest first, as Telegram
//! does for a webhook with `max_connections` 1 (the fake never opens more).

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

impl FakeTelegram {
    /// Starts the fake for a bot with `token` on a free local port.
    pub async fn start(token: &str) -> FakeTelegram {
        let shared = Shared {
            state: Arc::new(Mutex::new(State_ {
                token: token.to_owned(),
                next_update_id: 100_000,
                ..State_::default()
            })),
            updates: watch::channel(0).0,
            sent: watch::channel(0).0,
        };
        let app = Router::new()
            .route("/{bot}/{method}", post(api).get(api))
            .route("/file/{bot}/{*path}", get(download))
            .layer(DefaultBodyLimit::max(64 << 20))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free local port");
        let address = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let poster = tokio::spawn(post_to_webhook(shared.clone()));
        FakeTelegram {
            address,
            shared,
            server,
            poster,
        }
    }

    /// The base URL to give the client instead of https://api.telegram.org.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn push_update(&self, kind: &str, message: Value) -> i64 {
        let mut state = self.shared.lock();
        let update_id = state.next_update_id;
        state.next_update_id += 1;
        state
            .pending
            .push_back(json!({"update_id": update_id, kind: message}));
        drop(state);
        self.shared.updates.send_modify(|count| *count += 1);
        update_id
    }

    fn new_message(&self, chat: Value, from: &User, reply_to: Option<i64>) -> (i64, Value) {
        let chat_id = integer(chat.get("id")).unwrap_or_default();
        let mut state = self.shared.lock();
        let message_id = state.message_id(chat_id);
        let mut message = json!({
            "message_id": message_id,
            "date": now(),
            "chat": chat,
            "from": from.json(),
        });
        if let Some(parent) = reply_to.and_then(|id| state.messages.get(&(chat_id, id))) {
            message["reply_to_message"] = parent.clone();
        }
        (message_id, message)
    }

    fn remember(&self, chat_id: i64, message_id: i64, message: &Value) {
        self.shared
            .lock()
            .messages
            .insert((chat_id, message_id), message.clone());
    }

    /// A customer writes to the bot in their private chat; returns the message id.
    pub fn customer_writes(&self, customer: &User, text: &str) -> i64 {
        let (id, mut message) = self.new_message(private_chat(customer), customer, None);
        message["text"] = json!(text);
        if text.starts_with('/') {
            let length = text
                .split_whitespace()
                .next()
                .unwrap_or("")
                .encode_utf16()
                .count();
            message["entities"] = json!([{"type": "bot_command", "offset": 0, "length": length}]);
        }
        self.remember(customer.id, id, &message);
        self.push_update("message", message);
        id
    }

    /// A customer edits an earlier message of theirs.
    pub fn customer_edits(&self, customer: &User, message_id: i64, text: &str) {
        let mut message = self
            .shared
            .lock()
            .messages
            .get(&(customer.id, message_id))
            .cloned()
            .unwrap_or_else(|| json!({"message_id": message_id, "date": now(), "chat": private_chat(customer), "from": customer.json()}));
        message["text"] = json!(text);
        message["edit_date"] = json!(now());
        self.remember(customer.id, message_id, &message);
        self.push_update("edited_message", message);
    }

    fn store_file(&self, upload: &Upload, folder: &str) -> (String, String) {
        let mut state = self.shared.lock();
        state.next_file += 1;
        let file_id = format!("FILE{}", state.next_file);
        let path = format!("{folder}/file_{}_{}", state.next_file, upload.file_name);
        state
            .files
            .insert(file_id.clone(), (path.clone(), upload.content.clone()));
        (file_id, path)
    }

    /// A customer sends a document (any file) with an optional caption.
    pub fn customer_sends_document(
        &self,
        customer: &User,
        upload: &Upload,
        caption: Option<&str>,
    ) -> i64 {
        self.send_document(customer, upload, caption, true)
    }

    /// A customer sends a document whose size Telegram does not tell (`file_size` is optional,
    /// in the message and in getFile).
    pub fn customer_sends_document_of_untold_size(&self, customer: &User, upload: &Upload) -> i64 {
        self.send_document(customer, upload, None, false)
    }

    fn send_document(
        &self,
        customer: &User,
        upload: &Upload,
        caption: Option<&str>,
        size_told: bool,
    ) -> i64 {
        let (file_id, _) = self.store_file(upload, "documents");
        let (id, mut message) = self.new_message(private_chat(customer), customer, None);
        message["document"] = json!({
            "file_id": file_id, "file_unique_id": format!("U{file_id}"),
            "file_name": upload.file_name, "mime_type": upload.mime_type,
        });
        if size_told {
            message["document"]["file_size"] = json!(upload.content.len());
        } else {
            self.shared.lock().untold_sizes.insert(file_id);
        }
        if let Some(caption) = caption {
            message["caption"] = json!(caption);
        }
        self.remember(customer.id, id, &message);
        self.push_update("message", message);
        id
    }

    /// A customer sends a photo; Telegram offers it in several sizes, the largest last.
    pub fn customer_sends_photo(&self, customer: &User, jpeg: &[u8], caption: Option<&str>) -> i64 {
        let thumbnail = Upload {
            file_name: "thumb.jpg".into(),
            mime_type: "image/jpeg".into(),
            content: jpeg.iter().take(16).copied().collect(),
        };
        let full = Upload {
            file_name: "photo.jpg".into(),
            mime_type: "image/jpeg".into(),
            content: jpeg.to_vec(),
        };
        let (thumb_id, _) = self.store_file(&thumbnail, "photos");
        let (full_id, _) = self.store_file(&full, "photos");
        let (id, mut message) = self.new_message(private_chat(customer), customer, None);
        message["photo"] = json!([
            {"file_id": thumb_id, "file_unique_id": format!("U{thumb_id}"), "width": 90, "height": 90, "file_size": thumbnail.content.len()},
            {"file_id": full_id, "file_unique_id": format!("U{full_id}"), "width": 1280, "height": 960, "file_size": full.content.len()},
        ]);
        if let Some(caption) = caption {
            message["caption"] = json!(caption);
        }
        self.remember(customer.id, id, &message);
        self.push_update("message", message);
        id
    }

    /// Someone writes in a group chat (the agents' group), optionally replying to a message
    /// of that chat; returns the message id.
    pub fn group_message(
        &self,
        chat_id: i64,
        from: &User,
        reply_to: Option<i64>,
        text: &str,
    ) -> i64 {
        let (id, mut message) = self.new_message(group_chat(chat_id), from, reply_to);
        message["text"] = json!(text);
        if text.starts_with('/') {
            let length = text
                .split_whitespace()
                .next()
                .unwrap_or("")
                .encode_utf16()
                .count();
            message["entities"] = json!([{"type": "bot_command", "offset": 0, "length": length}]);
        }
        self.remember(chat_id, id, &message);
        self.push_update("message", message);
        id
    }

    /// The next call of `method` fails this way (calls queue up failures in order).
    pub fn fail_next(&self, method: &str, failure: Failure) {
        self.shared
            .lock()
            .failures
            .entry(canonical_method(method))
            .or_default()
            .push_back(failure);
    }

    /// Everything the bot sent so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.shared.lock().sent.clone()
    }

    /// Waits until the bot has sent something `matches` accepts, and returns it.
    pub async fn wait_for_sent(
        &self,
        timeout: Duration,
        matches: impl Fn(&Sent) -> bool,
    ) -> Option<Sent> {
        let deadline = Instant::now() + timeout;
        let mut changes = self.shared.sent.subscribe();
        loop {
            if let Some(found) = self.sent().into_iter().find(|sent| matches(sent)) {
                return Some(found);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if tokio::time::timeout(left, changes.changed()).await.is_err() {
                return self.sent().into_iter().find(|sent| matches(sent));
            }
        }
    }

    /// The commands registered with setMyCommands, as sent (each with its scope).
    pub fn registered_commands(&self) -> Vec<Value> {
        self.shared.lock().commands.clone()
    }

    /// Updates queued and not yet confirmed by the client.
    pub fn unconfirmed_updates(&self) -> usize {
        self.shared.lock().pending.len()
    }

    /// The methods called so far, in order.
    pub fn calls(&self) -> Vec<String> {
        self.shared.lock().calls.clone()
    }

    /// The `offset` of every getUpdates call so far.
    pub fn get_updates_offsets(&self) -> Vec<i64> {
        self.shared.lock().get_updates_offsets.clone()
    }

    pub fn webhook_url(&self) -> String {
        self.shared.lock().webhook_url.clone()
    }

    /// The secret token of the webhook, as setWebhook set it.
    pub fn webhook_secret(&self) -> Option<String> {
        self.shared.lock().webhook_secret.clone()
    }

    /// The `max_connections` of the webhook, as setWebhook set it.
    pub fn webhook_max_connections(&self) -> Option<i64> {
        self.shared.lock().webhook_max_connections
    }

    /// Every attempt to post an update to the webhook so far.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.shared.lock().webhook_deliveries.clone()
    }

    /// Waits until the webhook answered update `update_id` with 2xx; false on timeout.
    pub async fn wait_for_webhook_delivery(&self, update_id: i64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.shared.lock().delivered.contains_key(&update_id) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Posts an update that was delivered before once more, as Telegram does when it did not
    /// get our answer (a timeout, a dropped connection); returns the webhook's status.
    pub async fn redeliver(&self, update_id: i64) -> Option<u16> {
        let (url, secret, update) = {
            let state = self.shared.lock();
            (
                state.webhook_url.clone(),
                state.webhook_secret.clone(),
                state.delivered.get(&update_id).cloned()?,
            )
        };
        let status = post_update(&url, secret.as_deref(), &update).await;
        self.shared
            .lock()
            .webhook_deliveries
            .push(WebhookDelivery { update_id, status });
        status
    }
}

/// Posts one update to the webhook; the status, or `None` when it could not be reached.
async fn post_update(url: &str, secret: Option<&str>, update: &Value) -> Option<u16> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .ok()?;
    let mut request = client
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(update.to_string());
    if let Some(secret) = secret {
        request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
    }
    request
        .send()
        .await
        .ok()
        .map(|response| response.status().as_u16())
}

/// While a webhook is set, posts the oldest queued update to it until it is taken (2xx), then
/// the next; refused ones are posted again after [`WEBHOOK_RETRY_PAUSE`].
async fn post_to_webhook(shared: Shared) {
    let mut woken = shared.updates.subscribe();
    loop {
        let next = {
            let state = shared.lock();
            (!state.webhook_url.is_empty())
                .then(|| {
                    state.pending.front().map(|update| {
                        (
                            state.webhook_url.clone(),
                            state.webhook_secret.clone(),
                            update.clone(),
                        )
                    })
                })
                .flatten()
        };
        let Some((url, secret, update)) = next else {
            if woken.changed().await.is_err() {
                return;
            }
            continue;
        };
        let update_id = integer(update.get("update_id")).unwrap_or_default();
        let status = post_update(&url, secret.as_deref(), &update).await;
        let taken = status.is_some_and(|status| (200..300).contains(&status));
        {
            let mut state = shared.lock();
            state
                .webhook_deliveries
                .push(WebhookDelivery { update_id, status });
            if taken {
                state
                    .pending
                    .retain(|queued| integer(queued.get("update_id")) != Some(update_id));
                state.delivered.insert(update_id, update);
            } else {
                let message = match status {
                    Some(status) => format!("Wrong response from the webhook: {status}"),
                    None => "Connection refused".to_owned(),
                };
                state.webhook_last_error = Some((now(), message));
            }
        }
        if !taken {
            tokio::time::sleep(WEBHOOK_RETRY_PAUSE).await;
        }
    }
}

async fn params_of(request: Request) -> Result<(Value, Option<(String, Vec<u8>)>), Response> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("multipart/form-data"));
    if multipart {
        let mut form = Multipart::from_request(request, &())
            .await
            .map_err(|rejection| error(400, &format!("Bad Request: {rejection}")))?;
        let mut params = serde_json::Map::new();
        let mut file = None;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|failure| error(400, &format!("Bad Request: {failure}")))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let bytes = field
                .bytes()
                .await
                .map_err(|failure| error(400, &format!("Bad Request: {failure}")))?;
            match file_name {
                Some(file_name) => file = Some((file_name, bytes.to_vec())),
                None => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    params.insert(name, Value::String(text));
                }
            }
        }
        return Ok((Value::Object(params), file));
    }
    let body = axum::body::to_bytes(request.into_body(), 64 << 20)
        .await
        .map_err(|failure| error(400, &format!("Bad Request: {failure}")))?;
    if body.is_empty() {
        return Ok((json!({}), None));
    }
    serde_json::from_slice(&body)
        .map(|params| (params, None))
        .map_err(|failure| error(400, &format!("Bad Request: {failure}")))
}

async fn api(
    State(shared): State<Shared>,
    Path((bot, method)): Path<(String, String)>,
    request: Request,
) -> Response {
    // Method names are case-insensitive (teloxide sends "GetMe"); the canonical spelling is
    // kept for the record.
    let method = canonical_method(&method);
    {
        let mut state = shared.lock();
        if bot.strip_prefix("bot") != Some(state.token.as_str()) {
            return error(401, "Unauthorized");
        }
        state.calls.push(method.clone());
        if let Some(failure) = state
            .failures
            .get_mut(&method)
            .and_then(|queued| queued.pop_front())
        {
            return failure_response(failure);
        }
    }
    let (params, file) = match params_of(request).await {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    match method.as_str() {
        "getMe" => {
            let mut me = bot_user();
            me["can_join_groups"] = json!(true);
            me["can_read_all_group_messages"] = json!(true);
            me["supports_inline_queries"] = json!(false);
            me["can_connect_to_business"] = json!(false);
            me["has_main_web_app"] = json!(false);
            ok(me)
        }
        "getWebhookInfo" => {
            let state = shared.lock();
            let mut info = json!({
                "url": state.webhook_url,
                "has_custom_certificate": false,
                "pending_update_count": state.pending.len(),
            });
            if !state.webhook_url.is_empty() {
                info["max_connections"] = json!(state.webhook_max_connections.unwrap_or(40));
                if let Some((date, message)) = &state.webhook_last_error {
                    info["last_error_date"] = json!(date);
                    info["last_error_message"] = json!(message);
                }
            }
            ok(info)
        }
        "deleteWebhook" => {
            let mut state = shared.lock();
            state.webhook_url.clear();
            state.webhook_secret = None;
            state.webhook_max_connections = None;
            state.webhook_last_error = None;
            if params
                .get("drop_pending_updates")
                .is_some_and(|drop| drop == &json!(true) || drop == &json!("true"))
            {
                state.pending.clear();
            }
            drop(state);
            shared.updates.send_modify(|count| *count += 1);
            ok(json!(true))
        }
        "setWebhook" => set_webhook(&shared, &params),
        "getUpdates" => get_updates(&shared, &params).await,
        "sendMessage" => {
            let Some(text) = text_of(params.get("text")).filter(|text| !text.is_empty()) else {
                return error(400, "Bad Request: message text is empty");
            };
            send(&shared, "sendMessage", &params, Some(text), None)
        }
        "sendDocument" | "sendPhoto" => {
            let Some(file) = file else {
                return error(400, "Bad Request: there is no file in the request");
            };
            let caption = text_of(params.get("caption"));
            send(&shared, &method, &params, caption, Some(file))
        }
        "getFile" => {
            let file_id = text_of(params.get("file_id")).unwrap_or_default();
            let state = shared.lock();
            match state.files.get(&file_id) {
                Some((path, content)) => {
                    let mut file = json!({
                        "file_id": file_id, "file_unique_id": format!("U{file_id}"),
                        "file_path": path,
                    });
                    if !state.untold_sizes.contains(&file_id) {
                        file["file_size"] = json!(content.len());
                    }
                    ok(file)
                }
                None => error(400, "Bad Request: invalid file_id"),
            }
        }
        "setMyCommands" => {
            shared.lock().commands.push(params);
            ok(json!(true))
        }
        "deleteMyCommands" => ok(json!(true)),
        _ => error(404, "Not Found: method not found"),
    }
}

const METHODS: [&str; 12] = [
    "getMe",
    "getWebhookInfo",
    "deleteWebhook",
    "setWebhook",
    "getUpdates",
    "sendMessage",
    "sendDocument",
    "sendPhoto",
    "getFile",
    "setMyCommands",
    "deleteMyCommands",
    "getMyCommands",
];

fn canonical_method(method: &str) -> String {
    METHODS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(method))
        .map(|known| (*known).to_owned())
        .unwrap_or_else(|| method.to_owned())
}

/// setWebhook: an empty URL removes the webhook; otherwise it must be an http(s) URL, the
/// secret token 1-256 characters of `A-Za-z0-9_-`, and max_connections 1-100.
fn set_webhook(shared: &Shared, params: &Value) -> Response {
    let url = text_of(params.get("url")).unwrap_or_default();
    let secret = text_of(params.get("secret_token"));
    let max_connections = integer(params.get("max_connections"));
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !url.is_empty() && !scheme_ok {
        return error(400, "Bad Request: invalid webhook URL specified");
    }
    if let Some(secret) = &secret
        && !((1..=256).contains(&secret.len())
            && secret
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'))
    {
        return error(
            400,
            "Bad Request: secret token contains unallowed characters",
        );
    }
    if max_connections.is_some_and(|max| !(1..=100).contains(&max)) {
        return error(400, "Bad Request: invalid max_connections specified");
    }
    let mut state = shared.lock();
    if params
        .get("drop_pending_updates")
        .is_some_and(|drop| drop == &json!(true) || drop == &json!("true"))
    {
        state.pending.clear();
    }
    if url != state.webhook_url {
        state.webhook_last_error = None;
    }
    state.webhook_secret = if url.is_empty() { None } else { secret };
    state.webhook_max_connections = if url.is_empty() {
        None
    } else {
        max_connections
    };
    state.webhook_url = url;
    drop(state);
    shared.updates.send_modify(|count| *count += 1);
    ok(json!(true))
}

async fn get_updates(shared: &Shared, params: &Value) -> Response {
    let offset = integer(params.get("offset")).unwrap_or(0);
    let limit = integer(params.get("limit")).unwrap_or(100).clamp(1, 100) as usize;
    let timeout = integer(params.get("timeout")).unwrap_or(0).clamp(0, 50) as u64;
    {
        let mut state = shared.lock();
        if !state.webhook_url.is_empty() {
            return error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            );
        }
        state.get_updates_offsets.push(offset);
        // An offset confirms every update below it: they are gone for good.
        state.pending.retain(|update| {
            integer(update.get("update_id")).is_some_and(|update_id| update_id >= offset)
        });
    }
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut woken = shared.updates.subscribe();
    loop {
        let ready: Vec<Value> = shared.lock().pending.iter().take(limit).cloned().collect();
        if !ready.is_empty() {
            return ok(Value::Array(ready));
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return ok(json!([]));
        };
        if tokio::time::timeout(left, woken.changed()).await.is_err() {
            return ok(json!([]));
        }
    }
}

fn send(
    shared: &Shared,
    method: &str,
    params: &Value,
    text: Option<String>,
    file: Option<(String, Vec<u8>)>,
) -> Response {
    let Some(chat_id) = integer(params.get("chat_id")) else {
        return error(400, "Bad Request: chat not found");
    };
    let (mut reply_to, without_reply) = reply_target(params);
    let mut state = shared.lock();
    if let Some(parent) = reply_to
        && !state.messages.contains_key(&(chat_id, parent))
    {
        if !without_reply {
            return error(400, "Bad Request: message to be replied not found");
        }
        reply_to = None;
    }
    let message_id = state.message_id(chat_id);
    let mut message = json!({
        "message_id": message_id,
        "date": now(),
        "chat": chat_of(chat_id),
        "from": bot_user(),
    });
    if let Some(parent) = reply_to.and_then(|id| state.messages.get(&(chat_id, id))) {
        message["reply_to_message"] = parent.clone();
    }
    match (&file, method) {
        (Some((_, content)), "sendPhoto") => {
            state.next_file += 1;
            let id = format!("SENT{}", state.next_file);
            message["photo"] = json!([{"file_id": id, "file_unique_id": format!("U{id}"), "width": 800, "height": 600, "file_size": content.len()}]);
            if let Some(caption) = &text {
                message["caption"] = json!(caption);
            }
        }
        (Some((name, content)), _) => {
            state.next_file += 1;
            let id = format!("SENT{}", state.next_file);
            message["document"] = json!({"file_id": id, "file_unique_id": format!("U{id}"), "file_name": name, "file_size": content.len()});
            if let Some(caption) = &text {
                message["caption"] = json!(caption);
            }
        }
        (None, _) => message["text"] = json!(text.clone().unwrap_or_default()),
    }
    state
        .messages
        .insert((chat_id, message_id), message.clone());
    state.sent.push(Sent {
        method: method.to_owned(),
        chat_id,
        message_id,
        text,
        reply_to,
        file,
    });
    drop(state);
    shared.sent.send_modify(|count| *count += 1);
    ok(message)
}

async fn download(
    State(shared): State<Shared>,
    Path((bot, path)): Path<(String, String)>,
) -> Response {
    let state = shared.lock();
    if bot.strip_prefix("bot") != Some(state.token.as_str()) {
        return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    }
    match state.files.values().find(|(stored, _)| *stored == path) {
        Some((_, content)) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            Bytes::from(content.clone()),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}
