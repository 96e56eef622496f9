//! An update as the helpdesk sees it: a customer's message, a /start, an agent's message.

use chrono::Utc;
use helpdesk_channel::{
    AgentMessage, Attachment, AutomationMarks, ChannelKind, ChatEvent, Identity, InboundMessage,
    ThreadHints,
};
use teloxide::net::Download;
use teloxide::prelude::Requester;
use teloxide::types::{FileId, Message, Update, UpdateKind};

use crate::{Telegram, command_name, external_id};

impl Telegram {
    /// What an update means to the helpdesk; `None` for what it ignores (channel posts,
    /// other groups, the bot's own messages).
    pub(crate) async fn event_of(&self, update: &Update) -> Option<ChatEvent> {
        let (message, edited) = match &update.kind {
            UpdateKind::Message(message) => (message, false),
            UpdateKind::EditedMessage(message) => (message, true),
            _ => return None,
        };
        let from = message.from.as_ref()?;
        if from.is_bot {
            return None;
        }
        let raw = serde_json::to_vec(update).unwrap_or_default();
        let sender = Identity {
            channel: ChannelKind::Telegram,
            address: from.id.0.to_string(),
            display_name: Some(from.full_name()).filter(|name| !name.trim().is_empty()),
            handle: from.username.clone(),
        };
        let chat = message.chat.id.0;
        let own_id = external_id(chat, message.id.0);
        let mut text = message
            .text()
            .or_else(|| message.caption())
            .unwrap_or_default()
            .to_owned();
        let (attachments, left_out) = self.attachments_of(message).await;
        for note in left_out {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&note);
        }
        if message.chat.is_private() {
            if !edited && command_name(&text) == Some("start") {
                return Some(ChatEvent::Start {
                    customer: sender,
                    conversation: chat.to_string(),
                });
            }
            let (message_id, text) = if edited {
                let when = message
                    .edit_date()
                    .map(|date| date.timestamp())
                    .unwrap_or_else(|| Utc::now().timestamp());
                (
                    format!("{own_id}:edit:{when}"),
                    format!("(edited message)\n{text}"),
                )
            } else {
                (own_id.clone(), text)
            };
            return Some(ChatEvent::Customer(InboundMessage {
                channel: ChannelKind::Telegram,
                external_id: message_id,
                sender,
                subject: None,
                text,
                html: None,
                attachments,
                thread: ThreadHints {
                    conversation: Some(chat.to_string()),
                    reply_to: message
                        .reply_to_message()
                        .map(|parent| external_id(chat, parent.id.0))
                        .or_else(|| edited.then(|| own_id.clone())),
                    ..ThreadHints::default()
                },
                automation: AutomationMarks::default(),
                sent_at: Some(message.date),
                raw,
            }));
        }
        if chat == self.settings.agents_chat_id && !edited {
            return Some(ChatEvent::Agent(AgentMessage {
                channel: ChannelKind::Telegram,
                sender,
                place: chat.to_string(),
                external_id: own_id,
                reply_to: message
                    .reply_to_message()
                    .map(|parent| external_id(chat, parent.id.0)),
                reply_to_own_text: message
                    .reply_to_message()
                    .filter(|parent| {
                        parent.from.as_ref().is_some_and(|author| {
                            author.id.0 == self.own_id.load(std::sync::atomic::Ordering::Relaxed)
                        })
                    })
                    .and_then(|parent| parent.text().or_else(|| parent.caption()))
                    .map(str::to_owned),
                text,
                attachments,
            }));
        }
        None
    }

    /// The files of a message (a document, or the largest size of a photo), and a note for
    /// each file that was too large to fetch.
    pub(crate) async fn attachments_of(&self, message: &Message) -> (Vec<Attachment>, Vec<String>) {
        let mut wanted = Vec::new();
        if let Some(document) = message.document() {
            wanted.push((
                document.file.id.clone(),
                document.file.size,
                document
                    .file_name
                    .clone()
                    .unwrap_or_else(|| "document".to_owned()),
                document
                    .mime_type
                    .as_ref()
                    .map(|mime| mime.to_string())
                    .unwrap_or_else(|| "application/octet-stream".to_owned()),
            ));
        }
        if let Some(largest) = message
            .photo()
            .and_then(|sizes| sizes.iter().max_by_key(|size| size.width * size.height))
        {
            wanted.push((
                largest.file.id.clone(),
                largest.file.size,
                format!("photo-{}.jpg", message.id.0),
                "image/jpeg".to_owned(),
            ));
        }
        let mut attachments = Vec::new();
        let mut left_out = Vec::new();
        for (file_id, size, filename, content_type) in wanted {
            // teloxide reads a missing file_size as u32::MAX: unknown, so the download is
            // what is limited.
            if size != u32::MAX && u64::from(size) > self.settings.max_file_bytes {
                left_out.push(format!(
                    "[file {filename} not kept: {size} bytes is more than the limit of {} bytes]",
                    self.settings.max_file_bytes
                ));
                continue;
            }
            let content = match self.download(file_id).await {
                Ok(Some(content)) => content,
                Ok(None) => {
                    left_out.push(format!(
                        "[file {filename} not kept: more than the limit of {} bytes]",
                        self.settings.max_file_bytes
                    ));
                    continue;
                }
                Err(error) => {
                    tracing::warn!(filename, %error, "Telegram file not downloaded");
                    self.health.failed(&error);
                    left_out.push(format!("[file {filename} could not be fetched: {error}]"));
                    continue;
                }
            };
            attachments.push(Attachment {
                filename,
                content_type,
                content,
                inline: false,
                content_id: None,
            });
        }
        (attachments, left_out)
    }

    /// A file's content, or `None` if it is larger than `max_file_bytes`: a download that
    /// grows past the limit (its size was not told, or told wrong) is given up, not held in
    /// memory whole.
    pub(crate) async fn download(&self, file_id: FileId) -> Result<Option<Vec<u8>>, String> {
        let limit = self.settings.max_file_bytes;
        let file = self
            .bot
            .get_file(file_id)
            .await
            .map_err(|error| error.to_string())?;
        if file.size != u32::MAX && u64::from(file.size) > limit {
            return Ok(None);
        }
        let mut content = Capped {
            content: Vec::new(),
            limit,
            overflowed: false,
        };
        let done = self.bot.download_file(&file.path, &mut content).await;
        match done {
            _ if content.overflowed => Ok(None),
            Ok(()) => Ok(Some(content.content)),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// A download's content, refused once it would grow past `limit` bytes.
struct Capped {
    content: Vec<u8>,
    limit: u64,
    overflowed: bool,
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if (self.content.len() + buf.len()) as u64 > self.limit {
            self.overflowed = true;
            return std::task::Poll::Ready(Err(std::io::Error::other(format!(
                "more than the limit of {} bytes",
                self.limit
            ))));
        }
        self.content.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
