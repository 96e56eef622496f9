//! `/tags`: the tags in use, with how many tickets and active tickets carry each, each linking
//! to the list filtered by it.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::AppState;
use super::auth::Viewer;
use super::error::WebResult;
use super::pages::{Nav, render};
use crate::store::views::{self, TagCount};

#[derive(Template)]
#[template(path = "web/tags.html")]
struct TagsPage {
    nav: Option<Nav>,
    tags: Vec<TagCount>,
}

pub async fn page(State(state): State<AppState>, viewer: Viewer) -> WebResult<Response> {
    render(&TagsPage {
        nav: Nav::of(&viewer, "tickets"),
        tags: views::tag_counts(&state.store, viewer.visibility()).await?,
    })
}
