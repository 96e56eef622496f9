//! The forms of the ticket page: reply or note, field changes, merge.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::Utc;

use super::{ReplyDraft, parse_or_bad, ticket_page, visible_ticket};
use crate::domain::TicketNumber;
use crate::domain::tags::{self, TagChange};
use crate::domain::{Priority, Status};
use crate::ops::{self, ChangedBy, TicketChange};
use crate::store::manage::{self, Change};
use crate::store::{StoreError, outbound};
use crate::web::AppState;
use crate::web::auth::{Posted, PostedFiles};
use crate::web::error::{WebError, WebResult};
use crate::web::pages::{Nav, render, see_other};

#[derive(serde::Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    text: String,
    /// Present when the message is an internal note.
    #[serde(default)]
    note: Option<String>,
    /// The canned response picked above the form; its actions apply with the reply.
    #[serde(default)]
    canned_response_id: String,
    /// The newest message the page showed; a reply is stopped when others came after it.
    /// Empty or absent: no check.
    #[serde(default)]
    last_seen_message_id: String,
}

/// A reply or note from the ticket page, with the files chosen in the form. Refused (too
/// large, channel not running, ticket closed or merged, or new messages since the page was
/// loaded): the page again with what was typed and why.
pub async fn reply(
    State(state): State<AppState>,
    Path(number): Path<TicketNumber>,
    posted: PostedFiles<ReplyForm>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    let form = posted.form;
    visible_ticket(&state, &viewer, number).await?;
    let note = form.note.is_some();
    let last_seen = parse_or_bad::<i64>("message id", form.last_seen_message_id.trim())?;
    let mut draft = ReplyDraft {
        text: form.text,
        note,
        canned_id: form.canned_response_id.trim().parse().ok(),
        ..ReplyDraft::default()
    };
    if let Some(why) = posted.too_large {
        draft.error = Some(why);
        return ticket_page(&state, &viewer, number, draft).await;
    }
    let chosen = posted.files.len();
    // Kept before the transaction (disk, not database); content addressed, so sending the
    // same files again after a refusal stores nothing twice.
    let files = ops::keep_files(&state.config.attachments, posted.files).await?;
    let external_id = crate::domain::new_mail_message_id(&state.config.support_address, number);
    let sent = crate::web::canned::send_reply(
        &state,
        &outbound::NewReply {
            number,
            agent_id: viewer.id(),
            text: &draft.text,
            kind: ops::reply_kind(note),
            external_id: Some(&external_id),
            channels_here: &state.config.channels_here(),
            now: Utc::now(),
        },
        &form.canned_response_id,
        &files,
        last_seen,
    )
    .await?;
    match sent {
        Ok(_) => {
            state.live.wake();
            Ok(see_other(&format!("/tickets/{number}")))
        }
        Err(StoreError::Conflict(why)) => {
            draft.error = Some(why);
            draft.files_dropped = chosen;
            ticket_page(&state, &viewer, number, draft).await
        }
        Err(StoreError::Stale { unseen, .. }) => {
            draft.unseen = unseen;
            draft.files_dropped = chosen;
            ticket_page(&state, &viewer, number, draft).await
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct UpdateForm {
    status: String,
    priority: String,
    /// A department id, or "none".
    department: String,
    /// An agent id, or "none".
    assignee: String,
    /// Tags to add, separated by spaces or commas.
    add_tags: String,
    /// The tag whose remove button was pressed.
    remove_tag: String,
    reason: String,
}

pub(super) fn optional_id(what: &str, text: &str) -> WebResult<Option<Option<i64>>> {
    match text {
        "" => Ok(None),
        "none" => Ok(Some(None)),
        id => id
            .parse()
            .map(|id| Some(Some(id)))
            .map_err(|_| WebError::BadRequest(format!("{id:?} is not a valid {what}"))),
    }
}

pub(super) fn tag_edit(add: &str, remove: &str) -> WebResult<Option<TagChange>> {
    let invalid = |error: tags::TagError| WebError::BadRequest(error.to_string());
    let add = tags::parse_list(add).map_err(invalid)?;
    let remove = tags::parse_list(remove).map_err(invalid)?;
    Ok((!add.is_empty() || !remove.is_empty()).then_some(TagChange::Edit { add, remove }))
}

/// Applies the change form in one transaction: each field that differs from the ticket is a
/// history event with who and why.
pub async fn update(
    State(state): State<AppState>,
    Path(number): Path<TicketNumber>,
    posted: Posted<UpdateForm>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    let form = posted.form;
    visible_ticket(&state, &viewer, number).await?;
    let change = TicketChange {
        status: parse_or_bad::<Status>("status", &form.status)?,
        priority: parse_or_bad::<Priority>("priority", &form.priority)?,
        department: optional_id("department", &form.department)?,
        assignee: optional_id("agent", &form.assignee)?,
        tags: tag_edit(&form.add_tags, &form.remove_tag)?,
        reason: Some(form.reason),
    };
    let by = ChangedBy {
        agent_id: viewer.id(),
        now: Utc::now(),
    };
    ops::apply(&state.store, number, by, &change).await?;
    state.live.wake();
    Ok(see_other(&format!("/tickets/{number}")))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct MergeForm {
    into: String,
    reason: String,
    /// "yes" once the agent confirmed a merge of different customers' tickets.
    confirm: String,
}

#[derive(Template)]
#[template(path = "web/merge_confirm.html")]
struct MergeConfirmPage {
    nav: Option<Nav>,
    csrf: String,
    plan: manage::MergePlan,
    reason: String,
}

pub async fn merge(
    State(state): State<AppState>,
    Path(number): Path<TicketNumber>,
    posted: Posted<MergeForm>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    visible_ticket(&state, &viewer, number).await?;
    let into: TicketNumber = posted.form.into.parse().map_err(|_| {
        WebError::BadRequest(format!(
            "{:?} is not a ticket number such as 1042",
            posted.form.into
        ))
    })?;
    visible_ticket(&state, &viewer, into).await?;
    let confirmed = posted.form.confirm == "yes";
    if !confirmed && number != into {
        let plan = manage::merge_plan(&state.store, number, into).await?;
        if !plan.same_customer() {
            return render(&MergeConfirmPage {
                nav: Nav::of(&viewer, "tickets"),
                csrf: viewer.csrf().to_owned(),
                plan,
                reason: posted.form.reason,
            });
        }
    }
    let change = Change {
        agent_id: viewer.id(),
        reason: Some(posted.form.reason.as_str()),
        now: Utc::now(),
    };
    ops::merge(&state.store, number, into, confirmed, &change).await?;
    state.live.wake();
    Ok(see_other(&format!("/tickets/{into}")))
}
