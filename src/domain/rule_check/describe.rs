//! Rules and findings in words, naming departments and agents.

use super::{Directory, Finding, NeverFires};
use crate::domain::rules::{self, Condition, Rule};

impl Finding {
    /// The finding in words, naming rules, departments and agents.
    pub fn message(&self, rules: &[Rule], directory: &Directory) -> String {
        let rule_name = |at: usize| {
            rules
                .get(at)
                .map_or_else(|| format!("#{}", at + 1), |rule| format!("“{}”", rule.name))
        };
        match self {
            Finding::NeverFires(NeverFires::EmptyList { position }) => {
                format!("Never fires: condition {position} has an empty list, so nothing meets it.")
            }
            Finding::NeverFires(NeverFires::DepartmentsGone { position }) => format!(
                "Never fires: condition {position} names only departments that no longer exist."
            ),
            Finding::NeverFires(NeverFires::Contradiction { first, second }) => format!(
                "Never fires: conditions {first} and {second} contradict each other; no ticket \
                 meets both."
            ),
            Finding::NeverFires(NeverFires::StoppedBy { rule }) => format!(
                "Never fires: the earlier rule {} (position {}) matches every ticket this one \
                 would and stops the evaluation.",
                rule_name(*rule),
                rule + 1
            ),
            Finding::DepartmentGone {
                position,
                department,
            } => format!(
                "Action {position} sets a department that no longer exists (#{department})."
            ),
            Finding::AgentUnavailable { position, agent } => match directory.agent(*agent) {
                Some(known) => format!(
                    "Action {position} assigns to {}, who is disabled and cannot act on the ticket.",
                    known.name
                ),
                None => format!(
                    "Action {position} assigns to an agent who no longer exists (#{agent})."
                ),
            },
            Finding::DeletedInCondition {
                position,
                department,
            } => format!(
                "Condition {position} names a department that no longer exists (#{department})."
            ),
            Finding::Overridden {
                by,
                field,
                always,
                tickets,
            } => {
                let seen = if tickets.is_empty() {
                    String::new()
                } else {
                    let shown: Vec<String> =
                        tickets.iter().take(5).map(|n| format!("#{n}")).collect();
                    let more = if tickets.len() > 5 { ", …" } else { "" };
                    format!(
                        " It did on {} recent ticket{} ({}{more}).",
                        tickets.len(),
                        if tickets.len() == 1 { "" } else { "s" },
                        shown.join(", ")
                    )
                };
                let scope = if *always {
                    "on every ticket this rule matches"
                } else {
                    "on some tickets this rule matches"
                };
                format!(
                    "Overridden: the later rule {} (position {}) sets the {} again {scope}, and \
                     this rule does not stop.{seen} Tick “stop” here or move the rules.",
                    rule_name(*by),
                    by + 1,
                    field.as_str()
                )
            }
        }
    }
}

fn quoted(values: &[String]) -> String {
    let values: Vec<String> = values
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(|v| format!("“{v}”"))
        .collect();
    or_list(values)
}

fn or_list(values: Vec<String>) -> String {
    match values.len() {
        0 => "(nothing)".to_owned(),
        _ => values.join(" or "),
    }
}

/// A condition in words, with names for departments.
pub fn describe_condition(condition: &Condition, directory: &Directory) -> String {
    match condition {
        Condition::Channel { any } => format!(
            "channel is {}",
            or_list(any.iter().map(|c| c.as_str().to_owned()).collect())
        ),
        Condition::SenderAddress { any } => format!("sender is {}", quoted(any)),
        Condition::SenderDomain { any } => {
            format!("sender's domain is {} (or a subdomain)", quoted(any))
        }
        Condition::SubjectContains { any } => format!("subject contains {}", quoted(any)),
        Condition::TextContains { any } => {
            format!("subject or text contains {}", quoted(any))
        }
        Condition::TextMatches { regex } => format!("subject or text matches /{regex}/"),
        Condition::Department { any } if any.is_empty() => "in no department yet".to_owned(),
        Condition::Department { any } => format!(
            "department is {}",
            or_list(
                any.iter()
                    .map(|id| directory.department_name(*id))
                    .collect()
            )
        ),
        Condition::Priority { any } => format!(
            "priority is {}",
            or_list(any.iter().map(|p| p.as_str().to_owned()).collect())
        ),
        Condition::BusinessHours { inside: true } => "arrived inside business hours".to_owned(),
        Condition::BusinessHours { inside: false } => "arrived outside business hours".to_owned(),
    }
}

/// An action in words, with names for departments and agents.
pub fn describe_action(action: &rules::Action, directory: &Directory) -> String {
    match action {
        rules::Action::SetDepartment { department } => {
            format!("department → {}", directory.department_name(*department))
        }
        rules::Action::SetPriority { priority } => format!("priority → {priority}"),
        rules::Action::AddTags { tags } => format!("add tags {}", tags.join(", ")),
        rules::Action::AssignTo { agent } => format!("assign to {}", directory.agent_name(*agent)),
    }
}
