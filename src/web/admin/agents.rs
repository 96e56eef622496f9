//! The agents page: add people, their departments, chat ids, passwords, and whether they may work.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;

use crate::accounts::{self, AccountError};
use crate::domain::Role;
use crate::store::StoreError;
use crate::store::agents::{self, AgentSummary, Department, NewAgent};
use crate::store::manage::{self, AgentUpdate};
use crate::store::tickets::Actor;
use crate::web::AppState;
use crate::web::auth::{Posted, Viewer};
use crate::web::error::{WebError, WebResult};
use crate::web::pages::{Nav, see_other};
use crate::web::tickets::{Choice, choices};
use helpdesk_channel::ChannelKind;

struct AgentRow {
    agent: AgentSummary,
    roles: Vec<Choice>,
    departments: Vec<(i64, String, bool)>,
    open_tickets: i64,
    /// The chat ids as stored, or as typed in a refused form.
    telegram: String,
    discord: String,
    identity_error: Option<String>,
    /// Their signature for replies by mail ("" for none).
    signature: String,
}

/// Chat ids an admin typed for an agent that were refused: shown again with the reason.
struct RefusedIdentities {
    agent_id: i64,
    telegram: String,
    discord: String,
    error: String,
}

/// What was typed into the new-agent form, kept when it is refused.
#[derive(Default)]
struct NewAgentTyped {
    email: String,
    name: String,
    telegram: String,
    discord: String,
    limit: String,
}

/// An agent's id on a chat channel from the list's `channel:id, …` text.
fn identity_on(identities: &str, channel: ChannelKind) -> String {
    identities
        .split(", ")
        .filter_map(|identity| identity.split_once(':'))
        .find(|(name, _)| *name == channel.as_str())
        .map(|(_, id)| id.to_owned())
        .unwrap_or_default()
}

/// A chat id field: empty clears it, anything else must be a valid id.
fn chat_id_field(channel: ChannelKind, text: &str) -> Result<Option<String>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    agents::valid_chat_user_id(channel, text).map(Some)
}

#[derive(Template)]
#[template(path = "web/agents.html")]
struct AgentsPage {
    nav: Option<Nav>,
    csrf: String,
    agents: Vec<AgentRow>,
    departments: Vec<Department>,
    roles: Vec<Choice>,
    error: Option<String>,
    notice: Option<String>,
    typed: NewAgentTyped,
    /// Where a new agent goes without a chosen department; empty for nowhere.
    default_department: String,
    /// The admin looking: they cannot disable themselves, so no button offers it.
    me: i64,
}

fn role_choices(current: &str) -> Vec<Choice> {
    choices(Role::ALL.iter().map(|r| (r.as_str(), r.as_str())), current)
}

async fn agents_page(
    state: &AppState,
    viewer: &Viewer,
    error: Option<String>,
) -> WebResult<Response> {
    agents_page_with(state, viewer, error, None, NewAgentTyped::default(), None).await
}

async fn agents_page_with(
    state: &AppState,
    viewer: &Viewer,
    error: Option<String>,
    refused: Option<RefusedIdentities>,
    typed: NewAgentTyped,
    notice: Option<String>,
) -> WebResult<Response> {
    let failed = error.is_some() || refused.is_some();
    let departments = agents::departments(&state.store).await?;
    let open = agents::active_ticket_counts(&state.store).await?;
    let memberships = agents::memberships(&state.store).await?;
    let signatures = crate::store::mailboxes::agent_signatures(&state.store).await?;
    let rows = agents::list_agents(&state.store)
        .await?
        .into_iter()
        .map(|agent| {
            let refused = refused
                .as_ref()
                .filter(|refused| refused.agent_id == agent.id);
            AgentRow {
                telegram: refused.map_or_else(
                    || identity_on(&agent.identities, ChannelKind::Telegram),
                    |refused| refused.telegram.clone(),
                ),
                discord: refused.map_or_else(
                    || identity_on(&agent.identities, ChannelKind::Discord),
                    |refused| refused.discord.clone(),
                ),
                identity_error: refused.map(|refused| refused.error.clone()),
                signature: signatures
                    .iter()
                    .find(|(id, _)| *id == agent.id)
                    .map(|(_, signature)| signature.clone())
                    .unwrap_or_default(),
                roles: role_choices(&agent.role),
                departments: departments
                    .iter()
                    .map(|d| {
                        let member = memberships.contains(&(agent.id, d.id));
                        (d.id, d.name.clone(), member)
                    })
                    .collect(),
                open_tickets: open
                    .iter()
                    .find(|(id, _)| *id == agent.id)
                    .map_or(0, |(_, count)| *count),
                agent,
            }
        })
        .collect();
    let page = AgentsPage {
        nav: Nav::of(viewer, "agents"),
        csrf: viewer.csrf().to_owned(),
        agents: rows,
        departments,
        roles: role_choices(Role::Agent.as_str()),
        error,
        notice,
        typed,
        default_department: state.config.default_department.clone().unwrap_or_default(),
        me: viewer.id(),
    };
    let status = if failed {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Html(page.render()?)).into_response())
}

/// What the agents page says after a change it redirected from.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct AgentsQuery {
    agent: Option<i64>,
    done: String,
    moved: usize,
}

pub async fn agents(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<AgentsQuery>,
) -> WebResult<Response> {
    viewer.require_admin()?;
    let name = match query.agent {
        Some(id) => agents::account(&state.store, id).await?.map(|a| a.name),
        None => None,
    };
    let notice = name.and_then(|name| match query.done.as_str() {
        "password" => Some(format!(
            "{name} has a new password; their web sessions have ended."
        )),
        "disabled" => Some(format!(
            "{name} is disabled: signed out, API tokens refused, no new tickets; {} open \
             tickets go back to their department's assignment.",
            query.moved
        )),
        "enabled" => Some(format!("{name} is enabled again and can sign in.")),
        _ => None,
    });
    agents_page_with(
        &state,
        &viewer,
        None,
        None,
        NewAgentTyped::default(),
        notice,
    )
    .await
}

/// Reads the repeated `department` fields and the single ones of an agent form.
struct AgentFields {
    fields: Vec<(String, String)>,
}

impl AgentFields {
    fn get(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|(key, _)| key == name)
    }

    fn departments(&self) -> WebResult<Vec<i64>> {
        self.fields
            .iter()
            .filter(|(key, _)| key == "department")
            .map(|(_, value)| {
                value
                    .parse()
                    .map_err(|_| WebError::BadRequest(format!("{value:?} is not a department")))
            })
            .collect()
    }

    fn limit(&self) -> WebResult<Option<i64>> {
        match self.get("max_open_tickets").trim() {
            "" => Ok(None),
            text => text
                .parse()
                .map(Some)
                .map_err(|_| WebError::BadRequest(format!("{text:?} is not a number of tickets"))),
        }
    }

    fn role(&self) -> WebResult<Role> {
        self.get("role")
            .parse()
            .map_err(|error: crate::domain::UnknownValue| WebError::BadRequest(error.to_string()))
    }
}

pub async fn create_agent(
    State(state): State<AppState>,
    posted: Posted<Vec<(String, String)>>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    viewer.require_admin()?;
    let fields = AgentFields {
        fields: posted.form,
    };
    let typed = NewAgentTyped {
        email: fields.get("email").to_owned(),
        name: fields.get("name").to_owned(),
        telegram: fields.get("telegram").to_owned(),
        discord: fields.get("discord").to_owned(),
        limit: fields.get("max_open_tickets").to_owned(),
    };
    let chat_ids = chat_id_field(ChannelKind::Telegram, &typed.telegram).and_then(|telegram| {
        chat_id_field(ChannelKind::Discord, &typed.discord).map(|discord| (telegram, discord))
    });
    let (telegram, discord) = match chat_ids {
        Ok(ids) => ids,
        Err(error) => {
            return agents_page_with(&state, &viewer, Some(error), None, typed, None).await;
        }
    };
    let mut identities = Vec::new();
    if let Some(id) = &telegram {
        identities.push((ChannelKind::Telegram, id.as_str()));
    }
    if let Some(id) = &discord {
        identities.push((ChannelKind::Discord, id.as_str()));
    }
    let password = fields.get("password").to_owned();
    let hash = if password.is_empty() {
        None
    } else {
        match tokio::task::spawn_blocking(move || crate::auth::hash_password(&password))
            .await
            .map_err(|error| WebError::Internal(error.to_string()))?
        {
            Ok(hash) => Some(hash),
            Err(error) => {
                return agents_page_with(
                    &state,
                    &viewer,
                    Some(error.to_string()),
                    None,
                    typed,
                    None,
                )
                .await;
            }
        }
    };
    let department_ids = accounts::departments_or_default(
        &state.store,
        fields.departments()?,
        state.config.default_department.as_deref(),
    )
    .await?;
    let created = agents::create_agent(
        &state.store,
        &NewAgent {
            email: fields.get("email"),
            name: fields.get("name"),
            role: fields.role()?,
            password_hash: hash.as_deref(),
            department_ids: &department_ids,
            identities: &identities,
            max_open_tickets: fields.limit()?,
        },
        Utc::now(),
    )
    .await;
    match created {
        Ok(_) => Ok(see_other("/admin/agents")),
        Err(StoreError::Conflict(error)) => {
            agents_page_with(&state, &viewer, Some(error), None, typed, None).await
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct ChatIdsForm {
    telegram: String,
    discord: String,
}

/// Sets or clears an agent's Telegram and Discord user ids (how the chat channels know an
/// agent's messages). A refused form is shown again as typed, with the reason.
pub async fn update_chat_ids(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<ChatIdsForm>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    viewer.require_admin()?;
    let form = posted.form;
    if !agents::list_agents(&state.store)
        .await?
        .iter()
        .any(|agent| agent.id == id)
    {
        return Err(WebError::NotFound(format!("There is no agent #{id}.")));
    }
    let refuse = |error: String| RefusedIdentities {
        agent_id: id,
        telegram: form.telegram.clone(),
        discord: form.discord.clone(),
        error,
    };
    let ids = chat_id_field(ChannelKind::Telegram, &form.telegram).and_then(|telegram| {
        chat_id_field(ChannelKind::Discord, &form.discord).map(|discord| (telegram, discord))
    });
    let (telegram, discord) = match ids {
        Ok(ids) => ids,
        Err(error) => {
            let refused = Some(refuse(error));
            return agents_page_with(
                &state,
                &viewer,
                None,
                refused,
                NewAgentTyped::default(),
                None,
            )
            .await;
        }
    };
    let saved = agents::set_chat_identities(
        &state.store,
        id,
        &[
            (ChannelKind::Telegram, telegram.as_deref()),
            (ChannelKind::Discord, discord.as_deref()),
        ],
    )
    .await;
    match saved {
        Ok(()) => Ok(see_other(&format!("/admin/agents#agent-{id}"))),
        Err(StoreError::Conflict(error)) => {
            let refused = Some(refuse(error));
            agents_page_with(
                &state,
                &viewer,
                None,
                refused,
                NewAgentTyped::default(),
                None,
            )
            .await
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn update_agent(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<Vec<(String, String)>>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    viewer.require_admin()?;
    let fields = AgentFields {
        fields: posted.form,
    };
    let update = AgentUpdate {
        agent_id: id,
        role: fields.role()?,
        available: fields.has("available"),
        max_open_tickets: fields.limit()?,
        department_ids: fields.departments()?,
    };
    if id == viewer.id() && update.role != Role::Admin {
        return agents_page(
            &state,
            &viewer,
            Some("You cannot take away your own admin role.".into()),
        )
        .await;
    }
    match manage::update_agent(&state.store, &update).await {
        Ok(()) => Ok(see_other("/admin/agents")),
        Err(StoreError::Conflict(error)) => agents_page(&state, &viewer, Some(error)).await,
        Err(error) => Err(error.into()),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct PasswordForm {
    password: String,
    again: String,
}

/// An admin gives someone a new password (they forgot theirs, or a chat-only agent starts
/// using the pages); all of that person's web sessions end.
pub async fn set_agent_password(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<PasswordForm>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    viewer.require_admin()?;
    let form = posted.form;
    if form.password != form.again {
        let error = "The two passwords differ; nothing was changed.".to_owned();
        return agents_page(&state, &viewer, Some(error)).await;
    }
    // The admin's own session stays when they reset their own password here.
    let keep = (id == viewer.id()).then_some(viewer.token.as_str());
    match accounts::set_password(&state.store, id, &form.password, keep).await {
        Ok(_) => Ok(see_other(&format!(
            "/admin/agents?agent={id}&done=password#agent-{id}"
        ))),
        Err(AccountError::Password(error)) => {
            agents_page(&state, &viewer, Some(error.to_string())).await
        }
        Err(error) => Err(account_error(error)),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct ActiveForm {
    active: String,
}

/// Disables or enables someone: disabled, they are signed out, their tokens stop working and
/// their open tickets go back to assignment.
pub async fn set_agent_active(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<ActiveForm>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    viewer.require_admin()?;
    let active = match posted.form.active.as_str() {
        "on" => true,
        "off" => false,
        other => {
            return Err(WebError::BadRequest(format!(
                "{other:?} is neither on nor off"
            )));
        }
    };
    if id == viewer.id() && !active {
        let error = "You cannot disable yourself; another admin can.".to_owned();
        return agents_page(&state, &viewer, Some(error)).await;
    }
    let moved = accounts::set_active(
        &state.store,
        id,
        active,
        Actor::Agent(viewer.id()),
        Utc::now(),
    )
    .await
    .map_err(account_error)?;
    let done = if active { "enabled" } else { "disabled" };
    Ok(see_other(&format!(
        "/admin/agents?agent={id}&done={done}&moved={moved}#agent-{id}"
    )))
}

/// An account error the handler did not answer itself.
pub fn account_error(error: AccountError) -> WebError {
    match error {
        AccountError::Store(error) => error.into(),
        AccountError::TooManyTries { .. } => WebError::TooManyRequests(error.to_string()),
        other => WebError::Conflict(other.to_string()),
    }
}
