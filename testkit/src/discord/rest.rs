//! Discord's REST API as the bot calls it: users, channels, messages, threads, commands,
//! interaction answers and attachment downloads.
//! (Long because it is one short handler per route serenity calls, kept together so the
//! routes read as Discord documents them.)

use super::*;

/// Checks the bot token of REST requests (files and the gateway need none), records the call
/// and serves queued failures.
pub(super) async fn authorize(
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

pub(super) async fn gateway_url(State(shared): State<Shared>) -> Response {
    axum::Json(json!({"url": format!("ws://{}/gateway", shared.address)})).into_response()
}

pub(super) async fn gateway_bot(State(shared): State<Shared>) -> Response {
    axum::Json(json!({
        "url": format!("ws://{}/gateway", shared.address),
        "shards": 1,
        "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000,
                                "max_concurrency": 1},
    }))
    .into_response()
}

pub(super) async fn current_user() -> Response {
    let mut me = bot_user();
    me["verified"] = json!(true);
    me["mfa_enabled"] = json!(false);
    me["flags"] = json!(0);
    axum::Json(me).into_response()
}

pub(super) async fn application() -> Response {
    axum::Json(json!({
        "id": APPLICATION_ID.to_string(), "name": "Helpdesk", "icon": null, "description": "",
        "bot_public": false, "bot_require_code_grant": false, "verify_key": "00",
        "flags": 0, "bot": bot_user(),
    }))
    .into_response()
}

pub(super) async fn open_dm(
    State(shared): State<Shared>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
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

pub(super) fn dm_json(channel: u64, user: &User) -> Value {
    json!({
        "id": channel.to_string(), "type": 1, "last_message_id": null,
        "recipients": [user.json()], "flags": 0,
    })
}

pub(super) async fn channel(State(shared): State<Shared>, Path(channel): Path<String>) -> Response {
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
pub(super) async fn channel_messages(
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

pub(super) fn thread_json(thread: &Thread) -> Value {
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
pub(super) async fn body_of(request: Request) -> Result<(Value, Vec<(String, Vec<u8>)>), Response> {
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

pub(super) async fn create_message(
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
    let components = match checked_components(&payload) {
        Ok(components) => components,
        Err(what) => {
            return error(
                StatusCode::BAD_REQUEST,
                50035,
                &format!("Invalid Form Body: components: {what}"),
            );
        }
    };
    if content.is_empty() && files.is_empty() && components.is_empty() {
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
        "components": components,
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
        components,
    });
    drop(inner);
    shared.sent.send_modify(|count| *count += 1);
    // Discord tells the bot of its own messages too.
    shared.dispatch("MESSAGE_CREATE", message.clone());
    axum::Json(message).into_response()
}

pub(super) async fn start_thread(
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

pub(super) async fn set_commands(
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

pub(super) async fn add_command(
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

pub(super) async fn interaction_callback(
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
    let kind = payload["type"].as_u64();
    if let Some(known) = inner.autocompletes.get(&interaction) {
        if *known != token {
            return error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
        }
        // An autocomplete interaction takes only APPLICATION_COMMAND_AUTOCOMPLETE_RESULT (8),
        // with at most 25 choices of a name and a value.
        let choices = payload["data"]["choices"].as_array().cloned();
        let valid = kind == Some(8)
            && choices.as_ref().is_some_and(|choices| {
                choices.len() <= 25
                    && choices.iter().all(|choice| {
                        choice["name"]
                            .as_str()
                            .is_some_and(|name| (1..=100).contains(&name.chars().count()))
                            && !choice["value"].is_null()
                    })
            });
        if !valid {
            return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
        }
        inner.autocompletes.remove(&interaction);
        inner
            .choices
            .insert(interaction, choices.unwrap_or_default());
        drop(inner);
        shared.sent.send_modify(|count| *count += 1);
        return StatusCode::NO_CONTENT.into_response();
    }
    // Choices answer only autocomplete interactions.
    if kind == Some(8) {
        return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
    }
    let channel_id = match inner.interactions.get(&interaction) {
        Some((known, channel)) if *known == token => *channel,
        _ => return error(StatusCode::NOT_FOUND, 10062, "Unknown interaction"),
    };
    // A command takes a message (4) or a deferred one (5); a button also an update of its
    // message, deferred (6) or at once (7).
    let pressed = inner.component_interactions.get(&interaction).copied();
    let allowed = match pressed {
        Some(_) => matches!(kind, Some(4..=7)),
        None => matches!(kind, Some(4 | 5)),
    };
    if !allowed {
        return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
    }
    // An interaction is answered once.
    inner.interactions.remove(&interaction);
    inner.component_interactions.remove(&interaction);
    if kind == Some(5) || kind == Some(6) {
        return StatusCode::NO_CONTENT.into_response();
    }
    if let (Some(7), Some(source)) = (kind, pressed) {
        let data = payload.get("data").cloned().unwrap_or(Value::Null);
        if let Some(message) = inner.messages.get_mut(&source) {
            if let Some(content) = data.get("content") {
                message["content"] = content.clone();
            }
            if let Some(components) = data.get("components") {
                message["components"] = components.clone();
            }
        }
    }
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
        components: data["components"].as_array().cloned().unwrap_or_default(),
    });
    drop(inner);
    shared.sent.send_modify(|count| *count += 1);
    StatusCode::NO_CONTENT.into_response()
}

/// The `components` of a message, checked as Discord checks them: at most five action rows
/// (type 1) of one to five buttons (type 2); a button has a label of at most 80 characters and,
/// by its style, a `custom_id` of 1-100 characters unique in the message (styles 1-4) or a `url`
/// (style 5).
fn checked_components(payload: &Value) -> Result<Vec<Value>, String> {
    let invalid = |what: &str| what.to_owned();
    let Some(rows) = payload.get("components").filter(|rows| !rows.is_null()) else {
        return Ok(Vec::new());
    };
    let rows = rows.as_array().ok_or_else(|| invalid("must be an array"))?;
    if rows.len() > 5 {
        return Err(invalid("must be 5 or fewer in length"));
    }
    let mut custom_ids = std::collections::HashSet::new();
    for row in rows {
        if row["type"].as_u64() != Some(1) {
            return Err(invalid("top-level components must be action rows (type 1)"));
        }
        let buttons = row["components"]
            .as_array()
            .filter(|buttons| (1..=5).contains(&buttons.len()))
            .ok_or_else(|| invalid("an action row holds 1 to 5 components"))?;
        for button in buttons {
            if button["type"].as_u64() != Some(2) {
                return Err(invalid("only buttons are supported here"));
            }
            if button["label"]
                .as_str()
                .is_some_and(|label| label.chars().count() > 80)
            {
                return Err(invalid("label must be 80 or fewer in length"));
            }
            match button["style"].as_u64() {
                Some(1..=4) => {
                    let id = button["custom_id"]
                        .as_str()
                        .filter(|id| (1..=100).contains(&id.chars().count()))
                        .ok_or_else(|| invalid("custom_id must be 1 to 100 characters"))?;
                    if !custom_ids.insert(id.to_owned()) {
                        return Err(invalid(
                            "custom_id must be unique (COMPONENT_CUSTOM_ID_DUPLICATED)",
                        ));
                    }
                }
                Some(5) if button["url"].is_string() => {}
                _ => return Err(invalid("button style is not valid")),
            }
        }
    }
    Ok(rows.clone())
}

pub(super) async fn download(State(shared): State<Shared>, Path(path): Path<String>) -> Response {
    match shared.lock().files.get(&path) {
        Some(content) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            Bytes::from(content.clone()),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}
