//! Delivering outbound messages: what every channel implements for the delivery queue.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::{ChannelKind, OutboundMessage};

/// What a channel reports after delivering a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// The id the channel gave the delivered message.
    pub external_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth another attempt later: network trouble, a rate limit, a server hiccup.
    #[error("temporary delivery failure: {0}")]
    Temporary(String),
    /// Will fail again: an unknown recipient, a rejected message.
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

/// Delivers outbound messages on one channel.
pub trait Deliver: Send + Sync {
    fn channel(&self) -> ChannelKind;

    fn deliver(
        &self,
        message: &OutboundMessage,
    ) -> impl Future<Output = Result<Delivered, DeliveryError>> + Send;
}
