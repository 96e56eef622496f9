//! Replies and internal notes: an agent's text stored on the ticket and, for a public reply,
//! its delivery queued in the same transaction. The delivery itself is a job
//! ([`crate::jobs::deliver`]); this is what a person does.

use helpdesk_channel::Attachment;

use crate::domain::MessageKind;
use crate::store::blobs::BlobStore;
use crate::store::outbound::{self, NewReply, StoredReply};
use crate::store::{Result, Store, StoreError, Tx, attachments};

/// The kind of message the reply form's "internal note" box asks for.
pub fn reply_kind(note: bool) -> MessageKind {
    if note {
        MessageKind::Internal
    } else {
        MessageKind::Public
    }
}

/// Stores an agent's reply or note (a note is a reply of [`MessageKind::Internal`]) and, for a
/// public reply, queues its delivery in the same transaction.
pub async fn send_reply(store: &Store, reply: &NewReply<'_>) -> Result<StoredReply> {
    send_reply_with_files(store, reply, &[]).await
}

/// A file an agent attaches to a reply, its content already in the attachment store.
#[derive(Debug, Clone)]
pub struct AttachedFile {
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
}

/// Puts the files an agent attaches (from the web form, the API or chat) in the attachment
/// store; the rows follow with the reply ([`add_in`]). An unreachable store fails the reply
/// before anything is written, so the agent can send it again.
pub async fn keep_files(blobs: &BlobStore, files: Vec<Attachment>) -> Result<Vec<AttachedFile>> {
    let mut kept = Vec::with_capacity(files.len());
    for file in files {
        kept.push(AttachedFile {
            sha256: blobs.put(&file.content).await?,
            size: i64::try_from(file.content.len()).unwrap_or(i64::MAX),
            filename: file.filename,
            content_type: file.content_type,
        });
    }
    Ok(kept)
}

/// [`send_reply`] with files attached (their contents already put in the attachment store).
pub async fn send_reply_with_files(
    store: &Store,
    reply: &NewReply<'_>,
    files: &[AttachedFile],
) -> Result<StoredReply> {
    send_reply_as_seen(store, reply, files, None).await
}

/// [`send_reply_with_files`] from someone who had seen the ticket up to message `last_seen`:
/// refused with [`StoreError::Stale`] when messages they have not seen came after it.
pub async fn send_reply_as_seen(
    store: &Store,
    reply: &NewReply<'_>,
    files: &[AttachedFile],
    last_seen: Option<i64>,
) -> Result<StoredReply> {
    let mut tx = store.begin_write().await?;
    let stored = add_in(&mut tx, reply, files, last_seen).await?;
    tx.commit().await?;
    Ok(stored)
}

/// [`send_reply_as_seen`] in the caller's transaction (a chat command records that it was
/// acted on in the same one). The check for unseen messages runs here, so it sees what was
/// committed before the reply and nothing can slip in between.
pub async fn add_in(
    tx: &mut Tx,
    reply: &NewReply<'_>,
    files: &[AttachedFile],
    last_seen: Option<i64>,
) -> Result<StoredReply> {
    if let Some(seen) = last_seen {
        let unseen = outbound::unseen_since(tx, reply.number, reply.agent_id, seen).await?;
        if !unseen.is_empty() {
            return Err(StoreError::Stale {
                number: reply.number,
                seen,
                unseen,
            });
        }
    }
    let stored = outbound::add_reply(tx, reply).await?;
    let files: Vec<_> = files
        .iter()
        .map(|file| {
            let attachment = attachments::NewAttachment {
                filename: &file.filename,
                content_type: &file.content_type,
                size: file.size,
                inline: false,
                content_id: None,
                stored: Ok(file.sha256.clone()),
            };
            (stored.message_id, attachment)
        })
        .collect();
    attachments::insert_all(tx, &files, reply.now).await?;
    if stored.to_deliver {
        crate::jobs::deliver::enqueue(tx, stored.message_id, 1, reply.now).await?;
    }
    // A public answer meets the response target that waited for it.
    if reply.kind == crate::domain::MessageKind::Public {
        crate::jobs::sla::touch(tx, stored.ticket.id, reply.now).await?;
    }
    if reply.kind == MessageKind::Internal {
        super::mentions::record_in(
            tx,
            stored.ticket.id,
            stored.message_id,
            reply.agent_id,
            reply.text,
            reply.now,
        )
        .await?;
    }
    Ok(stored)
}
