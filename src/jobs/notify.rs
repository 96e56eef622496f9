//! Telling agents: new, assigned and escalated tickets are posted to the agents' places (a
//! Telegram group, a Discord channel) through the same channels that deliver replies.

use helpdesk_channel::{DeliveryError, Identity, OutboundMessage, ThreadHints};
use serde::{Deserialize, Serialize};

use super::deliver::Deliverers;
use super::{Job, JobContext, JobError};
use crate::store::jobs::About;
use crate::store::{Store, StoreError, on_pool};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Created,
    Assigned,
    Escalated,
    /// The customer wrote again (to an open ticket, or reopening a resolved one).
    CustomerWrote,
}

impl Event {
    /// The event an outbox entry of this kind announces, if any.
    pub fn of_outbox(kind: &str) -> Option<Event> {
        match kind {
            "ticket_created" => Some(Event::Created),
            "ticket_assigned" => Some(Event::Assigned),
            "ticket_escalated" => Some(Event::Escalated),
            "customer_replied" | "ticket_reopened" => Some(Event::CustomerWrote),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyAgents {
    pub ticket_id: i64,
    pub event: Event,
    /// The message that caused the event: a notice quotes it, not whatever the ticket's
    /// latest message is by the time the notice goes out. Absent in jobs queued before it was
    /// carried; those quote the latest inbound message.
    #[serde(default)]
    pub message_id: Option<i64>,
}

impl Job for NotifyAgents {
    const QUEUE: &'static str = "helpdesk.notify";

    async fn run(self, context: &JobContext) -> Result<(), JobError> {
        notify(
            &context.store,
            &context.deliverers,
            &context.settings.agents_places,
            self,
        )
        .await?;
        Ok(())
    }

    fn about(&self) -> Option<About> {
        Some(About::Ticket(self.ticket_id))
    }
}

#[derive(sqlx::FromRow)]
struct TicketFacts {
    number: i64,
    subject: String,
    priority: String,
    channel: String,
    customer: String,
    assignee: Option<String>,
    /// What the customer wrote, so agents can answer from their chat.
    quoted: Option<String>,
}

/// Longest excerpt of the customer's message in an announcement.
const EXCERPT_CHARS: usize = 1500;

/// The text agents see for an event on a ticket.
fn announcement(event: Event, ticket: &TicketFacts) -> String {
    let head = match event {
        Event::Created => format!("New ticket #{}", ticket.number),
        Event::Assigned => format!(
            "Ticket #{} assigned to {}",
            ticket.number,
            ticket.assignee.as_deref().unwrap_or("nobody")
        ),
        Event::Escalated => format!(
            "Ticket #{} escalated to {} priority",
            ticket.number, ticket.priority
        ),
        Event::CustomerWrote => format!("Ticket #{}, the customer wrote again", ticket.number),
    };
    let mut text = format!(
        "{head}: {}\nfrom {} via {}",
        ticket.subject, ticket.customer, ticket.channel
    );
    if event == Event::CustomerWrote
        && let Some(words) = ticket.quoted.as_deref().map(str::trim)
        && !words.is_empty()
    {
        text.push_str("\n\n");
        text.extend(words.chars().take(EXCERPT_CHARS));
        if words.chars().count() > EXCERPT_CHARS {
            text.push('…');
        }
    }
    text
}

/// Posts one notification to every agents' place whose channel is enabled; returns how many
/// places got it. A temporary failure of any place fails the job, so the queue retries it.
pub async fn notify(
    store: &Store,
    deliverers: &Deliverers,
    places: &[Identity],
    job: NotifyAgents,
) -> Result<usize, JobError> {
    let facts: Option<TicketFacts> = on_pool!(store, pool => sqlx::query_as(
        "SELECT t.number, t.subject, t.priority, t.channel,
                COALESCE(c.name, (SELECT ci.address FROM customer_identities ci
                                  WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1),
                         '') AS customer,
                a.name AS assignee,
                CASE WHEN CAST($2 AS BIGINT) IS NULL
                     THEN (SELECT m.body_text FROM messages m
                           WHERE m.ticket_id = t.id AND m.direction = 'inbound'
                           ORDER BY m.id DESC LIMIT 1)
                     ELSE (SELECT m.body_text FROM messages m WHERE m.id = $2)
                END AS quoted
         FROM tickets t JOIN customers c ON c.id = t.customer_id
         LEFT JOIN agents a ON a.id = t.assignee_id
         WHERE t.id = $1",
    )
    .bind(job.ticket_id)
    .bind(job.message_id)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    let Some(facts) = facts else {
        return Ok(0);
    };
    let text = announcement(job.event, &facts);
    let mut posted = 0;
    for place in places {
        let Some(channel) = deliverers.get(place.channel) else {
            continue;
        };
        let message = OutboundMessage {
            channel: place.channel,
            external_id: None,
            ticket_number: facts.number,
            recipient: place.clone(),
            subject: format!("#{} {}", facts.number, facts.subject),
            text: text.clone(),
            html: None,
            attachments: Vec::new(),
            thread: ThreadHints {
                ticket_number: Some(facts.number),
                ..ThreadHints::default()
            },
            automatic: true,
            choices: Vec::new(),
        };
        match channel.deliver_boxed(&message).await {
            Ok(delivered) => {
                // Agents answer by replying to this post.
                crate::channels::store::remember_post(
                    store,
                    place.channel,
                    &delivered.external_id,
                    job.ticket_id,
                )
                .await?;
                posted += 1;
            }
            Err(DeliveryError::Permanent(error)) => {
                tracing::warn!(place = place.address, %error, "agents' place refused a notification");
            }
            Err(DeliveryError::Temporary(error)) => {
                return Err(JobError::Notify {
                    channel: place.channel,
                    place: place.address.clone(),
                    error,
                });
            }
        }
    }
    Ok(posted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_name_the_ticket_and_what_happened() {
        let ticket = TicketFacts {
            number: 1042,
            subject: "Printer on fire".into(),
            priority: "urgent".into(),
            channel: "email".into(),
            customer: "Ada Lovelace".into(),
            assignee: Some("Sam".into()),
            quoted: Some("It smokes.".into()),
        };
        assert_eq!(
            announcement(Event::Created, &ticket),
            "New ticket #1042: Printer on fire\nfrom Ada Lovelace via email"
        );
        assert!(
            announcement(Event::Assigned, &ticket).starts_with("Ticket #1042 assigned to Sam:")
        );
        assert!(
            announcement(Event::Escalated, &ticket)
                .starts_with("Ticket #1042 escalated to urgent priority:")
        );
        assert_eq!(Event::of_outbox("ticket_assigned"), Some(Event::Assigned));
        assert!(announcement(Event::CustomerWrote, &ticket).ends_with("\n\nIt smokes."));
        assert_eq!(
            Event::of_outbox("customer_replied"),
            Some(Event::CustomerWrote)
        );
        assert_eq!(Event::of_outbox("ticket_created"), Some(Event::Created));
    }
}
