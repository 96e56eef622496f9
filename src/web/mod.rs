//! The web server: for now the health check and a first page; the admin pages, the JSON API
//! and live events grow here.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::store::{self, Store};

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// The process is up and its database answers.
async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({ "status": "ok" })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": error.to_string() })),
            )
                .into_response()
        }
    }
}

async fn home(State(state): State<AppState>) -> Response {
    let totals = match store::tickets::totals(&state.store).await {
        Ok(totals) => totals,
        Err(error) => {
            tracing::error!(%error, "home page");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the database is unavailable",
            )
                .into_response();
        }
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>helpdesk</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
         <body style=\"font-family: system-ui, sans-serif; margin: 2rem\"><h1>helpdesk</h1>\
         <p>{} tickets, {} messages.</p></body></html>",
        totals.tickets, totals.messages
    ))
    .into_response()
}

/// Serves until `shutdown` completes.
pub async fn serve(
    state: AppState,
    listen: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "web server listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
