//! `/notify` in the agents' chat: how the agent is told of what concerns them, seen or changed
//! (the same choices as on `/account`).

use crate::domain::notice::{NoticeEvent, NoticeWay};
use crate::store::{self, Store, StoreError};

/// Changes the agent's way for one event when `change` says so, and answers with all of them.
pub async fn answer(
    store: &Store,
    agent_id: i64,
    change: Option<(NoticeEvent, Option<NoticeWay>)>,
) -> Result<String, StoreError> {
    if let Some(change) = change {
        store::notices::choose(store, agent_id, &[change]).await?;
    }
    let mut text = String::from(if change.is_some() {
        "Saved. You are told:"
    } else {
        "You are told:"
    });
    for preference in store::notices::preferences(store, agent_id).await? {
        text.push_str(&format!(
            "\n{}: {}{}",
            preference.event.label(),
            preference.way,
            if preference.is_default {
                " (default)"
            } else {
                ""
            }
        ));
    }
    text.push_str("\nChange one with /notify EVENT WAY, e.g. /notify mentioned both.");
    Ok(text)
}
