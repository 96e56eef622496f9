//! The ticket list and the ticket page with its forms: reply, note, changes, merge, downloads.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::AppState;
use super::auth::{Posted, Viewer};
use super::error::{WebError, WebResult};
use super::pages::{Nav, render, see_other};
use crate::domain::sla::SlaTargets;
use crate::domain::{Priority, Status};
use crate::store::agents::{AgentSummary, Department};
use crate::ops::{self, ChangedBy, TicketChange};
use crate::store::manage::{self, Change};
use crate::store::tickets::{EventView, MessageView, TicketSummary};
use crate::store::views::{
    self, AssigneeFilter, Cursor, ListQuery, SlaFilter, SlaState, Sort, TicketFacts,
};
use crate::store::{agents, outbound};

/// The list's filters as they arrive in the query string; empty means "any".
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct ListParams {
    /// A status, or "active" for new, open and pending.
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
    pub sort: String,
    pub after: String,
}

fn parse_or_bad<T: std::str::FromStr>(what: &str, text: &str) -> WebResult<Option<T>> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| WebError::BadRequest(format!("{text:?} is not a valid {what}")))
}

impl ListParams {
    fn query(&self, viewer: &Viewer, targets: &SlaTargets) -> WebResult<ListQuery> {
        let (status, active_only) = match self.status.as_str() {
            "active" => (None, true),
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
        let after = if self.after.is_empty() {
            None
        } else {
            Some(Cursor::decode(&self.after).ok_or_else(|| {
                WebError::BadRequest("the page link is damaged; start from the first page".into())
            })?)
        };
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
            sort,
            after,
            limit: 50,
        })
    }

    /// This query string with another page start.
    fn with_after(&self, after: &str) -> String {
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
            ("sort", self.sort.as_str()),
            ("after", after),
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
    next_page: Option<String>,
    first_page: Option<String>,
    statuses: Vec<Choice>,
    priorities: Vec<Choice>,
    departments: Vec<Choice>,
    assignees: Vec<Choice>,
    channels: Vec<Choice>,
    sla_states: Vec<Choice>,
    sorts: Vec<Choice>,
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<ListParams>,
) -> WebResult<Response> {
    let query = params.query(&viewer, &state.config.sla)?;
    let page = views::list_tickets(&state.store, &query).await?;
    let next_page = page
        .next
        .map(|cursor| format!("/tickets?{}", params.with_after(&cursor.encode())));
    let first_page = query
        .after
        .map(|_| format!("/tickets?{}", params.with_after("")));
    let departments = agents::departments(&state.store).await?;
    let agents = agents::list_agents(&state.store).await?;
    let mut statuses = vec![(
        "active".to_owned(),
        "active (new, open, pending)".to_owned(),
    )];
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
    render(&ListPage {
        nav: Nav::of(&viewer, "tickets"),
        tickets: page.tickets,
        next_page,
        first_page,
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
        params,
    })
}

/// The ticket behind `number`, if the viewer may see it (404 either way, so agents cannot
/// probe which numbers exist outside their departments).
async fn visible_ticket(state: &AppState, viewer: &Viewer, number: i64) -> WebResult<TicketFacts> {
    let not_found = || WebError::NotFound(format!("There is no ticket #{number} you can see."));
    let facts = views::ticket_facts(&state.store, number)
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
    /// The mail's HTML, sanitized again at display in case an older row predates the rules.
    html: Option<String>,
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
    next_statuses: Vec<Choice>,
    priorities: Vec<Choice>,
    departments: Vec<Choice>,
    agents: Vec<Choice>,
    customer_panel: super::customers::CustomerPanel,
    /// Why a public reply cannot go out now (its channel runs nowhere); notes still can.
    channel_off: Option<String>,
    /// The reply form as it was sent back with why it was refused.
    reply: ReplyDraft,
}

/// What the reply form holds: empty, or the refused text with the reason.
#[derive(Default)]
struct ReplyDraft {
    text: String,
    note: bool,
    error: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(number): Path<i64>,
) -> WebResult<Response> {
    ticket_page(&state, &viewer, number, ReplyDraft::default()).await
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

async fn ticket_page(
    state: &AppState,
    viewer: &Viewer,
    number: i64,
    reply: ReplyDraft,
) -> WebResult<Response> {
    let facts = visible_ticket(state, viewer, number).await?;
    let detail = crate::store::tickets::detail(&state.store, number)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("There is no ticket #{number}.")))?;
    let status = facts.status;
    let messages = detail
        .messages
        .into_iter()
        .map(|message| MessageItem {
            html: message
                .body_html
                .as_deref()
                .map(helpdesk_email::sanitize_html),
            message,
        })
        .collect();
    let channel_off = if reply.error.is_none() && facts.merged_into.is_none() {
        channel_off(state, &detail.summary.channel).await?
    } else {
        None
    };
    // A refused form comes back as the pages' other refusals do.
    let status_code = if reply.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut page = render(&TicketPage {
        nav: Nav::of(viewer, "tickets"),
        csrf: viewer.csrf().to_owned(),
        tags: views::tags(&state.store, facts.id).await?,
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
        ticket: detail.summary,
        facts,
        messages,
        history: detail.history,
        linked_to: detail.linked_to,
        linked_from: detail.linked_from,
        channel_off,
        reply,
    })?;
    *page.status_mut() = status_code;
    Ok(page)
}

#[derive(serde::Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    text: String,
    /// Present when the message is an internal note.
    #[serde(default)]
    note: Option<String>,
}

pub async fn reply(
    State(state): State<AppState>,
    Path(number): Path<i64>,
    posted: Posted<ReplyForm>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    visible_ticket(&state, &viewer, number).await?;
    let external_id =
        ops::new_mail_message_id(&state.config.support_address, number.into());
    let note = posted.form.note.is_some();
    let sent = ops::send_reply(
        &state.store,
        &outbound::NewReply {
            number,
            agent_id: viewer.id(),
            text: &posted.form.text,
            kind: ops::reply_kind(note),
            external_id: Some(&external_id),
            channels_here: &state.config.channels_here(),
            now: Utc::now(),
        },
    )
    .await;
    match sent {
        Ok(_) => {
            state.live.wake();
            Ok(see_other(&format!("/tickets/{number}")))
        }
        // Refused (channel not running, ticket closed or merged): the page again, with why
        // and with what was typed.
        Err(crate::store::StoreError::Conflict(why)) => {
            let draft = ReplyDraft {
                text: posted.form.text,
                note,
                error: Some(why),
            };
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
    reason: String,
}

fn optional_id(what: &str, text: &str) -> WebResult<Option<Option<i64>>> {
    match text {
        "" => Ok(None),
        "none" => Ok(Some(None)),
        id => id
            .parse()
            .map(|id| Some(Some(id)))
            .map_err(|_| WebError::BadRequest(format!("{id:?} is not a valid {what}"))),
    }
}

/// Applies the change form in one transaction: each field that differs from the ticket is a
/// history event with who and why.
pub async fn update(
    State(state): State<AppState>,
    Path(number): Path<i64>,
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
        reason: Some(form.reason),
    };
    let by = ChangedBy {
        agent_id: viewer.id(),
        now: Utc::now(),
    };
    ops::apply(&state.store, number.into(), by, &change).await?;
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
    Path(number): Path<i64>,
    posted: Posted<MergeForm>,
) -> WebResult<Response> {
    let viewer = posted.viewer;
    visible_ticket(&state, &viewer, number).await?;
    let into: i64 = posted
        .form
        .into
        .trim()
        .trim_start_matches('#')
        .parse()
        .map_err(|_| {
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
    ops::merge(&state.store, number.into(), into.into(), confirmed, &change).await?;
    state.live.wake();
    Ok(see_other(&format!("/tickets/{into}")))
}

/// Content types a browser might render or run even from a download; they go out as bytes.
fn download_type(stored: &str) -> &str {
    let lower = stored.to_ascii_lowercase();
    let risky = ["html", "xml", "svg", "javascript", "ecmascript", "pdf"]
        .iter()
        .any(|kind| lower.contains(kind));
    if risky || !stored.is_ascii() || stored.contains(['\r', '\n']) {
        "application/octet-stream"
    } else {
        stored
    }
}

/// `attachment; filename="…"; filename*=UTF-8''…`, with the plain name reduced to safe ASCII.
fn content_disposition(filename: &str) -> String {
    let plain: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ._-()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b".-_~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}")
}

pub async fn download(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((number, attachment_id)): Path<(i64, i64)>,
) -> WebResult<Response> {
    let facts = visible_ticket(&state, &viewer, number).await?;
    let missing = || WebError::NotFound("There is no such attachment on this ticket.".into());
    let download = views::attachment(&state.store, attachment_id)
        .await?
        .filter(|download| download.ticket_id == facts.id)
        .ok_or_else(missing)?;
    let Some(sha256) = download.sha256 else {
        return Err(WebError::NotFound(
            "This attachment was too large to keep; only its name and size are known.".into(),
        ));
    };
    let blobs = state.config.attachments.clone();
    let content = tokio::task::spawn_blocking(move || blobs.get(&sha256))
        .await
        .map_err(|error| WebError::Internal(error.to_string()))?
        .map_err(|error| WebError::Internal(format!("attachment file: {error}")))?;
    let content_type = HeaderValue::from_str(download_type(&download.content_type))
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&content_disposition(&download.filename))
        .unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_DISPOSITION, disposition),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (
                axum::http::header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox"),
            ),
        ],
        content,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_never_render_as_pages() {
        assert_eq!(download_type("text/html"), "application/octet-stream");
        assert_eq!(download_type("image/svg+xml"), "application/octet-stream");
        assert_eq!(download_type("image/png"), "image/png");
        assert_eq!(
            content_disposition("Rechnung März \"1\".pdf"),
            "attachment; filename=\"Rechnung M_rz _1_.pdf\"; \
             filename*=UTF-8''Rechnung%20M%C3%A4rz%20%221%22.pdf"
        );
    }
}
