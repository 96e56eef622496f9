//! `@name` in an internal note: the agents it names are recorded with the note, and one outbox
//! entry asks for them to be told. A name is the local part of an agent's email address or
//! their name without spaces, in any case ([`crate::domain::notice::names_person`]); only active
//! agents who may see the ticket count, and the note's author never mentions themselves.

use chrono::{DateTime, Utc};

use crate::domain::TicketId;
use crate::domain::notice::{mentioned_names, names_person};
use crate::store::outbox::{self, OutboxKind};
use crate::store::{Result, Tx, notices};

/// Records the agents note `message_id` on ticket `ticket_id` mentions, and the outbox entry
/// that tells them, inside the note's transaction. Returns whom it mentions.
pub async fn record_in(
    tx: &mut Tx,
    ticket_id: TicketId,
    message_id: i64,
    author_id: i64,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Vec<i64>> {
    let names = mentioned_names(text);
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let named: Vec<i64> = notices::mentionable_in(tx, ticket_id)
        .await?
        .into_iter()
        .filter(|(id, email, name)| {
            *id != author_id
                && names
                    .iter()
                    .any(|mention| names_person(mention, email, name))
        })
        .map(|(id, _, _)| id)
        .collect();
    if named.is_empty() {
        return Ok(named);
    }
    notices::record_mentions(tx, message_id, &named).await?;
    outbox::record_by(
        tx,
        OutboxKind::AgentMentioned,
        ticket_id,
        Some(message_id),
        Some(author_id),
        now,
    )
    .await?;
    Ok(named)
}
