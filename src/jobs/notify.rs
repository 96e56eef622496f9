//! Telling agents: new, assigned and escalated tickets are posted to the agents' places (a
//! Telegram group, a Discord channel) through the same channels that deliver replies.

use helpdesk_channel::{DeliveryError, Identity, OutboundMessage, ThreadHints};
use serde::{Deserialize, Serialize};

use super::deliver::Deliverers;
use super::{Job, JobContext, JobError};
use crate::domain::TicketId;
use crate::store::Store;
use crate::store::chat::AnnouncedTicket;
use crate::store::jobs::About;

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
    pub ticket_id: TicketId,
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

/// Longest excerpt of the customer's message in an announcement.
const EXCERPT_CHARS: usize = 1500;

/// The text agents see for an event on a ticket.
fn announcement(event: Event, ticket: &AnnouncedTicket) -> String {
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
    let from = match ticket.sender_address.as_deref() {
        Some(address) if ticket.customer.is_empty() || ticket.customer == address => {
            address.to_owned()
        }
        Some(address) => format!("{} <{address}>", ticket.customer),
        None => ticket.customer.clone(),
    };
    let mut text = format!(
        "{head}: {}\nfrom {from} via {}",
        ticket.subject, ticket.channel
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
    let facts = crate::store::chat::announced_ticket(store, job.ticket_id, job.message_id).await?;
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
            ticket_number: facts.number.get(),
            recipient: place.clone(),
            subject: format!("#{} {}", facts.number, facts.subject),
            text: text.clone(),
            html: None,
            attachments: Vec::new(),
            thread: ThreadHints {
                ticket_number: Some(facts.number.get()),
                ..ThreadHints::default()
            },
            automatic: true,
            choices: Vec::new(),
        };
        match channel.deliver_boxed(&message).await {
            Ok(delivered) => {
                // Agents answer by replying to this post.
                crate::store::chat::remember_post(
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
    use crate::domain::TicketNumber;

    #[test]
    fn announcements_name_the_ticket_and_what_happened() {
        let ticket = AnnouncedTicket {
            number: TicketNumber(1042),
            subject: "Printer on fire".into(),
            priority: crate::domain::Priority::Urgent,
            channel: "email".into(),
            customer: "Ada Lovelace".into(),
            sender_address: Some("ada@example.org".into()),
            assignee: Some("Sam".into()),
            quoted: Some("It smokes.".into()),
        };
        assert_eq!(
            announcement(Event::Created, &ticket),
            "New ticket #1042: Printer on fire\nfrom Ada Lovelace <ada@example.org> via email"
        );
        // A customer without a name goes by their address, said once.
        let nameless = AnnouncedTicket {
            customer: "ada@example.org".into(),
            ..ticket
        };
        assert!(
            announcement(Event::Created, &nameless).ends_with("\nfrom ada@example.org via email")
        );
        let ticket = nameless;
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
