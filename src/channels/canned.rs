//! Canned responses in chat: `/canned NAME` as an answer to a ticket sends one (with its
//! actions), and the names offered while an agent types it (Discord's autocomplete).

use chrono::{DateTime, Utc};
use helpdesk_channel::{ChannelKind, Suggest, SuggestionRequest};

use super::ChatDesk;
use crate::domain::TicketNumber;
use crate::ops;
use crate::store::canned::Pick;
use crate::store::{StoreError, Tx, canned, outbound};

/// At most this many names are offered (Discord's limit).
const MAX_SUGGESTIONS: i64 = 25;

/// An agent's `/canned NAME` on a ticket.
pub(super) struct CannedCommand<'a> {
    pub number: TicketNumber,
    pub ticket_channel: ChannelKind,
    pub agent_id: i64,
    pub name: &'a str,
    pub support_address: &'a str,
    pub channels_here: &'a [ChannelKind],
    pub now: DateTime<Utc>,
}

/// Sends the canned response in the caller's transaction; the answer for the agents' place.
pub(super) async fn send(tx: &mut Tx, command: &CannedCommand<'_>) -> Result<String, StoreError> {
    let number = command.number;
    let mail_id = (command.ticket_channel == ChannelKind::Email)
        .then(|| crate::domain::new_mail_message_id(command.support_address, number));
    let sent = ops::canned::reply_with_in(
        tx,
        &outbound::NewReply {
            number,
            agent_id: command.agent_id,
            text: "",
            kind: ops::reply_kind(false),
            external_id: mail_id.as_deref(),
            channels_here: command.channels_here,
            now: command.now,
        },
        Pick::Name(command.name),
        &[],
        None,
    )
    .await?;
    let mut answer = format!(
        "Canned response {:?} is on its way to the customer of #{number} ({}).",
        sent.response.name, command.ticket_channel
    );
    if sent.changed {
        let mut actions = Vec::new();
        if let Some(status) = sent.response.status {
            actions.push(format!("status {status}"));
        }
        if let Some(priority) = sent.response.priority {
            actions.push(format!("priority {priority}"));
        }
        if !sent.response.tags.is_empty() {
            actions.push(format!("tags {}", sent.response.tags.join(", ")));
        }
        answer.push_str(&format!(" Applied: {}.", actions.join("; ")));
    }
    Ok(answer)
}

impl Suggest for ChatDesk {
    /// The canned response names the agent may use that contain what they typed; nothing for
    /// anyone who is not an agent, or for other commands.
    async fn suggest(&self, request: SuggestionRequest) -> Vec<String> {
        if request.command != "canned" || request.argument != "name" {
            return Vec::new();
        }
        let found = async {
            let Some((agent_id, _)) = crate::store::chat::agent_by_identity(
                self.store(),
                request.sender.channel,
                &request.sender.address,
            )
            .await?
            else {
                return Ok(Vec::new());
            };
            canned::names_like(self.store(), agent_id, &request.typed, MAX_SUGGESTIONS).await
        }
        .await;
        found.unwrap_or_else(|error: StoreError| {
            tracing::warn!(%error, "canned response names not suggested");
            Vec::new()
        })
    }
}
