//! The JSON API, webhooks, /metrics and /readyz on every backend: the token and role matrix,
//! problem+json errors, creates with an Idempotency-Key, list filters and pages, ticket
//! changes, rules, signed webhook deliveries retried after failures, and readiness when the
//! database goes away.

use crate::support;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::web::{Reply, WebApp, call};
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::Utc;
use helpdesk::domain::Role;
use helpdesk::jobs;
use helpdesk::store::{self, api_tokens};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

mod bulk;
mod canned;
mod customers;
mod daily_tools;
mod idempotency;
mod mailboxes;
mod observability;
mod presence;
mod reply_files;
mod rules;
mod service;
mod tags;
mod tickets;
mod tokens;
mod webhooks;

async fn token(app: &WebApp, agent_id: i64, role: Role) -> String {
    api_tokens::create(&app.db.store, agent_id, "test", role, Utc::now())
        .await
        .expect("token")
        .token
}
