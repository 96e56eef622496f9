//! The admin pages for what other programs use: JSON API tokens and webhooks. A token's or a
//! webhook's secret is shown once, on the answer to the form that made it, and never again
//! (only a hash of a token is kept; a webhook's secret is kept to sign, but no page shows it).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::CACHE_CONTROL;
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;

use super::AppState;
use super::auth::{Posted, Viewer};
use super::error::{WebError, WebResult};
use super::pages::{Nav, see_other};
use super::tickets::{Choice, choices};
use crate::domain::Role;
use crate::store::api_tokens::{self, TokenInfo};
use crate::store::webhooks::{self, Delivery, Webhook};
use crate::store::{StoreError, agents};

/// A secret made just now, to copy before leaving the page.
struct Revealed {
    /// What the secret belongs to, e.g. `token "CI"`.
    what: String,
    secret: String,
}

/// An answer holding a secret: never cached, so the back button cannot bring it back.
fn page_response(status: StatusCode, html: String, secret_inside: bool) -> Response {
    if secret_inside {
        (status, [(CACHE_CONTROL, "no-store")], Html(html)).into_response()
    } else {
        (status, Html(html)).into_response()
    }
}

fn status_of(error: &Option<String>) -> StatusCode {
    if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    }
}

// ---- API tokens ----

/// What was typed into the new-token form, kept when it is refused.
#[derive(serde::Deserialize, Default, Clone)]
#[serde(default)]
pub struct TokenForm {
    name: String,
    owner: String,
    role: String,
}

#[derive(Template)]
#[template(path = "web/tokens.html")]
struct TokensPage {
    nav: Option<Nav>,
    csrf: String,
    tokens: Vec<TokenInfo>,
    owners: Vec<Choice>,
    roles: Vec<Choice>,
    typed: TokenForm,
    error: Option<String>,
    revealed: Option<Revealed>,
}

async fn tokens_page(
    state: &AppState,
    viewer: &Viewer,
    typed: TokenForm,
    error: Option<String>,
    revealed: Option<Revealed>,
) -> WebResult<Response> {
    let owner = if typed.owner.is_empty() {
        viewer.id().to_string()
    } else {
        typed.owner.clone()
    };
    let owners = agents::list_agents(&state.store)
        .await?
        .into_iter()
        .filter(|agent| agent.active)
        .map(|agent| {
            (
                agent.id.to_string(),
                format!("{} <{}> ({})", agent.name, agent.email, agent.role),
            )
        });
    let role = if typed.role.is_empty() {
        Role::Agent.as_str()
    } else {
        typed.role.as_str()
    };
    let secret = revealed.is_some();
    let page = TokensPage {
        nav: Nav::of(viewer, "tokens"),
        csrf: viewer.csrf().to_owned(),
        tokens: api_tokens::list(&state.store).await?,
        owners: choices(owners, &owner),
        roles: choices(Role::ALL.iter().map(|r| (r.as_str(), r.as_str())), role),
        typed,
        error: error.clone(),
        revealed,
    };
    Ok(page_response(status_of(&error), page.render()?, secret))
}

pub async fn tokens(State(state): State<AppState>, viewer: Viewer) -> WebResult<Response> {
    viewer.require_admin()?;
    tokens_page(&state, &viewer, TokenForm::default(), None, None).await
}

pub async fn create_token(
    State(state): State<AppState>,
    posted: Posted<TokenForm>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    viewer.require_admin()?;
    let form = posted.form;
    let checked = form
        .owner
        .trim()
        .parse::<i64>()
        .map_err(|_| "choose the agent the token acts for".to_owned())
        .and_then(|owner| {
            form.role
                .parse::<Role>()
                .map(|role| (owner, role))
                .map_err(|error| error.to_string())
        });
    let (owner, role) = match checked {
        Ok(checked) => checked,
        Err(error) => return tokens_page(&state, &viewer, form, Some(error), None).await,
    };
    match api_tokens::create(&state.store, owner, &form.name, role, Utc::now()).await {
        Ok(made) => {
            let revealed = Revealed {
                what: format!("token \"{}\"", made.info.name),
                secret: made.token,
            };
            tokens_page(&state, &viewer, TokenForm::default(), None, Some(revealed)).await
        }
        Err(StoreError::Conflict(error) | StoreError::NotFound(error)) => {
            tokens_page(&state, &viewer, form, Some(error), None).await
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(serde::Deserialize)]
pub struct Empty {}

pub async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<Empty>,
) -> WebResult<Response> {
    posted.viewer.require_admin()?;
    api_tokens::revoke(&state.store, id, Utc::now()).await?;
    Ok(see_other("/admin/tokens"))
}

// ---- webhooks ----

/// A webhook with what the list shows of its deliveries.
struct WebhookRow {
    hook: Webhook,
    last: Option<Delivery>,
}

/// What was typed into the new-webhook form, kept when it is refused.
#[derive(Default, Clone)]
struct WebhookTyped {
    url: String,
    description: String,
    events: Vec<String>,
}

#[derive(Template)]
#[template(path = "web/webhooks.html")]
struct WebhooksPage {
    nav: Option<Nav>,
    csrf: String,
    hooks: Vec<WebhookRow>,
    /// Every event with whether the form has it ticked.
    events: Vec<(&'static str, bool)>,
    all_events: bool,
    typed: WebhookTyped,
    error: Option<String>,
    revealed: Option<Revealed>,
}

async fn webhooks_page(
    state: &AppState,
    viewer: &Viewer,
    typed: WebhookTyped,
    error: Option<String>,
    revealed: Option<Revealed>,
) -> WebResult<Response> {
    let mut hooks = Vec::new();
    for hook in webhooks::list(&state.store).await? {
        let last = webhooks::deliveries(&state.store, hook.id, 1)
            .await?
            .into_iter()
            .next();
        hooks.push(WebhookRow { hook, last });
    }
    let secret = revealed.is_some();
    let page = WebhooksPage {
        nav: Nav::of(viewer, "webhooks"),
        csrf: viewer.csrf().to_owned(),
        hooks,
        events: webhooks::EVENTS
            .iter()
            .map(|event| (*event, typed.events.iter().any(|typed| typed == event)))
            .collect(),
        all_events: typed.events.iter().any(|event| event == "*"),
        typed,
        error: error.clone(),
        revealed,
    };
    Ok(page_response(status_of(&error), page.render()?, secret))
}

pub async fn webhooks(State(state): State<AppState>, viewer: Viewer) -> WebResult<Response> {
    viewer.require_admin()?;
    webhooks_page(&state, &viewer, WebhookTyped::default(), None, None).await
}

/// Reads the form: `url`, `description` and one `event` field per ticked event.
fn webhook_typed(fields: &[(String, String)]) -> WebhookTyped {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map_or(String::new(), |(_, value)| value.clone())
    };
    WebhookTyped {
        url: get("url"),
        description: get("description"),
        events: fields
            .iter()
            .filter(|(key, _)| key == "event")
            .map(|(_, value)| value.clone())
            .collect(),
    }
}

pub async fn create_webhook(
    State(state): State<AppState>,
    posted: Posted<Vec<(String, String)>>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    viewer.require_admin()?;
    let typed = webhook_typed(&posted.form);
    let events = match webhooks::validate(&typed.url, &typed.events) {
        Ok(events) => events,
        Err(error) => {
            let error = format!("The webhook was not added: {error}.");
            return webhooks_page(&state, &viewer, typed, Some(error), None).await;
        }
    };
    let secret = crate::store::sessions::random_token()?;
    let hook = webhooks::create(
        &state.store,
        &typed.url,
        &secret,
        &events,
        &typed.description,
        Utc::now(),
    )
    .await?;
    let revealed = Revealed {
        what: format!("webhook {}", hook.url),
        secret,
    };
    webhooks_page(
        &state,
        &viewer,
        WebhookTyped::default(),
        None,
        Some(revealed),
    )
    .await
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct ActiveForm {
    active: String,
}

pub async fn set_webhook_active(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<ActiveForm>,
) -> WebResult<Response> {
    posted.viewer.require_admin()?;
    let active = match posted.form.active.as_str() {
        "on" => true,
        "off" => false,
        other => {
            return Err(WebError::BadRequest(format!(
                "a webhook is turned \"on\" or \"off\", not {other:?}"
            )));
        }
    };
    webhooks::set_active(&state.store, id, active).await?;
    Ok(see_other("/admin/webhooks"))
}

pub async fn delete_webhook(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<Empty>,
) -> WebResult<Response> {
    posted.viewer.require_admin()?;
    webhooks::delete(&state.store, id).await?;
    Ok(see_other("/admin/webhooks"))
}

#[derive(Template)]
#[template(path = "web/webhook.html")]
struct WebhookPage {
    nav: Option<Nav>,
    csrf: String,
    hook: Webhook,
    deliveries: Vec<Delivery>,
}

/// How many deliveries a webhook's page lists.
const RECENT_DELIVERIES: i64 = 50;

pub async fn webhook(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> WebResult<Response> {
    viewer.require_admin()?;
    let hook = webhooks::find(&state.store, id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("There is no webhook #{id}.")))?;
    let deliveries = webhooks::deliveries(&state.store, id, RECENT_DELIVERIES).await?;
    let page = WebhookPage {
        nav: Nav::of(&viewer, "webhooks"),
        csrf: viewer.csrf().to_owned(),
        hook,
        deliveries,
    };
    Ok(page_response(StatusCode::OK, page.render()?, false))
}
