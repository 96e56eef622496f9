//! Telling people what concerns them, each the way they chose (chat, mail, both, none; see
//! [`crate::domain::notice`]): a ticket assigned to them, the customer writing on their ticket,
//! an SLA warning on their ticket, an SLA breach in their department (and to every admin), a
//! mention in a note. A chat notice is a direct message on the person's linked Telegram or
//! Discord account; a mail notice is a mail of its own ([`helpdesk_email::smtp::Notice`]). Nobody
//! is told of what they did themselves, and a job run again sends each notice once.

use chrono::{DateTime, Utc};
use helpdesk_channel::{ChannelKind, DeliveryError, Identity, OutboundMessage, ThreadHints};
use serde::{Deserialize, Serialize};

use super::deliver::Deliverers;
use super::{Job, JobContext, JobError};
use crate::domain::TicketId;
use crate::domain::TicketNumber;
use crate::domain::notice::{NoticeEvent, NoticeWay};
use crate::store::jobs::About;
use crate::store::notices::{self, Person, TicketFacts};
use crate::store::{Store, StoreError};

/// Tell the people outbox entry `outbox_id` concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyPeople {
    pub outbox_id: i64,
    pub ticket_id: TicketId,
}

impl Job for NotifyPeople {
    const QUEUE: &'static str = "helpdesk.notices";

    async fn run(self, context: &JobContext) -> Result<(), JobError> {
        let sent = tell(
            &context.store,
            &context.deliverers,
            &context.settings.public_url,
            self.outbox_id,
            Utc::now(),
        )
        .await?;
        tracing::debug!(
            outbox_id = self.outbox_id,
            sent = sent.len(),
            "notices sent"
        );
        Ok(())
    }

    fn about(&self) -> Option<About> {
        Some(About::Ticket(self.ticket_id))
    }
}

/// One notice that went out: to whom, and how ("telegram", "discord" or "mail").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub agent_id: i64,
    pub medium: String,
}

/// Longest excerpt of a message in a notice.
const EXCERPT_CHARS: usize = 700;

/// What a notice says: a one-line head, and the text below it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Words {
    head: String,
    text: String,
}

/// Sends the notices of outbox entry `outbox_id`. A temporary failure of any of them fails the
/// run, so the queue runs it again; the notices that went out are not sent again.
pub async fn tell(
    store: &Store,
    deliverers: &Deliverers,
    public_url: &str,
    outbox_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Sent>, JobError> {
    let Some(happened) = notices::happened(store, outbox_id).await? else {
        return Ok(Vec::new());
    };
    let Some(event) = NoticeEvent::of_outbox(&happened.kind) else {
        return Ok(Vec::new());
    };
    let Some(ticket) = notices::ticket(store, happened.ticket_id).await? else {
        return Ok(Vec::new());
    };
    let mut people = match event {
        NoticeEvent::Assigned | NoticeEvent::CustomerReplied | NoticeEvent::SlaWarning => {
            ticket.assignee_id.into_iter().collect()
        }
        NoticeEvent::SlaBreached => {
            notices::department_and_admins(store, ticket.department_id).await?
        }
        NoticeEvent::Mentioned => match happened.message_id {
            Some(note) => notices::mentioned(store, note).await?,
            None => Vec::new(),
        },
    };
    people.retain(|id| Some(*id) != happened.actor_agent_id);
    if people.is_empty() {
        return Ok(Vec::new());
    }
    let message = match happened.message_id {
        Some(id) => notices::message(store, id).await?,
        None => None,
    };
    let actor = match happened.actor_agent_id {
        Some(id) => notices::person(store, id).await?.map(|person| person.name),
        None => None,
    };
    let words = words(
        event,
        &ticket,
        actor.as_deref(),
        message.as_ref(),
        public_url,
    );
    let mut sent = Vec::new();
    let mut retry = None;
    for agent_id in people {
        let Some(person) = notices::person(store, agent_id).await? else {
            continue;
        };
        if !person.active {
            continue;
        }
        let outcome = tell_one(
            store, deliverers, &person, event, &ticket, &words, outbox_id, now,
        )
        .await?;
        sent.extend(outcome.sent);
        retry = retry.or(outcome.retry);
    }
    match retry {
        Some(error) => Err(error),
        None => Ok(sent),
    }
}

/// What telling one person came to.
struct Outcome {
    sent: Vec<Sent>,
    /// A temporary failure: the run is to be repeated.
    retry: Option<JobError>,
}

/// The chat accounts a notice can reach here, as recipients.
async fn chat_places(
    store: &Store,
    deliverers: &Deliverers,
    agent_id: i64,
) -> Result<Vec<Identity>, StoreError> {
    Ok(notices::chat_accounts(store, agent_id)
        .await?
        .into_iter()
        .filter_map(|(channel, address)| {
            let channel: ChannelKind = channel.parse().ok()?;
            (channel != ChannelKind::Email && deliverers.get(channel).is_some()).then_some(
                Identity {
                    channel,
                    address,
                    display_name: None,
                    handle: None,
                },
            )
        })
        .collect())
}

/// The way `person` is told of `event`: their choice, else the default. A way that cannot
/// reach them (chat without a linked account, mail without SMTP) gives way to the other one.
async fn way_for(
    store: &Store,
    person: &Person,
    event: NoticeEvent,
    has_chat: bool,
    has_mail: bool,
) -> Result<(bool, bool), StoreError> {
    let way = notices::chosen(store, person.id)
        .await?
        .into_iter()
        .find(|(chosen, _)| *chosen == event)
        .map(|(_, way)| way)
        .unwrap_or_else(|| NoticeWay::default_for(has_chat));
    let (mut chat, mut mail) = (way.by_chat(), way.by_mail());
    if chat && !has_chat {
        chat = false;
        mail = has_mail;
    }
    if mail && !has_mail && !chat {
        mail = false;
        chat = has_chat;
    }
    Ok((chat, mail))
}

#[allow(clippy::too_many_arguments)]
async fn tell_one(
    store: &Store,
    deliverers: &Deliverers,
    person: &Person,
    event: NoticeEvent,
    ticket: &TicketFacts,
    words: &Words,
    outbox_id: i64,
    now: DateTime<Utc>,
) -> Result<Outcome, JobError> {
    let places = chat_places(store, deliverers, person.id).await?;
    let mailer = deliverers.notice_mail();
    let (by_chat, by_mail) =
        way_for(store, person, event, !places.is_empty(), mailer.is_some()).await?;
    let mut outcome = Outcome {
        sent: Vec::new(),
        retry: None,
    };
    if by_chat {
        for place in places {
            let medium = place.channel.as_str();
            if notices::was_sent(store, outbox_id, person.id, medium).await? {
                continue;
            }
            let Some(channel) = deliverers.get(place.channel) else {
                continue;
            };
            let message = OutboundMessage {
                channel: place.channel,
                external_id: None,
                ticket_number: ticket.number.get(),
                recipient: place.clone(),
                subject: words.head.clone(),
                text: format!("{}\n{}", words.head, words.text),
                html: None,
                attachments: Vec::new(),
                thread: ThreadHints::default(),
                automatic: true,
                choices: Vec::new(),
            };
            let result = channel.deliver_boxed(&message).await;
            record(store, &mut outcome, person, medium, result, outbox_id, now).await?;
        }
    }
    if by_mail
        && let Some(mailer) = mailer
        && !notices::was_sent(store, outbox_id, person.id, "mail").await?
    {
        let notice = helpdesk_email::smtp::Notice {
            to_address: person.email.clone(),
            to_name: Some(person.name.clone()),
            subject: words.head.clone(),
            text: words.text.clone(),
        };
        let result = mailer.send_notice(&notice).await;
        record(store, &mut outcome, person, "mail", result, outbox_id, now).await?;
    }
    Ok(outcome)
}

/// Notes what became of one notice.
async fn record(
    store: &Store,
    outcome: &mut Outcome,
    person: &Person,
    medium: &str,
    result: Result<helpdesk_channel::Delivered, DeliveryError>,
    outbox_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match result {
        Ok(_) => {
            notices::record_sent(store, outbox_id, person.id, medium, now).await?;
            outcome.sent.push(Sent {
                agent_id: person.id,
                medium: medium.to_owned(),
            });
        }
        Err(DeliveryError::Permanent(error)) => {
            tracing::warn!(agent = person.email, medium, %error, "a notice was refused");
        }
        Err(DeliveryError::Temporary(error)) => {
            tracing::info!(agent = person.email, medium, %error, "a notice could not go out yet");
            let channel = medium.parse().unwrap_or(ChannelKind::Email);
            outcome.retry.get_or_insert(JobError::Notify {
                channel,
                place: person.email.clone(),
                error,
            });
        }
    }
    Ok(())
}

/// The link to a ticket's page.
fn ticket_link(public_url: &str, number: TicketNumber) -> String {
    format!("{}/tickets/{number}", public_url.trim_end_matches('/'))
}

/// At most [`EXCERPT_CHARS`] of `text`.
fn excerpt(text: &str) -> String {
    let text = text.trim();
    let mut cut: String = text.chars().take(EXCERPT_CHARS).collect();
    if text.chars().count() > EXCERPT_CHARS {
        cut.push('…');
    }
    cut
}

/// What the notice of `event` on `ticket` says. `actor` caused it; `message` is the message
/// that did (its text and its author's name).
fn words(
    event: NoticeEvent,
    ticket: &TicketFacts,
    actor: Option<&str>,
    message: Option<&(String, Option<String>)>,
    public_url: &str,
) -> Words {
    let number = ticket.number;
    let author = message.and_then(|(_, author)| author.as_deref());
    let head = match event {
        NoticeEvent::Assigned => match actor {
            Some(actor) => format!("Ticket #{number} is assigned to you by {actor}"),
            None => format!("Ticket #{number} is assigned to you"),
        },
        NoticeEvent::CustomerReplied => {
            let who = author.unwrap_or(ticket.customer.as_str());
            let who = if who.is_empty() { "The customer" } else { who };
            format!("{who} wrote on your ticket #{number}")
        }
        NoticeEvent::SlaWarning => format!("Ticket #{number} nears its SLA target"),
        NoticeEvent::SlaBreached => format!("Ticket #{number} missed its SLA target"),
        NoticeEvent::Mentioned => format!(
            "{} mentioned you on ticket #{number}",
            author.or(actor).unwrap_or("Someone")
        ),
    };
    let mut text = format!("Subject: {}", ticket.subject);
    if !ticket.customer.is_empty() {
        text.push_str(&format!("\nCustomer: {}", ticket.customer));
    }
    if matches!(event, NoticeEvent::CustomerReplied | NoticeEvent::Mentioned)
        && let Some((body, _)) = message
        && !body.trim().is_empty()
    {
        text.push_str("\n\n");
        text.push_str(&excerpt(body));
    }
    text.push_str("\n\n");
    text.push_str(&ticket_link(public_url, number));
    Words { head, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> TicketFacts {
        TicketFacts {
            number: TicketNumber(1042),
            subject: "Printer on fire".into(),
            assignee_id: Some(3),
            department_id: None,
            customer: "Ada Lovelace".into(),
        }
    }

    #[test]
    fn notices_name_the_ticket_what_happened_and_the_link() {
        let note = ("@sam look at this".to_owned(), Some("Kim".to_owned()));
        let said = words(
            NoticeEvent::Mentioned,
            &ticket(),
            Some("Kim"),
            Some(&note),
            "https://help.example.org/",
        );
        assert_eq!(said.head, "Kim mentioned you on ticket #1042");
        assert!(said.text.starts_with("Subject: Printer on fire\n"));
        assert!(said.text.contains("\n\n@sam look at this\n\n"));
        assert!(
            said.text
                .ends_with("\n\nhttps://help.example.org/tickets/1042")
        );
        let said = words(NoticeEvent::Assigned, &ticket(), None, None, "http://x");
        assert_eq!(said.head, "Ticket #1042 is assigned to you");
        assert!(!said.text.contains("@sam"));
    }
}
