//! A fake Discord on a local port: the REST API under `/api/v10` and a gateway websocket, after
//! <https://discord.com/developers/docs>.
//!
//! REST: `GET /gateway`, `GET /gateway/bot`, `GET /users/@me`, `GET /oauth2/applications/@me`,
//! `POST /users/@me/channels` (open a DM), `GET /channels/{id}`, `GET /channels/{id}/messages`
//! (history: `after` or `before`, `limit` 1-100, default 50, newest first), `POST
//! /channels/{id}/messages` (JSON, or multipart with `payload_json` and `files[n]`), `POST
//! /channels/{id}/messages/{message}/threads`, `PUT` (and `POST`) application commands, global
//! or per guild, and `POST /interactions/{id}/{token}/callback`. Files users send are served
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
    pub name: String,
}

impl User {
    pub fn new(id: u64, name: &str) -> User {
        User {
            id,
            name: name.to_owned(),
        }
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id.to_string(), "username": self.name, "global_name": self.name,
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

impl FakeDiscord {
    /// Starts the fake for a bot with `token` on a free local port.
    pub async fn start(token: &str) -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free local port");
        let address = listener.local_addr().expect("local address");
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner {
                token: token.to_owned(),
                next_id: 1_200_000_000_000_000_000,
                ..Inner::default()
            })),
            address,
            dispatched: watch::channel(0).0,
            sent: watch::channel(0).0,
            cut: watch::channel((0, 0)).0,
        };
        let api = Router::new()
            .route("/gateway", get(gateway_url))
            .route("/gateway/bot", get(gateway_bot))
            .route("/users/@me", get(current_user))
            .route("/oauth2/applications/@me", get(application))
            .route("/users/@me/channels", post(open_dm))
            .route("/channels/{channel}", get(channel))
            .route(
                "/channels/{channel}/messages",
                post(create_message).get(channel_messages),
            )
            .route(
                "/channels/{channel}/messages/{message}/threads",
                post(start_thread),
            )
            .route(
                "/applications/{application}/commands",
                put(set_commands).post(add_command),
            )
            .route(
                "/applications/{application}/guilds/{guild}/commands",
                put(set_commands).post(add_command),
            )
            .route(
                "/interactions/{interaction}/{token}/callback",
                post(interaction_callback),
            );
        let app = Router::new()
            .nest("/api/v10", api)
            .route("/gateway", get(gateway))
            .route("/attachments/{*path}", get(download))
            .layer(DefaultBodyLimit::max(64 << 20))
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                authorize,
            ))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeDiscord { shared, server }
    }

    /// The base URL to give the client instead of https://discord.com.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.address)
    }

    fn message(&self, channel_id: u64, author: &User, content: &str, guild: bool) -> Value {
        new_message(&mut self.shared.lock(), channel_id, author, content, guild)
    }

    /// A customer writes in a DM the moment the bot's next session is ready: the
    /// MESSAGE_CREATE follows READY in the same burst of dispatches.
    pub fn customer_writes_when_ready(&self, customer: &User, text: &str) {
        self.dm_channel_of(customer);
        self.shared
            .lock()
            .when_ready
            .push((customer.clone(), text.to_owned()));
    }

    fn attach(&self, message: &mut Value, upload: &Upload) {
        let mut inner = self.shared.lock();
        let id = inner.id();
        let channel = message["channel_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let path = format!("{channel}/{id}/{}", upload.file_name);
        inner.files.insert(path.clone(), upload.content.clone());
        let url = format!("http://{}/attachments/{path}", self.shared.address);
        let attachment = json!({
            "id": id.to_string(), "filename": upload.file_name, "size": upload.content.len(),
            "url": url, "proxy_url": url, "content_type": upload.content_type,
        });
        if let Some(list) = message["attachments"].as_array_mut() {
            list.push(attachment);
        }
        if let Some(id) = snowflake(message.get("id")) {
            inner.messages.insert(id, message.clone());
        }
    }

    /// The DM channel between the bot and `user`, opened on first use.
    pub fn dm_channel_of(&self, user: &User) -> u64 {
        let mut inner = self.shared.lock();
        if let Some(channel) = inner.dms.get(&user.id) {
            return *channel;
        }
        let channel = inner.id();
        inner.dms.insert(user.id, channel);
        channel
    }

    /// A customer writes to the bot in a DM; returns the message id.
    pub fn customer_writes(&self, customer: &User, text: &str) -> u64 {
        let channel = self.dm_channel_of(customer);
        let message = self.message(channel, customer, text, false);
        self.shared.dispatch("MESSAGE_CREATE", message.clone());
        snowflake(message.get("id")).unwrap_or_default()
    }

    /// A customer sends files in a DM, with optional text; returns the message id.
    pub fn customer_sends_files(&self, customer: &User, text: &str, uploads: &[Upload]) -> u64 {
        let channel = self.dm_channel_of(customer);
        let mut message = self.message(channel, customer, text, false);
        for upload in uploads {
            self.attach(&mut message, upload);
        }
        self.shared.dispatch("MESSAGE_CREATE", message.clone());
        snowflake(message.get("id")).unwrap_or_default()
    }

    /// A customer edits a message of theirs.
    pub fn customer_edits(&self, message_id: u64, text: &str) {
        let mut inner = self.shared.lock();
        let Some(message) = inner.messages.get_mut(&message_id) else {
            return;
        };
        message["content"] = json!(text);
        message["edited_timestamp"] = json!(timestamp());
        let message = message.clone();
        drop(inner);
        self.shared.dispatch("MESSAGE_UPDATE", message);
    }

    /// A customer deletes a message of theirs: the event names only the message and channel.
    pub fn customer_deletes(&self, message_id: u64) {
        let Some(message) = self.shared.lock().messages.remove(&message_id) else {
            return;
        };
        let mut event = json!({"id": message["id"], "channel_id": message["channel_id"]});
        if let Some(guild) = message.get("guild_id") {
            event["guild_id"] = guild.clone();
        }
        self.shared.dispatch("MESSAGE_DELETE", event);
    }

    /// Discord sends a message's MESSAGE_CREATE again (as after a resume that overlapped what
    /// the client had seen).
    pub fn dispatch_again(&self, message_id: u64) {
        let message = self.shared.lock().messages.get(&message_id).cloned();
        if let Some(message) = message {
            self.shared.dispatch("MESSAGE_CREATE", message);
        }
    }

    /// Someone writes in a guild channel or thread, optionally replying to a message there.
    pub fn guild_message(
        &self,
        channel_id: u64,
        author: &User,
        reply_to: Option<u64>,
        text: &str,
        uploads: &[Upload],
    ) -> u64 {
        let mut message = self.message(channel_id, author, text, true);
        if let Some(parent) = reply_to {
            let referenced = self.shared.lock().messages.get(&parent).cloned();
            message["type"] = json!(19);
            message["message_reference"] = json!({
                "message_id": parent.to_string(), "channel_id": channel_id.to_string(),
                "guild_id": GUILD_ID.to_string(),
            });
            message["referenced_message"] = referenced.unwrap_or(Value::Null);
        }
        for upload in uploads {
            self.attach(&mut message, upload);
        }
        if let Some(id) = snowflake(message.get("id")) {
            self.shared.lock().messages.insert(id, message.clone());
        }
        self.shared.dispatch("MESSAGE_CREATE", message.clone());
        snowflake(message.get("id")).unwrap_or_default()
    }

    /// An agent writes in a ticket's thread; returns the message id.
    pub fn agent_writes_in_thread(&self, agent: &User, thread_id: u64, text: &str) -> u64 {
        self.guild_message(thread_id, agent, None, text, &[])
    }

    /// An agent runs a slash command in a channel or thread; `options` are name and value
    /// (a JSON string or integer). Returns the interaction id.
    pub fn agent_runs_slash_command(
        &self,
        agent: &User,
        channel_id: u64,
        name: &str,
        options: &[(&str, Value)],
    ) -> u64 {
        self.slash_command(agent, Some(channel_id), name, options)
    }

    /// A user runs a slash command; in a DM (`channel_id` None) the DM channel is used.
    pub fn slash_command(
        &self,
        user: &User,
        channel_id: Option<u64>,
        name: &str,
        options: &[(&str, Value)],
    ) -> u64 {
        let in_guild = channel_id.is_some();
        let channel_id = channel_id.unwrap_or_else(|| self.dm_channel_of(user));
        let mut inner = self.shared.lock();
        let id = inner.id();
        let command_id = inner
            .commands
            .iter()
            .flat_map(|(_, set)| set.as_array().cloned().unwrap_or_default())
            .find(|command| command["name"] == json!(name))
            .and_then(|command| snowflake(command.get("id")))
            .unwrap_or(1);
        let token = format!("interaction-token-{id}");
        inner.interactions.insert(id, (token.clone(), channel_id));
        drop(inner);
        let options: Vec<Value> = options
            .iter()
            .map(|(name, value)| {
                let kind = if value.is_i64() || value.is_u64() {
                    4
                } else {
                    3
                };
                json!({"name": name, "type": kind, "value": value})
            })
            .collect();
        let mut interaction = json!({
            "id": id.to_string(), "application_id": APPLICATION_ID.to_string(), "type": 2,
            "data": {"id": command_id.to_string(), "name": name, "type": 1, "options": options},
            "channel_id": channel_id.to_string(),
            "channel": {"id": channel_id.to_string(), "type": if in_guild { 0 } else { 1 }},
            "token": token, "version": 1, "locale": "en-US", "entitlements": [],
            "app_permissions": "2048", "attachment_size_limit": 26_214_400,
            "authorizing_integration_owners": {},
        });
        if in_guild {
            interaction["guild_id"] = json!(GUILD_ID.to_string());
            interaction["guild_locale"] = json!("en-US");
            interaction["member"] = json!({
                "user": user.json(), "roles": [], "joined_at": timestamp(), "deaf": false,
                "mute": false, "flags": 0, "permissions": "2048",
            });
            interaction["context"] = json!(0);
        } else {
            interaction["user"] = user.json();
            interaction["context"] = json!(1);
        }
        self.shared.dispatch("INTERACTION_CREATE", interaction);
        id
    }

    /// Cuts every gateway connection as a network failure would (close code 4000, which a
    /// client may resume after).
    pub fn drop_connection(&self) {
        self.shared
            .cut
            .send_modify(|(count, code)| (*count, *code) = (*count + 1, 4000));
    }

    /// Asks connected clients to reconnect and resume (op 7).
    pub fn request_reconnect(&self) {
        self.shared
            .cut
            .send_modify(|(count, code)| (*count, *code) = (*count + 1, 7));
    }

    /// The next request whose "METHOD /path" (path after /api/v10, ids as in the request)
    /// starts with `route` fails this way.
    pub fn fail_next(&self, route: &str, failure: Failure) {
        self.shared
            .lock()
            .failures
            .entry(route.to_owned())
            .or_default()
            .push(failure);
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

    /// The threads the bot started.
    pub fn threads(&self) -> Vec<Thread> {
        self.shared.lock().threads.clone()
    }

    /// The command sets the bot registered: the route ("global" or the guild id) and the
    /// commands as sent.
    pub fn registered_commands(&self) -> Vec<(String, Value)> {
        self.shared.lock().commands.clone()
    }

    /// How often a client identified, resumed and sent a heartbeat.
    pub fn identifies(&self) -> usize {
        self.shared.lock().identifies
    }

    /// Waits until clients have identified `count` times in all (a session is open), so that
    /// what people write next reaches the bot.
    pub async fn wait_for_identify(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.identifies() < count {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Waits until clients have resumed `count` times in all.
    pub async fn wait_for_resume(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.resumes() < count {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    pub fn resumes(&self) -> usize {
        self.shared.lock().resumes
    }

    pub fn heartbeats(&self) -> usize {
        self.shared.lock().heartbeats
    }

    /// REST requests so far, as "METHOD /path".
    pub fn calls(&self) -> Vec<String> {
        self.shared.lock().calls.clone()
    }
}

/// Checks the bot token of REST requests (files and the gateway need none), records the call
/// and serves queued failures.
async fn authorize(
    State(shared): State<Shared>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let Some(route) = path.strip_prefix("/api/v10") else {
        return next.run(request).await;
    };
    let call = format!("{} {route}", request.method());
    {
        let mut inner = shared.lock();
        let expected = format!("Bot {}", inner.token);
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        // Interaction callbacks are authorised by their token in the path.
        if given != Some(expected.as_str()) && !route.starts_with("/interactions/") {
            return error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
        }
        inner.calls.push(call.clone());
        let failure = inner
            .failures
            .iter_mut()
            .find(|(prefix, queued)| call.starts_with(prefix.as_str()) && !queued.is_empty())
            .map(|(_, queued)| queued.remove(0));
        if let Some(failure) = failure {
            return failure_response(failure);
        }
    }
    next.run(request).await
}

async fn gateway_url(State(shared): State<Shared>) -> Response {
    axum::Json(json!({"url": format!("ws://{}/gateway", shared.address)})).into_response()
}

async fn gateway_bot(State(shared): State<Shared>) -> Response {
    axum::Json(json!({
        "url": format!("ws://{}/gateway", shared.address),
        "shards": 1,
        "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000,
                                "max_concurrency": 1},
    }))
    .into_response()
}

async fn current_user() -> Response {
    let mut me = bot_user();
    me["verified"] = json!(true);
    me["mfa_enabled"] = json!(false);
    me["flags"] = json!(0);
    axum::Json(me).into_response()
}

async fn application() -> Response {
    axum::Json(json!({
        "id": APPLICATION_ID.to_string(), "name": "Helpdesk", "icon": null, "description": "",
        "bot_public": false, "bot_require_code_grant": false, "verify_key": "00",
        "flags": 0, "bot": bot_user(),
    }))
    .into_response()
}

async fn open_dm(State(shared): State<Shared>, axum::Json(body): axum::Json<Value>) -> Response {
    let Some(user_id) = snowflake(body.get("recipient_id")) else {
        return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
    };
    let mut inner = shared.lock();
    let channel = match inner.dms.get(&user_id) {
        Some(channel) => *channel,
        None => {
            let channel = inner.id();
            inner.dms.insert(user_id, channel);
            channel
        }
    };
    let user = User::new(user_id, "Customer");
    axum::Json(dm_json(channel, &user)).into_response()
}

fn dm_json(channel: u64, user: &User) -> Value {
    json!({
        "id": channel.to_string(), "type": 1, "last_message_id": null,
        "recipients": [user.json()], "flags": 0,
    })
}

async fn channel(State(shared): State<Shared>, Path(channel): Path<String>) -> Response {
    let Ok(channel) = channel.parse::<u64>() else {
        return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    };
    let inner = shared.lock();
    if channel == AGENTS_CHANNEL_ID {
        return axum::Json(json!({
            "id": channel.to_string(), "type": 0, "guild_id": GUILD_ID.to_string(),
            "name": "support", "position": 0, "permission_overwrites": [], "nsfw": false,
            "parent_id": null, "rate_limit_per_user": 0, "flags": 0,
        }))
        .into_response();
    }
    if let Some(thread) = inner.threads.iter().find(|thread| thread.id == channel) {
        return axum::Json(thread_json(thread)).into_response();
    }
    if let Some((user, _)) = inner.dms.iter().find(|(_, dm)| **dm == channel) {
        return axum::Json(dm_json(channel, &User::new(*user, "Customer"))).into_response();
    }
    error(StatusCode::NOT_FOUND, 10003, "Unknown Channel")
}

/// Get Channel Messages: with `after`, the `limit` oldest messages after it; otherwise the
/// `limit` newest (before `before`, if given). Either way the page comes newest first, as
/// Discord sends it, and without the gateway-only `guild_id` and `member`.
async fn channel_messages(
    State(shared): State<Shared>,
    Path(channel): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Ok(channel) = channel.parse::<u64>() else {
        return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    };
    let mut after = None;
    let mut before = None;
    let mut limit = 50u64;
    for pair in query.as_deref().unwrap_or_default().split('&') {
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        let Ok(value) = value.parse::<u64>() else {
            return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
        };
        match name {
            "after" => after = Some(value),
            "before" => before = Some(value),
            "limit" if (1..=100).contains(&value) => limit = value,
            "limit" => return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body"),
            _ => {}
        }
    }
    let inner = shared.lock();
    let known = channel == AGENTS_CHANNEL_ID
        || inner.threads.iter().any(|thread| thread.id == channel)
        || inner.dms.values().any(|dm| *dm == channel);
    if !known {
        return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    }
    let mut in_channel: Vec<(u64, &Value)> = inner
        .messages
        .iter()
        .filter(|(_, message)| snowflake(message.get("channel_id")) == Some(channel))
        .map(|(id, message)| (*id, message))
        .collect();
    in_channel.sort_unstable_by_key(|(id, _)| *id);
    let take = usize::try_from(limit).unwrap_or(50);
    let mut page: Vec<(u64, &Value)> = match after {
        Some(after) => in_channel
            .into_iter()
            .filter(|(id, _)| *id > after)
            .take(take)
            .collect(),
        None => {
            let mut older: Vec<(u64, &Value)> = in_channel
                .into_iter()
                .filter(|(id, _)| before.is_none_or(|before| *id < before))
                .collect();
            let skip = older.len().saturating_sub(take);
            older.drain(..skip);
            older
        }
    };
    page.reverse();
    let page: Vec<Value> = page
        .into_iter()
        .map(|(_, message)| {
            let mut message = message.clone();
            if let Some(fields) = message.as_object_mut() {
                fields.remove("guild_id");
                fields.remove("member");
            }
            message
        })
        .collect();
    axum::Json(Value::Array(page)).into_response()
}

fn thread_json(thread: &Thread) -> Value {
    json!({
        "id": thread.id.to_string(), "type": 11, "guild_id": GUILD_ID.to_string(),
        "parent_id": thread.parent_id.to_string(), "name": thread.name,
        "owner_id": BOT_ID.to_string(), "message_count": 0, "member_count": 1,
        "rate_limit_per_user": 0, "flags": 0, "total_message_sent": 0,
        "thread_metadata": {"archived": false, "auto_archive_duration": 10080,
                            "archive_timestamp": timestamp(), "locked": false},
    })
}

/// The JSON body of a request, or the `payload_json` and `files[n]` parts of a multipart one.
async fn body_of(request: Request) -> Result<(Value, Vec<(String, Vec<u8>)>), Response> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("multipart/form-data"));
    let invalid = |why: String| error(StatusCode::BAD_REQUEST, 50035, &why);
    if multipart {
        let mut form = Multipart::from_request(request, &())
            .await
            .map_err(|rejection| invalid(rejection.to_string()))?;
        let mut payload = json!({});
        let mut files = Vec::new();
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|failure| invalid(failure.to_string()))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let bytes = field
                .bytes()
                .await
                .map_err(|failure| invalid(failure.to_string()))?;
            if name == "payload_json" {
                payload = serde_json::from_slice(&bytes)
                    .map_err(|failure| invalid(failure.to_string()))?;
            } else if let Some(file_name) = file_name {
                files.push((file_name, bytes.to_vec()));
            }
        }
        return Ok((payload, files));
    }
    let body = axum::body::to_bytes(request.into_body(), 64 << 20)
        .await
        .map_err(|failure| invalid(failure.to_string()))?;
    if body.is_empty() {
        return Ok((json!({}), Vec::new()));
    }
    serde_json::from_slice(&body)
        .map(|payload| (payload, Vec::new()))
        .map_err(|failure| invalid(failure.to_string()))
}

async fn create_message(
    State(shared): State<Shared>,
    Path(channel): Path<String>,
    request: Request,
) -> Response {
    let Ok(channel_id) = channel.parse::<u64>() else {
        return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    };
    let (payload, files) = match body_of(request).await {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let content = payload["content"].as_str().unwrap_or_default().to_owned();
    if content.is_empty() && files.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            50006,
            "Cannot send an empty message",
        );
    }
    if content.chars().count() > 2000 {
        return error(
            StatusCode::BAD_REQUEST,
            50035,
            "Invalid Form Body: content: Must be 2000 or fewer in length.",
        );
    }
    let mut inner = shared.lock();
    let guild = channel_id == AGENTS_CHANNEL_ID
        || inner.threads.iter().any(|thread| thread.id == channel_id);
    let is_dm = inner.dms.values().any(|dm| *dm == channel_id);
    if !guild && !is_dm {
        return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    }
    let reference = snowflake(payload.pointer("/message_reference/message_id"));
    let fail_if_missing = payload
        .pointer("/message_reference/fail_if_not_exists")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let referenced = reference.and_then(|id| inner.messages.get(&id).cloned());
    if reference.is_some() && referenced.is_none() && fail_if_missing {
        return error(
            StatusCode::BAD_REQUEST,
            50035,
            "Invalid Form Body: message_reference: Unknown message",
        );
    }
    let id = inner.id();
    let mut attachments = Vec::new();
    for (name, content) in &files {
        let attachment_id = inner.id();
        let path = format!("{channel_id}/{attachment_id}/{name}");
        inner.files.insert(path.clone(), content.clone());
        let url = format!("http://{}/attachments/{path}", shared.address);
        attachments.push(json!({
            "id": attachment_id.to_string(), "filename": name, "size": content.len(),
            "url": url, "proxy_url": url,
        }));
    }
    let mut message = json!({
        "id": id.to_string(), "channel_id": channel_id.to_string(), "author": bot_user(),
        "content": content, "timestamp": timestamp(), "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [],
        "attachments": attachments, "embeds": [], "pinned": false,
        "type": if referenced.is_some() { 19 } else { 0 }, "flags": 0,
    });
    if guild {
        message["guild_id"] = json!(GUILD_ID.to_string());
    }
    if let (Some(parent), Some(referenced)) = (reference, referenced) {
        message["message_reference"] = json!({
            "message_id": parent.to_string(), "channel_id": channel_id.to_string(),
        });
        message["referenced_message"] = referenced;
    }
    inner.messages.insert(id, message.clone());
    inner.sent.push(Sent {
        channel_id,
        message_id: id,
        content,
        reply_to: reference.filter(|_| message.get("referenced_message").is_some()),
        files,
        interaction: None,
        ephemeral: false,
    });
    drop(inner);
    shared.sent.send_modify(|count| *count += 1);
    // Discord tells the bot of its own messages too.
    shared.dispatch("MESSAGE_CREATE", message.clone());
    axum::Json(message).into_response()
}

async fn start_thread(
    State(shared): State<Shared>,
    Path((channel, message)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let (Ok(channel_id), Ok(message_id)) = (channel.parse::<u64>(), message.parse::<u64>()) else {
        return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
    };
    let Some(name) = body["name"].as_str().filter(|name| !name.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body: name");
    };
    if name.chars().count() > 100 {
        return error(
            StatusCode::BAD_REQUEST,
            50035,
            "Invalid Form Body: name: Must be between 1 and 100 in length.",
        );
    }
    let mut inner = shared.lock();
    let known = inner
        .messages
        .get(&message_id)
        .is_some_and(|message| snowflake(message.get("channel_id")) == Some(channel_id));
    if !known {
        return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
    }
    if inner.threads.iter().any(|thread| thread.id == message_id) {
        return error(
            StatusCode::BAD_REQUEST,
            160004,
            "A thread has already been created for this message",
        );
    }
    // A thread started from a message has that message's id.
    let thread = Thread {
        id: message_id,
        parent_id: channel_id,
        name: name.to_owned(),
    };
    inner.threads.push(thread.clone());
    drop(inner);
    let mut created = thread_json(&thread);
    created["newly_created"] = json!(true);
    shared.dispatch("THREAD_CREATE", created);
    (StatusCode::CREATED, axum::Json(thread_json(&thread))).into_response()
}

async fn set_commands(
    State(shared): State<Shared>,
    Path(params): Path<HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if params.get("application").map(String::as_str) != Some(&APPLICATION_ID.to_string()) {
        return error(StatusCode::NOT_FOUND, 10002, "Unknown Application");
    }
    let Some(commands) = body.as_array() else {
        return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
    };
    let scope = params
        .get("guild")
        .cloned()
        .unwrap_or_else(|| "global".to_owned());
    let mut inner = shared.lock();
    let mut stored = Vec::new();
    for command in commands {
        let Some(name) = command["name"].as_str() else {
            return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body: name");
        };
        let valid_name = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        let description = command["description"].as_str().unwrap_or_default();
        if !valid_name || description.is_empty() || description.chars().count() > 100 {
            return error(
                StatusCode::BAD_REQUEST,
                50035,
                &format!("Invalid Form Body: command {name:?}"),
            );
        }
        let id = inner.id();
        let mut command = command.clone();
        command["id"] = json!(id.to_string());
        command["application_id"] = json!(APPLICATION_ID.to_string());
        command["version"] = json!(id.to_string());
        command["type"] = command.get("type").cloned().unwrap_or(json!(1));
        if scope != "global" {
            command["guild_id"] = json!(scope);
        }
        stored.push(command);
    }
    inner.commands.retain(|(existing, _)| *existing != scope);
    inner.commands.push((scope, Value::Array(stored.clone())));
    axum::Json(Value::Array(stored)).into_response()
}

async fn add_command(
    State(shared): State<Shared>,
    Path(params): Path<HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let scope = params
        .get("guild")
        .cloned()
        .unwrap_or_else(|| "global".to_owned());
    let mut inner = shared.lock();
    let id = inner.id();
    let mut command = body;
    command["id"] = json!(id.to_string());
    command["application_id"] = json!(APPLICATION_ID.to_string());
    command["version"] = json!(id.to_string());
    match inner
        .commands
        .iter_mut()
        .find(|(existing, _)| *existing == scope)
    {
        Some((_, set)) => {
            if let Some(list) = set.as_array_mut() {
                list.push(command.clone());
            }
        }
        None => inner
            .commands
            .push((scope, Value::Array(vec![command.clone()]))),
    }
    (StatusCode::CREATED, axum::Json(command)).into_response()
}

async fn interaction_callback(
    State(shared): State<Shared>,
    Path((interaction, token)): Path<(String, String)>,
    request: Request,
) -> Response {
    let (payload, files) = match body_of(request).await {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let Ok(interaction) = interaction.parse::<u64>() else {
        return error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
    };
    let mut inner = shared.lock();
    let channel_id = match inner.interactions.get(&interaction) {
        Some((known, channel)) if *known == token => *channel,
        _ => return error(StatusCode::NOT_FOUND, 10062, "Unknown interaction"),
    };
    // An interaction is answered once.
    inner.interactions.remove(&interaction);
    let data = payload.get("data").cloned().unwrap_or(Value::Null);
    let content = data["content"].as_str().unwrap_or_default().to_owned();
    let ephemeral = data["flags"].as_u64().is_some_and(|flags| flags & 64 != 0);
    let message_id = inner.id();
    inner.sent.push(Sent {
        channel_id,
        message_id,
        content,
        reply_to: None,
        files,
        interaction: Some(interaction),
        ephemeral,
    });
    drop(inner);
    shared.sent.send_modify(|count| *count += 1);
    StatusCode::NO_CONTENT.into_response()
}

async fn download(State(shared): State<Shared>, Path(path): Path<String>) -> Response {
    match shared.lock().files.get(&path) {
        Some(content) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            Bytes::from(content.clone()),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

async fn gateway(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Response {
    let version_ok = query
        .unwrap_or_default()
        .split('&')
        .any(|pair| pair == "v=10");
    upgrade.on_upgrade(move |socket| connection(socket, shared, version_ok))
}

fn op(code: u8, data: Value) -> WsMessage {
    WsMessage::Text(
        json!({"op": code, "d": data, "s": null, "t": null})
            .to_string()
            .into(),
    )
}

fn close(code: u16, reason: &str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}

/// One gateway connection: Hello, then Identify or Resume, then dispatches as they come.
async fn connection(mut socket: WebSocket, shared: Shared, version_ok: bool) {
    if !version_ok {
        let _ = socket.send(close(4012, "Invalid API version")).await;
        return;
    }
    if socket
        .send(op(10, json!({"heartbeat_interval": HEARTBEAT_INTERVAL_MS})))
        .await
        .is_err()
    {
        return;
    }
    let mut dispatched = shared.dispatched.subscribe();
    let mut cut = shared.cut.subscribe();
    cut.borrow_and_update();
    // The session this connection serves and how many of its dispatches it has sent.
    let mut session: Option<(usize, usize)> = None;
    loop {
        if let Some((index, sent)) = session.as_mut() {
            let pending: Vec<(usize, Value)> = {
                let inner = shared.lock();
                inner.sessions[*index]
                    .dispatches
                    .iter()
                    .enumerate()
                    .skip(*sent)
                    .map(|(at, dispatch)| (at, dispatch.clone()))
                    .collect()
            };
            for (at, mut dispatch) in pending {
                dispatch["op"] = json!(0);
                dispatch["s"] = json!(at + 1);
                if socket
                    .send(WsMessage::Text(dispatch.to_string().into()))
                    .await
                    .is_err()
                {
                    return;
                }
                *sent = at + 1;
            }
        }
        tokio::select! {
            changed = dispatched.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            changed = cut.changed() => {
                if changed.is_err() {
                    return;
                }
                let (_, code) = *cut.borrow_and_update();
                if code == 7 {
                    let _ = socket.send(op(7, Value::Null)).await;
                } else {
                    let _ = socket.send(close(code, "Unknown error")).await;
                }
                return;
            }
            received = socket.recv() => {
                let Some(Ok(message)) = received else {
                    return;
                };
                let payload: Value = match message {
                    WsMessage::Text(text) => match serde_json::from_str(text.as_str()) {
                        Ok(payload) => payload,
                        Err(_) => {
                            let _ = socket.send(close(4002, "Error while decoding payload.")).await;
                            return;
                        }
                    },
                    WsMessage::Close(_) => return,
                    _ => continue,
                };
                match payload["op"].as_u64() {
                    Some(1) => {
                        shared.lock().heartbeats += 1;
                        if socket.send(op(11, Value::Null)).await.is_err() {
                            return;
                        }
                    }
                    Some(2) => {
                        if session.is_some() {
                            let _ = socket.send(close(4005, "Already authenticated.")).await;
                            return;
                        }
                        if !token_ok(&shared, &payload["d"]["token"]) {
                            let _ = socket.send(close(4004, "Authentication failed.")).await;
                            return;
                        }
                        session = Some((identify(&shared), 0));
                    }
                    Some(6) => {
                        if !token_ok(&shared, &payload["d"]["token"]) {
                            let _ = socket.send(close(4004, "Authentication failed.")).await;
                            return;
                        }
                        let wanted = payload["d"]["session_id"].as_str().unwrap_or_default();
                        let seq = payload["d"]["seq"].as_u64().unwrap_or(0) as usize;
                        let resumed = {
                            let mut inner = shared.lock();
                            let found = inner.sessions.iter().position(|s| s.id == wanted);
                            match found {
                                Some(index) if seq <= inner.sessions[index].dispatches.len() => {
                                    inner.resumes += 1;
                                    // Replayed first, then RESUMED, as Discord does.
                                    inner.sessions[index]
                                        .dispatches
                                        .push(json!({"t": "RESUMED", "d": {}}));
                                    Some(index)
                                }
                                _ => None,
                            }
                        };
                        match resumed {
                            Some(index) => session = Some((index, seq)),
                            // Not resumable: the client must identify anew.
                            None => {
                                if socket.send(op(9, json!(false))).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    Some(3 | 4 | 8) => {}
                    _ => {
                        let _ = socket.send(close(4001, "Unknown opcode.")).await;
                        return;
                    }
                }
            }
        }
    }
}

fn token_ok(shared: &Shared, given: &Value) -> bool {
    let given = given.as_str().unwrap_or_default();
    let given = given.strip_prefix("Bot ").unwrap_or(given);
    given == shared.lock().token
}

/// A new message from `author` in `channel_id`, kept for references, edits and history.
fn new_message(
    inner: &mut Inner,
    channel_id: u64,
    author: &User,
    content: &str,
    guild: bool,
) -> Value {
    let id = inner.id();
    let mut message = json!({
        "id": id.to_string(), "channel_id": channel_id.to_string(),
        "author": author.json(), "content": content, "timestamp": timestamp(),
        "edited_timestamp": null, "tts": false, "mention_everyone": false,
        "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
        "pinned": false, "type": 0, "flags": 0,
    });
    if guild {
        message["guild_id"] = json!(GUILD_ID.to_string());
        message["member"] = json!({
            "roles": [], "joined_at": timestamp(), "deaf": false, "mute": false, "flags": 0,
        });
    }
    inner.messages.insert(id, message.clone());
    message
}

/// Opens a session with its READY dispatch; returns the session's index.
fn identify(shared: &Shared) -> usize {
    let mut inner = shared.lock();
    inner.identifies += 1;
    let id = format!("session-{}", inner.id());
    let ready = json!({
        "t": "READY",
        "d": {
            "v": 10, "user": bot_user(), "guilds": [{"id": GUILD_ID.to_string(), "unavailable": true}],
            "session_id": id, "resume_gateway_url": format!("ws://{}/gateway", shared.address),
            "shard": [0, 1],
            "application": {"id": APPLICATION_ID.to_string(), "flags": 0},
            "private_channels": [], "relationships": [],
        }
    });
    let mut dispatches = vec![ready];
    for (customer, text) in std::mem::take(&mut inner.when_ready) {
        let channel = inner.dms.get(&customer.id).copied().unwrap_or_default();
        let message = new_message(&mut inner, channel, &customer, &text, false);
        dispatches.push(json!({"t": "MESSAGE_CREATE", "d": message}));
    }
    inner.sessions.push(Session { id, dispatches });
    inner.sessions.len() - 1
}
