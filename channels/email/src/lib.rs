//! The email channel of helpdesk: turns one RFC 822 message into the neutral
//! [`InboundMessage`](helpdesk_channel::InboundMessage) that intake takes.
//!
//! [`parse_message`] does the work: sender, subject, text and sanitized HTML bodies,
//! attachments (inline images and forwarded messages included), threading hints and the
//! marks of automatic mail (auto-replies, mailing lists, bounces). It never panics on
//! any input; what cannot be read as mail is a [`ParseError`].
//!
//! MIME decoding is done by `mail-parser`, HTML sanitizing by `ammonia`.
//!
//! [`imap`] reads new mail from a mailbox (async-imap, with IDLE) and hands the raw messages
//! to the application, acknowledging them only after the application committed them.
//!
//! [`smtp`] delivers outbound mail (lettre over rustls) with the headers that make the
//! customer's answer thread back; [`quote`] separates the new text of a reply from the quoted
//! mail and signature below it.

pub mod imap;
mod parse;
pub mod quote;
mod sanitize;
pub mod smtp;

use sha2::{Digest, Sha256};

pub use parse::{parse_message, recipients};
pub use quote::{Reply, split_reply};
pub use sanitize::{sanitize_html, sanitize_html_with_images};

/// Why a message could not become an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace was received.
    #[error("empty message")]
    Empty,
    /// The bytes do not start with a header section.
    #[error("not an RFC 822 message: no headers")]
    NotRfc822,
    /// No header names an address a reply could go to.
    #[error(
        "no sender address (From, Sender, Reply-To and Return-Path are all missing or invalid)"
    )]
    NoSender,
}

/// Most bytes of a header section kept of a message too large to keep whole; a longer one
/// (hostile mail) is cut at a line end.
pub const MAX_HEADER_BYTES: usize = 256 << 10;

/// A message as read from its source: whole, or only its header section when it is larger
/// than may be read (the source knew its size before reading it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawMail {
    Whole(Vec<u8>),
    /// The header section (see [`header_section`]) of a message of `size` bytes.
    Oversized {
        headers: Vec<u8>,
        size: u64,
    },
}

impl From<Vec<u8>> for RawMail {
    fn from(raw: Vec<u8>) -> RawMail {
        RawMail::Whole(raw)
    }
}

/// The header section of a message: up to and with the blank line that ends it (all of `raw`
/// if there is none), at most [`MAX_HEADER_BYTES`].
pub fn header_section(raw: &[u8]) -> &[u8] {
    let mut end = 0;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if end + line.len() > MAX_HEADER_BYTES {
            break;
        }
        end += line.len();
        if line == b"\n" || line == b"\r\n" {
            break;
        }
    }
    if end == 0 {
        // One endless line: keep what fits.
        end = raw.len().min(MAX_HEADER_BYTES);
    }
    &raw[..end]
}

/// The stable external id of a message without a Message-ID (or of bytes that cannot be
/// parsed at all): `<sha256 hex of raw>@generated.helpdesk.invalid`, without angle brackets.
///
/// Derived from the bytes alone so that the same mail fetched twice gets the same id and
/// intake can recognise the duplicate.
pub fn fallback_message_id(raw: &[u8]) -> String {
    format!(
        "{}@generated.helpdesk.invalid",
        hex::encode(Sha256::digest(raw))
    )
}
