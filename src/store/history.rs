//! A ticket's history in words: each event as a short sentence with names, rendered when it is
//! read, so rows written long ago read as well as new ones. The rows keep what they always
//! kept (names of departments and agents at the time of a change; ids in the actions a rule
//! applied, named here from the current tables).

use std::collections::HashMap;

use super::tickets::EventView;
use super::{Result, Store, on_pool};

/// Department and agent names by id, for the actions of rule events.
#[derive(Debug, Default)]
pub struct Names {
    departments: HashMap<i64, String>,
    agents: HashMap<i64, String>,
}

impl Names {
    /// The names, read only if some event needs them.
    pub async fn for_events(store: &Store, events: &[EventView]) -> Result<Names> {
        if !events.iter().any(|event| event.kind == "rule") {
            return Ok(Names::default());
        }
        let departments: Vec<(i64, String)> = on_pool!(store, pool => sqlx::query_as(
            "SELECT id, name FROM departments",
        )
        .fetch_all(pool)
        .await)?;
        let agents: Vec<(i64, String)> = on_pool!(store, pool => sqlx::query_as(
            "SELECT id, name FROM agents",
        )
        .fetch_all(pool)
        .await)?;
        Ok(Names {
            departments: departments.into_iter().collect(),
            agents: agents.into_iter().collect(),
        })
    }
}

/// How the ticket's channel is said in "Created by mail from …".
fn arrival(channel: &str) -> String {
    match channel {
        "email" => "mail".to_owned(),
        "telegram" => "Telegram message".to_owned(),
        "discord" => "Discord message".to_owned(),
        other => format!("{other} message"),
    }
}

fn or<'a>(value: &'a Option<String>, none: &'a str) -> &'a str {
    value.as_deref().unwrap_or(none)
}

/// Capitalised first letter: "first response" → "First response".
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A rule's actions as stored ("department → #3; assignee → agent #5") with names.
fn named_actions(actions: &str, names: &Names) -> String {
    actions
        .split("; ")
        .map(|action| {
            if let Some(id) = action.strip_prefix("department → #")
                && let Ok(id) = id.parse::<i64>()
            {
                match names.departments.get(&id) {
                    Some(name) => format!("department → {name}"),
                    None => format!("department → #{id} (deleted)"),
                }
            } else if let Some(id) = action.strip_prefix("assignee → agent #")
                && let Ok(id) = id.parse::<i64>()
            {
                match names.agents.get(&id) {
                    Some(name) => format!("assignee → {name}"),
                    None => format!("assignee → agent #{id} (deleted)"),
                }
            } else {
                action.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The event as a sentence: "Department: General → Billing", "Merged into #1001", "Created by
/// mail from Pia Example (pia@example.org)".
pub fn sentence(event: &EventView, names: &Names) -> String {
    let old = &event.old_value;
    let new = &event.new_value;
    match event.kind.as_str() {
        "created" => {
            let from = match (&event.customer_name, &event.customer_address) {
                (Some(name), Some(address)) if name != address => format!("{name} ({address})"),
                (Some(name), _) => name.clone(),
                (None, Some(address)) => address.clone(),
                (None, None) => "an unknown sender".to_owned(),
            };
            let mut text = format!(
                "Created by {} from {from}",
                arrival(event.channel.as_deref().unwrap_or("email"))
            );
            if let Some(follows) = event.follows {
                text.push_str(&format!(", continuing closed ticket #{follows}"));
            }
            text
        }
        "status" => format!("Status: {} → {}", or(old, "–"), or(new, "–")),
        "priority" => format!("Priority: {} → {}", or(old, "–"), or(new, "–")),
        "department" => format!("Department: {} → {}", or(old, "none"), or(new, "none")),
        "assignee" => format!(
            "Assignee: {} → {}",
            or(old, "unassigned"),
            or(new, "unassigned")
        ),
        "tags" => format!("Tags: {} → {}", or(old, "none"), or(new, "none")),
        "merged" => match (old, new) {
            (_, Some(into)) => format!("Merged into {into}"),
            (Some(from), None) => format!("{from} merged into this ticket"),
            (None, None) => "Merged".to_owned(),
        },
        "linked" => match (old, new) {
            (_, Some(named)) => format!("Opened apart from {named}"),
            (Some(other), None) => format!("{other} opened apart from this ticket"),
            (None, None) => "Linked".to_owned(),
        },
        "rule" => {
            let mut text = format!("Rule “{}” applied", or(new, "?"));
            if let Some(actions) = event.reason.as_deref().filter(|a| !a.is_empty()) {
                text.push_str(": ");
                text.push_str(&named_actions(actions, names));
            }
            text
        }
        "replied" => "Replied to the customer".to_owned(),
        "note" => "Added an internal note".to_owned(),
        "delivery_failed" => match new {
            Some(channel) => format!("Delivery by {} failed", arrival(channel)),
            None => "Delivery failed".to_owned(),
        },
        "escalated" => format!("Escalated: {} target missed", or(new, "SLA")),
        "sla_warning" => format!(
            "SLA warning: {} due soon",
            or(new, "target").replace('_', " ")
        ),
        "sla_breached" => format!(
            "SLA breached: {} missed",
            or(new, "target").replace('_', " ")
        ),
        "survey_sent" => format!(
            "Satisfaction survey sent by {}",
            arrival(new.as_deref().unwrap_or("email"))
        ),
        "rated" => match old {
            Some(old) => format!("Rating changed: {old} → {} of 5", or(new, "?")),
            None => format!("Rated {} of 5 by the customer", or(new, "?")),
        },
        "rating_comment" => "Commented on the rating".to_owned(),
        other => {
            let kind = capitalised(&other.replace('_', " "));
            match (old, new) {
                (None, None) => kind,
                _ => format!("{kind}: {} → {}", or(old, "–"), or(new, "–")),
            }
        }
    }
}

/// What the history shows beside the sentence, if the sentence does not say it already.
pub fn note(event: &EventView) -> Option<&str> {
    match event.kind.as_str() {
        "created" | "rule" => None,
        _ => event.reason.as_deref(),
    }
}
