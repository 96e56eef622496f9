//! The web server: the admin and agent pages (server-rendered with askama, working without
//! JavaScript), live updates over SSE, and the health check.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::HeaderValue;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_http::compression::CompressionLayer;

use crate::config::Settings;
use crate::domain::sla::SlaTargets;
use crate::store::Store;
use crate::store::blobs::BlobStore;

mod account;
mod admin;
pub mod api;
mod assets;
mod auth;
pub mod bench;
pub mod bench_cluster;
pub mod bench_live;
pub mod bench_server;
mod canned;
mod customers;
mod error;
mod integrations;
pub mod live;
mod metrics;
mod notifications;
mod pages;
pub mod presence;
pub mod reports;
mod requests;
pub(crate) mod rule_editor;
mod signatures;
mod survey;
mod tags;
mod tickets;
mod upload;
mod when;

pub use error::WebError;
pub use when::time;

/// What the pages need besides the database.
#[derive(Debug, Clone)]
pub struct WebConfig {
    pub sla: SlaTargets,
    /// For the rules editor's preview of `business_hours` conditions.
    pub business_hours: crate::domain::rules::BusinessHours,
    /// The support address replies are sent from (their Message-IDs use its domain).
    pub support_address: String,
    pub attachments: BlobStore,
    /// Whether the session cookie carries `Secure` (HTTPS, or plain HTTP on loopback, which
    /// browsers treat as secure).
    pub secure_cookies: bool,
    /// How people reach the pages (`web.public_url`), named when a sign-in cannot work.
    pub public_url: String,
    pub email_enabled: bool,
    pub telegram_enabled: bool,
    pub discord_enabled: bool,
    /// Size limits for tickets created through the API.
    pub intake_limits: crate::intake::Limits,
    /// Take the client's IP from the last `X-Forwarded-For` entry (a trusted proxy's).
    pub trust_forwarded_for: bool,
    /// Where new agents go when no department is chosen (`workflow.default_department`).
    pub default_department: Option<String>,
    /// The mailboxes this instance reads, for the channels page and API.
    pub mailboxes: Vec<crate::channels::mailboxes::MailboxSummary>,
    /// `[surveys] enabled`.
    pub surveys_enabled: bool,
}

impl WebConfig {
    pub fn from_settings(settings: &Settings, attachments: BlobStore) -> WebConfig {
        WebConfig {
            sla: settings.sla.targets(),
            business_hours: crate::jobs::JobSettings::from_settings(settings).hours,
            support_address: settings.email.address.clone(),
            attachments,
            secure_cookies: secure_cookies(&settings.web.public_url),
            public_url: settings.web.public_url.clone(),
            email_enabled: settings.email.enabled,
            telegram_enabled: settings.telegram.enabled,
            discord_enabled: settings.discord.enabled,
            intake_limits: crate::intake::Limits {
                max_attachment_bytes: settings.intake.max_attachment_bytes,
                max_message_bytes: settings.intake.max_message_bytes,
            },
            trust_forwarded_for: settings.web.trust_forwarded_for,
            default_department: settings.workflow.default_department().map(str::to_owned),
            mailboxes: crate::channels::mailboxes::summaries(settings),
            surveys_enabled: settings.surveys.enabled,
        }
    }
}

impl WebConfig {
    /// The channels this instance runs, for the check that a reply can go out.
    pub fn channels_here(&self) -> Vec<helpdesk_channel::ChannelKind> {
        use helpdesk_channel::ChannelKind;
        [
            (ChannelKind::Email, self.email_enabled),
            (ChannelKind::Telegram, self.telegram_enabled),
            (ChannelKind::Discord, self.discord_enabled),
        ]
        .into_iter()
        .filter_map(|(channel, enabled)| enabled.then_some(channel))
        .collect()
    }
}

/// `Secure` cookies work over HTTPS and, in browsers, over plain HTTP to loopback; only a plain
/// HTTP address elsewhere needs them without it (and gets a warning).
fn secure_cookies(public_url: &str) -> bool {
    let Some(rest) = public_url.strip_prefix("http://") else {
        return true;
    };
    if !auth::loopback_authority(rest.split('/').next().unwrap_or_default()) {
        tracing::warn!(
            public_url,
            "web.public_url is plain HTTP: session cookies go without the Secure flag; put the \
             web server behind HTTPS"
        );
        return false;
    }
    true
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<WebConfig>,
    pub live: live::Hub,
}

impl AppState {
    /// The state for `router`; starts the change feed that live updates read (so it must be
    /// called inside the runtime).
    pub fn new(store: Store, config: WebConfig) -> AppState {
        let live = live::Hub::start(store.clone());
        AppState {
            store,
            config: Arc::new(config),
            live,
        }
    }
}

pub fn router(state: AppState) -> Router {
    // Replies carry files: their forms may be as large as the largest mail taken in (each
    // file is held to intake.max_attachment_bytes as it is read, see `upload`).
    let upload_limit = axum::extract::DefaultBodyLimit::max(
        usize::try_from(state.config.intake_limits.max_message_bytes).unwrap_or(usize::MAX),
    );
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", get(pages::logout_form).post(pages::logout))
        .route("/tickets", get(tickets::list))
        .route("/tickets/bulk", post(tickets::bulk))
        .route("/tickets/{number}", get(tickets::show))
        .route(
            "/tickets/{number}/reply",
            post(tickets::reply).layer(upload_limit),
        )
        .route("/tickets/{number}/update", post(tickets::update))
        .route("/tickets/{number}/merge", post(tickets::merge))
        .route("/tickets/{number}/typing", post(presence::typing))
        .route("/tickets/{number}/attachments/{id}", get(tickets::download))
        .route("/canned", get(canned::page).post(canned::create))
        .route("/canned/{id}", post(canned::update))
        .route("/canned/{id}/delete", post(canned::delete))
        .route(
            "/tickets/{number}/attachments/{id}/preview",
            get(tickets::preview),
        )
        .route("/customers", get(customers::list))
        .route("/customers/{id}", get(customers::show))
        .route("/customers/{id}/rename", post(customers::rename))
        .route(
            "/customers/{id}/merge",
            get(customers::merge_form).post(customers::merge),
        )
        .route(
            "/admin/rules",
            get(rule_editor::rules).post(rule_editor::create_rule),
        )
        .route("/admin/rules/new", get(rule_editor::new_rule))
        .route(
            "/admin/rules/{id}",
            get(rule_editor::edit_rule).post(rule_editor::update_rule),
        )
        .route("/admin/rules/{id}/delete", post(rule_editor::delete_rule))
        .route("/admin/rules/{id}/move", post(rule_editor::move_rule))
        .route(
            "/admin/departments",
            get(admin::departments).post(admin::create_department),
        )
        .route("/admin/departments/{id}", post(admin::update_department))
        .route("/admin/departments/{id}/sla", get(admin::department_sla))
        .route(
            "/admin/departments/{id}/calendar",
            post(admin::save_calendar),
        )
        .route(
            "/admin/departments/{id}/holidays",
            post(admin::save_holiday),
        )
        .route(
            "/admin/departments/{id}/holidays/import",
            post(admin::import_holidays),
        )
        .route(
            "/admin/departments/{id}/sla-policy",
            post(admin::save_policy),
        )
        .route(
            "/admin/agents",
            get(admin::agents).post(admin::create_agent),
        )
        .route("/admin/agents/{id}", post(admin::update_agent))
        .route("/admin/agents/{id}/chat", post(admin::update_chat_ids))
        .route(
            "/admin/agents/{id}/password",
            post(admin::set_agent_password),
        )
        .route("/admin/agents/{id}/active", post(admin::set_agent_active))
        .route(
            "/account",
            get(account::page).post(account::change_password),
        )
        .route("/account/time-zone", post(account::change_time_zone))
        .route("/account/notifications", post(notifications::save))
        .route("/tags", get(tags::page))
        .route("/admin/channels", get(admin::channels))
        .route("/admin/jobs", get(admin::jobs))
        .route("/admin/jobs/{id}/retry", post(admin::retry_job))
        .route(
            "/admin/tokens",
            get(integrations::tokens).post(integrations::create_token),
        )
        .route(
            "/admin/tokens/{id}/revoke",
            post(integrations::revoke_token),
        )
        .route(
            "/admin/webhooks",
            get(integrations::webhooks).post(integrations::create_webhook),
        )
        .route("/admin/webhooks/{id}", get(integrations::webhook))
        .route(
            "/admin/webhooks/{id}/active",
            post(integrations::set_webhook_active),
        )
        .route(
            "/admin/webhooks/{id}/delete",
            post(integrations::delete_webhook),
        )
        .route("/events", get(live::events))
        .route("/static/{name}", get(assets::file))
        .route("/favicon.ico", get(assets::favicon))
        .route("/healthz", get(healthz))
        .route("/readyz", get(metrics::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/account/signature", post(signatures::change_own))
        .route(
            "/admin/agents/{id}/signature",
            post(signatures::change_agent),
        )
        .route("/survey/{token}", get(survey::show).post(survey::comment))
        .route(
            "/admin/departments/{id}/surveys",
            post(admin::set_department_surveys),
        )
        .route("/reports", get(reports::page))
        .route("/reports.csv", get(reports::download))
        .merge(api::router(upload_limit))
        .fallback(pages::not_found)
        .layer(axum::middleware::map_response(security_headers))
        // gzip for whoever accepts it; the default predicate leaves out tiny answers, images
        // and the live event stream (which must not wait for a compressor's buffer).
        .layer(CompressionLayer::new())
        // Outermost: the request id is set before anything logs, and the duration is the whole
        // answer's.
        .layer(axum::middleware::from_fn(requests::track))
        .with_state(state)
}

/// Headers every answer carries: no framing, no sniffing, and a content policy that allows
/// only this site's own script and style (mail HTML cannot load images or scripts from
/// elsewhere even if something slipped through sanitizing). An answer with a stricter policy
/// of its own (attachments: `sandbox`) keeps it.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(CONTENT_SECURITY_POLICY) {
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                 frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
        );
    }
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// The process is up and serving (liveness); whether it can do its work is /readyz.
async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// Serves until `shutdown` completes.
pub async fn serve(
    state: AppState,
    listen: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "web server listening");
    serve_on(listener, state, shutdown).await
}

/// Serves on a bound listener (tests and benchmarks bind port 0) until `shutdown` completes;
/// open event streams end then, so the shutdown does not wait for them.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let live = state.live.clone();
    let shutdown = async move {
        shutdown.await;
        live.close();
    };
    // The connection's address is the client's IP for the sign-in limit.
    let service = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}
