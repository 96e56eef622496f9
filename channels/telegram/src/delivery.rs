//! Sending through the Bot API, and how a failure counts for the delivery queue.

use helpdesk_channel::{ChannelKind, Deliver, Delivered, DeliveryError, OutboundMessage};
use teloxide::payloads::{SendDocumentSetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId, ReplyParameters,
};
use teloxide::{ApiError, RequestError};

use crate::{Telegram, external_id, parse_external_id};

/// Telegram refuses longer texts in one message.
const MAX_TEXT_CHARS: usize = 4096;
/// Captions of documents are shorter.
const MAX_CAPTION_CHARS: usize = 1024;

impl Telegram {
    pub(crate) async fn send(&self, message: &OutboundMessage) -> Result<Delivered, RequestError> {
        let chat: i64 = message.recipient.address.parse().map_err(|_| {
            RequestError::Api(ApiError::Unknown(format!(
                "{:?} is not a Telegram chat id",
                message.recipient.address
            )))
        })?;
        let reply_to = message
            .thread
            .reply_to
            .as_deref()
            .and_then(parse_external_id)
            .filter(|(reply_chat, _)| *reply_chat == chat)
            .map(|(_, id)| ReplyParameters::new(MessageId(id)).allow_sending_without_reply());
        let mut last = None;
        let text = truncated(&message.text, MAX_TEXT_CHARS);
        if !text.trim().is_empty() || message.attachments.is_empty() {
            let mut request = self.bot.send_message(ChatId(chat), text);
            if let Some(reply) = reply_to.clone() {
                request = request.reply_parameters(reply);
            }
            if !message.choices.is_empty() {
                // One row of buttons; pressing one comes back as a callback query.
                let row = message
                    .choices
                    .iter()
                    .map(|choice| {
                        InlineKeyboardButton::callback(choice.label.clone(), choice.data.clone())
                    })
                    .collect::<Vec<_>>();
                request = request.reply_markup(InlineKeyboardMarkup::new([row]));
            }
            last = Some(request.await?);
        }
        for attachment in &message.attachments {
            let file = InputFile::memory(attachment.content.clone())
                .file_name(attachment.filename.clone());
            let mut request = self
                .bot
                .send_document(ChatId(chat), file)
                .caption(truncated(&attachment.filename, MAX_CAPTION_CHARS));
            if let Some(reply) = reply_to.clone() {
                request = request.reply_parameters(reply);
            }
            last = Some(request.await?);
        }
        let sent = last.ok_or_else(|| RequestError::Api(ApiError::MessageTextIsEmpty))?;
        Ok(Delivered {
            external_id: external_id(chat, sent.id.0),
        })
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

/// How a failed request counts for the delivery queue.
fn delivery_error(error: RequestError) -> DeliveryError {
    match error {
        RequestError::RetryAfter(seconds) => DeliveryError::Temporary(format!(
            "Telegram rate limit: retry after {} s",
            seconds.seconds()
        )),
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => {
            DeliveryError::Temporary(error.to_string())
        }
        // Server trouble and errors teloxide does not know are worth another try.
        RequestError::Api(ApiError::Unknown(text)) => DeliveryError::Temporary(text),
        RequestError::Api(ApiError::InvalidToken) => DeliveryError::Temporary(
            "the Telegram token was refused; fix telegram.token".to_owned(),
        ),
        RequestError::Api(_) | RequestError::MigrateToChatId(_) => {
            DeliveryError::Permanent(error.to_string())
        }
    }
}

impl Deliver for Telegram {
    fn channel(&self) -> ChannelKind {
        ChannelKind::Telegram
    }

    async fn deliver(&self, message: &OutboundMessage) -> Result<Delivered, DeliveryError> {
        self.send(message).await.map_err(delivery_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_to_the_limit() {
        let long = "x".repeat(5000);
        assert_eq!(
            truncated(&long, MAX_TEXT_CHARS).chars().count(),
            MAX_TEXT_CHARS
        );
        assert_eq!(truncated("short", MAX_TEXT_CHARS), "short");
    }
}
