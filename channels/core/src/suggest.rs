//! Choices offered while an agent types a command's argument (Discord's autocomplete): the
//! channel asks, the application answers from what it stores.

use std::future::Future;
use std::sync::Arc;

use crate::Identity;

/// What an agent has typed so far in one argument of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuggestionRequest {
    /// Who types (their identity on the channel).
    pub sender: Identity,
    /// The command, without its slash: "canned".
    pub command: String,
    /// The argument being typed: "name".
    pub argument: String,
    /// What is typed so far.
    pub typed: String,
}

/// Answers a [`SuggestionRequest`] with the values to offer, best first. It must answer fast
/// (Discord waits three seconds); an empty list offers nothing.
pub trait Suggest: Send + Sync {
    fn suggest(&self, request: SuggestionRequest) -> impl Future<Output = Vec<String>> + Send;
}

impl<S: Suggest> Suggest for Arc<S> {
    fn suggest(&self, request: SuggestionRequest) -> impl Future<Output = Vec<String>> + Send {
        (**self).suggest(request)
    }
}
