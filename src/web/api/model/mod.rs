//! What the API sends and receives, as documented in its OpenAPI description: tickets here,
//! customers and agents in [`people`], rules and jobs in [`workflow`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain;

mod people;
mod workflow;

pub use people::*;
pub use workflow::*;

/// A ticket's status: new → open → pending (waiting on the customer) → resolved → closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    New,
    Open,
    Pending,
    Resolved,
    Closed,
}

impl From<Status> for domain::Status {
    fn from(status: Status) -> Self {
        match status {
            Status::New => domain::Status::New,
            Status::Open => domain::Status::Open,
            Status::Pending => domain::Status::Pending,
            Status::Resolved => domain::Status::Resolved,
            Status::Closed => domain::Status::Closed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl From<Priority> for domain::Priority {
    fn from(priority: Priority) -> Self {
        match priority {
            Priority::Low => domain::Priority::Low,
            Priority::Normal => domain::Priority::Normal,
            Priority::High => domain::Priority::High,
            Priority::Urgent => domain::Priority::Urgent,
        }
    }
}

/// A ticket as lists show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ticket {
    pub number: i64,
    pub subject: String,
    /// new, open, pending, resolved or closed.
    pub status: String,
    /// low, normal, high or urgent.
    pub priority: String,
    /// The department's name.
    pub department: Option<String>,
    /// The assigned agent's name.
    pub assignee: Option<String>,
    /// The customer's name, or their address when no name is known.
    pub customer: String,
    /// The customer's record: `GET /customers/{customer_id}`.
    pub customer_id: i64,
    /// The channel the ticket came in on (email, telegram, discord, web, api).
    pub channel: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Whether a customer message came after what the token's agent last saw of the ticket
    /// (GET /tickets/{number} or the ticket's web page marks it seen).
    pub unread: bool,
    /// Who acts next, by the last public message: `us` after the customer's, `customer` after
    /// ours; absent while the ticket has no public message.
    #[schema(pattern = "^(us|customer)$")]
    pub waiting: Option<String>,
    /// The earliest due time of the ticket's running SLA targets; absent when none runs
    /// (all met, or paused while the ticket is pending).
    pub sla_due_at: Option<DateTime<Utc>>,
    /// When the ticket first missed an SLA target; absent if it never did.
    pub sla_breached_at: Option<DateTime<Utc>>,
}

impl From<crate::store::tickets::TicketSummary> for Ticket {
    fn from(t: crate::store::tickets::TicketSummary) -> Self {
        Ticket {
            number: t.number.get(),
            subject: t.subject,
            status: t.status.to_string(),
            priority: t.priority.to_string(),
            department: t.department,
            assignee: t.assignee,
            customer: t.customer,
            customer_id: t.customer_id,
            channel: t.channel,
            created_at: t.created_at,
            updated_at: t.updated_at,
            unread: t.unread,
            waiting: t.waiting_on,
            sla_due_at: t.sla_due_at,
            sla_breached_at: t.sla_breached_at,
        }
    }
}

/// A page of tickets. `next` is the link to the following page (absent on the last one),
/// `previous` to the one before (absent on the first).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketPage {
    pub items: Vec<Ticket>,
    /// How many tickets match the filters on every page together, as the web list counts
    /// them; absent for a search of words too common to count.
    pub total: Option<i64>,
    /// Counting stopped at `total` (10,000): at least that many match.
    pub total_at_least: bool,
    /// Pass as `cursor` to get the next page.
    pub next_cursor: Option<String>,
    /// The next page's path and query.
    pub next: Option<String>,
    /// Pass as `before` to get the previous page.
    pub previous_cursor: Option<String>,
    /// The previous page's path and query.
    pub previous: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attachment {
    pub id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    /// Why the content was not kept (too large), if it was not.
    pub rejected_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Message {
    pub id: i64,
    /// inbound (from the customer) or outbound (from an agent or the helpdesk).
    pub direction: String,
    /// public, internal (a note, never sent) or system.
    pub kind: String,
    /// The name the sender gave (or the customer's, or the agent's); anyone may choose it.
    pub author: String,
    /// Where the message came from: the sender's mail address or chat user id, or the agent's
    /// mail address. Absent for what the helpdesk wrote on its own.
    pub author_address: Option<String>,
    pub channel: String,
    pub subject: Option<String>,
    pub body_text: String,
    /// A mail reply's quoted text and signature, kept apart from what is new.
    pub quoted_text: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Replies: pending, sent or failed.
    pub delivery_status: Option<String>,
    pub delivery_error: Option<String>,
    pub attachments: Vec<Attachment>,
}

impl From<crate::store::tickets::MessageView> for Message {
    fn from(m: crate::store::tickets::MessageView) -> Self {
        Message {
            id: m.id,
            direction: m.direction,
            kind: m.kind,
            author: m.author,
            author_address: m.author_address,
            channel: m.channel,
            subject: m.subject,
            body_text: m.body_text,
            quoted_text: m.quoted_text,
            created_at: m.created_at,
            delivery_status: m.delivery_status,
            delivery_error: m.delivery_error,
            attachments: m
                .attachments
                .into_iter()
                .map(|a| Attachment {
                    id: a.id,
                    filename: a.filename,
                    content_type: a.content_type,
                    size: a.size,
                    rejected_reason: a.rejected_reason,
                })
                .collect(),
        }
    }
}

/// One entry of a ticket's history: who changed what, when and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEvent {
    pub at: DateTime<Utc>,
    pub actor: String,
    /// created, status, priority, department, assignee, replied, note, merged, linked, tags, …
    pub kind: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub reason: Option<String>,
    /// The event as a sentence with names, e.g. "Department: General → Billing", "Merged into
    /// #1001", "Created by mail from Pia Example (pia@example.org)".
    pub text: String,
}

impl From<crate::store::tickets::EventView> for HistoryEvent {
    fn from(e: crate::store::tickets::EventView) -> Self {
        HistoryEvent {
            at: e.at,
            actor: e.actor,
            kind: e.kind,
            old_value: e.old_value,
            new_value: e.new_value,
            reason: e.reason,
            text: e.text,
        }
    }
}

/// A ticket with its conversation and history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub ticket: Ticket,
    pub department_id: Option<i64>,
    pub assignee_id: Option<i64>,
    /// The ticket this one was merged into, if it was.
    pub merged_into: Option<i64>,
    /// The ticket whose number this one's first message named in its subject, from an address
    /// not on that ticket (`intake.unknown_sender_tag = "new_ticket"`).
    pub linked_to: Option<i64>,
    /// Tickets opened apart from this one that way.
    pub linked_from: Vec<i64>,
    pub tags: Vec<String>,
    pub messages: Vec<Message>,
    pub history: Vec<HistoryEvent>,
    /// Each SLA target of the ticket, in the order they started.
    pub sla: Vec<SlaTarget>,
    /// The customer's rating, once a satisfaction survey was sent; `null` before.
    pub satisfaction: Option<super::surveys::Satisfaction>,
}

/// One SLA target of a ticket: a first response and a resolution once, a next response each
/// time the customer wrote after our answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlaTarget {
    /// first_response, next_response or resolution.
    #[schema(pattern = "^(first_response|next_response|resolution)$")]
    pub target: String,
    /// running, paused (the ticket is pending), warned, met or breached (also when met later).
    #[schema(pattern = "^(running|paused|warned|met|breached)$")]
    pub state: String,
    pub started_at: DateTime<Utc>,
    /// When it falls due; it moves while the clock is paused and when the priority changes
    /// (while paused: the due time if the clock ran again now).
    pub due_at: DateTime<Utc>,
    pub warned_at: Option<DateTime<Utc>>,
    pub met_at: Option<DateTime<Utc>>,
    pub breached_at: Option<DateTime<Utc>>,
    pub paused_since: Option<DateTime<Utc>>,
    /// Time the clock stood still, in seconds (business seconds under a calendar).
    pub paused_seconds: i64,
}

impl From<crate::store::sla::TargetRow> for SlaTarget {
    fn from(row: crate::store::sla::TargetRow) -> Self {
        SlaTarget {
            target: row.target.as_str().to_owned(),
            state: row.state().as_str().to_owned(),
            started_at: row.started_at,
            due_at: row.due_at,
            warned_at: row.warned_at,
            met_at: row.met_at,
            breached_at: row.breached_at,
            paused_since: row.paused_since,
            paused_seconds: row.paused_seconds,
        }
    }
}

/// A tag in use and how many of the tickets the caller may see carry it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Tag {
    pub tag: String,
    pub tickets: i64,
    /// Of those, the new, open and pending ones.
    pub active: i64,
}

/// The ticket list's filters, as on the web page.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct TicketFilter {
    /// A status, or `active` for new, open and pending.
    #[param(pattern = "^(active|new|open|pending|resolved|closed)?$")]
    pub status: Option<String>,
    pub priority: Option<Priority>,
    /// A department id.
    pub department: Option<i64>,
    /// An agent id, `me` or `none`.
    #[param(pattern = "^(me|none|[0-9]+)?$")]
    pub assignee: Option<String>,
    /// email, telegram, discord, web or api.
    pub channel: Option<String>,
    pub tag: Option<String>,
    /// A customer id: only that customer's tickets.
    pub customer: Option<i64>,
    /// Full-text search: tickets holding every word in their subject or messages (`word*`
    /// for a prefix), or `#1042`; also finds the tickets of a customer whose address is or
    /// holds the text (three characters or more) or whose name holds all its words.
    pub q: Option<String>,
    /// updated_desc (default), updated_asc, created_desc, created_asc, or relevance (with
    /// `q`: the best matches first, pages by score; without `q` as updated_desc).
    #[param(pattern = "^(updated_desc|updated_asc|created_desc|created_asc|relevance)?$")]
    pub sort: Option<String>,
    /// Only tickets with customer messages the token's agent has not seen.
    pub unread: Option<bool>,
    /// Where the page starts: `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// The page that ends before this: `previous_cursor` of the page after it.
    pub before: Option<String>,
    /// Tickets per page, 1 to 200; 50 when not given.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// A new ticket on behalf of a customer, who is answered by mail.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    #[schema(min_length = 1, max_length = 500)]
    pub subject: String,
    /// The customer's words, the ticket's first message.
    #[schema(min_length = 1)]
    pub body: String,
    /// The customer's mail address; replies go there.
    #[schema(example = "carla@example.org")]
    pub customer_email: String,
    #[serde(default)]
    pub customer_name: Option<String>,
    #[serde(default)]
    pub priority: Option<Priority>,
    /// A department id.
    #[serde(default)]
    pub department_id: Option<i64>,
}

/// An agent's text: a reply to the customer or an internal note. A reply may instead name a
/// canned response whose body (placeholders filled in) is the text and whose actions
/// (status, priority, tags) apply with it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewText {
    /// The text; leave it out (or empty) when `canned_response_id` is given.
    #[serde(default)]
    pub text: String,
    /// Replies only: a canned response the token's agent may use (shared, or their own): its
    /// body is sent with `{{customer_name}}`, `{{ticket_number}}`, `{{agent_name}}` and
    /// `{{department}}` filled in, and its status, priority and tags are applied in the same
    /// commit.
    #[serde(default)]
    pub canned_response_id: Option<i64>,
    /// The newest message of the ticket the writer had seen. When given, the text is refused
    /// (409, nothing stored) if messages they have not seen came after it: the customer's, or
    /// other agents' replies and notes. Absent: no check.
    #[serde(default)]
    pub last_seen_message_id: Option<i64>,
}

/// A reply or note with files, sent as `multipart/form-data`: the fields of [`NewText`] and
/// any number of `files` parts, each at most `intake.max_attachment_bytes`.
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "describes the form for the OpenAPI document; read by `upload`"
)]
pub struct NewTextWithFiles {
    text: String,
    /// As in the JSON body.
    canned_response_id: Option<i64>,
    /// As in the JSON body.
    last_seen_message_id: Option<i64>,
    /// The files, one part each, with their file names.
    #[schema(value_type = Vec<String>, format = Binary)]
    files: Vec<Vec<u8>>,
}

/// A merge of the ticket in the path into another one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MergeRequest {
    /// The number of the ticket that goes on; the messages and tags of the ticket in the path
    /// move there, and the ticket in the path closes.
    pub into: i64,
    /// Why, for both tickets' histories.
    #[serde(default)]
    pub reason: Option<String>,
    /// Must be `true` when the two tickets belong to different customers: the messages of one
    /// customer then join the other customer's ticket. Without it such a merge is refused
    /// with 409 and a detail naming whose messages would move where.
    #[serde(default)]
    pub confirm_different_customers: bool,
}

/// What a reply or note became.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PostedMessage {
    pub ticket: i64,
    pub message_id: i64,
    /// `pending` for a reply queued for delivery on the customer's channel; absent for a note.
    pub delivery_status: Option<String>,
}

/// Changes to a ticket; fields left out stay as they are. `department_id` and `assignee_id`
/// take `null` to clear them. Each change is recorded in the history with `reason`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketChanges {
    #[serde(default)]
    pub status: Option<Status>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub department_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub assignee_id: Option<Option<i64>>,
    /// The ticket's tags after the change, exactly (letters, digits and `- _ . :`; stored
    /// lowercase); `[]` removes them all.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub reason: Option<String>,
}

impl TryFrom<TicketChanges> for crate::ops::TicketChange {
    type Error = crate::domain::tags::TagError;

    fn try_from(changes: TicketChanges) -> Result<Self, Self::Error> {
        let tags = changes
            .tags
            .map(|tags| {
                tags.iter()
                    .map(|tag| crate::domain::tags::normalize(tag))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(crate::ops::TicketChange {
            status: changes.status.map(Into::into),
            priority: changes.priority.map(Into::into),
            department: changes.department_id,
            assignee: changes.assignee_id,
            tags: tags.map(crate::domain::tags::TagChange::Set),
            reason: changes.reason,
        })
    }
}

/// One change to many tickets in one action: every ticket changes, or none does (an unknown
/// number, one the token may not see, or one ticket the change cannot apply to refuses it
/// all).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkChanges {
    /// The tickets' numbers, at most 500; each ticket's changes are one group of its history.
    #[schema(min_items = 1, max_items = 500)]
    pub numbers: Vec<i64>,
    /// The same changes as `PATCH /tickets/{number}` takes.
    pub changes: TicketChanges,
}

/// What a bulk change did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkResult {
    /// The numbers of the tickets it changed, in order.
    pub changed: Vec<i64>,
    /// The numbers of those that had these values already.
    pub unchanged: Vec<i64>,
}

/// A field that is present, possibly `null`; a missing one stays `None` through `default`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A page size from a query: `default` when missing, an error outside 1..=`max`.
pub fn page_size(limit: Option<i64>, default: i64, max: i64) -> Result<i64, String> {
    match limit {
        None => Ok(default),
        Some(limit) if (1..=max).contains(&limit) => Ok(limit),
        Some(limit) => Err(format!("limit {limit} is outside 1 to {max}")),
    }
}
