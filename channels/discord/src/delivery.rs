//! Sending through the REST API: texts in pieces, files ten to a message, answers to slash
//! commands, a ticket's thread in the agents' channel; and how a failure counts for the
//! delivery queue.

use helpdesk_channel::{
    Attachment, ChannelKind, Deliver, Delivered, DeliveryError, OutboundMessage,
};
use serenity::all::{
    AutoArchiveDuration, ButtonStyle, ChannelId, CreateActionRow, CreateAllowedMentions,
    CreateAttachment, CreateButton, CreateInteractionResponse, CreateInteractionResponseMessage,
    CreateMessage, CreateThread, Message, MessageId, UserId,
};

use crate::{ChannelFacts, Discord, interaction_external_id, message_id_of};

/// Discord refuses longer message texts.
const MAX_TEXT_CHARS: usize = 2000;

/// At most this many files go with one message.
const MAX_FILES_PER_MESSAGE: usize = 10;

/// Thread names are at most 100 characters.
const MAX_THREAD_NAME_CHARS: usize = 100;

impl Discord {
    /// Where a message goes: the conversation if there is one, else the recipient as a
    /// channel or thread, else the recipient as a user (their DM, opened if need be).
    pub(crate) async fn target(
        &self,
        message: &OutboundMessage,
    ) -> Result<ChannelId, serenity::Error> {
        if let Some(conversation) = message
            .thread
            .conversation
            .as_deref()
            .and_then(|id| id.parse::<u64>().ok())
            .filter(|id| *id != 0)
        {
            return Ok(ChannelId::new(conversation));
        }
        let address: u64 = message
            .recipient
            .address
            .parse()
            .ok()
            .filter(|id| *id != 0)
            .ok_or_else(|| serenity::Error::Other("the recipient is not a Discord id"))?;
        if address == self.settings.agents_channel_id
            || self.channel_facts_cached(address).is_some()
        {
            return Ok(ChannelId::new(address));
        }
        if self.channel_facts(address).await.is_some() {
            return Ok(ChannelId::new(address));
        }
        let dm = UserId::new(address).create_dm_channel(&self.http).await?;
        self.known().channels.insert(
            dm.id.get(),
            ChannelFacts {
                guild: false,
                parent: None,
            },
        );
        Ok(dm.id)
    }

    pub(crate) async fn send(
        &self,
        message: &OutboundMessage,
    ) -> Result<Delivered, serenity::Error> {
        // An answer to a slash command goes back as its interaction response while it may.
        if let Some(interaction) = message
            .thread
            .reply_to
            .as_deref()
            .and_then(|id| id.strip_prefix("interaction:"))
            .and_then(|id| id.parse::<u64>().ok())
        {
            let token = self.known().interactions.remove(&interaction);
            if let Some(token) = token {
                let answer = CreateInteractionResponse::Message(
                    CreateInteractionResponseMessage::new()
                        .content(truncated(&message.text, MAX_TEXT_CHARS))
                        .allowed_mentions(CreateAllowedMentions::new()),
                );
                match self
                    .http
                    .create_interaction_response(interaction.into(), &token, &answer, Vec::new())
                    .await
                {
                    Ok(()) => {
                        return Ok(Delivered {
                            external_id: format!("{}:answer", interaction_external_id(interaction)),
                        });
                    }
                    Err(error) => {
                        // Expired (answers are due within seconds): say it in the channel.
                        tracing::warn!(%error, "Discord interaction answer refused; posting it");
                    }
                }
            }
        }
        let channel = self.target(message).await?;
        let reply_to = message
            .thread
            .reply_to
            .as_deref()
            .filter(|id| !id.starts_with("interaction:"))
            .and_then(message_id_of);
        // The text in pieces; the files go with the last piece, ten to a message.
        let mut plan: Vec<(String, &[Attachment])> = chunks(&message.text, MAX_TEXT_CHARS)
            .into_iter()
            .map(|text| (text, &[][..]))
            .collect();
        for (index, batch) in message
            .attachments
            .chunks(MAX_FILES_PER_MESSAGE)
            .enumerate()
        {
            match plan.last_mut() {
                Some(last) if index == 0 => last.1 = batch,
                _ => plan.push((String::new(), batch)),
            }
        }
        let mut first: Option<Message> = None;
        for (text, files) in plan {
            let mut builder = CreateMessage::new()
                .allowed_mentions(CreateAllowedMentions::new())
                .add_files(files.iter().map(|file| {
                    CreateAttachment::bytes(file.content.clone(), file.filename.clone())
                }));
            if !text.is_empty() {
                builder = builder.content(text);
            }
            if first.is_none() && !message.choices.is_empty() {
                // The buttons go under the first piece, the message delivery names.
                let buttons = message
                    .choices
                    .iter()
                    .map(|choice| {
                        CreateButton::new(choice.data.clone())
                            .label(choice.label.clone())
                            .style(ButtonStyle::Secondary)
                    })
                    .collect();
                builder = builder.components(vec![CreateActionRow::Buttons(buttons)]);
            }
            if first.is_none()
                && let Some(parent) = reply_to
            {
                builder = builder.reference_message(
                    serenity::all::MessageReference::from((channel, MessageId::new(parent)))
                        .fail_if_not_exists(false),
                );
            }
            let sent = channel.send_message(&self.http, builder).await?;
            first.get_or_insert(sent);
        }
        let first = first.ok_or(serenity::Error::Other("nothing to send"))?;
        Ok(Delivered {
            external_id: first.id.get().to_string(),
        })
    }

    /// Posts about a ticket in the agents' channel and starts the ticket's thread from the
    /// post; returns the post and, if the thread was started, its id (the post's id).
    pub async fn post_with_thread(
        &self,
        message: &OutboundMessage,
        thread_name: &str,
    ) -> Result<(Delivered, Option<String>), DeliveryError> {
        let posted = self.deliver(message).await?;
        let Ok(post) = posted.external_id.parse::<u64>() else {
            return Ok((posted, None));
        };
        let channel = ChannelId::new(self.settings.agents_channel_id);
        let name = truncated(thread_name, MAX_THREAD_NAME_CHARS);
        match channel
            .create_thread_from_message(
                &self.http,
                MessageId::new(post),
                CreateThread::new(name).auto_archive_duration(AutoArchiveDuration::OneWeek),
            )
            .await
        {
            Ok(thread) => {
                self.known().channels.insert(
                    thread.id.get(),
                    ChannelFacts {
                        guild: true,
                        parent: Some(channel.get()),
                    },
                );
                Ok((posted, Some(thread.id.get().to_string())))
            }
            Err(error) => {
                // The post stands; agents can still reply to it.
                tracing::warn!(%error, post, "Discord thread not started");
                Ok((posted, None))
            }
        }
    }
}

fn truncated(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit - 1).collect();
    cut.push('…');
    cut
}

/// A text in pieces Discord accepts, cut at line ends where possible; one empty piece for an
/// empty text.
fn chunks(text: &str, limit: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while rest.len() > limit {
        let cut = rest[..limit]
            .iter()
            .rposition(|c| *c == '\n')
            .filter(|at| *at > limit / 2)
            .map(|at| at + 1)
            .unwrap_or(limit);
        pieces.push(rest[..cut].iter().collect());
        rest = rest[cut..].to_vec();
    }
    pieces.push(rest.into_iter().collect());
    if pieces.len() > 1 {
        pieces.retain(|piece: &String| !piece.is_empty());
    }
    pieces
}

/// How a failed request counts for the delivery queue: rate limits and server trouble are
/// worth another try, other refusals are not.
fn delivery_error(error: serenity::Error) -> DeliveryError {
    use serenity::http::HttpError;
    match &error {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => {
            let status = response.status_code.as_u16();
            let text = format!(
                "Discord answered {status}: {} (code {})",
                response.error.message, response.error.code
            );
            match status {
                429 | 500..=599 => DeliveryError::Temporary(text),
                401 => DeliveryError::Temporary(format!(
                    "{text}; the Discord token was refused: fix discord.token"
                )),
                _ => DeliveryError::Permanent(text),
            }
        }
        serenity::Error::Http(HttpError::Request(_)) | serenity::Error::Io(_) => {
            DeliveryError::Temporary(error.to_string())
        }
        serenity::Error::Model(_) | serenity::Error::Other(_) => {
            DeliveryError::Permanent(error.to_string())
        }
        _ => DeliveryError::Temporary(error.to_string()),
    }
}

impl Deliver for Discord {
    fn channel(&self) -> ChannelKind {
        ChannelKind::Discord
    }

    async fn deliver(&self, message: &OutboundMessage) -> Result<Delivered, DeliveryError> {
        if message.text.trim().is_empty() && message.attachments.is_empty() {
            return Err(DeliveryError::Permanent(
                "an empty message cannot be sent on Discord".to_owned(),
            ));
        }
        self.send(message).await.map_err(delivery_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_into_pieces_discord_takes() {
        let long = format!("{}\n{}", "a".repeat(1500), "b".repeat(1500));
        let pieces = chunks(&long, MAX_TEXT_CHARS);
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|p| p.chars().count() <= MAX_TEXT_CHARS));
        assert_eq!(pieces.concat(), long, "nothing is lost");
        let unbroken = "x".repeat(4500);
        let pieces = chunks(&unbroken, MAX_TEXT_CHARS);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), unbroken);
        assert_eq!(chunks("short", MAX_TEXT_CHARS), ["short"]);
        assert_eq!(chunks("", MAX_TEXT_CHARS), [""]);
    }
}
