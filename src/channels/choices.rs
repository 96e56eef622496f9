//! Buttons customers press under the bot's messages: today the ratings of a satisfaction
//! survey ([`crate::surveys`]).

use chrono::Utc;
use helpdesk_channel::{ChoiceMade, Choose};

use super::ChatDesk;

impl Choose for ChatDesk {
    /// Records a rating and says so; a press that cannot be recorded now asks to try again.
    async fn choose(&self, choice: ChoiceMade) -> String {
        match crate::surveys::record_choice(self.store(), &choice, Utc::now()).await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(%error, data = choice.data, "button press not recorded");
                "Sorry, that did not work; please press again in a moment.".to_owned()
            }
        }
    }
}
