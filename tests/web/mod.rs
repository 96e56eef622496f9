//! The web pages over HTTP on every backend: sign-in and sessions, the role matrix, CSRF
//! refusals, the ticket forms, the admin pages, downloads, and live events.

use crate::support;
use std::time::Duration;

use crate::support::web::{PASSWORD, SignInForm, WebApp};
use axum::http::{Method, StatusCode, header};
use chrono::Utc;
use helpdesk::store::views::{self, ListQuery, Visibility};
use http_body_util::BodyExt;
use tower::ServiceExt;

mod admin_pages;
mod bulk;
mod canned;
pub(crate) mod customers;
mod daily_tools;
mod dashboard;
mod integrations;
mod live;
mod presence;
mod quoted;
mod reply_files;
mod roles;
mod rules;
mod sign_in;
mod static_files;
mod ticket_forms;
mod ticket_views;

async fn history(app: &WebApp, number: i64) -> Vec<helpdesk::store::tickets::EventView> {
    app.detail(number).await.history
}

/// The `<section id="…">` of a page.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id} in {page}"));
    let end = page[start..]
        .find("</section>")
        .map_or(page.len(), |end| start + end);
    &page[start..end]
}
