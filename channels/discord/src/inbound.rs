//! A gateway event as the helpdesk sees it: a customer's message or edit in a DM, an agent's
//! message in the agents' place, with their files.

use chrono::DateTime;
use helpdesk_channel::{
    AgentMessage, Attachment, AutomationMarks, ChannelKind, ChatEvent, InboundMessage, ThreadHints,
};
use serenity::all::{Message, MessageUpdateEvent};

use crate::{Discord, identity};

impl Discord {
    pub(crate) async fn event_of_message(&self, message: &Message) -> Option<ChatEvent> {
        if message.author.bot || self.is_own(message.author.id) {
            return None;
        }
        let sender = identity(&message.author);
        let channel = message.channel_id.get();
        let (attachments, left_out) = self.attachments_of(&message.attachments).await;
        let text = with_notes(&message.content, left_out);
        let reply_to = message
            .message_reference
            .as_ref()
            .and_then(|reference| reference.message_id)
            .map(|id| id.get().to_string());
        if message.guild_id.is_none() {
            return Some(ChatEvent::Customer(InboundMessage {
                channel: ChannelKind::Discord,
                external_id: message.id.get().to_string(),
                sender,
                subject: None,
                text,
                html: None,
                attachments,
                thread: ThreadHints {
                    conversation: Some(channel.to_string()),
                    reply_to,
                    ..ThreadHints::default()
                },
                automation: AutomationMarks::default(),
                sent_at: DateTime::from_timestamp(message.timestamp.unix_timestamp(), 0),
                raw: serde_json::to_vec(message).unwrap_or_default(),
            }));
        }
        if !self.in_agents_place(channel).await {
            return None;
        }
        let reply_to_own_text = message
            .referenced_message
            .as_ref()
            .filter(|parent| self.is_own(parent.author.id))
            .map(|parent| parent.content.clone());
        Some(ChatEvent::Agent(AgentMessage {
            channel: ChannelKind::Discord,
            sender,
            place: channel.to_string(),
            external_id: message.id.get().to_string(),
            reply_to,
            reply_to_own_text,
            text,
            attachments,
        }))
    }

    /// A customer's edit is kept as a message of its own; edits in guilds are ignored.
    pub(crate) async fn event_of_update(&self, update: &MessageUpdateEvent) -> Option<ChatEvent> {
        if update.guild_id.is_some() {
            return None;
        }
        // Discord also sends updates for embeds it resolved; only a new text is an edit.
        let (Some(author), Some(content), Some(edited)) =
            (&update.author, &update.content, update.edited_timestamp)
        else {
            return None;
        };
        if author.bot || self.is_own(author.id) {
            return None;
        }
        let text = format!("(edited message)\n{content}");
        Some(ChatEvent::Customer(InboundMessage {
            channel: ChannelKind::Discord,
            external_id: format!("{}:edit:{}", update.id.get(), edited.unix_timestamp()),
            sender: identity(author),
            subject: None,
            text,
            html: None,
            // The files of an edited message were kept with the original.
            attachments: Vec::new(),
            thread: ThreadHints {
                conversation: Some(update.channel_id.get().to_string()),
                ..ThreadHints::default()
            },
            automation: AutomationMarks::default(),
            sent_at: DateTime::from_timestamp(edited.unix_timestamp(), 0),
            raw: serde_json::to_vec(update).unwrap_or_default(),
        }))
    }

    /// The files of a message, and a note for each file that was too large or unreachable.
    pub(crate) async fn attachments_of(
        &self,
        files: &[serenity::all::Attachment],
    ) -> (Vec<Attachment>, Vec<String>) {
        let mut attachments = Vec::new();
        let mut left_out = Vec::new();
        for file in files {
            if u64::from(file.size) > self.settings.max_file_bytes {
                left_out.push(format!(
                    "[file {} not kept: {} bytes is more than the limit of {} bytes]",
                    file.filename, file.size, self.settings.max_file_bytes
                ));
                continue;
            }
            match self.download(&file.url).await {
                Ok(content) => attachments.push(Attachment {
                    filename: file.filename.clone(),
                    content_type: file
                        .content_type
                        .clone()
                        .unwrap_or_else(|| "application/octet-stream".to_owned()),
                    content,
                    inline: false,
                    content_id: None,
                }),
                Err(error) => {
                    tracing::warn!(file = file.filename, %error, "Discord file not downloaded");
                    self.health.failed(&error);
                    left_out.push(format!(
                        "[file {} could not be fetched: {error}]",
                        file.filename
                    ));
                }
            }
        }
        (attachments, left_out)
    }

    /// A file's content, at most `max_file_bytes` of it: a download that grows past the limit
    /// (the attachment's size was told wrong) is given up, not held in memory whole.
    pub(crate) async fn download(&self, url: &str) -> Result<Vec<u8>, String> {
        let limit = self.settings.max_file_bytes;
        let too_large = |size: u64| format!("{size} bytes is more than the limit of {limit} bytes");
        let mut response = self
            .downloads
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| error.to_string())?;
        if let Some(length) = response.content_length()
            && length > limit
        {
            return Err(too_large(length));
        }
        let mut content = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
            let size = (content.len() + chunk.len()) as u64;
            if size > limit {
                return Err(format!("more than the limit of {limit} bytes"));
            }
            content.extend_from_slice(&chunk);
        }
        Ok(content)
    }
}

fn with_notes(text: &str, notes: Vec<String>) -> String {
    let mut text = text.to_owned();
    for note in notes {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&note);
    }
    text
}
