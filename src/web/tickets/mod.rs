//! The ticket list ([`list`]) and the ticket page ([`page`]); the page's forms (reply, note,
//! changes, merge) are in [`actions`], the list's bulk actions in [`bulk`], attachment
//! downloads in [`download`]. Here: what several of them share (select options, reading
//! filters, which tickets a viewer may open).

use super::AppState;
use super::auth::Viewer;
use super::error::{WebError, WebResult};
use crate::store::agents::{AgentSummary, Department};
use crate::store::views::{self, TicketFacts};

mod actions;
mod bulk;
mod download;
mod list;
mod page;

use crate::domain::TicketNumber;
pub use actions::{merge, reply, update};
pub use bulk::bulk;
pub use download::{download, preview};
use list::list_page;
pub(crate) use list::mark_due;
pub use list::{ListParams, list};
pub use page::show;
use page::{ReplyDraft, ticket_page};

pub(super) fn parse_or_bad<T: std::str::FromStr>(what: &str, text: &str) -> WebResult<Option<T>> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| WebError::BadRequest(format!("{text:?} is not a valid {what}")))
}

/// One option of a select.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub fn choices<V: Into<String>, L: Into<String>>(
    options: impl IntoIterator<Item = (V, L)>,
    current: &str,
) -> Vec<Choice> {
    options
        .into_iter()
        .map(|(value, label)| {
            let value = value.into();
            Choice {
                selected: value == current,
                label: label.into(),
                value,
            }
        })
        .collect()
}

fn department_choices(departments: &[Department], current: &str) -> Vec<Choice> {
    choices(
        departments
            .iter()
            .map(|d| (d.id.to_string(), d.name.clone())),
        current,
    )
}

fn agent_choices(agents: &[AgentSummary], current: &str) -> Vec<Choice> {
    choices(
        agents.iter().map(|a| (a.id.to_string(), a.name.clone())),
        current,
    )
}

/// The ticket behind `number`, if the viewer may see it (404 either way, so agents cannot
/// probe which numbers exist outside their departments).
pub(super) async fn visible_ticket(
    state: &AppState,
    viewer: &Viewer,
    number: TicketNumber,
) -> WebResult<TicketFacts> {
    let not_found = || WebError::NotFound(format!("There is no ticket #{number} you can see."));
    let facts = views::ticket_facts(&state.store, number)
        .await?
        .ok_or_else(not_found)?;
    if viewer.is_admin() || views::agent_may_see(&state.store, viewer.id(), &facts).await? {
        Ok(facts)
    } else {
        Err(not_found())
    }
}
