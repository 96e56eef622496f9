//! A reply with a canned response: its body with the placeholders filled in (unless the agent
//! wrote the text), and its actions (status, priority, tags) applied in the same transaction,
//! so the reply and its actions are one commit.

use crate::domain::TicketNumber;
use crate::domain::canned::{self, PlaceholderValues};
use crate::domain::tags::TagChange;
use crate::ops::AttachedFile;
use crate::ops::change::{ChangedBy, TicketChange, apply_in};
use crate::store::canned::{CannedResponse, Pick};
use crate::store::outbound::{NewReply, StoredReply};
use crate::store::{Result, Store, StoreError, Tx, canned as stored};

/// What a canned response changes on the ticket it answers; `None` when it only replies.
pub fn change_of(response: &CannedResponse) -> Option<TicketChange> {
    response.has_actions().then(|| TicketChange {
        status: response.status,
        priority: response.priority,
        tags: (!response.tags.is_empty()).then(|| TagChange::Edit {
            add: response.tags.clone(),
            remove: Vec::new(),
        }),
        reason: Some(format!("canned response {:?}", response.name)),
        ..TicketChange::default()
    })
}

/// The body of `response` filled in with `values`.
pub fn render(response: &CannedResponse, values: &PlaceholderValues) -> Result<String> {
    // Checked when saved; a body that no longer passes is refused rather than sent raw.
    canned::render(&response.body, values).map_err(|error| {
        StoreError::Conflict(format!(
            "canned response {:?} cannot be used: {error}",
            response.name
        ))
    })
}

/// The text of `response` as `agent_id` would send it on ticket `number` (the reply form
/// prefilled with it).
pub async fn render_for(
    store: &Store,
    number: TicketNumber,
    agent_id: i64,
    response: &CannedResponse,
) -> Result<String> {
    let values = stored::placeholder_values(store, number, agent_id).await?;
    render(response, &values)
}

/// What a reply with a canned response did.
#[derive(Debug, Clone)]
pub struct CannedSent {
    pub reply: StoredReply,
    pub response: CannedResponse,
    /// Whether its actions changed the ticket.
    pub changed: bool,
}

/// Sends `reply` with the canned response `pick` (one `agent_id` may use) in a transaction of
/// its own, refused like [`super::reply::send_reply_as_seen`] when its writer had not seen
/// the newest messages. A blank `reply.text` is the canned body filled in; otherwise the text is sent as
/// written (an agent's edit of the filled-in body).
pub async fn reply_with(
    store: &Store,
    reply: &NewReply<'_>,
    pick: Pick<'_>,
    files: &[AttachedFile],
    last_seen: Option<i64>,
) -> Result<CannedSent> {
    let mut tx = store.begin_write().await?;
    let sent = reply_with_in(&mut tx, reply, pick, files, last_seen).await?;
    tx.commit().await?;
    Ok(sent)
}

/// [`reply_with`] in the caller's transaction (a chat command records that it was acted on
/// in the same one). A refused action (a status the workflow does not allow) fails it all.
pub async fn reply_with_in(
    tx: &mut Tx,
    reply: &NewReply<'_>,
    pick: Pick<'_>,
    files: &[AttachedFile],
    last_seen: Option<i64>,
) -> Result<CannedSent> {
    let response = stored::pick_in(tx, reply.agent_id, pick)
        .await?
        .ok_or_else(|| match pick {
            Pick::Id(id) => {
                StoreError::NotFound(format!("there is no canned response {id} you can use"))
            }
            Pick::Name(name) => StoreError::NotFound(format!(
                "No canned response is called {name:?}; the /canned page lists them."
            )),
        })?;
    let text = if reply.text.trim().is_empty() {
        let values = stored::placeholder_values_in(tx, reply.number, reply.agent_id).await?;
        render(&response, &values)?
    } else {
        reply.text.to_owned()
    };
    let stored_reply = super::reply::add_in(
        tx,
        &NewReply {
            text: &text,
            ..reply.clone()
        },
        files,
        last_seen,
    )
    .await?;
    let changed = match change_of(&response) {
        Some(change) => {
            apply_in(
                tx,
                reply.number,
                ChangedBy {
                    agent_id: reply.agent_id,
                    now: reply.now,
                },
                &change,
            )
            .await?
        }
        None => false,
    };
    Ok(CannedSent {
        reply: stored_reply,
        response,
        changed,
    })
}
