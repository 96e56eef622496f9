//! The list's bulk actions: the tickets ticked on the list (`ticket`, repeated, and
//! `all_on_page` from the "select all" box, which works without JavaScript) changed in one
//! action by [`ops::bulk`], then the same list again with what was done.

use axum::extract::State;
use axum::response::Response;
use chrono::Utc;

use super::actions::{optional_id, tag_edit};
use super::{Choice, ListParams, choices, list_page, parse_or_bad};
use crate::domain::{Priority, Status, TicketNumber};
use crate::ops::{self, BulkError, ChangedBy, TicketChange};
use crate::store::agents::AgentSummary;
use crate::web::AppState;
use crate::web::auth::{Posted, Viewer};
use crate::web::error::{WebError, WebResult};
use crate::web::pages::see_other;

/// What the bulk form above the list offers.
pub struct BulkForm {
    pub csrf: String,
    /// The list's query string, to come back to the same list.
    pub back: String,
    pub statuses: Vec<Choice>,
    pub priorities: Vec<Choice>,
    pub agents: Vec<Choice>,
}

impl BulkForm {
    pub(super) fn new(viewer: &Viewer, params: &ListParams, agents: &[AgentSummary]) -> BulkForm {
        BulkForm {
            csrf: viewer.csrf().to_owned(),
            back: params.same_page(),
            statuses: choices(Status::ALL.iter().map(|s| (s.as_str(), s.as_str())), ""),
            priorities: choices(Priority::ALL.iter().map(|p| (p.as_str(), p.as_str())), ""),
            agents: choices(
                agents
                    .iter()
                    .filter(|agent| agent.active)
                    .map(|agent| (agent.id.to_string(), agent.name.clone())),
                "",
            ),
        }
    }
}

/// What the list says after a bulk action redirected to it (`done` is `closed` or `changed`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct BulkDone {
    done: String,
    changed: String,
    unchanged: String,
}

fn tickets(count: usize) -> String {
    if count == 1 {
        "1 ticket".to_owned()
    } else {
        format!("{count} tickets")
    }
}

impl BulkDone {
    pub(super) fn notice(&self) -> Option<String> {
        let verb = match self.done.as_str() {
            "closed" => "closed",
            "changed" => "changed",
            _ => return None,
        };
        let changed: usize = self.changed.parse().unwrap_or_default();
        let unchanged: usize = self.unchanged.parse().unwrap_or_default();
        let mut text = if changed == 0 {
            "Nothing was changed.".to_owned()
        } else {
            format!("{} {verb}.", tickets(changed))
        };
        if unchanged > 0 {
            text.push_str(&format!(
                " {} had these values already.",
                tickets(unchanged)
            ));
        }
        Some(text)
    }
}

/// The posted fields; `ticket` repeats.
struct BulkFields {
    fields: Vec<(String, String)>,
}

impl BulkFields {
    fn get(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    /// The ticked tickets and, when "select all on this page" was ticked, the page's.
    fn numbers(&self) -> WebResult<Vec<TicketNumber>> {
        let mut numbers = Vec::new();
        for (key, value) in &self.fields {
            let texts: Vec<&str> = match key.as_str() {
                "ticket" => vec![value.as_str()],
                "all_on_page" => value.split_whitespace().collect(),
                _ => continue,
            };
            for text in texts {
                let number = text.trim().trim_start_matches('#').parse().map_err(|_| {
                    WebError::BadRequest(format!("{text:?} is not a ticket number"))
                })?;
                numbers.push(TicketNumber(number));
            }
        }
        Ok(numbers)
    }

    fn request(&self) -> WebResult<(Vec<TicketNumber>, TicketChange)> {
        Ok((self.numbers()?, self.change()?))
    }

    /// The change to make: the "Close" button closes, whatever the status field says.
    fn change(&self) -> WebResult<TicketChange> {
        let status = if self.get("action") == "close" {
            Some(Status::Closed)
        } else {
            parse_or_bad::<Status>("status", self.get("status"))?
        };
        Ok(TicketChange {
            status,
            priority: parse_or_bad::<Priority>("priority", self.get("priority"))?,
            department: None,
            assignee: optional_id("agent", self.get("assignee"))?,
            tags: tag_edit(self.get("add_tags"), "")?,
            reason: Some(self.get("reason").to_owned()),
        })
    }
}

/// Applies the bulk form in one transaction, then shows the same list (filters and page
/// kept) saying what was done; a refusal shows the list with why, and nothing changed.
pub async fn bulk(
    State(state): State<AppState>,
    posted: Posted<Vec<(String, String)>>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    let form = BulkFields {
        fields: posted.form,
    };
    // Only the list's own fields come back, re-encoded, so the redirect stays on this site.
    let back: ListParams = serde_urlencoded::from_str(form.get("back")).unwrap_or_default();
    let (numbers, change) = match form.request() {
        Ok(request) => request,
        Err(WebError::BadRequest(why)) => {
            return list_page(&state, &viewer, back, None, Some(why)).await;
        }
        Err(other) => return Err(other),
    };
    let by = ChangedBy {
        agent_id: viewer.id(),
        now: Utc::now(),
    };
    match ops::bulk::apply(&state.store, &numbers, viewer.visibility(), by, &change).await {
        Ok(outcome) => {
            if !outcome.changed.is_empty() {
                state.live.wake();
            }
            let done = if change.status == Some(Status::Closed) {
                "closed"
            } else {
                "changed"
            };
            let changed = outcome.changed.len().to_string();
            let unchanged = outcome.unchanged.len().to_string();
            let said = serde_urlencoded::to_string([
                ("done", done),
                ("changed", changed.as_str()),
                ("unchanged", unchanged.as_str()),
            ])
            .unwrap_or_default();
            let list = back.same_page();
            let query = if list.is_empty() {
                said
            } else {
                format!("{list}&{said}")
            };
            Ok(see_other(&format!("/tickets?{query}")))
        }
        Err(BulkError::Store(error)) => Err(error.into()),
        Err(refused) => list_page(&state, &viewer, back, None, Some(refused.to_string())).await,
    }
}
