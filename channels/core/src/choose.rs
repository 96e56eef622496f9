//! Buttons under a message the bot sent (a rating, say): a customer presses one, the channel
//! asks the application what it means and shows its short answer (Telegram's
//! answerCallbackQuery, Discord's interaction response).

use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::Identity;

/// A button offered under an outbound chat message. Mail has no buttons: its text carries links
/// instead, and mail channels leave these out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// What the button says ("★ 4").
    pub label: String,
    /// What comes back when it is pressed: at most 64 bytes (Telegram's `callback_data`
    /// limit; Discord takes 100).
    pub data: String,
}

/// A customer pressed a [`Choice`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoiceMade {
    /// Who pressed it.
    pub sender: Identity,
    /// The external id of the message the button was under, as delivery gave it.
    pub message: String,
    /// The button's [`Choice::data`].
    pub data: String,
}

/// Answers a [`ChoiceMade`] with the short text the presser sees (at most 200 characters). It
/// must answer fast: Telegram's button spins until answered and Discord waits three seconds.
pub trait Choose: Send + Sync {
    fn choose(&self, choice: ChoiceMade) -> impl Future<Output = String> + Send;
}

impl<C: Choose> Choose for Arc<C> {
    fn choose(&self, choice: ChoiceMade) -> impl Future<Output = String> + Send {
        (**self).choose(choice)
    }
}
