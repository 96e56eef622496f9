//! The test's side of the fake: start it, act as users, read what the bot sent, make
//! requests fail, and deliver updates to the bot's webhook.

use super::*;

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

    /// `user` presses the inline keyboard button with `callback_data` under the bot's message
    /// `message_id` in chat `chat_id`: a `callback_query` update, as Telegram sends it. Returns
    /// the query's id, or `None` when that message has no such button.
    pub fn press_button(
        &self,
        user: &User,
        chat_id: i64,
        message_id: i64,
        callback_data: &str,
    ) -> Option<String> {
        let message = self
            .shared
            .lock()
            .messages
            .get(&(chat_id, message_id))
            .cloned()?;
        let has_button = message["reply_markup"]["inline_keyboard"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .any(|button| button["callback_data"] == json!(callback_data));
        if !has_button {
            return None;
        }
        let id = {
            let mut state = self.shared.lock();
            state.next_callback += 1;
            let id = format!("{}{:08}", user.id, state.next_callback);
            state.callback_queries.insert(id.clone(), false);
            id
        };
        self.push_update(
            "callback_query",
            json!({
                "id": id, "from": user.json(), "message": message,
                "chat_instance": format!("{}", chat_id.unsigned_abs() * 7 + 3),
                "data": callback_data,
            }),
        );
        Some(id)
    }

    /// How the bot answered callback query `id`, once it has; `None` if it did not within
    /// `timeout`.
    pub async fn wait_for_callback_answer(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Option<CallbackAnswer> {
        let deadline = Instant::now() + timeout;
        let mut changes = self.shared.sent.subscribe();
        loop {
            let found = self
                .shared
                .lock()
                .callback_answers
                .iter()
                .find(|answer| answer.callback_query_id == id)
                .cloned();
            if found.is_some() {
                return found;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if tokio::time::timeout(left, changes.changed()).await.is_err() {
                return None;
            }
        }
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

    /// How many getUpdates calls were ended by a concurrent one (answered 409 "terminated by
    /// other getUpdates request"), as when two instances poll one bot.
    pub fn get_updates_conflicts(&self) -> usize {
        self.shared.lock().get_updates_conflicts
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
