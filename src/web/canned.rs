//! Canned responses: the /canned page (shared ones kept by admins, each agent's own), the
//! picker of the ticket page, and a reply that uses one.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;

use super::AppState;
use super::auth::{Posted, Viewer};
use super::error::{WebError, WebResult};
use super::pages::{Nav, render, see_other};
use super::tickets::{Choice, choices};
use crate::domain::TicketNumber;
use crate::domain::canned::{CannedDraft, PLACEHOLDERS};
use crate::domain::{Priority, Status};
use crate::ops::{self, AttachedFile};
use crate::store::canned::{self, CannedResponse, Pick};
use crate::store::outbound::{NewReply, StoredReply};
use crate::store::{Result as StoreResult, StoreError};

/// One canned response on the page, with its forms' choices.
struct Row {
    response: CannedResponse,
    /// Whether the viewer may change it.
    editable: bool,
    statuses: Vec<Choice>,
    priorities: Vec<Choice>,
}

struct Section {
    title: &'static str,
    id: &'static str,
    rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "web/canned.html")]
struct CannedPage {
    nav: Option<Nav>,
    csrf: String,
    is_admin: bool,
    /// The shared ones, then the viewer's own.
    sections: Vec<Section>,
    placeholders: &'static [(&'static str, &'static str)],
    /// The new one's form: empty, or as sent back with why it was refused.
    draft: Form,
    statuses: Vec<Choice>,
    priorities: Vec<Choice>,
    error: Option<String>,
}

fn status_choices(current: Option<Status>) -> Vec<Choice> {
    let mut list = vec![Choice {
        value: String::new(),
        label: "unchanged".into(),
        selected: current.is_none(),
    }];
    list.extend(choices(
        Status::ALL.iter().map(|s| (s.as_str(), s.as_str())),
        current.map(Status::as_str).unwrap_or_default(),
    ));
    list
}

fn priority_choices(current: Option<Priority>) -> Vec<Choice> {
    let mut list = vec![Choice {
        value: String::new(),
        label: "unchanged".into(),
        selected: current.is_none(),
    }];
    list.extend(choices(
        Priority::ALL.iter().map(|p| (p.as_str(), p.as_str())),
        current.map(Priority::as_str).unwrap_or_default(),
    ));
    list
}

async fn canned_page(
    state: &AppState,
    viewer: &Viewer,
    draft: Form,
    error: Option<String>,
) -> WebResult<Response> {
    let (shared, mine): (Vec<CannedResponse>, Vec<CannedResponse>) =
        canned::visible_to(&state.store, viewer.id())
            .await?
            .into_iter()
            .partition(CannedResponse::is_shared);
    let row = |response: CannedResponse| Row {
        editable: !response.is_shared() || viewer.is_admin(),
        statuses: status_choices(response.status),
        priorities: priority_choices(response.priority),
        response,
    };
    let draft_status = draft.status.parse().ok();
    let draft_priority = draft.priority.parse().ok();
    let mut page = render(&CannedPage {
        nav: Nav::of(viewer, "canned"),
        csrf: viewer.csrf().to_owned(),
        is_admin: viewer.is_admin(),
        sections: vec![
            Section {
                title: "Shared",
                id: "canned-shared",
                rows: shared.into_iter().map(row).collect(),
            },
            Section {
                title: "Mine",
                id: "canned-mine",
                rows: mine.into_iter().map(row).collect(),
            },
        ],
        placeholders: &PLACEHOLDERS,
        draft,
        statuses: status_choices(draft_status),
        priorities: priority_choices(draft_priority),
        error: error.clone(),
    })?;
    if error.is_some() {
        *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(page)
}

pub async fn page(State(state): State<AppState>, viewer: Viewer) -> WebResult<Response> {
    canned_page(&state, &viewer, Form::default(), None).await
}

/// The fields of the create and edit forms.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct Form {
    name: String,
    body: String,
    status: String,
    priority: String,
    tags: String,
    /// "1" for a shared one (admins).
    shared: String,
}

impl Form {
    fn draft(&self) -> WebResult<std::result::Result<CannedDraft, String>> {
        let status = super::tickets::parse_or_bad::<Status>("status", &self.status)?;
        let priority = super::tickets::parse_or_bad::<Priority>("priority", &self.priority)?;
        Ok(
            CannedDraft::new(&self.name, &self.body, status, priority, &self.tags)
                .map_err(|error| error.to_string()),
        )
    }
}

/// Saves a new canned response: the viewer's own, or a shared one (admins).
pub async fn create(State(state): State<AppState>, posted: Posted<Form>) -> WebResult<Response> {
    let viewer = posted.viewer;
    let form = posted.form;
    let shared = form.shared == "1";
    if shared {
        viewer.require_admin()?;
    }
    let draft = match form.draft()? {
        Ok(draft) => draft,
        Err(why) => return canned_page(&state, &viewer, form, Some(why)).await,
    };
    let owner = (!shared).then(|| viewer.id());
    match canned::create(&state.store, owner, &draft, Utc::now()).await {
        Ok(_) => Ok(see_other("/canned")),
        Err(StoreError::Conflict(why)) => canned_page(&state, &viewer, form, Some(why)).await,
        Err(error) => Err(error.into()),
    }
}

/// The canned response `id` if the viewer may change it.
async fn manageable(state: &AppState, viewer: &Viewer, id: i64) -> WebResult<CannedResponse> {
    let response = canned::visible(&state.store, viewer.id(), id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("There is no canned response {id}.")))?;
    if response.is_shared() && !viewer.is_admin() {
        return Err(WebError::Forbidden(
            "Shared canned responses are kept by admins.".into(),
        ));
    }
    Ok(response)
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<Form>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    manageable(&state, &viewer, id).await?;
    let draft = match posted.form.draft()? {
        Ok(draft) => draft,
        Err(why) => return canned_page(&state, &viewer, Form::default(), Some(why)).await,
    };
    match canned::update(&state.store, id, &draft, Utc::now()).await {
        Ok(_) => Ok(see_other("/canned")),
        Err(StoreError::Conflict(why)) => {
            canned_page(&state, &viewer, Form::default(), Some(why)).await
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(serde::Deserialize, Default)]
pub struct DeleteForm {}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<DeleteForm>,
) -> WebResult<Response> {
    manageable(&state, &posted.viewer, id).await?;
    canned::delete(&state.store, id).await?;
    Ok(see_other("/canned"))
}

/// One canned response in the ticket page's picker, with its text filled in for the ticket
/// (inserted at once by the page's script).
pub struct PickerChoice {
    pub id: i64,
    pub name: String,
    pub shared: bool,
    pub text: String,
    pub selected: bool,
}

/// The ticket page's picker: the canned responses the viewer may use.
#[derive(Default)]
pub struct Picker {
    pub choices: Vec<PickerChoice>,
}

/// The picker for ticket `number`; `picked` is the one chosen (`?canned=ID`), whose filled-in
/// text is returned for the reply form.
pub async fn picker(
    state: &AppState,
    viewer: &Viewer,
    number: TicketNumber,
    picked: Option<i64>,
) -> StoreResult<(Picker, Option<String>)> {
    let responses = canned::visible_to(&state.store, viewer.id()).await?;
    if responses.is_empty() {
        return Ok((Picker::default(), None));
    }
    let values = canned::placeholder_values(&state.store, number, viewer.id()).await?;
    let mut text = None;
    let mut picker = Picker::default();
    for response in responses {
        // One whose body no longer passes is left out rather than offered raw.
        let Ok(filled) = ops::canned::render(&response, &values) else {
            continue;
        };
        let selected = picked == Some(response.id);
        if selected {
            text = Some(filled.clone());
        }
        picker.choices.push(PickerChoice {
            id: response.id,
            shared: response.is_shared(),
            name: response.name,
            text: filled,
            selected,
        });
    }
    Ok((picker, text))
}

/// The query of the ticket page: `?canned=ID` fills the reply form with that canned response.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct PickQuery {
    pub canned: String,
}

impl PickQuery {
    pub fn picked(&self) -> WebResult<Option<i64>> {
        super::tickets::parse_or_bad::<i64>("canned response", self.canned.trim())
    }
}

/// Sends a reply from the ticket page: with the canned response `canned_id` (a form field,
/// empty for none) its actions apply in the same commit.
pub async fn send_reply(
    state: &AppState,
    reply: &NewReply<'_>,
    canned_id: &str,
    files: &[AttachedFile],
    last_seen: Option<i64>,
) -> WebResult<StoreResult<StoredReply>> {
    let picked = super::tickets::parse_or_bad::<i64>("canned response", canned_id.trim())?;
    Ok(match picked {
        Some(id) => ops::canned::reply_with(&state.store, reply, Pick::Id(id), files, last_seen)
            .await
            .map(|sent| sent.reply),
        None => ops::send_reply_as_seen(&state.store, reply, files, last_seen).await,
    })
}
