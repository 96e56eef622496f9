//! The JSON API under /api/v1: bearer tokens, problem+json errors, keyset pages, and an OpenAPI
//! description generated from the handlers, served at /api/openapi.json.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

mod accounts;
mod admin;
mod calendars;
mod caller;
mod canned;
mod channels;
mod directory;
pub mod model;
mod notifications;
pub mod problem;
mod reports;
mod surveys;
mod tickets;
mod webhooks;

pub use problem::{ApiError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "helpdesk API",
        description = "Tickets, customers, agents, departments, routing rules, the job queue, \
                       webhooks and API tokens. Every request needs `Authorization: Bearer \
                       <token>`; admins make tokens with `helpdesk token create` or \
                       POST /api/v1/tokens. Errors are application/problem+json; a 503 \
                       means the database cannot be used right now: retry after the \
                       Retry-After seconds."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "tickets", description = "Tickets, their messages and changes"),
        (name = "canned", description = "Canned responses: reply texts with placeholders and actions"),
        (name = "customers", description = "The people who write in"),
        (name = "agents", description = "Agents and admins"),
        (name = "departments", description = "Where tickets are routed"),
        (name = "rules", description = "Routing rules (admins)"),
        (name = "jobs", description = "The job queue (admins)"),
        (name = "webhooks", description = "Ticket events posted to other systems (admins)"),
        (name = "tokens", description = "API tokens (admins)"),
        (name = "channels", description = "Channel connections and mailboxes (admins)"),
        (name = "reports", description = "The team's figures for a period (agents: their own)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The API's routes; replies and notes, which may carry files, take bodies up to
/// `upload_limit`.
fn v1(upload_limit: DefaultBodyLimit) -> OpenApiRouter<AppState> {
    let with_files = OpenApiRouter::new()
        .routes(routes!(tickets::reply))
        .routes(routes!(tickets::note))
        .layer(upload_limit);
    OpenApiRouter::new()
        .routes(routes!(tickets::list, tickets::create))
        .routes(routes!(tickets::bulk))
        .routes(routes!(tickets::show, tickets::update))
        .merge(with_files)
        .routes(routes!(tickets::merge))
        .routes(routes!(canned::list, canned::create))
        .routes(routes!(canned::update, canned::delete))
        .routes(routes!(tickets::presence))
        .routes(routes!(directory::customers))
        .routes(routes!(directory::customer, directory::rename))
        .routes(routes!(directory::merge))
        .routes(routes!(directory::agents, accounts::create_agent))
        .routes(routes!(accounts::set_password))
        .routes(routes!(accounts::set_active))
        .routes(routes!(accounts::change_own_password))
        .routes(routes!(directory::departments))
        .routes(routes!(directory::tags))
        .routes(routes!(accounts::set_own_time_zone))
        .routes(routes!(admin::list_rules, admin::create_rule))
        .routes(routes!(admin::update_rule, admin::delete_rule))
        .routes(routes!(admin::move_rule))
        .routes(routes!(admin::preview_rule))
        .routes(routes!(admin::list_jobs))
        .routes(routes!(admin::retry_job))
        .routes(routes!(admin::list_tokens, admin::create_token))
        .routes(routes!(admin::revoke_token))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(channels::list))
        .routes(routes!(
            accounts::own_signature,
            accounts::set_own_signature
        ))
        .routes(routes!(
            calendars::get_calendar,
            calendars::put_calendar,
            calendars::delete_calendar
        ))
        .routes(routes!(calendars::import_holidays))
        .routes(routes!(calendars::get_policy, calendars::put_policy))
        .routes(routes!(
            surveys::department_surveys,
            surveys::set_department_surveys
        ))
        .routes(routes!(notifications::show, notifications::update))
        .routes(routes!(reports::summary))
}

/// The OpenAPI description of the API, as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        // Only the document is wanted here, not the routes' limits.
        .nest("/api/v1", v1(DefaultBodyLimit::disable()))
        .into_openapi()
}

/// The API's routes, the OpenAPI document, and problem+json 404s for unknown API paths.
pub fn router(upload_limit: DefaultBodyLimit) -> Router<AppState> {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1(upload_limit))
        .split_for_parts();
    let document: Arc<String> = Arc::new(openapi.to_json().unwrap_or_else(|error| {
        tracing::error!(%error, "the OpenAPI description cannot be written");
        "{}".to_owned()
    }));
    router
        .route(
            "/api/openapi.json",
            get(move || {
                let document = Arc::clone(&document);
                async move {
                    (
                        [(CONTENT_TYPE, "application/json")],
                        document.as_str().to_owned(),
                    )
                }
            }),
        )
        .route("/api/{*rest}", axum::routing::any(unknown))
        .route("/api/v1/{*rest}", axum::routing::any(unknown))
}

async fn unknown(uri: axum::http::Uri) -> impl IntoResponse {
    ApiError::NotFound(format!(
        "there is no API endpoint {}; /api/openapi.json lists them",
        uri.path()
    ))
}
