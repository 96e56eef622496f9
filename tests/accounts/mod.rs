//! People's accounts on every backend: a fresh helpdesk gives mail to agents added without a
//! department (the real binary, `serve` running), passwords set from the command line, by an
//! admin and by the person at /account, and disabling someone, from the pages and the API.

use crate::support;
use std::time::{Duration, Instant};

use crate::support::TestStore;
use crate::support::cli::Serve;
use crate::support::web::{Browser, PASSWORD, WebApp, agent_with_password, call};
use axum::http::{Method, StatusCode};
use chrono::Utc;
use helpdesk::domain::Role;
use helpdesk::jobs;
use helpdesk::store::{self, api_tokens};
use serde_json::{Value, json};

mod agents_page;
mod command_line;
mod own_password;
mod people_api;

// ---- the pages and the API, in process ----

async fn signed_in(app: &WebApp, browser: &Browser) -> bool {
    app.get("/account", Some(browser)).await.status == StatusCode::OK
}

/// Runs the job workers until `done` holds (at most 20 s).
async fn run_jobs_until<F: Future<Output = bool>>(db: &TestStore, done: impl Fn() -> F) {
    let settings = jobs::JobSettings::from_settings(
        &helpdesk::config::Settings::load_from(None, Vec::new()).expect("defaults"),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(jobs::run(
        db.store.clone(),
        settings,
        jobs::deliver::Deliverers::default(),
        db.intake.committed(),
        stopped,
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "the job queue did not get there in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).expect("stop");
    workers.await.expect("task").expect("workers stop cleanly");
}

async fn api(
    app: &WebApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let reply = call(app, method, path, Some(token), body, &[]).await;
    (reply.status, reply.body)
}
