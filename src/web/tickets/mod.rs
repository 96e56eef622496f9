//! The ticket list and the ticket page; the page's forms (reply, note, changes, merge) are in
//! [`actions`], the list's bulk actions in [`bulk`], attachment downloads in [`download`].

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::AppState;
use super::auth::Viewer;
use super::error::{WebError, WebResult};
use super::pages::{Nav, render};
use crate::domain::sla::SlaTargets;
use crate::domain::{Priority, Status};
use crate::store::agents;
use crate::store::agents::{AgentSummary, Department};
use crate::store::tickets::{EventView, MessageView, TicketSummary};
use crate::store::views::{
    self, AssigneeFilter, Cursor, ListQuery, SlaFilter, SlaState, Sort, TicketFacts, Total,
};

mod actions;
mod bulk;
mod download;

pub use actions::{merge, reply, update};
pub use bulk::bulk;
use bulk::{BulkDone, BulkForm};
pub use download::{download, preview};

/// The list's filters as they arrive in the query string; empty means "any".
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct ListParams {
    /// A status, "any", or empty (or "active") for new, open and pending.
    pub status: String,
    pub priority: String,
    pub department: String,
    /// An agent id, "me" or "none".
    pub assignee: String,
    pub channel: String,
    pub tag: String,
    /// A customer id: only their tickets.
    pub customer: String,
    pub q: String,
    /// Where tickets stand against their SLA targets (the dashboard's figures link here).
    pub sla: String,
    /// "1": only tickets with customer messages the viewer has not seen.
    pub unread: String,
    pub sort: String,
    pub after: String,
    pub before: String,
}

pub(super) fn parse_or_bad<T: std::str::FromStr>(what: &str, text: &str) -> WebResult<Option<T>> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| WebError::BadRequest(format!("{text:?} is not a valid {what}")))
}

impl ListParams {
    fn query(&self, viewer: &Viewer, targets: &SlaTargets) -> WebResult<ListQuery> {
        // Closed and resolved tickets are shown when asked for: people work on the others.
        let (status, active_only) = match self.status.as_str() {
            "" | "active" => (None, true),
            "any" => (None, false),
            other => (parse_or_bad::<Status>("status", other)?, false),
        };
        let assignee = match self.assignee.as_str() {
            "" => AssigneeFilter::Anyone,
            "none" => AssigneeFilter::Unassigned,
            "me" => AssigneeFilter::Agent(viewer.id()),
            other => {
                AssigneeFilter::Agent(parse_or_bad::<i64>("agent", other)?.unwrap_or_default())
            }
        };
        let sort = if self.sort.is_empty() {
            Sort::default()
        } else {
            Sort::parse(&self.sort)
                .ok_or_else(|| WebError::BadRequest(format!("unknown sort {:?}", self.sort)))?
        };
        let cursor = |text: &str| {
            if text.is_empty() {
                return Ok(None);
            }
            Cursor::decode(text).map(Some).ok_or_else(|| {
                WebError::BadRequest("the page link is damaged; start from the first page".into())
            })
        };
        let (after, before) = (cursor(&self.after)?, cursor(&self.before)?);
        Ok(ListQuery {
            visibility: viewer.visibility(),
            status,
            active_only,
            priority: parse_or_bad("priority", &self.priority)?,
            department_id: parse_or_bad("department", &self.department)?,
            assignee,
            channel: Some(self.channel.clone()).filter(|channel| !channel.is_empty()),
            tag: Some(self.tag.clone()).filter(|tag| !tag.trim().is_empty()),
            customer_id: parse_or_bad("customer", &self.customer)?,
            search: Some(self.q.clone()).filter(|q| !q.trim().is_empty()),
            sla: match self.sla.as_str() {
                "" => None,
                name => Some(SlaFilter {
                    state: SlaState::parse(name).ok_or_else(|| {
                        WebError::BadRequest(format!("{name:?} is not a valid SLA state"))
                    })?,
                    targets: *targets,
                    now: Utc::now(),
                }),
            },
            reader: Some(viewer.id()),
            unread_only: matches!(self.unread.as_str(), "1" | "on" | "true"),
            sort,
            after,
            before,
            count: true,
            limit: 50,
        })
    }

    /// This query string as it is: the same list at the same page.
    fn same_page(&self) -> String {
        if self.before.is_empty() {
            self.with_page(("after", &self.after))
        } else {
            self.with_page(("before", &self.before))
        }
    }

    /// This query string with another page: `("after", cursor)` or `("before", cursor)`, or
    /// the first page with `("after", "")`.
    fn with_page(&self, (key, cursor): (&str, &str)) -> String {
        let (after, before) = if key == "before" {
            ("", cursor)
        } else {
            (cursor, "")
        };
        let pairs = [
            ("status", self.status.as_str()),
            ("priority", self.priority.as_str()),
            ("department", self.department.as_str()),
            ("assignee", self.assignee.as_str()),
            ("channel", self.channel.as_str()),
            ("tag", self.tag.as_str()),
            ("customer", self.customer.as_str()),
            ("q", self.q.as_str()),
            ("sla", self.sla.as_str()),
            ("unread", self.unread.as_str()),
            ("sort", self.sort.as_str()),
            ("after", after),
            ("before", before),
        ];
        let kept: Vec<(&str, &str)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        serde_urlencoded::to_string(kept).unwrap_or_default()
    }
}

/// One option of a select.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub fn choices<V: Into<String>, L: Into<String>>(
    options: impl IntoIterator<Item = (V, L)>,
    current: &str,
) -> Vec<Choice> {
    options
        .into_iter()
        .map(|(value, label)| {
            let value = value.into();
            Choice {
                selected: value == current,
                label: label.into(),
                value,
            }
        })
        .collect()
}

fn department_choices(departments: &[Department], current: &str) -> Vec<Choice> {
    choices(
        departments
            .iter()
            .map(|d| (d.id.to_string(), d.name.clone())),
        current,
    )
}

fn agent_choices(agents: &[AgentSummary], current: &str) -> Vec<Choice> {
    choices(
        agents.iter().map(|a| (a.id.to_string(), a.name.clone())),
        current,
    )
}

#[derive(Template)]
#[template(path = "web/tickets.html")]
struct ListPage {
    nav: Option<Nav>,
    params: ListParams,
    tickets: Vec<TicketSummary>,
    /// "128 tickets", "more than 10,000 tickets".
    total: Option<String>,
    next_page: Option<String>,
    previous_page: Option<String>,
    first_page: Option<String>,
    statuses: Vec<Choice>,
    /// Tags in use with their counts, offered in the tag filter.
    known_tags: Vec<views::TagCount>,
    priorities: Vec<Choice>,
    departments: Vec<Choice>,
    assignees: Vec<Choice>,
    channels: Vec<Choice>,
    sla_states: Vec<Choice>,
    sorts: Vec<Choice>,
    /// The bulk form above the list; its presence also gives each row its checkbox.
    bulk: BulkForm,
    /// What the last bulk action did, or why it was refused.
    notice: Option<String>,
    error: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<ListParams>,
    Query(done): Query<BulkDone>,
) -> WebResult<Response> {
    let notice = done.notice();
    list_page(&state, &viewer, params, notice, None).await
}

/// The list with `params`, and above it what a bulk action did (`notice`) or why it was
/// refused (`error`, answered 422).
async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    params: ListParams,
    notice: Option<String>,
    error: Option<String>,
) -> WebResult<Response> {
    let query = params.query(viewer, &state.config.sla)?;
    let mut page = views::list_tickets(&state.store, &query).await?;
    mark_due(&mut page.tickets, &state.config.sla, Utc::now());
    let link = |key: &str, cursor: &Cursor| {
        format!("/tickets?{}", params.with_page((key, &cursor.encode())))
    };
    let next_page = page.next.map(|cursor| link("after", &cursor));
    let previous_page = page.previous.map(|cursor| link("before", &cursor));
    let first_page = page
        .previous
        .map(|_| format!("/tickets?{}", params.with_page(("after", ""))));
    let total = page.total.map(total_text);
    let departments = agents::departments(&state.store).await?;
    let agents = agents::list_agents(&state.store).await?;
    let mut statuses = vec![("any".to_owned(), "any status incl. closed".to_owned())];
    statuses.extend(
        Status::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), s.as_str().to_owned())),
    );
    let mut assignees = vec![
        ("me".to_owned(), "me".to_owned()),
        ("none".to_owned(), "unassigned".to_owned()),
    ];
    assignees.extend(agents.iter().map(|a| (a.id.to_string(), a.name.clone())));
    let refused = error.is_some();
    let mut response = render(&ListPage {
        nav: Nav::of(viewer, "tickets"),
        tickets: page.tickets,
        total,
        next_page,
        previous_page,
        first_page,
        known_tags: views::tag_counts(&state.store, viewer.visibility()).await?,
        statuses: choices(statuses, &params.status),
        priorities: choices(
            Priority::ALL.iter().map(|p| (p.as_str(), p.as_str())),
            &params.priority,
        ),
        departments: department_choices(&departments, &params.department),
        assignees: choices(assignees, &params.assignee),
        channels: choices(
            ["email", "telegram", "discord"].map(|c| (c, c)),
            &params.channel,
        ),
        sla_states: choices(
            SlaState::ALL.iter().map(|(_, name, label)| (*name, *label)),
            &params.sla,
        ),
        sorts: choices(
            Sort::ALL.iter().map(|(_, name, label)| (*name, *label)),
            if params.sort.is_empty() {
                Sort::default().name()
            } else {
                &params.sort
            },
        ),
        bulk: BulkForm::new(viewer, &params, &agents),
        notice,
        error,
        params,
    })?;
    if refused {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

/// "1 ticket", "128 tickets", "more than 10000 tickets".
fn total_text(total: Total) -> String {
    match (total.count, total.at_least) {
        (count, true) => format!("more than {count} tickets"),
        (1, false) => "1 ticket".to_owned(),
        (count, false) => format!("{count} tickets"),
    }
}

/// Works out the next SLA target of each active ticket, for the lists' "Next due" column: the
/// one its SLA checks keep on the ticket (calendars, pauses and next responses counted), or
/// before its first check the [sla] defaults from its creation.
pub(super) fn mark_due(tickets: &mut [TicketSummary], targets: &SlaTargets, now: DateTime<Utc>) {
    for ticket in tickets {
        let kept = ticket.sla_due_at.map(|at| {
            let what = ticket
                .sla_due_target
                .as_deref()
                .and_then(|target| target.parse::<crate::domain::sla::Target>().ok())
                .map_or("target", crate::domain::sla::Target::label);
            crate::domain::sla::NextDue {
                what,
                at,
                state: crate::domain::sla::DueState::at(at, now, views::DUE_SOON),
            }
        });
        let checked = kept.is_some() || ticket.sla_paused || ticket.sla_breached_at.is_some();
        ticket.due = ticket
            .status
            .is_active()
            .then(|| {
                if checked {
                    kept
                } else {
                    targets
                        .due(
                            ticket.created_at,
                            ticket.priority,
                            ticket.first_response_at,
                            ticket.resolved_at,
                        )
                        .next(now, views::DUE_SOON)
                }
            })
            .flatten();
    }
}

/// The ticket behind `number`, if the viewer may see it (404 either way, so agents cannot
/// probe which numbers exist outside their departments).
pub(super) async fn visible_ticket(
    state: &AppState,
    viewer: &Viewer,
    number: i64,
) -> WebResult<TicketFacts> {
    let not_found = || WebError::NotFound(format!("There is no ticket #{number} you can see."));
    let facts = views::ticket_facts(&state.store, number.into())
        .await?
        .ok_or_else(not_found)?;
    if viewer.is_admin() || views::agent_may_see(&state.store, viewer.id(), &facts).await? {
        Ok(facts)
    } else {
        Err(not_found())
    }
}

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
    fn new(number: i64, message: MessageView, unseen: &[i64]) -> MessageItem {
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
                        && download::preview_type(&file.content_type).is_some())
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
    customer_panel: super::customers::CustomerPanel,
    /// The ticket's satisfaction survey, once one was sent.
    survey: Option<crate::store::surveys::Survey>,
    /// Why a public reply cannot go out now (its channel runs nowhere); notes still can.
    channel_off: Option<String>,
    /// The reply form as it was sent back with why it was refused.
    reply: ReplyDraft,
    /// The canned responses offered above the reply form.
    canned: super::canned::Picker,
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
    Path(number): Path<i64>,
    Query(pick): Query<super::canned::PickQuery>,
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
    number: i64,
    mut reply: ReplyDraft,
) -> WebResult<Response> {
    let facts = visible_ticket(state, viewer, number).await?;
    let (canned, picked_text) =
        super::canned::picker(state, viewer, number, reply.canned_id).await?;
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
    let sla = crate::store::sla::targets(&state.store, facts.id.get()).await?;
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
        customer_panel: super::customers::panel(state, viewer, number).await?,
        survey: crate::store::surveys::of_ticket(&state.store, facts.id.0).await?,
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
