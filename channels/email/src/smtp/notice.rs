//! Notices to agents ("ticket #1042 is assigned to you"): mails of their own, never part of a
//! customer's conversation. They carry a fresh Message-ID and no In-Reply-To or References, and
//! their subject names the ticket without the `[#1042]` tag that intake threads by, so an answer
//! to one cannot land in the ticket. They are marked automatic (RFC 3834) so no auto-responder
//! answers them.

use helpdesk_channel::{Delivered, DeliveryError};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, SinglePart};
use lettre::{Address, AsyncTransport, Message};

use super::{BuildError, Originator, SmtpSender, classify, generate_message_id, one_line};

/// One notice to one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub to_address: String,
    pub to_name: Option<String>,
    pub subject: String,
    pub text: String,
}

/// Builds the mail for `notice` as [`SmtpSender::send_notice`] sends it, with its Message-ID
/// (without angle brackets).
pub fn build_notice(from: &Originator, notice: &Notice) -> Result<(Message, String), BuildError> {
    let to_address: Address =
        notice
            .to_address
            .trim()
            .parse()
            .map_err(|e| BuildError::InvalidRecipient {
                address: notice.to_address.clone(),
                reason: format!("{e}"),
            })?;
    let to_name = notice
        .to_name
        .as_deref()
        .map(one_line)
        .filter(|name| !name.is_empty());
    // Brackets would read as a ticket tag; a notice names its ticket as "#1042".
    let subject = one_line(&notice.subject).replace("[#", "(#");
    let message_id = generate_message_id(&from.domain);
    let mail = Message::builder()
        .from(from.mailbox.clone())
        .to(Mailbox::new(to_name, to_address))
        .subject(subject)
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
            "All".to_owned(),
        ))
        .singlepart(SinglePart::plain(notice.text.clone()))
        .map_err(|e| BuildError::Mail(e.to_string()))?;
    Ok((mail, message_id))
}

impl SmtpSender {
    /// Sends a notice to an agent; the answer names the Message-ID it went out with.
    pub async fn send_notice(&self, notice: &Notice) -> Result<Delivered, DeliveryError> {
        let (mail, message_id) = build_notice(&self.from, notice)?;
        self.transport.send(mail).await.map_err(|e| classify(&e))?;
        Ok(Delivered {
            external_id: message_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_stands_alone() {
        let from = Originator::new("support@example.org", Some("Support")).expect("from");
        let (mail, id) = build_notice(
            &from,
            &Notice {
                to_address: "sam@example.org".into(),
                to_name: Some("Sam".into()),
                subject: "Ticket #7 [#7] assigned to you".into(),
                text: "http://help.example.org/tickets/7".into(),
            },
        )
        .expect("mail");
        let text = String::from_utf8(mail.formatted()).expect("utf-8");
        assert!(text.contains(&format!("Message-ID: <{id}>")), "{text}");
        assert!(id.ends_with("@example.org"));
        assert!(!text.contains("In-Reply-To"), "{text}");
        assert!(!text.contains("References"), "{text}");
        assert!(!text.contains("[#"), "{text}");
        assert!(text.contains("Auto-Submitted: auto-generated"), "{text}");
    }
}
