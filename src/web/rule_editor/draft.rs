//! The rule as the editor form holds it, to and from a stored rule and the posted fields.

use std::collections::BTreeMap;

use helpdesk_channel::ChannelKind;

use crate::domain::Priority;
use crate::domain::rules::{Action, Condition, Rule};
use crate::web::error::{WebError, WebResult};

/// Conditions an admin can add, as the form names and explains them.
pub(super) const CONDITION_KINDS: &[(&str, &str)] = &[
    ("channel", "Channel is one of"),
    ("sender_address", "Sender address is one of"),
    (
        "sender_domain",
        "Sender's domain (or a subdomain) is one of",
    ),
    ("subject_contains", "Subject contains any of"),
    ("text_contains", "Subject or text contains any of"),
    (
        "text_matches",
        "Subject or text matches the regular expression",
    ),
    ("department", "Department (as the rule runs) is one of"),
    ("priority", "Priority (as the rule runs) is one of"),
    ("business_hours", "Arrived inside or outside business hours"),
];

pub(super) const ACTION_KINDS: &[(&str, &str)] = &[
    ("set_department", "Set the department to"),
    ("set_priority", "Set the priority to"),
    ("add_tags", "Add the tags"),
    ("assign_to", "Assign to"),
];

/// The value of a department condition that means "no department yet".
pub(super) const NO_DEPARTMENT: &str = "none";

pub(super) fn label_of(kinds: &[(&'static str, &'static str)], kind: &str) -> Option<&'static str> {
    kinds
        .iter()
        .find(|(known, _)| *known == kind)
        .map(|(_, label)| *label)
}

/// One condition or action as the form holds it: its kind and the values chosen or typed.
#[derive(Debug, Clone, Default)]
pub(super) struct Row {
    pub(super) kind: String,
    pub(super) values: Vec<String>,
}

impl Row {
    pub(super) fn text(&self) -> &str {
        self.values.first().map_or("", String::as_str)
    }
}

/// The rule as the form holds it, typed values kept even when they are wrong.
#[derive(Debug, Clone)]
pub(super) struct Draft {
    pub(super) name: String,
    pub(super) enabled: bool,
    pub(super) stop: bool,
    pub(super) conditions: Vec<Row>,
    pub(super) actions: Vec<Row>,
}

/// Words, addresses or tags typed as one field: separated by commas or new lines.
fn split_list(text: &str) -> Vec<String> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Draft {
    pub(super) fn blank() -> Draft {
        Draft {
            name: String::new(),
            enabled: true,
            stop: false,
            conditions: Vec::new(),
            actions: Vec::new(),
        }
    }

    pub(super) fn of(rule: &Rule) -> Draft {
        let texts = |values: &[String]| vec![values.join(", ")];
        let conditions = rule
            .conditions
            .iter()
            .map(|condition| {
                let (kind, values) = match condition {
                    Condition::Channel { any } => (
                        "channel",
                        any.iter().map(|c| c.as_str().to_owned()).collect(),
                    ),
                    Condition::SenderAddress { any } => ("sender_address", texts(any)),
                    Condition::SenderDomain { any } => ("sender_domain", texts(any)),
                    Condition::SubjectContains { any } => ("subject_contains", texts(any)),
                    Condition::TextContains { any } => ("text_contains", texts(any)),
                    Condition::TextMatches { regex } => ("text_matches", vec![regex.clone()]),
                    Condition::Department { any } if any.is_empty() => {
                        ("department", vec![NO_DEPARTMENT.to_owned()])
                    }
                    Condition::Department { any } => {
                        ("department", any.iter().map(i64::to_string).collect())
                    }
                    Condition::Priority { any } => (
                        "priority",
                        any.iter().map(|p| p.as_str().to_owned()).collect(),
                    ),
                    Condition::BusinessHours { inside } => (
                        "business_hours",
                        vec![if *inside { "inside" } else { "outside" }.to_owned()],
                    ),
                };
                Row {
                    kind: kind.to_owned(),
                    values,
                }
            })
            .collect();
        let actions = rule
            .actions
            .iter()
            .map(|action| {
                let (kind, value) = match action {
                    Action::SetDepartment { department } => {
                        ("set_department", department.to_string())
                    }
                    Action::SetPriority { priority } => {
                        ("set_priority", priority.as_str().to_owned())
                    }
                    Action::AddTags { tags } => ("add_tags", tags.join(", ")),
                    Action::AssignTo { agent } => ("assign_to", agent.to_string()),
                };
                Row {
                    kind: kind.to_owned(),
                    values: vec![value],
                }
            })
            .collect();
        Draft {
            name: rule.name.clone(),
            enabled: rule.enabled,
            stop: rule.stop,
            conditions,
            actions,
        }
    }

    /// Reads the posted fields: `c<n>_if` / `c<n>_value` for conditions, `a<n>_then` /
    /// `a<n>_value` for actions, in the order of n.
    pub(super) fn posted(fields: &[(String, String)]) -> WebResult<Draft> {
        let mut conditions: BTreeMap<usize, Row> = BTreeMap::new();
        let mut actions: BTreeMap<usize, Row> = BTreeMap::new();
        let mut draft = Draft::blank();
        draft.enabled = false;
        for (key, value) in fields {
            match key.as_str() {
                "name" => draft.name = value.clone(),
                "enabled" => draft.enabled = true,
                "stop" => draft.stop = true,
                _ => {}
            }
            let Some((row, field)) = key.split_once('_') else {
                continue;
            };
            let (rows, kinds, kind_field) = match row.as_bytes().first() {
                Some(b'c') => (&mut conditions, CONDITION_KINDS, "if"),
                Some(b'a') => (&mut actions, ACTION_KINDS, "then"),
                _ => continue,
            };
            let Ok(index) = row[1..].parse::<usize>() else {
                continue;
            };
            let entry = rows.entry(index).or_default();
            if field == kind_field {
                if label_of(kinds, value).is_none() {
                    return Err(WebError::BadRequest(format!(
                        "{value:?} is not a kind of condition or action"
                    )));
                }
                entry.kind = value.clone();
            } else if field == "value" {
                entry.values.push(value.clone());
            }
        }
        draft.conditions = conditions
            .into_values()
            .filter(|r| !r.kind.is_empty())
            .collect();
        draft.actions = actions
            .into_values()
            .filter(|r| !r.kind.is_empty())
            .collect();
        Ok(draft)
    }

    /// The rule the form describes, or what is wrong and where.
    pub(super) fn rule(&self, id: i64) -> Result<Rule, String> {
        let mut conditions = Vec::new();
        for (index, row) in self.conditions.iter().enumerate() {
            let position = index + 1;
            let wrong = |what: &str| format!("Condition {position}: {what}");
            let condition = match row.kind.as_str() {
                "channel" => Condition::Channel {
                    any: row
                        .values
                        .iter()
                        .map(|v| v.parse::<ChannelKind>().map_err(|e| wrong(&e.to_string())))
                        .collect::<Result<_, _>>()?,
                },
                "sender_address" => Condition::SenderAddress {
                    any: split_list(row.text()),
                },
                "sender_domain" => Condition::SenderDomain {
                    any: split_list(row.text()),
                },
                "subject_contains" => Condition::SubjectContains {
                    any: split_list(row.text()),
                },
                "text_contains" => Condition::TextContains {
                    any: split_list(row.text()),
                },
                "text_matches" => Condition::TextMatches {
                    regex: row.text().trim().to_owned(),
                },
                "department" => {
                    let none = row.values.iter().any(|v| v == NO_DEPARTMENT);
                    let ids = row
                        .values
                        .iter()
                        .filter(|v| *v != NO_DEPARTMENT)
                        .map(|v| v.parse::<i64>().map_err(|_| wrong("not a department")))
                        .collect::<Result<Vec<_>, _>>()?;
                    match (none, ids.is_empty()) {
                        (true, true) => Condition::Department { any: Vec::new() },
                        (false, false) => Condition::Department { any: ids },
                        (true, false) => {
                            return Err(wrong(
                                "“no department yet” cannot be combined with departments",
                            ));
                        }
                        (false, true) => {
                            return Err(wrong("choose a department (or “no department yet”)"));
                        }
                    }
                }
                "priority" => Condition::Priority {
                    any: row
                        .values
                        .iter()
                        .map(|v| v.parse::<Priority>().map_err(|e| wrong(&e.to_string())))
                        .collect::<Result<_, _>>()?,
                },
                _ => Condition::BusinessHours {
                    inside: row.text() != "outside",
                },
            };
            conditions.push(condition);
        }
        let mut actions = Vec::new();
        for (index, row) in self.actions.iter().enumerate() {
            let position = index + 1;
            let wrong = |what: &str| format!("Action {position}: {what}");
            let id = |what: &str| {
                row.text()
                    .parse::<i64>()
                    .map_err(|_| wrong(&format!("choose {what}")))
            };
            let action = match row.kind.as_str() {
                "set_department" => Action::SetDepartment {
                    department: id("a department")?,
                },
                "set_priority" => Action::SetPriority {
                    priority: row
                        .text()
                        .parse()
                        .map_err(|e: crate::domain::UnknownValue| wrong(&e.to_string()))?,
                },
                "add_tags" => Action::AddTags {
                    tags: row
                        .text()
                        .split([',', ' ', '\n'])
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect(),
                },
                _ => Action::AssignTo {
                    agent: id("an agent")?,
                },
            };
            if matches!(&action, Action::AddTags { tags } if tags.is_empty()) {
                return Err(wrong("type at least one tag"));
            }
            actions.push(action);
        }
        let rule = Rule {
            id,
            name: self.name.trim().to_owned(),
            enabled: self.enabled,
            conditions,
            actions,
            stop: self.stop,
        };
        rule.validate().map_err(|error| error.to_string())?;
        Ok(rule)
    }
}
