//! Sign-in, sign-out, the dashboard, and the page layout they share with the others.

use std::sync::LazyLock;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::{LOCATION, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{AppendHeaders, Html, IntoResponse, Response};
use chrono::Utc;

use super::AppState;
use super::auth::{self, Posted, Viewer};
use super::error::{WebError, WebResult};
use crate::sign_in;
use crate::store::sessions::{self, TryScope};
use crate::store::tickets::TicketSummary;
use crate::store::views::{self, AssigneeFilter, Count, Dashboard, ListQuery};

/// What the layout shows of the signed-in person.
pub struct Nav {
    pub name: String,
    pub is_admin: bool,
    pub csrf: String,
    pub section: &'static str,
    /// Their active tickets with unread customer messages.
    pub unread: i64,
    /// The zone they chose for times; none: the browser's.
    pub time_zone: Option<chrono_tz::Tz>,
}

impl Nav {
    pub fn of(viewer: &Viewer, section: &'static str) -> Option<Nav> {
        Some(Nav {
            name: viewer.agent.name.clone(),
            is_admin: viewer.is_admin(),
            csrf: viewer.csrf().to_owned(),
            section,
            unread: viewer.unread,
            time_zone: viewer
                .agent
                .time_zone
                .as_deref()
                .and_then(|name| crate::domain::zone::parse_zone(name).ok()),
        })
    }
}

pub fn render(template: &impl Template) -> WebResult<Response> {
    Ok(Html(template.render()?).into_response())
}

pub fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
}

#[derive(Template)]
#[template(path = "web/login.html")]
struct LoginPage {
    nav: Option<Nav>,
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only paths of this site, never another host (`//evil.example`).
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

/// The sign-in form with `status`, carrying the browser's sign-in token (a new one when it has
/// none) and setting its cookie afresh, so the form shown is always one that can be sent.
fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    email: String,
    error: Option<String>,
) -> WebResult<Response> {
    let token = match auth::sign_in_token(headers) {
        Some(token) => token.to_owned(),
        None => sessions::random_token()?,
    };
    let page = LoginPage {
        nav: None,
        next: safe_next(next),
        email,
        error,
        csrf: token.clone(),
    };
    let cookie = auth::sign_in_cookie(Some(&token), state.config.secure_cookies);
    Ok((status, auth::set_cookie(cookie), Html(page.render()?)).into_response())
}

pub async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> WebResult<Response> {
    login_page(
        &state,
        &headers,
        StatusCode::OK,
        &query.next,
        String::new(),
        None,
    )
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
    /// The form's sign-in token; the same value must come in the cookie.
    #[serde(default)]
    csrf: String,
}

/// A hash to check against when the address is unknown, so the answer takes as long.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| crate::auth::hash_password("not anyone's password").unwrap_or_default());

pub async fn login(
    State(state): State<AppState>,
    client: auth::ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> WebResult<Response> {
    if !auth::same_origin(&headers) {
        return Err(WebError::Forbidden(
            "Sign-in forms are only accepted from this site.".into(),
        ));
    }
    let now = Utc::now();
    let email = form.email.trim().to_lowercase();
    if let Some(origin) = auth::insecure_origin(&headers, state.config.secure_cookies) {
        // Signing in would "work" and the browser would drop the cookie: the next page would be
        // this form again, with no word of why.
        let error = format!(
            "Signing in cannot work at {origin}: this page came over plain HTTP, and the \
             sign-in cookie is marked Secure because web.public_url is {}, so your browser \
             would not keep it. Open the pages at web.public_url, put HTTPS in front, or set \
             web.public_url = \"{origin}\" to sign in over plain HTTP at this address.",
            state.config.public_url
        );
        return login_page(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            &form.next,
            email,
            Some(error),
        );
    }
    let token_matches =
        auth::sign_in_token(&headers).is_some_and(|token| auth::same_secret(token, &form.csrf));
    if !token_matches {
        // A form of another site, or one older than the token's cookie: no password is
        // checked, and the form comes back with a token that works.
        let error = "This sign-in form has expired or did not come from this site's sign-in \
                     page, so no one was signed in. The form is reloaded now: please sign in \
                     again."
            .to_owned();
        return login_page(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            &form.next,
            email,
            Some(error),
        );
    }
    let counted = match sign_in::count(&state.store, &email, Some(&client.0), now).await? {
        Ok(counted) => counted,
        Err(refused) => {
            let reason = match refused.scope {
                TryScope::Ip => format!(
                    "Too many failed sign-ins from your network address ({}).",
                    client.0
                ),
                TryScope::Email => format!("Too many failed sign-ins for {email}."),
            };
            let wait = match refused.minutes() {
                1 => "a minute".to_owned(),
                minutes => format!("{minutes} minutes"),
            };
            let mut page = login_page(
                &state,
                &headers,
                StatusCode::TOO_MANY_REQUESTS,
                &form.next,
                email,
                Some(format!("{reason} Wait {wait} and try again.")),
            )?;
            if let Ok(seconds) = HeaderValue::from_str(&refused.retry_after.to_string()) {
                page.headers_mut().insert(RETRY_AFTER, seconds);
            }
            return Ok(page);
        }
    };
    let credentials = sessions::credentials(&state.store, &email).await?;
    let (agent_id, stored) = match credentials {
        Some((id, Some(hash))) => (Some(id), hash),
        _ => (None, DUMMY_HASH.clone()),
    };
    let password = form.password;
    let matches =
        tokio::task::spawn_blocking(move || crate::auth::verify_password(&password, &stored))
            .await
            .map_err(|error| WebError::Internal(error.to_string()))?;
    match agent_id.filter(|_| matches) {
        Some(agent_id) => {
            counted.succeeded(&state.store).await?;
            let token =
                sessions::create(&state.store, agent_id, auth::SESSION_LIFETIME, now).await?;
            let secure = state.config.secure_cookies;
            Ok((
                AppendHeaders([
                    (SET_COOKIE, auth::session_cookie(Some(&token), secure)),
                    (SET_COOKIE, auth::sign_in_cookie(None, secure)),
                ]),
                see_other(&safe_next(&form.next)),
            )
                .into_response())
        }
        None => {
            counted.failed(&state.store, now).await?;
            login_page(
                &state,
                &headers,
                StatusCode::UNAUTHORIZED,
                &form.next,
                email,
                Some("Wrong email or password.".into()),
            )
        }
    }
}

#[derive(Template)]
#[template(path = "web/logout.html")]
struct LogoutPage {
    nav: Option<Nav>,
}

pub async fn logout_form(viewer: Viewer) -> WebResult<Response> {
    render(&LogoutPage {
        nav: Nav::of(&viewer, ""),
    })
}

#[derive(serde::Deserialize)]
pub struct Empty {}

pub async fn logout(State(state): State<AppState>, posted: Posted<Empty>) -> WebResult<Response> {
    sessions::delete(&state.store, &posted.viewer.token, Utc::now()).await?;
    let cookie = auth::session_cookie(None, state.config.secure_cookies);
    Ok((auth::set_cookie(cookie), see_other("/login")).into_response())
}

/// One table of the dashboard: active tickets counted by one field, each row linking to the
/// list filtered the same way, so a figure and the list it opens always agree.
struct CountGroup {
    title: &'static str,
    rows: Vec<(Count, Option<String>)>,
}

impl CountGroup {
    /// `filter` is the list's query parameter for the field; `none` its value for "(none)",
    /// where the list has one.
    fn new(title: &'static str, counts: &[Count], filter: &str, none: Option<&str>) -> CountGroup {
        let rows = counts
            .iter()
            .map(|count| {
                let value = Some(count.key.as_str())
                    .filter(|key| !key.is_empty())
                    .or(none);
                let link = value.map(|value| match filter {
                    "status" => format!("/tickets?status={}", auth::urlencode(value)),
                    _ => format!("/tickets?status=active&{filter}={}", auth::urlencode(value)),
                });
                (count.clone(), link)
            })
            .collect();
        CountGroup { title, rows }
    }
}

#[derive(Template)]
#[template(path = "web/dashboard.html")]
struct DashboardPage {
    nav: Option<Nav>,
    stats: Dashboard,
    groups: Vec<CountGroup>,
    median_first_response: String,
    mine: Vec<TicketSummary>,
}

pub async fn dashboard(State(state): State<AppState>, viewer: Viewer) -> WebResult<Response> {
    let stats = views::dashboard(
        &state.store,
        viewer.visibility(),
        &state.config.sla,
        Utc::now(),
    )
    .await?;
    let mut mine = views::list_tickets(
        &state.store,
        &ListQuery {
            assignee: AssigneeFilter::Agent(viewer.id()),
            active_only: true,
            reader: Some(viewer.id()),
            limit: 25,
            ..ListQuery::default()
        },
    )
    .await?
    .tickets;
    super::tickets::mark_due(&mut mine, &state.config.sla, Utc::now());
    let groups = vec![
        CountGroup::new("Active by status", &stats.by_status, "status", None),
        CountGroup::new("Active by priority", &stats.by_priority, "priority", None),
        CountGroup::new(
            "Active by department",
            &stats.by_department,
            "department",
            None,
        ),
        CountGroup::new(
            "Active by agent",
            &stats.by_assignee,
            "assignee",
            Some("none"),
        ),
    ];
    render(&DashboardPage {
        nav: Nav::of(&viewer, "dashboard"),
        median_first_response: minutes_text(stats.median_first_response_minutes),
        stats,
        groups,
        mine,
    })
}

pub async fn not_found() -> WebError {
    WebError::NotFound("There is no such page.".into())
}

/// Minutes as "3 h 20 min" for people.
pub fn minutes_text(minutes: Option<i64>) -> String {
    match minutes {
        None => "–".to_owned(),
        Some(minutes) if minutes < 60 => format!("{minutes} min"),
        Some(minutes) => format!("{} h {} min", minutes / 60, minutes % 60),
    }
}
