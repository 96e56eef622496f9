//! Replies and internal notes: an agent's text stored on the ticket and, for a public reply,
//! its delivery queued in the same transaction. The delivery itself is a job
//! ([`crate::jobs::deliver`]); this is what a person does.

use crate::domain::{MessageKind, TicketNumber};
use crate::store::outbound::{self, NewReply, StoredReply};
use crate::store::{Result, Store, Tx, attachments};

/// The kind of message the reply form's "internal note" box asks for.
pub fn reply_kind(note: bool) -> MessageKind {
    if note {
        MessageKind::Internal
    } else {
        MessageKind::Public
    }
}

/// A Message-ID for a reply on ticket `number`, in the domain of the support address.
pub fn new_mail_message_id(support_address: &str, number: TicketNumber) -> String {
    let domain = support_address
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .filter(|domain| !domain.is_empty())
        .unwrap_or("helpdesk.invalid");
    format!("{:016x}.{number}@{domain}", fastrand::u64(..))
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

/// [`send_reply`] with files attached (their contents already put in the attachment store).
pub async fn send_reply_with_files(
    store: &Store,
    reply: &NewReply<'_>,
    files: &[AttachedFile],
) -> Result<StoredReply> {
    let mut tx = store.begin_write().await?;
    let stored = add_in(&mut tx, reply, files).await?;
    tx.commit().await?;
    Ok(stored)
}

/// [`send_reply_with_files`] in the caller's transaction (a chat command records that it was
/// acted on in the same one).
pub async fn add_in(
    tx: &mut Tx,
    reply: &NewReply<'_>,
    files: &[AttachedFile],
) -> Result<StoredReply> {
    let stored = outbound::add_reply(tx, reply).await?;
    for file in files {
        attachments::insert(
            tx,
            stored.message_id,
            &attachments::NewAttachment {
                filename: &file.filename,
                content_type: &file.content_type,
                size: file.size,
                inline: false,
                content_id: None,
                stored: Ok(file.sha256.clone()),
            },
            reply.now,
        )
        .await?;
    }
    if stored.to_deliver {
        crate::jobs::deliver::enqueue(tx, stored.message_id, 1, reply.now).await?;
    }
    Ok(stored)
}
