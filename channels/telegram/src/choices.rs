//! Buttons pressed under the bot's messages: a callback query is passed to the application's
//! [`Choose`] and answered (answerCallbackQuery) with its short text, which stops the button's
//! spinner and shows the text to the presser.

use helpdesk_channel::{ChannelKind, ChoiceMade, Choose, Identity};
use teloxide::payloads::AnswerCallbackQuerySetters;
use teloxide::prelude::Requester;
use teloxide::types::{CallbackQuery, Update, UpdateKind};

use crate::{Telegram, external_id};

/// Telegram shows at most 200 characters of an answer.
const MAX_ANSWER_CHARS: usize = 200;

impl Telegram {
    /// Takes `update` if it is a callback query: asks `choose` what the press means and answers
    /// the query. True when the update was one (it is no message then).
    pub(crate) async fn take_choice<C: Choose>(&self, update: &Update, choose: &C) -> bool {
        let UpdateKind::CallbackQuery(query) = &update.kind else {
            return false;
        };
        let answer = match choice_of(query) {
            Some(choice) => choose.choose(choice).await,
            None => String::new(),
        };
        let mut request = self.bot.answer_callback_query(query.id.clone());
        if !answer.is_empty() {
            request = request.text(answer.chars().take(MAX_ANSWER_CHARS).collect::<String>());
        }
        if let Err(error) = request.await {
            // Too late (Telegram waits about 15 s) or already answered: the press is recorded.
            tracing::warn!(%error, "Telegram callback query not answered");
        }
        true
    }
}

/// The press a callback query reports: a button of one of our messages in a private chat.
fn choice_of(query: &CallbackQuery) -> Option<ChoiceMade> {
    let message = query.message.as_ref()?;
    let chat = message.chat();
    if !chat.is_private() || query.from.is_bot {
        return None;
    }
    Some(ChoiceMade {
        sender: Identity {
            channel: ChannelKind::Telegram,
            address: query.from.id.0.to_string(),
            display_name: Some(query.from.full_name()).filter(|name| !name.trim().is_empty()),
            handle: query.from.username.clone(),
        },
        message: external_id(chat.id.0, message.id().0),
        data: query.data.clone()?,
    })
}
