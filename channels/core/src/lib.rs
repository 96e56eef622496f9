//! The channel contract of helpdesk and the neutral message types that cross it.
//!
//! A channel adapter (email, Telegram, Discord) turns its traffic into [`InboundMessage`]s (or
//! [`ChatEvent`]s) and hands them to a [`Sink`]; it keeps where it stands in a [`Cursor`] and
//! moves it only after the sink returned; it reports its connection in a [`Health`]; and it
//! delivers [`OutboundMessage`]s through [`Deliver`]. It knows nothing of tickets or storage:
//! the application owns threading, assignment and persistence, and implements the sink and the
//! cursor (and, for a channel that offers choices while agents type, [`Suggest`]; for buttons
//! under a chat message, [`Choose`]).

mod choose;
mod cursor;
mod delivery;
mod health;
mod message;
mod sink;
mod suggest;

pub use choose::{Choice, ChoiceMade, Choose};
pub use cursor::{Cursor, MemoryCursor};
pub use delivery::{Deliver, Delivered, DeliveryError};
pub use health::{Health, HealthState};
pub use message::{
    AgentMessage, Attachment, AutomationMarks, ChannelKind, ChatEvent, Identity, InboundMessage,
    OutboundMessage, ThreadHints, UnknownChannel, ticket_number_in_subject,
};
pub use sink::Sink;
pub use suggest::{Suggest, SuggestionRequest};
