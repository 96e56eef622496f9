//! Buttons pressed under the bot's messages: a MESSAGE_COMPONENT interaction is passed to the
//! application's [`Choose`] and answered with its short text, seen only by the presser.

use helpdesk_channel::{ChoiceMade, Choose};
use serenity::all::{
    ComponentInteraction, CreateAllowedMentions, CreateInteractionResponse,
    CreateInteractionResponseMessage,
};

use crate::{Discord, identity};

impl Discord {
    /// Answers a button pressed in a DM with what `choose` says it means; a button pressed in a
    /// guild is not a customer's and gets no meaning.
    pub(crate) async fn answer_choice<C: Choose>(&self, press: &ComponentInteraction, choose: &C) {
        let answer = if press.guild_id.is_none() {
            choose
                .choose(ChoiceMade {
                    sender: identity(&press.user),
                    message: press.message.id.get().to_string(),
                    data: press.data.custom_id.clone(),
                })
                .await
        } else {
            String::new()
        };
        let answer = if answer.is_empty() {
            "This button does nothing here.".to_owned()
        } else {
            answer
        };
        let response = CreateInteractionResponse::Message(
            CreateInteractionResponseMessage::new()
                .content(answer)
                .ephemeral(true)
                .allowed_mentions(CreateAllowedMentions::new()),
        );
        if let Err(error) = self
            .http
            .create_interaction_response(press.id, &press.token, &response, Vec::new())
            .await
        {
            // Too late (Discord waits three seconds): the press is recorded all the same.
            tracing::warn!(%error, "Discord button press not answered");
        }
    }
}
