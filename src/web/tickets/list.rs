//! The ticket list: its filters, pages and totals, and the SLA due times of its rows.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::bulk::{BulkDone, BulkForm};
use super::{Choice, choices, department_choices, parse_or_bad};
use crate::domain::sla::SlaTargets;
use crate::domain::{Priority, Status};
use crate::store::agents;
use crate::store::tickets::TicketSummary;
use crate::store::views::{
    self, AssigneeFilter, Cursor, ListQuery, SlaFilter, SlaState, Sort, Total,
};
use crate::web::AppState;
use crate::web::auth::Viewer;
use crate::web::error::{WebError, WebResult};
use crate::web::pages::{Nav, render};

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
    pub(super) fn same_page(&self) -> String {
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
    /// The name of the customer whose tickets are listed, when filtered by one the viewer may
    /// see.
    customer: Option<String>,
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
pub(crate) async fn list_page(
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
    let customer = match params.customer.trim().parse() {
        Ok(id) => crate::web::customers::label(state, viewer, id).await?,
        Err(_) => None,
    };
    let refused = error.is_some();
    let mut response = render(&ListPage {
        customer,
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
pub(crate) fn mark_due(tickets: &mut [TicketSummary], targets: &SlaTargets, now: DateTime<Utc>) {
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
