//! `/account`: the signed-in person's own account, where they change their password and choose
//! the time zone the pages show times in.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;

use super::AppState;
use super::auth::{Posted, Viewer};
use super::error::WebResult;
use super::pages::{Nav, see_other};
use crate::accounts::{self, AccountError, ZoneError};
use crate::domain::zone::zone_names;
use crate::store::agents;

#[derive(Template)]
#[template(path = "web/account.html")]
struct AccountPage {
    nav: Option<Nav>,
    csrf: String,
    name: String,
    email: String,
    role: String,
    departments: String,
    error: Option<String>,
    changed: bool,
    /// Every zone, the chosen one selected ("" for the browser's).
    zones: Vec<super::tickets::Choice>,
    zone_error: Option<String>,
    zone_saved: bool,
    /// The person's signature for replies by mail ("" for none).
    signature: String,
    signature_saved: bool,
    /// How the person is told of what concerns them (`account_notifications.html`).
    notifications: super::notifications::NotificationsForm,
}

/// What the page says besides the password form.
#[derive(Default)]
struct Notes {
    error: Option<String>,
    changed: bool,
    zone_error: Option<String>,
    zone_saved: bool,
    signature_saved: bool,
    notices_saved: bool,
}

async fn account_page(
    state: &AppState,
    viewer: &Viewer,
    error: Option<String>,
    changed: bool,
) -> WebResult<Response> {
    let notes = Notes {
        error,
        changed,
        ..Notes::default()
    };
    page_with(state, viewer, notes).await
}

async fn page_with(state: &AppState, viewer: &Viewer, notes: Notes) -> WebResult<Response> {
    let Notes {
        error,
        changed,
        zone_error,
        zone_saved,
        signature_saved,
        notices_saved,
    } = notes;
    let signature = crate::store::mailboxes::agent_signature(&state.store, viewer.id())
        .await?
        .unwrap_or_default();
    let me = agents::list_agents(&state.store)
        .await?
        .into_iter()
        .find(|agent| agent.id == viewer.id());
    let page = AccountPage {
        nav: Nav::of(viewer, "account"),
        csrf: viewer.csrf().to_owned(),
        name: viewer.agent.name.clone(),
        email: viewer.agent.email.clone(),
        role: viewer.agent.role.as_str().to_owned(),
        departments: me.map(|agent| agent.departments).unwrap_or_default(),
        changed: changed && error.is_none(),
        error,
        zones: super::tickets::choices(
            zone_names().map(|name| (name, name)),
            viewer.agent.time_zone.as_deref().unwrap_or(""),
        ),
        zone_saved: zone_saved && zone_error.is_none(),
        zone_error,
        signature,
        signature_saved,
        notifications: super::notifications::form(&state.store, viewer.id(), notices_saved).await?,
    };
    let status = match (&page.error, &page.zone_error) {
        (None, None) => StatusCode::OK,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    Ok((status, Html(page.render()?)).into_response())
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct AccountQuery {
    changed: bool,
    zone_saved: bool,
    signature_saved: bool,
    notices_saved: bool,
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<AccountQuery>,
) -> WebResult<Response> {
    let notes = Notes {
        changed: query.changed,
        zone_saved: query.zone_saved,
        signature_saved: query.signature_saved,
        notices_saved: query.notices_saved,
        ..Notes::default()
    };
    page_with(&state, &viewer, notes).await
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct ZoneChange {
    time_zone: String,
}

/// Sets the time zone the pages show the signed-in person's times in; empty: their browser's.
pub async fn change_time_zone(
    State(state): State<AppState>,
    posted: Posted<ZoneChange>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    match accounts::set_time_zone(&state.store, viewer.id(), &posted.form.time_zone).await {
        Ok(_) => Ok(see_other("/account?zone_saved=true#time-zone")),
        Err(ZoneError::Unknown(error)) => {
            let notes = Notes {
                zone_error: Some(format!("{error}; nothing was changed.")),
                ..Notes::default()
            };
            page_with(&state, &viewer, notes).await
        }
        Err(ZoneError::Store(error)) => Err(error.into()),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct PasswordChange {
    current: String,
    password: String,
    again: String,
}

/// Changes the signed-in person's password: the current one must be right and the new one
/// typed twice alike. Their other sessions end; this one stays signed in.
pub async fn change_password(
    State(state): State<AppState>,
    posted: Posted<PasswordChange>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    let form = posted.form;
    if form.password != form.again {
        let error = "The two new passwords differ; nothing was changed.".to_owned();
        return account_page(&state, &viewer, Some(error), false).await;
    }
    let changed = accounts::change_own_password(
        &state.store,
        viewer.id(),
        &form.current,
        &form.password,
        Some(&viewer.token),
        Utc::now(),
    )
    .await;
    match changed {
        Ok(()) => Ok(see_other("/account?changed=true")),
        Err(AccountError::WrongPassword) => {
            let error = "The current password is not right; nothing was changed.".to_owned();
            account_page(&state, &viewer, Some(error), false).await
        }
        Err(AccountError::Password(error)) => {
            account_page(&state, &viewer, Some(error.to_string()), false).await
        }
        Err(error) => Err(super::admin::account_error(error)),
    }
}
