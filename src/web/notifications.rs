//! The signed-in person's choice of how they are told of each event (chat, mail, both, none, or
//! the default), as a form on `/account`; its JSON twin is in `api::notifications`.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::Response;

use super::AppState;
use super::auth::Posted;
use super::error::{WebError, WebResult};
use super::pages::see_other;
use super::tickets::{Choice, choices};
use crate::domain::notice::{NoticeEvent, NoticeWay};
use crate::store::{self, Store};

/// The value of "the default" in the form and the API.
pub const DEFAULT: &str = "default";

/// One event's row of the form.
pub struct Row {
    pub event: &'static str,
    pub label: &'static str,
    pub choices: Vec<Choice>,
}

/// The form as `templates/web/account_notifications.html` shows it.
pub struct NotificationsForm {
    pub rows: Vec<Row>,
    /// What the default is for this person: "chat" with a linked chat account, else "mail".
    pub default_way: &'static str,
    pub saved: bool,
}

/// The form with the person's current choices.
pub async fn form(store: &Store, agent_id: i64, saved: bool) -> store::Result<NotificationsForm> {
    let preferences = store::notices::preferences(store, agent_id).await?;
    let linked = !store::notices::chat_accounts(store, agent_id)
        .await?
        .is_empty();
    let default_way = NoticeWay::default_for(linked).as_str();
    let rows = preferences
        .iter()
        .map(|preference| {
            let current = if preference.is_default {
                DEFAULT
            } else {
                preference.way.as_str()
            };
            let default_label = format!("default ({default_way})");
            Row {
                event: preference.event.as_str(),
                label: preference.event.label(),
                choices: choices(
                    [
                        (DEFAULT, default_label.as_str()),
                        ("chat", "chat"),
                        ("mail", "mail"),
                        ("both", "chat and mail"),
                        ("none", "not at all"),
                    ],
                    current,
                ),
            }
        })
        .collect();
    Ok(NotificationsForm {
        rows,
        default_way,
        saved,
    })
}

/// A way as the form and the API name it: `None` for "default".
pub fn parse_way(value: &str) -> Result<Option<NoticeWay>, String> {
    let value = value.trim();
    if value == DEFAULT {
        return Ok(None);
    }
    value.parse::<NoticeWay>().map(Some).map_err(|_| {
        format!("{value:?} is not a way to be told: chat, mail, both, none or default")
    })
}

/// Saves the form: one select per event, named by the event.
pub async fn save(
    State(state): State<AppState>,
    posted: Posted<HashMap<String, String>>,
) -> WebResult<Response> {
    let mut changes = Vec::new();
    for event in NoticeEvent::ALL {
        if let Some(value) = posted.form.get(event.as_str()) {
            let way = parse_way(value).map_err(WebError::BadRequest)?;
            changes.push((*event, way));
        }
    }
    store::notices::choose(&state.store, posted.viewer.id(), &changes).await?;
    Ok(see_other("/account?notices_saved=true#notifications"))
}
