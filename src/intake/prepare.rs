//! Making a message ready for the database, outside any transaction: parsed, bounded, its
//! attachments checked and named by their hashes. Their contents are written to the blob store
//! just before the message's transaction (`Intake::write_attachment_contents`).

use bytes::Bytes;
use helpdesk_channel::{ChannelKind, InboundMessage};
use helpdesk_email::RawMail;
use sha2::{Digest, Sha256};

use super::autoreply::{self, RefusedAttachment};
use super::{Intake, Prepared, StoredAttachments};
use crate::store::StoreError;
use crate::store::blobs::BlobStore;

impl Intake {
    /// Parses a mail and stores its attachment contents: the part of intake that needs no
    /// database, so it can run in parallel ahead of the writing. A mail larger than
    /// `max_message_bytes` is taken in by its headers only (see [`Intake::prepare_oversized`]).
    pub fn prepare_email(&self, mail: impl Into<RawMail>) -> Prepared {
        let raw = match mail.into() {
            RawMail::Oversized { headers, size } => return self.prepare_oversized(headers, size),
            RawMail::Whole(raw) if raw.len() as u64 > self.limits.max_message_bytes => {
                let headers = helpdesk_email::header_section(&raw).to_vec();
                return self.prepare_oversized(headers, raw.len() as u64);
            }
            RawMail::Whole(raw) => raw,
        };
        match helpdesk_email::parse_message(&raw) {
            Ok(message) => self.prepare(message),
            Err(error) => Prepared::Unreadable {
                channel: ChannelKind::Email,
                external_id: helpdesk_email::fallback_message_id(&raw),
                raw,
                reason: error.to_string(),
            },
        }
    }

    /// Checks a parsed message's size, makes its text storable and names its attachment
    /// contents by their hashes.
    pub fn prepare(&self, mut message: InboundMessage) -> Prepared {
        make_storable(&mut message);
        if let Some(reason) = self.too_large(message.raw.len()) {
            return Prepared::Unreadable {
                channel: message.channel,
                external_id: message.external_id,
                raw: message.raw,
                reason,
            };
        }
        let attachments = self.hash_attachment_contents(&message);
        Prepared::Message {
            message: Box::new(message),
            attachments,
            body_omitted: None,
        }
    }

    /// A mail too large to take in, of which only `headers` were read: it becomes a message
    /// that says so, from its sender and with its subject and thread, so the agents see what
    /// arrived; its raw row keeps the headers and the same note. Headers that name no sender
    /// are kept raw with the note as the error.
    pub(super) fn prepare_oversized(&self, headers: Vec<u8>, size: u64) -> Prepared {
        let limit = self.limits.max_message_bytes;
        let note = format!(
            "This mail was too large to take in: {} ({size} bytes), more than the limit of {} \
             ({limit} bytes, intake.max_message_bytes). Only its headers were kept; its text and \
             attachments were not read. Ask the sender to send it again in smaller parts.",
            autoreply::human_size(size),
            autoreply::human_size(limit),
        );
        match helpdesk_email::parse_message(&headers) {
            Ok(mut message) => {
                make_storable(&mut message);
                message.text = note.clone();
                message.html = None;
                message.attachments.clear();
                Prepared::Message {
                    message: Box::new(message),
                    attachments: Vec::new(),
                    body_omitted: Some(note),
                }
            }
            Err(error) => Prepared::Unreadable {
                channel: ChannelKind::Email,
                external_id: helpdesk_email::fallback_message_id(&headers),
                raw: headers,
                reason: format!("{note} Its headers cannot be read: {error}"),
            },
        }
    }

    /// The attachments of `message` that were not kept for their size.
    pub(super) fn refused_attachments(&self, message: &InboundMessage) -> Vec<RefusedAttachment> {
        message
            .attachments
            .iter()
            .filter(|a| a.content.len() as u64 > self.limits.max_attachment_bytes)
            .map(|a| RefusedAttachment {
                filename: a.filename.clone(),
                size: autoreply::human_size(a.content.len() as u64),
            })
            .collect()
    }

    /// Why a parsed message is refused for its size. Mail over the limit never gets this far
    /// (see [`Intake::prepare_oversized`]); a chat message this large is kept raw, refused.
    pub(super) fn too_large(&self, size: usize) -> Option<String> {
        (size as u64 > self.limits.max_message_bytes).then(|| {
            format!(
                "message is {size} bytes, larger than intake.max_message_bytes ({})",
                self.limits.max_message_bytes
            )
        })
    }

    /// The hash each attachment's content is stored under, or why it is not kept.
    pub(super) fn hash_attachment_contents(&self, message: &InboundMessage) -> StoredAttachments {
        message
            .attachments
            .iter()
            .map(|attachment| {
                let size = attachment.content.len() as u64;
                if size > self.limits.max_attachment_bytes {
                    return Err(format!(
                        "not kept: {size} bytes is larger than intake.max_attachment_bytes ({})",
                        self.limits.max_attachment_bytes
                    ));
                }
                Ok(BlobStore::hash(&attachment.content))
            })
            .collect()
    }

    /// Writes a message's attachment contents to the blob store before its transaction, so
    /// the store's I/O does not hold the database's write lock. A content written for a
    /// transaction that then rolls back is only an unreferenced file. If the store cannot take
    /// them (an S3 outage), the message fails as with an unavailable database: nothing is
    /// written, the source is not acknowledged and hands the message again later.
    pub(super) async fn write_attachment_contents(
        &self,
        message: &InboundMessage,
        stored: &StoredAttachments,
    ) -> Result<(), StoreError> {
        for (attachment, stored) in message.attachments.iter().zip(stored) {
            if let Ok(sha256) = stored {
                self.blobs
                    .put_hashed(sha256, Bytes::copy_from_slice(&attachment.content))
                    .await
                    .inspect_err(|error| {
                        tracing::warn!(filename = attachment.filename, %error, "attachment not stored; the message waits at its source");
                    })?;
            }
        }
        Ok(())
    }
}

/// Longest message id kept as it is; longer ones (hostile or broken mail) are replaced by a
/// digest, the same for every mention, so threading still works and indexes stay small.
const MAX_ID_BYTES: usize = 512;

/// Longest sender address kept as it is (RFC 5321 allows 254).
const MAX_ADDRESS_BYTES: usize = 320;

/// Text the database can store whatever the sender put in: NUL characters removed (PostgreSQL
/// refuses them in text), overlong ids and addresses replaced by digests. The raw message keeps
/// the original.
pub(super) fn make_storable(message: &mut InboundMessage) {
    fn strip_nul(text: &mut String) {
        if text.contains('\0') {
            text.retain(|c| c != '\0');
        }
    }
    fn bounded(id: &mut String, limit: usize) {
        strip_nul(id);
        if id.len() > limit {
            *id = format!("long-{}", hex::encode(Sha256::digest(id.as_bytes())));
        }
    }
    bounded(&mut message.external_id, MAX_ID_BYTES);
    bounded(&mut message.sender.address, MAX_ADDRESS_BYTES);
    for id in message
        .thread
        .in_reply_to
        .iter_mut()
        .chain(message.thread.references.iter_mut())
        .chain(message.thread.reply_to.iter_mut())
        .chain(message.thread.conversation.iter_mut())
    {
        bounded(id, MAX_ID_BYTES);
    }
    strip_nul(&mut message.text);
    for text in [
        message.subject.as_mut(),
        message.html.as_mut(),
        message.sender.display_name.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        strip_nul(text);
    }
    for attachment in &mut message.attachments {
        strip_nul(&mut attachment.filename);
        strip_nul(&mut attachment.content_type);
        if let Some(content_id) = attachment.content_id.as_mut() {
            bounded(content_id, MAX_ID_BYTES);
        }
    }
}
