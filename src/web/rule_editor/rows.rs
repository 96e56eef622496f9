//! The rows of the editor form, each with the choices its widget offers.

use helpdesk_channel::ChannelKind;

use super::draft::{ACTION_KINDS, CONDITION_KINDS, NO_DEPARTMENT, Row, label_of};
use crate::domain::Priority;
use crate::domain::rule_check::Directory;
use crate::web::tickets::{Choice, choices};

/// A row of the form with what its widget offers.
pub(super) struct RowView {
    /// The prefix of its fields: `c1`, `a2`, …
    pub(super) field: String,
    pub(super) kind: String,
    pub(super) label: &'static str,
    /// Checkboxes (channels, departments, priorities); empty for other widgets.
    pub(super) checks: Vec<Choice>,
    /// A menu (departments, agents, priorities, inside/outside); empty for other widgets.
    pub(super) options: Vec<Choice>,
    pub(super) text: String,
    pub(super) placeholder: &'static str,
}

fn department_choices(directory: &Directory, chosen: &[String]) -> Vec<Choice> {
    let mut list: Vec<Choice> = directory
        .departments
        .iter()
        .map(|(id, name)| Choice {
            value: id.to_string(),
            label: name.clone(),
            selected: chosen.contains(&id.to_string()),
        })
        .collect();
    // A department the rule names that is gone stays visible (and chosen) until it is removed.
    for value in chosen {
        if let Ok(id) = value.parse::<i64>()
            && !directory.has_department(id)
        {
            list.push(Choice {
                value: value.clone(),
                label: directory.department_name(id),
                selected: true,
            });
        }
    }
    list
}

fn agent_choices(directory: &Directory, chosen: &str) -> Vec<Choice> {
    let mut list: Vec<Choice> = directory
        .agents
        .iter()
        .map(|agent| Choice {
            value: agent.id.to_string(),
            label: directory.agent_name(agent.id),
            selected: agent.id.to_string() == chosen,
        })
        .collect();
    if let Ok(id) = chosen.parse::<i64>()
        && directory.agent(id).is_none()
    {
        list.push(Choice {
            value: chosen.to_owned(),
            label: directory.agent_name(id),
            selected: true,
        });
    }
    list
}

fn checks(options: &[&str], chosen: &[String]) -> Vec<Choice> {
    options
        .iter()
        .map(|value| Choice {
            value: (*value).to_owned(),
            label: (*value).to_owned(),
            selected: chosen.iter().any(|c| c == value),
        })
        .collect()
}

fn with_blank(prompt: &str, mut list: Vec<Choice>) -> Vec<Choice> {
    let nothing = !list.iter().any(|c| c.selected);
    list.insert(
        0,
        Choice {
            value: String::new(),
            label: prompt.to_owned(),
            selected: nothing,
        },
    );
    list
}

pub(super) fn condition_view(index: usize, row: &Row, directory: &Directory) -> RowView {
    let channels: Vec<&str> = ChannelKind::ALL.iter().map(|c| c.as_str()).collect();
    let priorities: Vec<&str> = Priority::ALL.iter().map(|p| p.as_str()).collect();
    let mut view = RowView {
        field: format!("c{}", index + 1),
        label: label_of(CONDITION_KINDS, &row.kind).unwrap_or("Condition"),
        kind: row.kind.clone(),
        checks: Vec::new(),
        options: Vec::new(),
        text: row.text().to_owned(),
        placeholder: "",
    };
    match row.kind.as_str() {
        "channel" => view.checks = checks(&channels, &row.values),
        "priority" => view.checks = checks(&priorities, &row.values),
        "department" => {
            view.checks = department_choices(directory, &row.values);
            view.checks.push(Choice {
                value: NO_DEPARTMENT.to_owned(),
                label: "no department yet".to_owned(),
                selected: row.values.iter().any(|v| v == NO_DEPARTMENT),
            });
        }
        "business_hours" => {
            view.options = choices(
                [
                    ("inside", "inside business hours"),
                    ("outside", "outside business hours"),
                ],
                row.text(),
            );
        }
        "sender_address" => view.placeholder = "boss@example.org, cfo@example.org",
        "sender_domain" => view.placeholder = "example.org, example.com",
        "text_matches" => view.placeholder = r"order #?\d+",
        _ => view.placeholder = "invoice, refund",
    }
    view
}

pub(super) fn action_view(index: usize, row: &Row, directory: &Directory) -> RowView {
    let mut view = RowView {
        field: format!("a{}", index + 1),
        label: label_of(ACTION_KINDS, &row.kind).unwrap_or("Action"),
        kind: row.kind.clone(),
        checks: Vec::new(),
        options: Vec::new(),
        text: row.text().to_owned(),
        placeholder: "",
    };
    match row.kind.as_str() {
        "set_department" => {
            view.options = with_blank(
                "choose a department",
                department_choices(directory, &row.values),
            );
        }
        "set_priority" => {
            view.options = with_blank(
                "choose a priority",
                choices(
                    Priority::ALL.iter().map(|p| (p.as_str(), p.as_str())),
                    row.text(),
                ),
            );
        }
        "assign_to" => {
            view.options = with_blank("choose an agent", agent_choices(directory, row.text()));
        }
        _ => view.placeholder = "billing, vip",
    }
    view
}
