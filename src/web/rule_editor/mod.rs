//! The routing rules pages: the list in the order rules run, with what each says in words and
//! what to look out for, and the editor, a form of conditions and actions chosen from lists,
//! with a preview over recent tickets. Without JavaScript, "add" and "remove" post the form and
//! it comes back with the row added or gone, nothing saved.

mod draft;
mod rows;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;

use super::AppState;
use super::admin::Empty;
use super::auth::{Posted, Viewer};
use super::error::{WebError, WebResult};
use super::pages::{Nav, see_other};
use super::tickets::{Choice, choices};
use crate::domain::TicketNumber;
use crate::domain::rule_check::{self, Directory, Finding, Outcome, Sample};
use crate::domain::rules::Rule;
use crate::store::StoreError;
use crate::store::manage::{self, RuleMove};
use crate::store::rules as rule_store;
use draft::{ACTION_KINDS, CONDITION_KINDS, Draft, Row, label_of};
use rows::{RowView, action_view, condition_view};

/// How many of the newest tickets the warnings and the preview try the rules on.
pub const RECENT_TICKETS: i64 = 200;

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
    number: TicketNumber,
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
        tags: crate::store::views::tag_counts(&state.store, crate::store::views::Visibility::All)
            .await?
            .into_iter()
            .map(|count| count.tag)
            .collect(),
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
