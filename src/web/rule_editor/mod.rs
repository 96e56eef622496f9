//! The routing rules pages: the list in the order rules run, with what each says in words and
//! what to look out for, and the editor, a form of conditions and actions chosen from lists,
//! with a preview over recent tickets. Without JavaScript, "add" and "remove" post the form and
//! it comes back with the row added or gone, nothing saved.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use helpdesk_channel::ChannelKind;

use super::AppState;
use super::admin::Empty;
use super::auth::{Posted, Viewer};
use super::error::{WebError, WebResult};
use super::pages::{Nav, see_other};
use super::tickets::{Choice, choices};
use crate::domain::Priority;
use crate::domain::rule_check::{self, Directory, Finding, Outcome, Sample};
use crate::domain::rules::{Action, Condition, Rule};
use crate::store::StoreError;
use crate::store::manage::{self, RuleMove};
use crate::store::rules as rule_store;

/// How many of the newest tickets the warnings and the preview try the rules on.
pub const RECENT_TICKETS: i64 = 200;

/// Conditions an admin can add, as the form names and explains them.
const CONDITION_KINDS: &[(&str, &str)] = &[
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

const ACTION_KINDS: &[(&str, &str)] = &[
    ("set_department", "Set the department to"),
    ("set_priority", "Set the priority to"),
    ("add_tags", "Add the tags"),
    ("assign_to", "Assign to"),
];

/// The value of a department condition that means "no department yet".
const NO_DEPARTMENT: &str = "none";

fn label_of(kinds: &[(&'static str, &'static str)], kind: &str) -> Option<&'static str> {
    kinds
        .iter()
        .find(|(known, _)| *known == kind)
        .map(|(_, label)| *label)
}

/// One condition or action as the form holds it: its kind and the values chosen or typed.
#[derive(Debug, Clone, Default)]
struct Row {
    kind: String,
    values: Vec<String>,
}

impl Row {
    fn text(&self) -> &str {
        self.values.first().map_or("", String::as_str)
    }
}

/// The rule as the form holds it, typed values kept even when they are wrong.
#[derive(Debug, Clone)]
struct Draft {
    name: String,
    enabled: bool,
    stop: bool,
    conditions: Vec<Row>,
    actions: Vec<Row>,
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
    fn blank() -> Draft {
        Draft {
            name: String::new(),
            enabled: true,
            stop: false,
            conditions: Vec::new(),
            actions: Vec::new(),
        }
    }

    fn of(rule: &Rule) -> Draft {
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
    fn posted(fields: &[(String, String)]) -> WebResult<Draft> {
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
    fn rule(&self, id: i64) -> Result<Rule, String> {
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

/// A row of the form with what its widget offers.
struct RowView {
    /// The prefix of its fields: `c1`, `a2`, …
    field: String,
    kind: String,
    label: &'static str,
    /// Checkboxes (channels, departments, priorities); empty for other widgets.
    checks: Vec<Choice>,
    /// A menu (departments, agents, priorities, inside/outside); empty for other widgets.
    options: Vec<Choice>,
    text: String,
    placeholder: &'static str,
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

fn condition_view(index: usize, row: &Row, directory: &Directory) -> RowView {
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

fn action_view(index: usize, row: &Row, directory: &Directory) -> RowView {
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

/// The rules, departments, agents and recent tickets the pages judge a rule against.
struct World {
    rules: Vec<Rule>,
    directory: Directory,
    samples: Vec<Sample>,
}

async fn world(state: &AppState) -> WebResult<World> {
    Ok(World {
        rules: rule_store::list(&state.store).await?,
        directory: rule_store::directory(&state.store).await?,
        samples: rule_store::recent_samples(&state.store, RECENT_TICKETS).await?,
    })
}

fn messages(findings: &[Finding], rules: &[Rule], directory: &Directory) -> Vec<String> {
    findings
        .iter()
        .map(|finding| finding.message(rules, directory))
        .collect()
}

// ---- the list ----

struct RuleLine {
    id: i64,
    position: usize,
    name: String,
    enabled: bool,
    stop: bool,
    conditions: Vec<String>,
    actions: Vec<String>,
    warnings: Vec<String>,
    matched: usize,
}

#[derive(Template)]
#[template(path = "web/rules.html")]
struct RulesPage {
    nav: Option<Nav>,
    csrf: String,
    rules: Vec<RuleLine>,
    recent: usize,
    count: usize,
}

pub async fn rules(State(state): State<AppState>, viewer: Viewer) -> WebResult<Response> {
    viewer.require_admin()?;
    let world = world(&state).await?;
    let report = rule_check::check(
        &world.rules,
        &world.directory,
        &world.samples,
        &state.config.business_hours,
    );
    let lines = world
        .rules
        .iter()
        .enumerate()
        .map(|(at, rule)| RuleLine {
            id: rule.id,
            position: at + 1,
            name: rule.name.clone(),
            enabled: rule.enabled,
            stop: rule.stop,
            conditions: rule
                .conditions
                .iter()
                .map(|c| rule_check::describe_condition(c, &world.directory))
                .collect(),
            actions: rule
                .actions
                .iter()
                .map(|a| rule_check::describe_action(a, &world.directory))
                .collect(),
            warnings: messages(&report.findings[at], &world.rules, &world.directory),
            matched: report.matched[at],
        })
        .collect();
    super::pages::render(&RulesPage {
        nav: Nav::of(&viewer, "rules"),
        csrf: viewer.csrf().to_owned(),
        count: world.rules.len(),
        rules: lines,
        recent: world.samples.len(),
    })
}

// ---- the editor ----

struct PreviewLine {
    number: i64,
    subject: String,
    note: String,
}

#[derive(Template)]
#[template(path = "web/rule.html")]
struct RulePage {
    nav: Option<Nav>,
    csrf: String,
    /// The stored rule being edited; `None` for a new one.
    id: Option<i64>,
    /// Where the rule runs (or would run, appended), from 1.
    position: usize,
    name: String,
    enabled: bool,
    stop: bool,
    conditions: Vec<RowView>,
    actions: Vec<RowView>,
    condition_kinds: Vec<Choice>,
    action_kinds: Vec<Choice>,
    tags: Vec<String>,
    error: Option<String>,
    warnings: Vec<String>,
    /// `None` when the form cannot be read as a rule yet.
    preview: Option<Vec<PreviewLine>>,
    recent: usize,
}

async fn editor(
    state: &AppState,
    viewer: &Viewer,
    id: Option<i64>,
    draft: &Draft,
    error: Option<String>,
) -> WebResult<Response> {
    let mut world = world(state).await?;
    let at = id
        .and_then(|id| world.rules.iter().position(|rule| rule.id == id))
        .unwrap_or(world.rules.len());
    let (mut warnings, mut preview) = (Vec::new(), None);
    if let Ok(rule) = draft.rule(id.unwrap_or(0)) {
        // Judge the rule as typed, in its place among the stored ones.
        if at < world.rules.len() {
            world.rules[at] = rule;
        } else {
            world.rules.push(rule);
        }
        let hours = &state.config.business_hours;
        let report = rule_check::check(&world.rules, &world.directory, &world.samples, hours);
        warnings = messages(&report.findings[at], &world.rules, &world.directory);
        let name = |at: usize| {
            world
                .rules
                .get(at)
                .map_or_else(String::new, |rule| rule.name.clone())
        };
        // A disabled rule is previewed as it would work once enabled.
        let mut as_enabled = world.rules.clone();
        as_enabled[at].enabled = true;
        preview = Some(
            rule_check::preview(&as_enabled, at, &world.samples, hours)
                .into_iter()
                .map(|(number, outcome)| {
                    let note = match outcome {
                        Outcome::Applies { overridden } if overridden.is_empty() => {
                            "applies".to_owned()
                        }
                        Outcome::Applies { overridden } => {
                            let changes: Vec<String> = overridden
                                .iter()
                                .map(|(field, by)| format!("{} by “{}”", field.as_str(), name(*by)))
                                .collect();
                            format!("applies, then changed again: {}", changes.join(", "))
                        }
                        Outcome::StoppedBefore { rule } => {
                            format!("matches, but “{}” stops before this rule", name(rule))
                        }
                    };
                    let subject = world
                        .samples
                        .iter()
                        .find(|s| s.number == number)
                        .map_or_else(String::new, |s| s.facts.subject.clone());
                    PreviewLine {
                        number,
                        subject,
                        note,
                    }
                })
                .collect(),
        );
    }
    let failed = error.is_some();
    let page = RulePage {
        nav: Nav::of(viewer, "rules"),
        csrf: viewer.csrf().to_owned(),
        id,
        position: at + 1,
        name: draft.name.clone(),
        enabled: draft.enabled,
        stop: draft.stop,
        conditions: draft
            .conditions
            .iter()
            .enumerate()
            .map(|(index, row)| condition_view(index, row, &world.directory))
            .collect(),
        actions: draft
            .actions
            .iter()
            .enumerate()
            .map(|(index, row)| action_view(index, row, &world.directory))
            .collect(),
        condition_kinds: choices(CONDITION_KINDS.iter().copied(), ""),
        action_kinds: choices(ACTION_KINDS.iter().copied(), ""),
        tags: crate::store::views::tag_names(&state.store).await?,
        error,
        warnings,
        preview,
        recent: world.samples.len(),
    };
    let status = if failed {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Html(page.render()?)).into_response())
}

pub async fn new_rule(State(state): State<AppState>, viewer: Viewer) -> WebResult<Response> {
    viewer.require_admin()?;
    editor(&state, &viewer, None, &Draft::blank(), None).await
}

pub async fn edit_rule(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> WebResult<Response> {
    viewer.require_admin()?;
    let rule = rule_store::list(&state.store)
        .await?
        .into_iter()
        .find(|rule| rule.id == id)
        .ok_or_else(|| WebError::NotFound(format!("There is no rule #{id}.")))?;
    editor(&state, &viewer, Some(id), &Draft::of(&rule), None).await
}

/// What a posted editor form asks for: to save, or to come back changed.
enum Intent {
    Save,
    Preview,
    AddCondition(String),
    AddAction(String),
    Remove { condition: bool, index: usize },
}

fn intent(fields: &[(String, String)]) -> WebResult<Intent> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    };
    let bad = |what: &str| WebError::BadRequest(format!("the form asked for {what:?}"));
    Ok(match get("do") {
        "" | "save" => Intent::Save,
        "preview" => Intent::Preview,
        "add_condition" => Intent::AddCondition(get("new_condition").to_owned()),
        "add_action" => Intent::AddAction(get("new_action").to_owned()),
        other => {
            let (condition, index) = match other.strip_prefix("remove_c") {
                Some(index) => (true, index),
                None => (
                    false,
                    other.strip_prefix("remove_a").ok_or_else(|| bad(other))?,
                ),
            };
            let index: usize = index.parse().map_err(|_| bad(other))?;
            Intent::Remove {
                condition,
                index: index.checked_sub(1).ok_or_else(|| bad(other))?,
            }
        }
    })
}

/// Handles a posted editor form for a new rule (`id` = `None`) or a stored one.
async fn posted(
    state: &AppState,
    viewer: &Viewer,
    id: Option<i64>,
    fields: &[(String, String)],
) -> WebResult<Response> {
    let mut draft = Draft::posted(fields)?;
    match intent(fields)? {
        Intent::Save => {}
        Intent::Preview => return editor(state, viewer, id, &draft, None).await,
        Intent::AddCondition(kind) => {
            if label_of(CONDITION_KINDS, &kind).is_some() {
                draft.conditions.push(Row {
                    values: if kind == "business_hours" {
                        vec!["inside".to_owned()]
                    } else {
                        Vec::new()
                    },
                    kind,
                });
            }
            return editor(state, viewer, id, &draft, None).await;
        }
        Intent::AddAction(kind) => {
            if label_of(ACTION_KINDS, &kind).is_some() {
                draft.actions.push(Row {
                    kind,
                    values: Vec::new(),
                });
            }
            return editor(state, viewer, id, &draft, None).await;
        }
        Intent::Remove { condition, index } => {
            let rows = if condition {
                &mut draft.conditions
            } else {
                &mut draft.actions
            };
            if index < rows.len() {
                rows.remove(index);
            }
            return editor(state, viewer, id, &draft, None).await;
        }
    }
    let rule = match draft.rule(id.unwrap_or(0)) {
        Ok(rule) => rule,
        Err(error) => return editor(state, viewer, id, &draft, Some(error)).await,
    };
    let saved = match id {
        None => rule_store::create(&state.store, rule.into(), Utc::now())
            .await
            .map(|created| created.id),
        Some(id) => manage::update_rule(&state.store, &rule, Utc::now())
            .await
            .map(|()| id),
    };
    match saved {
        Ok(id) => Ok(see_other(&format!("/admin/rules#rule-{id}"))),
        Err(StoreError::Conflict(error)) => editor(state, viewer, id, &draft, Some(error)).await,
        Err(error) => Err(error.into()),
    }
}

pub async fn create_rule(
    State(state): State<AppState>,
    posted_form: Posted<Vec<(String, String)>>,
) -> WebResult<Response> {
    let viewer = posted_form.viewer;
    viewer.require_admin()?;
    posted(&state, &viewer, None, &posted_form.form).await
}

pub async fn update_rule(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted_form: Posted<Vec<(String, String)>>,
) -> WebResult<Response> {
    let viewer = posted_form.viewer;
    viewer.require_admin()?;
    if !rule_store::list(&state.store)
        .await?
        .iter()
        .any(|rule| rule.id == id)
    {
        return Err(WebError::NotFound(format!("There is no rule #{id}.")));
    }
    posted(&state, &viewer, Some(id), &posted_form.form).await
}

pub async fn delete_rule(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<Empty>,
) -> WebResult<Response> {
    posted.viewer.require_admin()?;
    manage::delete_rule(&state.store, id).await?;
    Ok(see_other("/admin/rules"))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct MoveForm {
    direction: String,
    position: String,
}

/// Moves a rule up, down, or to a position typed on the list page.
pub async fn move_rule(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<MoveForm>,
) -> WebResult<Response> {
    posted.viewer.require_admin()?;
    let form = posted.form;
    let to = match (form.direction.as_str(), form.position.trim()) {
        ("up", _) => RuleMove::Up,
        ("down", _) => RuleMove::Down,
        (_, position) if !position.is_empty() => RuleMove::To(position.parse().map_err(|_| {
            WebError::BadRequest(format!("{position:?} is not a position such as 1"))
        })?),
        (other, _) => {
            return Err(WebError::BadRequest(format!(
                "a rule moves \"up\", \"down\" or to a position, not {other:?}"
            )));
        }
    };
    manage::move_rule(&state.store, id, to).await?;
    Ok(see_other(&format!("/admin/rules#rule-{id}")))
}
