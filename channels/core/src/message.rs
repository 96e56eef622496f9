//! The neutral message types that cross the channel contract.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Email,
    Telegram,
    Discord,
    /// Written on the admin page.
    Web,
    /// Created through the JSON API.
    Api,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 5] = [
        ChannelKind::Email,
        ChannelKind::Telegram,
        ChannelKind::Discord,
        ChannelKind::Web,
        ChannelKind::Api,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Discord => "discord",
            ChannelKind::Web => "web",
            ChannelKind::Api => "api",
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?} (expected email, telegram, discord, web or api)")]
pub struct UnknownChannel(pub String);

impl FromStr for ChannelKind {
    type Err = UnknownChannel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownChannel(s.to_owned()))
    }
}

/// Who wrote a message, as the channel knows them: an email address, a chat user id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub channel: ChannelKind,
    /// The stable address on that channel: a lower-cased email address, a numeric chat user id.
    pub address: String,
    /// A human name if the channel gave one ("Ada Lovelace").
    pub display_name: Option<String>,
    /// The account's handle on a chat channel, without the `@` ("ada_l"): what people type to
    /// find someone, unlike the display name, and free to change, unlike the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
}

/// A file that came with (or goes out with) a message.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
    /// Shown inside the body (an inline image) rather than offered as a download.
    pub inline: bool,
    /// The Content-ID an HTML body refers to with `cid:`.
    pub content_id: Option<String>,
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("size", &self.content.len())
            .field("inline", &self.inline)
            .field("content_id", &self.content_id)
            .finish()
    }
}

/// What a channel knows about the conversation a message belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadHints {
    /// Mail: the Message-IDs of In-Reply-To, without angle brackets.
    pub in_reply_to: Vec<String>,
    /// Mail: the Message-IDs of References, oldest first, without angle brackets.
    pub references: Vec<String>,
    /// A ticket number found in the subject as `[#1042]`.
    pub ticket_number: Option<i64>,
    /// Chat: the conversation (chat id, DM channel id) the message was written in.
    pub conversation: Option<String>,
    /// Chat: the external id of the message this one replies to.
    pub reply_to: Option<String>,
}

/// Marks that tell an automatic message from one a person wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutomationMarks {
    /// Auto-Submitted, Precedence bulk/junk/list, X-Autoreply and friends.
    pub auto_reply: bool,
    /// A delivery status report or a message from a null sender / mailer-daemon.
    pub bounce: bool,
}

/// One message received on a channel, in the channel-neutral form intake takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub channel: ChannelKind,
    /// Unique per channel: the Message-ID of a mail, the message id of a chat message.
    pub external_id: String,
    pub sender: Identity,
    pub subject: Option<String>,
    /// The plain text of the message (derived from HTML when only HTML was sent).
    pub text: String,
    /// Sanitized HTML, safe to show in the admin page.
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
    pub thread: ThreadHints,
    pub automation: AutomationMarks,
    /// When the sender says it was written, if the channel says.
    pub sent_at: Option<DateTime<Utc>>,
    /// The bytes as received (RFC 822 source, or the JSON of a chat update); always kept.
    pub raw: Vec<u8>,
}

/// A message the application wants delivered on a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub channel: ChannelKind,
    /// The id the message will carry on its channel (a Message-ID for mail), when the sender
    /// chooses it; chat platforms assign their own.
    pub external_id: Option<String>,
    pub ticket_number: i64,
    pub recipient: Identity,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
    /// What the delivered message must point back to so the recipient's client threads it.
    pub thread: ThreadHints,
    /// Sent by the helpdesk on its own (an acknowledgement, a notice), not written by a person:
    /// channels mark it so that auto-responders stay silent and no loop starts.
    #[serde(default)]
    pub automatic: bool,
    /// Buttons under the message on chat channels; mail leaves them out.
    #[serde(default)]
    pub choices: Vec<crate::Choice>,
}

/// A message written in the agents' place (a Telegram group, a Discord channel or a thread
/// in it): a reply to a customer, or a command, for the application to interpret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentMessage {
    pub channel: ChannelKind,
    pub sender: Identity,
    /// Where it was written: the group chat id, or the Discord channel or thread id.
    pub place: String,
    /// Its own external id on the channel.
    pub external_id: String,
    /// The external id of the message it replies to, if it is a reply.
    pub reply_to: Option<String>,
    /// The text of the replied-to message when the bot itself wrote it (its posts name their
    /// ticket as `#1042`), so a reply works even if the post was not yet recorded.
    pub reply_to_own_text: Option<String>,
    pub text: String,
    pub attachments: Vec<Attachment>,
}

/// What a chat channel hands the application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatEvent {
    /// A customer's message (or an edit or removal of one) in a private chat or DM.
    Customer(InboundMessage),
    /// A customer opened the conversation (Telegram's /start).
    Start {
        customer: Identity,
        /// The private chat or DM channel.
        conversation: String,
    },
    /// A message in the agents' place.
    Agent(AgentMessage),
    /// A customer removed a message of theirs. The platform names only the message and where it
    /// was (Discord's MESSAGE_DELETE), so the application finds the rest in what it kept.
    Removed {
        channel: ChannelKind,
        /// The private chat or DM channel.
        conversation: String,
        /// The removed message's external id.
        external_id: String,
        /// The event as received.
        raw: Vec<u8>,
    },
}

/// Finds the ticket number a subject carries as `[#1042]`; the first tag wins.
pub fn ticket_number_in_subject(subject: &str) -> Option<i64> {
    let mut rest = subject;
    while let Some(start) = rest.find("[#") {
        let after = &rest[start + 2..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0
            && after[digits..].starts_with(']')
            && let Ok(number) = after[..digits].parse()
        {
            return Some(number);
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ticket_tag_anywhere_in_subject() {
        assert_eq!(ticket_number_in_subject("Re: [#1042] Printer"), Some(1042));
        assert_eq!(ticket_number_in_subject("AW: Printer [#7]"), Some(7));
        assert_eq!(ticket_number_in_subject("[#] [#x1] [#12]"), Some(12));
    }

    #[test]
    fn ignores_subjects_without_a_tag() {
        assert_eq!(ticket_number_in_subject("Printer #1042 broken"), None);
        assert_eq!(ticket_number_in_subject("[#1042"), None);
        assert_eq!(ticket_number_in_subject("[#99999999999999999999999]"), None);
    }

    #[test]
    fn channel_names_round_trip() {
        for kind in ChannelKind::ALL {
            assert_eq!(kind.as_str().parse::<ChannelKind>(), Ok(kind));
        }
        assert!("fax".parse::<ChannelKind>().is_err());
    }
}
