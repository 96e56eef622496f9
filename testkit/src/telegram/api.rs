//! The Bot API as the bot calls it: parameters, method names, webhooks, updates, sending
//! and file downloads.

use super::*;

/// Uploaded files by the multipart field that carried them: (file name, bytes).
pub(super) type Uploads = std::collections::HashMap<String, (String, Vec<u8>)>;

/// The parameters of a call, and the files uploaded with it (multipart) by the field that
/// carries each: `document` for sendDocument, `photo` for sendPhoto, or the field such a
/// parameter names as `attach://<field>`.
pub(super) async fn params_of(request: Request) -> Result<(Value, Uploads), Response> {
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
        let mut files = Uploads::new();
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
                Some(file_name) => {
                    files.insert(name, (file_name, bytes.to_vec()));
                }
                None => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    params.insert(name, Value::String(text));
                }
            }
        }
        return Ok((Value::Object(params), files));
    }
    let body = axum::body::to_bytes(request.into_body(), 64 << 20)
        .await
        .map_err(|failure| error(400, &format!("Bad Request: {failure}")))?;
    if body.is_empty() {
        return Ok((json!({}), Uploads::new()));
    }
    serde_json::from_slice(&body)
        .map(|params| (params, Uploads::new()))
        .map_err(|failure| error(400, &format!("Bad Request: {failure}")))
}

pub(super) async fn api(
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
    let (params, mut files) = match params_of(request).await {
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
            let field = if method == "sendPhoto" {
                "photo"
            } else {
                "document"
            };
            // The file's own field, or another one it names ("attach://<field>", as teloxide
            // sends it).
            let carrier = match text_of(params.get(field)) {
                Some(named) => named.strip_prefix("attach://").map(str::to_owned),
                None => Some(field.to_owned()),
            };
            let Some(file) = carrier.and_then(|carrier| files.remove(&carrier)) else {
                return error(
                    400,
                    &format!("Bad Request: there is no {field} in the request"),
                );
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
        "answerCallbackQuery" => answer_callback_query(&shared, &params),
        "setMyCommands" => {
            shared.lock().commands.push(params);
            ok(json!(true))
        }
        "deleteMyCommands" => ok(json!(true)),
        _ => error(404, "Not Found: method not found"),
    }
}

pub(super) const METHODS: [&str; 13] = [
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
    "answerCallbackQuery",
];

pub(super) fn canonical_method(method: &str) -> String {
    METHODS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(method))
        .map(|known| (*known).to_owned())
        .unwrap_or_else(|| method.to_owned())
}

/// setWebhook: an empty URL removes the webhook; otherwise it must be an http(s) URL, the
/// secret token 1-256 characters of `A-Za-z0-9_-`, and max_connections 1-100.
pub(super) fn set_webhook(shared: &Shared, params: &Value) -> Response {
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

pub(super) async fn get_updates(shared: &Shared, params: &Value) -> Response {
    let offset = integer(params.get("offset")).unwrap_or(0);
    let limit = integer(params.get("limit")).unwrap_or(100).clamp(1, 100) as usize;
    let timeout = integer(params.get("timeout")).unwrap_or(0).clamp(0, 50) as u64;
    let poll = {
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
        // One poller at a time: a new getUpdates ends the one still waiting with 409.
        state.next_poll += 1;
        let id = state.next_poll;
        if let Some(waiting) = state.active_poll.replace(id) {
            state.terminated_polls.insert(waiting);
            state.get_updates_conflicts += 1;
        }
        ActivePoll { shared, id }
    };
    shared.updates.send_modify(|_| {});
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut woken = shared.updates.subscribe();
    loop {
        let ready: Vec<Value> = {
            let mut state = shared.lock();
            if state.terminated_polls.remove(&poll.id) {
                return error(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                );
            }
            state.pending.iter().take(limit).cloned().collect()
        };
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

/// A getUpdates call in progress; it ends when the call is answered or its client went away
/// (the server drops the call then).
struct ActivePoll<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for ActivePoll<'_> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if state.active_poll == Some(self.id) {
            state.active_poll = None;
        }
        state.terminated_polls.remove(&self.id);
    }
}

pub(super) fn send(
    shared: &Shared,
    method: &str,
    params: &Value,
    text: Option<String>,
    file: Option<(String, Vec<u8>)>,
) -> Response {
    let Some(chat_id) = integer(params.get("chat_id")) else {
        return error(400, "Bad Request: chat not found");
    };
    let reply_markup = match inline_keyboard(params) {
        Ok(markup) => markup,
        Err(description) => return error(400, &description),
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
    if let Some(markup) = &reply_markup {
        message["reply_markup"] = markup.clone();
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
        reply_markup,
    });
    drop(state);
    shared.sent.send_modify(|count| *count += 1);
    ok(message)
}

/// The `reply_markup` of a send request when it is an inline keyboard, checked as Telegram
/// checks it: rows of buttons, each with a text and exactly one action; `callback_data` is 1-64
/// bytes.
fn inline_keyboard(params: &Value) -> Result<Option<Value>, String> {
    let Some(markup) = params
        .get("reply_markup")
        .filter(|markup| !markup.is_null())
    else {
        return Ok(None);
    };
    let markup = match markup {
        // Multipart bodies carry nested objects as JSON text.
        Value::String(text) => serde_json::from_str(text)
            .map_err(|_| "Bad Request: can't parse reply keyboard markup JSON object".to_owned())?,
        other => other.clone(),
    };
    let Some(rows) = markup.get("inline_keyboard") else {
        // Other keyboards (reply keyboards, removal) are not inline: kept as they came.
        return Ok(Some(markup));
    };
    let rows = rows
        .as_array()
        .ok_or_else(|| "Bad Request: field \"inline_keyboard\" must be an Array".to_owned())?;
    for row in rows {
        let buttons = row.as_array().ok_or_else(|| {
            "Bad Request: field \"inline_keyboard\" must be an Array of Arrays".to_owned()
        })?;
        for button in buttons {
            if button["text"].as_str().is_none_or(str::is_empty) {
                return Err(
                    "Bad Request: text buttons are unallowed in the inline keyboard".to_owned(),
                );
            }
            let actions = [
                "url",
                "callback_data",
                "switch_inline_query",
                "web_app",
                "login_url",
                "pay",
            ]
            .iter()
            .filter(|action| button.get(**action).is_some())
            .count();
            if actions != 1 {
                return Err("Bad Request: can't parse inline keyboard button: exactly one of the optional fields must be used".to_owned());
            }
            if let Some(data) = button.get("callback_data") {
                let valid = data
                    .as_str()
                    .is_some_and(|data| (1..=64).contains(&data.len()));
                if !valid {
                    return Err("Bad Request: BUTTON_DATA_INVALID".to_owned());
                }
            }
        }
    }
    Ok(Some(markup))
}

/// answerCallbackQuery: a query the bot was sent, answered once; the text is 0-200 characters.
pub(super) fn answer_callback_query(shared: &Shared, params: &Value) -> Response {
    let id = text_of(params.get("callback_query_id")).unwrap_or_default();
    let text = text_of(params.get("text"));
    if text.as_ref().is_some_and(|text| text.chars().count() > 200) {
        return error(400, "Bad Request: MESSAGE_TOO_LONG");
    }
    let show_alert = params
        .get("show_alert")
        .is_some_and(|alert| alert == &json!(true) || alert == &json!("true"));
    let mut state = shared.lock();
    match state.callback_queries.get_mut(&id) {
        Some(answered) if !*answered => *answered = true,
        _ => {
            return error(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            );
        }
    }
    state.callback_answers.push(CallbackAnswer {
        callback_query_id: id,
        text,
        show_alert,
    });
    drop(state);
    shared.sent.send_modify(|count| *count += 1);
    ok(json!(true))
}

pub(super) async fn download(
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
