//! The test's side of the fake: start it, act as users, read what the bot sent, make
//! requests fail.

use super::*;

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
        self.interaction(user, channel_id, 2, name, options)
    }

    /// An agent types the string argument `option` of a slash command whose option has
    /// autocomplete: Discord sends an APPLICATION_COMMAND_AUTOCOMPLETE interaction (type 4)
    /// with the option `focused`, answered with a type 8 callback. Returns the interaction id;
    /// [`FakeDiscord::wait_for_choices`] reads the answer.
    pub fn agent_types_argument(
        &self,
        agent: &User,
        channel_id: u64,
        name: &str,
        option: &str,
        typed: &str,
    ) -> u64 {
        let options = vec![json!({"name": option, "type": 3, "value": typed, "focused": true})];
        self.interaction(agent, Some(channel_id), 4, name, options)
    }

    /// Dispatches an interaction of `kind` (2 a command, 4 autocomplete) with `options`.
    fn interaction(
        &self,
        user: &User,
        channel_id: Option<u64>,
        kind: u8,
        name: &str,
        options: Vec<Value>,
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
        if kind == 4 {
            inner.autocompletes.insert(id, token.clone());
        } else {
            inner.interactions.insert(id, (token.clone(), channel_id));
        }
        drop(inner);
        let mut interaction = json!({
            "id": id.to_string(), "application_id": APPLICATION_ID.to_string(), "type": kind,
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

    /// `customer` presses the button with `custom_id` under the bot's message `message_id` in
    /// their DM: Discord dispatches a MESSAGE_COMPONENT interaction (type 3). Returns the
    /// interaction id, or `None` when that message (in their DM) has no such button.
    pub fn customer_presses_button(
        &self,
        customer: &User,
        message_id: u64,
        custom_id: &str,
    ) -> Option<u64> {
        let channel_id = self.dm_channel_of(customer);
        let mut inner = self.shared.lock();
        let message = inner.messages.get(&message_id).cloned()?;
        if snowflake(message.get("channel_id")) != Some(channel_id) {
            return None;
        }
        let has_button = message["components"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| row["components"].as_array())
            .flatten()
            .any(|button| button["custom_id"] == json!(custom_id));
        if !has_button {
            return None;
        }
        let id = inner.id();
        let token = format!("interaction-token-{id}");
        inner.interactions.insert(id, (token.clone(), channel_id));
        inner.component_interactions.insert(id, message_id);
        drop(inner);
        let interaction = json!({
            "id": id.to_string(), "application_id": APPLICATION_ID.to_string(), "type": 3,
            "data": {"custom_id": custom_id, "component_type": 2},
            "message": message,
            "channel_id": channel_id.to_string(),
            "channel": {"id": channel_id.to_string(), "type": 1},
            "user": customer.json(), "context": 1,
            "token": token, "version": 1, "locale": "en-US", "entitlements": [],
            "app_permissions": "2048", "attachment_size_limit": 26_214_400,
            "authorizing_integration_owners": {},
        });
        self.shared.dispatch("INTERACTION_CREATE", interaction);
        Some(id)
    }

    /// The answer to interaction `interaction` (a message the bot sent as its response), once
    /// there is one; `None` if there is none within `timeout`.
    pub async fn wait_for_interaction_answer(
        &self,
        interaction: u64,
        timeout: Duration,
    ) -> Option<Sent> {
        self.wait_for_sent(timeout, |sent| sent.interaction == Some(interaction))
            .await
    }

    /// The choices the bot answered an autocomplete interaction with (their names), once it
    /// has answered; `None` if it did not within `timeout`.
    pub async fn wait_for_choices(
        &self,
        interaction: u64,
        timeout: Duration,
    ) -> Option<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut changes = self.shared.sent.subscribe();
        loop {
            if let Some(choices) = self.shared.lock().choices.get(&interaction) {
                return Some(
                    choices
                        .iter()
                        .filter_map(|choice| choice["name"].as_str().map(str::to_owned))
                        .collect(),
                );
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if tokio::time::timeout(left, changes.changed()).await.is_err() {
                return None;
            }
        }
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
