//! The gateway: the websocket session with heartbeats, identify and resume, and the events
//! the bot receives.

use super::*;

pub(super) async fn gateway(
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

pub(super) fn op(code: u8, data: Value) -> WsMessage {
    WsMessage::Text(
        json!({"op": code, "d": data, "s": null, "t": null})
            .to_string()
            .into(),
    )
}

pub(super) fn close(code: u16, reason: &str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}

/// One gateway connection: Hello, then Identify or Resume, then dispatches as they come.
pub(super) async fn connection(mut socket: WebSocket, shared: Shared, version_ok: bool) {
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

pub(super) fn token_ok(shared: &Shared, given: &Value) -> bool {
    let given = given.as_str().unwrap_or_default();
    let given = given.strip_prefix("Bot ").unwrap_or(given);
    given == shared.lock().token
}

/// A new message from `author` in `channel_id`, kept for references, edits and history.
pub(super) fn new_message(
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
pub(super) fn identify(shared: &Shared) -> usize {
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
