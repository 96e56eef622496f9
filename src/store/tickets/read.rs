//! Tickets as lists, the ticket page and `ticket show` read them: summaries, messages, the
//! history and the totals.

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;

use crate::domain::{Priority, Status};
use crate::domain::{TicketId, TicketNumber};
use crate::store::{Result, Store, on_pool};

/// A ticket as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct TicketSummary {
    #[serde(skip)]
    pub id: TicketId,
    pub number: TicketNumber,
    pub subject: String,
    pub status: Status,
    pub priority: Priority,
    pub department: Option<String>,
    pub assignee: Option<String>,
    pub customer: String,
    pub customer_id: i64,
    pub channel: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[sqlx(default)]
    pub first_response_at: Option<DateTime<Utc>>,
    #[sqlx(default)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// "us" after the customer's last public message, "customer" after ours; none before any.
    #[sqlx(default)]
    pub waiting_on: Option<String>,
    /// Whether a customer message came after what the reading agent has seen (lists read for
    /// an agent set it; false elsewhere).
    #[sqlx(default)]
    #[serde(skip)]
    pub unread: bool,
    /// The earliest due time of the ticket's running SLA targets, and which target it is
    /// (first_response, next_response, resolution); none before its first SLA check.
    #[sqlx(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_due_at: Option<DateTime<Utc>>,
    #[sqlx(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_due_target: Option<String>,
    /// Every open SLA target waits while the ticket is pending.
    #[sqlx(default)]
    #[serde(skip)]
    pub sla_paused: bool,
    /// When the ticket first missed an SLA target.
    #[sqlx(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_breached_at: Option<DateTime<Utc>>,
    /// The next SLA target of an active ticket, where a page worked it out.
    #[sqlx(skip)]
    #[serde(skip)]
    pub due: Option<crate::domain::sla::NextDue>,
}

const SUMMARY_COLUMNS: &str = "t.id, t.number, t.subject, t.status, t.priority,
    d.name AS department, a.name AS assignee,
    COALESCE(c.name, (SELECT ci.address FROM customer_identities ci
                      WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1), '') AS customer,
    t.customer_id, t.channel, t.created_at, t.updated_at, t.first_response_at, t.resolved_at,
    t.waiting_on, t.sla_due_at, t.sla_due_target, t.sla_paused, t.sla_breached_at
    FROM tickets t
    JOIN customers c ON c.id = t.customer_id
    LEFT JOIN departments d ON d.id = t.department_id
    LEFT JOIN agents a ON a.id = t.assignee_id";

#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<Status>,
    pub limit: i64,
}

/// The most recently updated tickets first.
pub async fn list(store: &Store, filter: &TicketFilter) -> Result<Vec<TicketSummary>> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}
         WHERE ($1 IS NULL OR t.status = $1)
         ORDER BY t.updated_at DESC, t.id DESC LIMIT $2"
    );
    let status = filter.status.map(Status::as_str);
    let rows = on_pool!(store, pool => sqlx::query_as(AssertSqlSafe(sql.clone()))
        .bind(status)
        .bind(filter.limit)
        .fetch_all(pool)
        .await)?;
    Ok(rows)
}

/// The number of ticket `id`, if it still exists.
pub async fn number_of(store: &Store, id: TicketId) -> Result<Option<TicketNumber>> {
    let number = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT number FROM tickets WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await)?;
    Ok(number)
}

/// The number of the ticket holding the message `external_id` of `channel`, if any.
pub async fn number_of_message(
    store: &Store,
    channel: helpdesk_channel::ChannelKind,
    external_id: &str,
) -> Result<Option<TicketNumber>> {
    let number = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT t.number FROM messages m JOIN tickets t ON t.id = m.ticket_id
         WHERE m.channel = $1 AND m.external_id = $2",
    )
    .bind(channel.as_str())
    .bind(external_id)
    .fetch_optional(pool)
    .await)?;
    Ok(number)
}

/// Up to `limit` tickets resolved at or before `before`, oldest first, by number.
pub async fn resolved_before(
    store: &Store,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<TicketNumber>> {
    let numbers = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT number FROM tickets WHERE status = 'resolved' AND resolved_at <= $1
         ORDER BY id LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await)?;
    Ok(numbers)
}

pub async fn summary(store: &Store, number: TicketNumber) -> Result<Option<TicketSummary>> {
    let sql = format!("SELECT {SUMMARY_COLUMNS} WHERE t.number = $1");
    let row = on_pool!(store, pool => sqlx::query_as(AssertSqlSafe(sql.clone()))
        .bind(number)
        .fetch_optional(pool)
        .await)?;
    Ok(row)
}

/// A message as the ticket page and `ticket show` present it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct MessageView {
    pub id: i64,
    pub direction: String,
    pub kind: String,
    pub author: String,
    /// Where it came from: the sender's address (a mail address, a chat user id), or the
    /// agent's mail address; shown beside the name, which a sender may choose freely.
    pub author_address: Option<String>,
    pub channel: String,
    pub external_id: Option<String>,
    pub subject: Option<String>,
    pub body_text: String,
    /// A reply's quoted mail and signature, kept apart from what is new in `body_text`.
    pub quoted_text: Option<String>,
    pub body_html: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Replies: pending, sent or failed; `None` for what the customer wrote.
    pub delivery_status: Option<String>,
    pub delivery_error: Option<String>,
    #[sqlx(skip)]
    pub attachments: Vec<crate::store::attachments::AttachmentView>,
}

pub async fn messages(store: &Store, ticket_id: TicketId) -> Result<Vec<MessageView>> {
    let mut rows: Vec<MessageView> = on_pool!(store, pool => sqlx::query_as(
        "SELECT m.id, m.direction, m.kind,
                COALESCE(a.name, c.name,
                         (SELECT ci.address FROM customer_identities ci
                          WHERE ci.customer_id = m.author_customer_id ORDER BY ci.id LIMIT 1),
                         'helpdesk') AS author,
                COALESCE(m.sender_address,
                         (SELECT ci.address FROM customer_identities ci
                          WHERE ci.customer_id = m.author_customer_id AND ci.channel = m.channel
                          ORDER BY ci.id LIMIT 1),
                         (SELECT ci.address FROM customer_identities ci
                          WHERE ci.customer_id = m.author_customer_id ORDER BY ci.id LIMIT 1),
                         a.email) AS author_address,
                m.channel, m.external_id, m.subject, m.body_text, m.quoted_text, m.body_html,
                m.created_at, m.delivery_status, m.delivery_error
         FROM messages m
         LEFT JOIN agents a ON a.id = m.author_agent_id
         LEFT JOIN customers c ON c.id = m.author_customer_id
         WHERE m.ticket_id = $1 ORDER BY m.id",
    )
    .bind(ticket_id)
    .fetch_all(pool)
    .await)?;
    let attachments = crate::store::attachments::of_ticket(store, ticket_id).await?;
    for attachment in attachments {
        if let Some(message) = rows.iter_mut().find(|m| m.id == attachment.message_id) {
            message.attachments.push(attachment);
        }
    }
    Ok(rows)
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct EventView {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub reason: Option<String>,
    /// The event as a sentence with names ("Department: General → Billing").
    #[sqlx(skip)]
    pub text: String,
    /// Creation only: the ticket's channel, its customer and the closed ticket it continues.
    #[serde(skip)]
    pub channel: Option<String>,
    #[serde(skip)]
    pub customer_name: Option<String>,
    #[serde(skip)]
    pub customer_address: Option<String>,
    #[serde(skip)]
    pub follows: Option<i64>,
}

impl EventView {
    /// The reason, where the sentence does not say it already.
    pub fn note(&self) -> Option<&str> {
        crate::store::history::note(self)
    }
}

pub async fn events(store: &Store, ticket_id: TicketId) -> Result<Vec<EventView>> {
    // Creation is not stored as an event: the ticket row records who opened it, when, on
    // which channel and after which closed ticket, and the history shows it first.
    let mut rows: Vec<EventView> = on_pool!(store, pool => sqlx::query_as(
        "SELECT at, actor, kind, old_value, new_value, reason, channel, customer_name,
                customer_address, follows FROM (
            SELECT t.created_at AS at,
                   COALESCE(c.name,
                            (SELECT ci.address FROM customer_identities ci
                             WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1),
                            'customer') AS actor,
                   'created' AS kind, NULL AS old_value, 'new' AS new_value,
                   'new ' || t.channel || ' message' ||
                       CASE WHEN f.number IS NULL THEN ''
                            ELSE ' continuing closed ticket #' || f.number END AS reason,
                   t.channel AS channel, c.name AS customer_name,
                   COALESCE((SELECT ci.address FROM customer_identities ci
                             WHERE ci.customer_id = t.customer_id AND ci.channel = t.channel
                             ORDER BY ci.id LIMIT 1),
                            (SELECT ci.address FROM customer_identities ci
                             WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1))
                       AS customer_address,
                   f.number AS follows,
                   0 AS seq
            FROM tickets t
            JOIN customers c ON c.id = t.customer_id
            LEFT JOIN tickets f ON f.id = t.follows_ticket_id
            WHERE t.id = $1
            UNION ALL
            SELECT e.at,
                   COALESCE(a.name, c.name,
                            (SELECT ci.address FROM customer_identities ci
                             WHERE ci.customer_id = e.actor_customer_id ORDER BY ci.id LIMIT 1),
                            'system'),
                   e.kind, e.old_value, e.new_value, e.reason, NULL, NULL, NULL, NULL, e.id
            FROM ticket_events e
            LEFT JOIN agents a ON a.id = e.actor_agent_id
            LEFT JOIN customers c ON c.id = e.actor_customer_id
            WHERE e.ticket_id = $1
         ) history ORDER BY seq",
    )
    .bind(ticket_id)
    .fetch_all(pool)
    .await)?;
    let names = crate::store::history::Names::for_events(store, &rows).await?;
    for row in &mut rows {
        row.text = crate::store::history::sentence(row, &names);
    }
    Ok(rows)
}

/// Everything about one ticket, as `ticket show --format json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub summary: TicketSummary,
    pub messages: Vec<MessageView>,
    pub history: Vec<EventView>,
    /// The ticket this one was opened apart from: its message named it by the subject tag,
    /// from an address not on it.
    pub linked_to: Option<i64>,
    /// Tickets opened apart from this one that way.
    pub linked_from: Vec<i64>,
}

pub async fn detail(store: &Store, number: TicketNumber) -> Result<Option<TicketDetail>> {
    let Some(summary) = summary(store, number).await? else {
        return Ok(None);
    };
    let messages = messages(store, summary.id).await?;
    let history = events(store, summary.id).await?;
    let (linked_to, linked_from) = links(store, summary.id).await?;
    Ok(Some(TicketDetail {
        summary,
        messages,
        history,
        linked_to,
        linked_from,
    }))
}

/// The numbers of the ticket this one links to and of the tickets that link to it.
async fn links(store: &Store, ticket_id: TicketId) -> Result<(Option<i64>, Vec<i64>)> {
    let rows: Vec<(i64, bool)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT l.number, TRUE FROM tickets t JOIN tickets l ON l.id = t.linked_ticket_id
         WHERE t.id = $1
         UNION ALL
         SELECT number, FALSE FROM tickets WHERE linked_ticket_id = $1
         ORDER BY 1",
    )
    .bind(ticket_id)
    .fetch_all(pool)
    .await)?;
    let linked_to = rows.iter().find(|(_, to)| *to).map(|(number, _)| *number);
    let linked_from = rows
        .into_iter()
        .filter(|(_, to)| !to)
        .map(|(number, _)| number)
        .collect();
    Ok((linked_to, linked_from))
}

/// Totals for summaries and dashboards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub tickets: i64,
    pub messages: i64,
}

pub async fn totals(store: &Store) -> Result<Totals> {
    let (tickets, messages) = on_pool!(store, pool => sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM tickets), (SELECT COUNT(*) FROM messages)",
    )
    .fetch_one(pool)
    .await)?;
    Ok(Totals { tickets, messages })
}

/// How assignment went over all tickets: for checks after crashes and across instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AssignmentAudit {
    pub tickets: i64,
    /// Tickets with an assignee.
    pub assigned: i64,
    /// Tickets whose history records more than one assignment by the system.
    pub assigned_twice: i64,
}

pub async fn assignment_audit(store: &Store) -> Result<AssignmentAudit> {
    let (tickets, assigned, assigned_twice) = on_pool!(store, pool => sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM tickets),
                (SELECT COUNT(*) FROM tickets WHERE assignee_id IS NOT NULL),
                (SELECT COUNT(*) FROM (
                    SELECT ticket_id FROM ticket_events
                    WHERE kind = 'assignee' AND actor_agent_id IS NULL
                    GROUP BY ticket_id HAVING COUNT(*) > 1) AS twice)",
    )
    .fetch_one(pool)
    .await)?;
    Ok(AssignmentAudit {
        tickets,
        assigned,
        assigned_twice,
    })
}
