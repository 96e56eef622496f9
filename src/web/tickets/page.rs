//! The ticket page: the conversation with its files, the history, the customer, and the
//! forms' choices.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;

use super::{Choice, agent_choices, choices, department_choices, visible_ticket};
use crate::domain::TicketNumber;
use crate::domain::{Priority, Status};
use crate::store::agents;
use crate::store::tickets::{EventView, MessageView, TicketSummary};
use crate::store::views::{self, TicketFacts};
use crate::web::AppState;
use crate::web::auth::Viewer;
use crate::web::error::{WebError, WebResult};
use crate::web::pages::{Nav, render};

struct MessageItem {
    message: MessageView,
    /// The mail's HTML, sanitized again at display in case an older row predates the rules,
    /// its `cid:` images pointing at their previews.
    html: Option<String>,
    files: Vec<FileItem>,
    /// Arrived since the page the refused reply was written on.
    unseen: bool,
}

struct FileItem {
    file: crate::store::attachments::AttachmentView,
    /// Where the browser shows it (images and PDFs whose content was kept).
    preview: Option<String>,
}

/// A message that arrived since the page a refused reply was written on, above the form.
struct UnseenItem {
    id: i64,
    author: String,
    at: String,
    excerpt: String,
}

impl MessageItem {
    fn new(number: TicketNumber, message: MessageView, unseen: &[i64]) -> MessageItem {
        let url = |id: i64| format!("/tickets/{number}/attachments/{id}/preview");
        let inline: Vec<(String, String)> = message
            .attachments
            .iter()
            .filter(|file| file.sha256.is_some())
            .filter_map(|file| Some((file.content_id.clone()?, url(file.id))))
            .collect();
        MessageItem {
            html: message
                .body_html
                .as_deref()
                .map(|html| helpdesk_email::sanitize_html_with_images(html, &inline)),
            files: message
                .attachments
                .iter()
                .map(|file| FileItem {
                    preview: (file.sha256.is_some()
                        && super::download::preview_type(&file.content_type).is_some())
                    .then(|| url(file.id)),
                    file: file.clone(),
                })
                .collect(),
            unseen: unseen.contains(&message.id),
            message,
        }
    }
}

#[derive(Template)]
#[template(path = "web/ticket.html")]
struct TicketPage {
    nav: Option<Nav>,
    csrf: String,
    ticket: TicketSummary,
    facts: TicketFacts,
    messages: Vec<MessageItem>,
    history: Vec<EventView>,
    /// The ticket this one was opened apart from, and those opened apart from this one.
    linked_to: Option<i64>,
    linked_from: Vec<i64>,
    tags: Vec<String>,
    /// Tags in use, offered when adding one.
    known_tags: Vec<String>,
    next_statuses: Vec<Choice>,
    priorities: Vec<Choice>,
    departments: Vec<Choice>,
    agents: Vec<Choice>,
    customer_panel: crate::web::customers::CustomerPanel,
    /// The ticket's satisfaction survey, once one was sent.
    survey: Option<crate::store::surveys::Survey>,
    /// Why a public reply cannot go out now (its channel runs nowhere); notes still can.
    channel_off: Option<String>,
    /// The reply form as it was sent back with why it was refused.
    reply: ReplyDraft,
    /// The canned responses offered above the reply form.
    canned: crate::web::canned::Picker,
    /// The newest message on the page, sent with the reply form (see `ops::send_reply_as_seen`).
    last_seen_message_id: Option<i64>,
    /// What arrived since the page a refused reply was written on.
    unseen: Vec<UnseenItem>,
    /// The ticket's SLA targets.
    sla: Vec<crate::store::sla::TargetRow>,
}

/// What the reply form holds: empty, or the refused text with the reason.
#[derive(Default)]
pub(super) struct ReplyDraft {
    pub(super) text: String,
    pub(super) note: bool,
    pub(super) error: Option<String>,
    /// The canned response picked (`?canned=ID`, or sent with the reply): its actions apply
    /// when the reply is sent.
    pub(super) canned_id: Option<i64>,
    /// Messages that arrived since the page the reply was written on (it was not sent).
    pub(super) unseen: Vec<i64>,
    /// How many files the refused form carried; a browser cannot be handed them back.
    pub(super) files_dropped: usize,
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(number): Path<TicketNumber>,
    Query(pick): Query<crate::web::canned::PickQuery>,
) -> WebResult<Response> {
    let draft = ReplyDraft {
        canned_id: pick.picked()?,
        ..ReplyDraft::default()
    };
    ticket_page(&state, &viewer, number, draft).await
}

/// Whether replies on `channel` would be refused now, and why.
async fn channel_off(state: &AppState, channel: &str) -> WebResult<Option<String>> {
    let Ok(channel) = channel.parse::<helpdesk_channel::ChannelKind>() else {
        return Ok(None);
    };
    let here = state.config.channels_here();
    let runs = here.contains(&channel)
        || crate::store::instances::running(&state.store, Utc::now())
            .await?
            .iter()
            .any(|instance| instance.runs(channel));
    Ok((!runs).then(|| {
        format!(
            "Replies on this ticket go out by {channel}, which no running instance has enabled \
             (setting {channel}.enabled): only internal notes can be added until it is."
        )
    }))
}

/// The first line of a message, at most 120 characters.
fn excerpt(text: &str) -> String {
    let line = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default();
    let mut short: String = line.trim().chars().take(120).collect();
    if short.len() < line.trim().len() {
        short.push('…');
    }
    short
}

pub(super) async fn ticket_page(
    state: &AppState,
    viewer: &Viewer,
    number: TicketNumber,
    mut reply: ReplyDraft,
) -> WebResult<Response> {
    let facts = visible_ticket(state, viewer, number).await?;
    let (canned, picked_text) =
        crate::web::canned::picker(state, viewer, number, reply.canned_id).await?;
    if reply.canned_id.is_some() && reply.text.is_empty() {
        // The reply form filled with the picked one, as the page's script would do.
        reply.text = picked_text.ok_or_else(|| {
            WebError::NotFound("There is no such canned response you can use.".into())
        })?;
    }
    let detail = crate::store::tickets::detail(&state.store, number)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("There is no ticket #{number}.")))?;
    let status = facts.status;
    let last_seen_message_id = detail.messages.iter().map(|message| message.id).max();
    let unseen = detail
        .messages
        .iter()
        .filter(|message| reply.unseen.contains(&message.id))
        .map(|message| UnseenItem {
            id: message.id,
            author: message.author.clone(),
            at: message.created_at.format("%Y-%m-%d %H:%M").to_string(),
            excerpt: excerpt(&message.body_text),
        })
        .collect();
    // What the page shows is seen: its customer messages are no longer unread for the viewer.
    if let Some(last) = last_seen_message_id {
        views::mark_seen(&state.store, viewer.id(), facts.id, last).await?;
    }
    let messages = detail
        .messages
        .into_iter()
        .map(|message| MessageItem::new(number, message, &reply.unseen))
        .collect();
    let channel_off = if reply.error.is_none() && facts.merged_into.is_none() {
        channel_off(state, &detail.summary.channel).await?
    } else {
        None
    };
    // A refused form comes back as the pages' other refusals do; one written on an older
    // view of the ticket as the API answers it.
    let status_code = if !reply.unseen.is_empty() {
        StatusCode::CONFLICT
    } else if reply.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let sla = crate::store::sla::targets(&state.store, facts.id).await?;
    let mut page = render(&TicketPage {
        nav: Nav::of(viewer, "tickets"),
        csrf: viewer.csrf().to_owned(),
        tags: views::tags(&state.store, facts.id).await?,
        known_tags: views::tag_counts(&state.store, viewer.visibility())
            .await?
            .into_iter()
            .map(|count| count.tag)
            .collect(),
        next_statuses: choices(
            Status::ALL
                .iter()
                .filter(|to| **to == status || status.can_become(**to))
                .map(|to| (to.as_str(), to.as_str())),
            status.as_str(),
        ),
        priorities: choices(
            Priority::ALL.iter().map(|p| (p.as_str(), p.as_str())),
            facts.priority.as_str(),
        ),
        departments: department_choices(
            &agents::departments(&state.store).await?,
            &facts
                .department_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        ),
        agents: agent_choices(
            &agents::list_agents(&state.store)
                .await?
                .into_iter()
                .filter(|agent| agent.active)
                .collect::<Vec<_>>(),
            &facts
                .assignee_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        ),
        customer_panel: crate::web::customers::panel(state, viewer, number).await?,
        survey: crate::store::surveys::of_ticket(&state.store, facts.id).await?,
        ticket: detail.summary,
        facts,
        messages,
        history: detail.history,
        linked_to: detail.linked_to,
        linked_from: detail.linked_from,
        channel_off,
        reply,
        canned,
        last_seen_message_id,
        unseen,
        sla,
    })?;
    *page.status_mut() = status_code;
    Ok(page)
}
