//! Mail the helpdesk sends on its own: the acknowledgement of a new ticket, and the notice that
//! an attachment was too large. Both are guarded against mail loops: never to an auto-reply, a
//! bounce, our own address or an address that cannot answer (mailer-daemon, no-reply), and at
//! most one acknowledgement per address per interval.

use askama::Template;
use chrono::{DateTime, Duration, Utc};
use helpdesk_channel::{ChannelKind, InboundMessage};
use regex::Regex;

use crate::domain::{TicketId, TicketNumber};
use crate::jobs::deliver;
use crate::store::{self, StoreError, Tx};

/// When and to whom acknowledgements go; from `[email]`.
#[derive(Debug, Clone)]
pub struct AutoReplies {
    /// Our own address: mail from it is never answered.
    pub support_address: String,
    /// At most one acknowledgement per sender address within this time.
    pub interval: Duration,
    /// Addresses never answered (matched against the lower-cased address).
    pub never_to: Regex,
    /// Send acknowledgements of new tickets; the attachment notice is sent regardless.
    pub acknowledge: bool,
    /// The display name of `support_address`, named with it in automatic mail.
    pub from_name: Option<String>,
    /// Every address of ours (all mailboxes), lower-cased: mail from them is never answered.
    pub own_addresses: Vec<String>,
}

impl AutoReplies {
    /// The `[email]` settings of automatic mail.
    pub fn from_settings(settings: &crate::config::Settings) -> Result<AutoReplies, regex::Error> {
        let email = &settings.email;
        let first = email.mailboxes().into_iter().next();
        Ok(AutoReplies {
            support_address: first
                .as_ref()
                .map_or_else(|| email.address.clone(), |m| m.address.clone()),
            interval: Duration::minutes(email.acknowledge_interval_minutes),
            never_to: email.never_answer_regex()?,
            acknowledge: email.acknowledge,
            from_name: first.and_then(|m| m.display_name),
            own_addresses: email.own_addresses(),
        })
    }

    /// These settings for automatic mail from the mailbox of `origin`.
    pub fn from_mailbox(&self, origin: &crate::intake::MailboxOrigin) -> AutoReplies {
        let mut own_addresses = self.own_addresses.clone();
        own_addresses.push(origin.address.to_lowercase());
        AutoReplies {
            support_address: origin.address.clone(),
            from_name: origin.display_name.clone(),
            own_addresses,
            ..self.clone()
        }
    }

    /// How automatic mail names the mailbox: "Example Billing <billing@example.org>", or the
    /// address alone.
    pub fn signed_as(&self) -> String {
        match &self.from_name {
            Some(name) => format!("{name} <{}>", self.support_address),
            None => self.support_address.clone(),
        }
    }
}

/// An attachment that was not kept because of its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedAttachment {
    pub filename: String,
    pub size: String,
}

#[derive(Template)]
#[template(path = "mail/acknowledgement.txt")]
struct AcknowledgementText<'a> {
    customer_name: Option<&'a str>,
    number: TicketNumber,
    subject: &'a str,
    support_address: &'a str,
    refused: &'a [RefusedAttachment],
    limit: &'a str,
}

#[derive(Template)]
#[template(path = "mail/acknowledgement.html")]
struct AcknowledgementHtml<'a> {
    customer_name: Option<&'a str>,
    number: TicketNumber,
    subject: &'a str,
    support_address: &'a str,
    refused: &'a [RefusedAttachment],
    limit: &'a str,
}

#[derive(Template)]
#[template(path = "mail/attachments_refused.txt")]
struct RefusedText<'a> {
    customer_name: Option<&'a str>,
    number: TicketNumber,
    support_address: &'a str,
    refused: &'a [RefusedAttachment],
    limit: &'a str,
}

#[derive(Template)]
#[template(path = "mail/attachments_refused.html")]
struct RefusedHtml<'a> {
    customer_name: Option<&'a str>,
    number: TicketNumber,
    support_address: &'a str,
    refused: &'a [RefusedAttachment],
    limit: &'a str,
}

/// What a new or continued ticket's message is, as far as answering it goes.
pub struct Occasion<'a> {
    pub message: &'a InboundMessage,
    pub ticket_id: TicketId,
    pub number: TicketNumber,
    pub subject: &'a str,
    pub created: bool,
    pub refused: &'a [RefusedAttachment],
    pub attachment_limit: u64,
}

/// Why no automatic mail goes to a sender, if none may.
pub fn reason_not_to_answer(
    settings: &AutoReplies,
    message: &InboundMessage,
) -> Option<&'static str> {
    if message.channel != ChannelKind::Email {
        return Some("not an email");
    }
    if message.automation.bounce {
        return Some("a delivery failure report");
    }
    if message.automation.auto_reply {
        return Some("an automatic message");
    }
    let address = message.sender.address.to_lowercase();
    if address == settings.support_address.to_lowercase()
        || settings.own_addresses.contains(&address)
    {
        return Some("our own address");
    }
    if !address.contains('@') || settings.never_to.is_match(&address) {
        return Some("an address that cannot answer");
    }
    None
}

/// Queues the acknowledgement of a new ticket, or the notice of refused attachments, in the
/// intake transaction; returns the message id of what was queued.
pub async fn answer(
    tx: &mut Tx,
    settings: &AutoReplies,
    occasion: &Occasion<'_>,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    let message = occasion.message;
    if let Some(reason) = reason_not_to_answer(settings, message) {
        tracing::debug!(
            sender = message.sender.address,
            reason,
            "no automatic answer"
        );
        return Ok(None);
    }
    let limit = human_size(occasion.attachment_limit);
    let name = message.sender.display_name.as_deref();
    let signed_as = settings.signed_as();
    let rendered = if occasion.created && settings.acknowledge {
        let acknowledged = store::customers::claim_acknowledgement(
            tx,
            &message.sender,
            now - settings.interval,
            now,
        )
        .await?;
        if acknowledged {
            Some(render(
                AcknowledgementText {
                    customer_name: name,
                    number: occasion.number,
                    subject: occasion.subject,
                    support_address: &signed_as,
                    refused: occasion.refused,
                    limit: &limit,
                },
                AcknowledgementHtml {
                    customer_name: name,
                    number: occasion.number,
                    subject: occasion.subject,
                    support_address: &signed_as,
                    refused: occasion.refused,
                    limit: &limit,
                },
            )?)
        } else {
            tracing::info!(
                sender = message.sender.address,
                "acknowledged recently; no second acknowledgement"
            );
            None
        }
    } else {
        None
    };
    // Refused attachments are told even when the acknowledgement is held back.
    let rendered = match rendered {
        Some(rendered) => Some(rendered),
        None if !occasion.refused.is_empty() => Some(render(
            RefusedText {
                customer_name: name,
                number: occasion.number,
                support_address: &signed_as,
                refused: occasion.refused,
                limit: &limit,
            },
            RefusedHtml {
                customer_name: name,
                number: occasion.number,
                support_address: &signed_as,
                refused: occasion.refused,
                limit: &limit,
            },
        )?),
        None => None,
    };
    let Some((text, html)) = rendered else {
        return Ok(None);
    };
    let external_id =
        crate::domain::new_mail_message_id(&settings.support_address, occasion.number);
    let message_id = store::outbound::add_automatic(
        tx,
        &store::outbound::NewAutomatic {
            ticket_id: occasion.ticket_id,
            channel: message.channel,
            external_id: Some(&external_id),
            text: &text,
            html: Some(&html),
            now,
        },
    )
    .await?;
    deliver::enqueue(tx, message_id, 1, now).await?;
    Ok(Some(message_id))
}

fn render(text: impl Template, html: impl Template) -> Result<(String, String), StoreError> {
    Ok((text.render()?, html.render()?))
}

/// "512 KiB", "25 MiB": sizes as people read them.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else if value.fract() < 0.05 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use helpdesk_channel::{AutomationMarks, Identity, ThreadHints};

    fn settings() -> AutoReplies {
        let defaults = crate::config::Settings::load_from(None, []).expect("defaults");
        AutoReplies {
            support_address: "Support@Example.org".to_owned(),
            ..AutoReplies::from_settings(&defaults).expect("valid")
        }
    }

    fn from(address: &str, automation: AutomationMarks) -> InboundMessage {
        InboundMessage {
            channel: ChannelKind::Email,
            external_id: "a@example.com".to_owned(),
            sender: Identity {
                channel: ChannelKind::Email,
                address: address.to_owned(),
                display_name: None,
                handle: None,
            },
            subject: None,
            text: String::new(),
            html: None,
            attachments: Vec::new(),
            thread: ThreadHints::default(),
            automation,
            sent_at: None,
            raw: Vec::new(),
        }
    }

    #[test]
    fn only_people_get_automatic_answers() {
        let settings = settings();
        let person = AutomationMarks::default();
        assert_eq!(
            reason_not_to_answer(&settings, &from("ada@example.com", person)),
            None
        );
        for address in [
            "support@example.org",
            "mailer-daemon@example.com",
            "MAILER-DAEMON@mx.example.com",
            "postmaster@example.com",
            "noreply@shop.example",
            "no-reply@shop.example",
            "do-not-reply@shop.example",
            "bounces+123@lists.example",
            "not-an-address",
        ] {
            assert!(
                reason_not_to_answer(&settings, &from(address, person)).is_some(),
                "{address}"
            );
        }
        for marks in [
            AutomationMarks {
                auto_reply: true,
                bounce: false,
            },
            AutomationMarks {
                auto_reply: false,
                bounce: true,
            },
        ] {
            assert!(reason_not_to_answer(&settings, &from("ada@example.com", marks)).is_some());
        }
        // Look-alikes are people.
        assert_eq!(
            reason_not_to_answer(&settings, &from("noreen@example.com", person)),
            None
        );
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(900), "900 bytes");
        assert_eq!(human_size(25 * 1024 * 1024), "25 MiB");
        assert_eq!(human_size(1536), "1.5 KiB");
    }

    #[test]
    fn the_acknowledgement_names_the_ticket_and_refused_files() {
        let refused = [RefusedAttachment {
            filename: "scan <1>.pdf".to_owned(),
            size: "40 MiB".to_owned(),
        }];
        let common = |html: bool| -> String {
            if html {
                AcknowledgementHtml {
                    customer_name: Some("Ada"),
                    number: TicketNumber(1042),
                    subject: "Printer <on fire>",
                    support_address: "support@example.org",
                    refused: &refused,
                    limit: "25 MiB",
                }
                .render()
                .expect("renders")
            } else {
                AcknowledgementText {
                    customer_name: Some("Ada"),
                    number: TicketNumber(1042),
                    subject: "Printer <on fire>",
                    support_address: "support@example.org",
                    refused: &refused,
                    limit: "25 MiB",
                }
                .render()
                .expect("renders")
            }
        };
        let text = common(false);
        assert!(text.starts_with("Hello Ada,"), "{text}");
        assert!(
            text.contains("ticket #1042:\n\n    Printer <on fire>"),
            "{text}"
        );
        assert!(text.contains("\"[#1042]\""), "{text}");
        assert!(text.contains("  - scan <1>.pdf (40 MiB)"), "{text}");
        assert!(text.contains("the limit is 25 MiB"), "{text}");
        let html = common(true);
        assert!(
            html.contains("Printer &#60;on fire&#62;") || html.contains("Printer &lt;on fire&gt;"),
            "{html}"
        );
        assert!(
            html.contains("<li>scan &#60;1&#62;.pdf (40 MiB)</li>")
                || html.contains("<li>scan &lt;1&gt;.pdf (40 MiB)</li>"),
            "{html}"
        );
        assert!(!html.contains("<on fire>"));
    }

    #[test]
    fn without_refused_files_no_paragraph_about_them() {
        let text = AcknowledgementText {
            customer_name: None,
            number: TicketNumber(7),
            subject: "VPN",
            support_address: "support@example.org",
            refused: &[],
            limit: "25 MiB",
        }
        .render()
        .expect("renders");
        assert!(text.starts_with("Hello,\n"), "{text}");
        assert!(!text.contains("too large"), "{text}");
    }
}
