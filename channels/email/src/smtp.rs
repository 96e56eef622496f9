//! SMTP delivery of outbound mail with lettre (tokio, rustls with ring).
//!
//! [`build_message`] turns an [`OutboundMessage`] into the exact mail that goes out (headers
//! for threading, the `[#1042]` tag, text/HTML alternatives, attachments); [`SmtpSender`]
//! sends it and sorts failures into temporary (retry later) and permanent ones.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use helpdesk_channel::{
    ChannelKind, Deliver, Delivered, DeliveryError, OutboundMessage, ticket_number_in_subject,
};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment as LettreAttachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text throughout; only for a trusted relay on the same host or network.
    None,
    /// Plain connect, then STARTTLS, which is required (no fallback to plain text).
    Starttls,
    /// TLS from the first byte (implicit TLS, usually port 465).
    Tls,
}

impl SmtpTls {
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::None => "none",
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
        }
    }
}

impl fmt::Display for SmtpTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SMTP tls mode {0:?} (expected none, starttls or tls)")]
pub struct UnknownSmtpTls(pub String);

impl FromStr for SmtpTls {
    type Err = UnknownSmtpTls;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(SmtpTls::None),
            "starttls" => Ok(SmtpTls::Starttls),
            "tls" => Ok(SmtpTls::Tls),
            _ => Err(UnknownSmtpTls(s.to_owned())),
        }
    }
}

/// Where and as whom outbound mail is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Empty: the server is used without authentication.
    pub username: String,
    pub password: String,
    /// The From: address of every mail; its domain also names generated Message-IDs.
    pub from_address: String,
    /// The display name of From: ("Example Support"), if any.
    pub from_name: Option<String>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field("from_address", &self.from_address)
            .field("from_name", &self.from_name)
            .finish()
    }
}

/// Why an [`SmtpSender`] could not be set up from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    #[error("invalid From address {address:?}: {reason}")]
    InvalidFrom { address: String, reason: String },
    #[error("no SMTP host configured")]
    NoHost,
    #[error("invalid TLS root certificate: {0}")]
    RootCertificate(String),
    #[error("cannot set up TLS for {host}: {reason}")]
    Tls { host: String, reason: String },
}

/// Why an outbound message could not be turned into a mail. Sending it again will not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("invalid recipient address {address:?}: {reason}")]
    InvalidRecipient { address: String, reason: String },
    #[error("invalid Message-ID {0:?}")]
    InvalidMessageId(String),
    #[error("cannot build the mail: {0}")]
    Mail(String),
}

impl From<BuildError> for DeliveryError {
    fn from(error: BuildError) -> Self {
        DeliveryError::Permanent(error.to_string())
    }
}

/// What an outbound mail is, which decides the marks of automatic mail it carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kind {
    /// Written by an agent.
    #[default]
    Reply,
    /// Sent by the system on its own (the acknowledgement of a new ticket): marked
    /// `Auto-Submitted: auto-replied` so that the customer's auto-responder stays silent and
    /// no mail loop starts (RFC 3834).
    Acknowledgement,
}

/// The sender of outbound mail: From: mailbox and the domain of generated Message-IDs.
#[derive(Debug, Clone)]
pub struct Originator {
    mailbox: Mailbox,
    domain: String,
}

impl Originator {
    pub fn new(address: &str, name: Option<&str>) -> Result<Self, SmtpConfigError> {
        let invalid = |reason: String| SmtpConfigError::InvalidFrom {
            address: address.to_owned(),
            reason,
        };
        let parsed: Address = address
            .trim()
            .parse()
            .map_err(|e| invalid(format!("{e}")))?;
        let domain = parsed.domain().to_owned();
        let name = name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        Ok(Originator {
            mailbox: Mailbox::new(name, parsed),
            domain,
        })
    }

    pub fn from_settings(settings: &SmtpSettings) -> Result<Self, SmtpConfigError> {
        Originator::new(&settings.from_address, settings.from_name.as_deref())
    }
}

/// Builds the mail for `message` exactly as [`SmtpSender`] sends it, and returns it with the
/// Message-ID it carries (without angle brackets).
pub fn build_message(
    from: &Originator,
    message: &OutboundMessage,
    kind: Kind,
) -> Result<(Message, String), BuildError> {
    let to_address: Address =
        message
            .recipient
            .address
            .trim()
            .parse()
            .map_err(|e| BuildError::InvalidRecipient {
                address: message.recipient.address.clone(),
                reason: format!("{e}"),
            })?;
    let to_name = message
        .recipient
        .display_name
        .as_deref()
        .map(one_line)
        .filter(|n| !n.is_empty());

    let message_id = match &message.external_id {
        Some(id) => {
            let id = strip_brackets(id);
            if !is_valid_id(id) {
                return Err(BuildError::InvalidMessageId(id.to_owned()));
            }
            id.to_owned()
        }
        None => generate_message_id(&from.domain),
    };

    let mut builder = Message::builder()
        .from(from.mailbox.clone())
        .to(Mailbox::new(to_name, to_address))
        .subject(tagged_subject(
            &one_line(&message.subject),
            message.ticket_number,
        ))
        .message_id(Some(format!("<{message_id}>")));

    let (in_reply_to, references) = thread_ids(message);
    if let Some(parent) = in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    if !references.is_empty() {
        let joined = references
            .iter()
            .map(|id| format!("<{id}>"))
            .collect::<Vec<_>>()
            .join(" ");
        builder = builder.references(joined);
    }
    if kind == Kind::Acknowledgement {
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-replied".to_owned(),
            ))
            // Exchange and Outlook honour this instead of Auto-Submitted.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
                "All".to_owned(),
            ));
    }

    let mail = match body(message) {
        Body::Single(part) => builder.singlepart(part),
        Body::Multi(part) => builder.multipart(part),
    }
    .map_err(|e| BuildError::Mail(e.to_string()))?;
    Ok((mail, message_id))
}

/// The MIME tree: `mixed[ alternative[ text, related[ html, inline images ] ], files ]`, each
/// level present only when needed; a plain reply without files is a single text part.
fn body(message: &OutboundMessage) -> Body {
    let text = SinglePart::plain(message.text.clone());
    // Inline images only make sense next to an HTML body that can refer to them by cid:.
    let (inline, files): (Vec<_>, Vec<_>) = message
        .attachments
        .iter()
        .partition(|a| a.inline && a.content_id.is_some() && message.html.is_some());

    let content = match &message.html {
        Some(html) => {
            let html_part = SinglePart::html(html.clone());
            let alternative = MultiPart::alternative().singlepart(text);
            Body::Multi(if inline.is_empty() {
                alternative.singlepart(html_part)
            } else {
                let related = inline.iter().fold(
                    MultiPart::related().singlepart(html_part),
                    |related, attachment| related.singlepart(attachment_part(attachment, true)),
                );
                alternative.multipart(related)
            })
        }
        None => Body::Single(text),
    };
    if files.is_empty() {
        return content;
    }
    let mixed = match content {
        Body::Single(part) => MultiPart::mixed().singlepart(part),
        Body::Multi(part) => MultiPart::mixed().multipart(part),
    };
    Body::Multi(files.into_iter().fold(mixed, |mixed, attachment| {
        mixed.singlepart(attachment_part(attachment, false))
    }))
}

enum Body {
    Single(SinglePart),
    Multi(MultiPart),
}

fn attachment_part(attachment: &helpdesk_channel::Attachment, inline: bool) -> SinglePart {
    // A content type a chat client made up must not stop the reply: send such files as bytes.
    let content_type = ContentType::parse(&attachment.content_type)
        .or_else(|_| ContentType::parse("application/octet-stream"))
        .unwrap_or(ContentType::TEXT_PLAIN);
    let filename = match one_line(&attachment.filename) {
        name if name.is_empty() => "attachment".to_owned(),
        name => name,
    };
    let disposition = match attachment.content_id.as_deref().map(strip_brackets) {
        Some(cid) if inline && is_valid_id(cid) => {
            LettreAttachment::new_inline_with_name(cid.to_owned(), filename)
        }
        _ => LettreAttachment::new(filename),
    };
    disposition.body(attachment.content.clone(), content_type)
}

/// The subject with the ticket's `[#1042]` tag. Intake threads by the first tag of a subject,
/// so a subject whose first tag is another ticket's (a follow-up ticket) gets ours as well,
/// in front of it; the tag goes after a leading "Re:" so clients still see a reply.
pub fn tagged_subject(subject: &str, ticket_number: i64) -> String {
    let subject = subject.trim();
    if ticket_number_in_subject(subject) == Some(ticket_number) {
        return subject.to_owned();
    }
    let tag = format!("[#{ticket_number}]");
    let prefix_len = reply_prefix_len(subject);
    let (prefix, rest) = subject.split_at(prefix_len);
    let rest = rest.trim_start();
    match (prefix.is_empty(), rest.is_empty()) {
        (true, true) => tag,
        (true, false) => format!("{tag} {rest}"),
        (false, true) => format!("{prefix} {tag}"),
        (false, false) => format!("{prefix} {tag} {rest}"),
    }
}

/// The length of leading reply/forward markers such as "Re: AW: Fwd:".
fn reply_prefix_len(subject: &str) -> usize {
    const PREFIXES: [&str; 8] = ["re:", "aw:", "sv:", "antw:", "fw:", "fwd:", "wg:", "tr:"];
    let mut len = 0;
    loop {
        let rest = &subject[len..];
        let trimmed = rest.trim_start();
        let skipped = rest.len() - trimmed.len();
        let Some(prefix) = PREFIXES.iter().find(|p| {
            trimmed
                .get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p))
        }) else {
            return len;
        };
        len += skipped + prefix.len();
    }
}

/// In-Reply-To and References for the thread: the parent is the last In-Reply-To id (else the
/// last reference); References keep their order and end with the parent, each id once.
/// Ids that cannot be written into a header (spaces, brackets, non-ASCII) are left out rather
/// than breaking the mail.
fn thread_ids(message: &OutboundMessage) -> (Option<String>, Vec<String>) {
    let valid = |ids: &[String]| -> Vec<String> {
        ids.iter()
            .map(|id| strip_brackets(id))
            .filter(|id| is_valid_id(id))
            .map(str::to_owned)
            .collect()
    };
    let in_reply_to = valid(&message.thread.in_reply_to);
    let mut references: Vec<String> = Vec::new();
    for id in valid(&message.thread.references)
        .into_iter()
        .chain(in_reply_to.iter().cloned())
    {
        if !references.contains(&id) {
            references.push(id);
        }
    }
    let parent = in_reply_to.last().or(references.last()).cloned();
    (parent, references)
}

/// Text for a header: line breaks and other control characters become spaces, so that a
/// subject or name typed by someone else can never start a header field of its own.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn strip_brackets(id: &str) -> &str {
    let id = id.trim();
    id.strip_prefix('<')
        .and_then(|id| id.strip_suffix('>'))
        .unwrap_or(id)
}

/// Printable ASCII without spaces or angle brackets: what fits between `<` and `>`.
fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 900
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}

fn generate_message_id(domain: &str) -> String {
    let random: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(32)
        .collect();
    format!("{random}@{domain}")
}

/// Sends outbound mail through one SMTP server.
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Originator,
}

impl fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender")
            .field("transport", &self.transport)
            .field("from", &self.from)
            .finish()
    }
}

/// Options beyond [`SmtpSettings`], mostly for tests and private CAs.
#[derive(Debug, Clone)]
pub struct SmtpOptions {
    /// PEM certificates trusted as roots besides (or, with `only_extra_roots`, instead of) the
    /// webpki roots.
    pub extra_root_certificates_pem: Vec<Vec<u8>>,
    pub only_extra_roots: bool,
    /// Bounds connecting and every command of the dialogue.
    pub timeout: Duration,
}

impl Default for SmtpOptions {
    fn default() -> Self {
        SmtpOptions {
            extra_root_certificates_pem: Vec::new(),
            only_extra_roots: false,
            timeout: Duration::from_secs(60),
        }
    }
}

impl SmtpSender {
    pub fn new(settings: &SmtpSettings) -> Result<Self, SmtpConfigError> {
        SmtpSender::with_options(settings, SmtpOptions::default())
    }

    pub fn with_options(
        settings: &SmtpSettings,
        options: SmtpOptions,
    ) -> Result<Self, SmtpConfigError> {
        let host = settings.host.trim();
        if host.is_empty() {
            return Err(SmtpConfigError::NoHost);
        }
        let from = Originator::from_settings(settings)?;

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(settings.port)
            .timeout(Some(options.timeout));
        let tls = match settings.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls_parameters(host, &options)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(host, &options)?),
        };
        builder = builder.tls(tls);
        if !settings.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                settings.username.clone(),
                settings.password.clone(),
            ));
        }
        Ok(SmtpSender {
            transport: builder.build(),
            from,
        })
    }

    /// Delivers `message` as a mail of the given kind.
    pub async fn deliver_with(
        &self,
        message: &OutboundMessage,
        kind: Kind,
    ) -> Result<Delivered, DeliveryError> {
        let (mail, message_id) = build_message(&self.from, message, kind)?;
        self.transport.send(mail).await.map_err(|e| classify(&e))?;
        Ok(Delivered {
            external_id: message_id,
        })
    }
}

impl Deliver for SmtpSender {
    fn channel(&self) -> ChannelKind {
        ChannelKind::Email
    }

    async fn deliver(&self, message: &OutboundMessage) -> Result<Delivered, DeliveryError> {
        let kind = if message.automatic {
            Kind::Acknowledgement
        } else {
            Kind::Reply
        };
        self.deliver_with(message, kind).await
    }
}

/// rustls (ring) parameters trusting the webpki roots and/or the extra roots of `options`.
fn tls_parameters(host: &str, options: &SmtpOptions) -> Result<TlsParameters, SmtpConfigError> {
    let store = if options.only_extra_roots {
        CertificateStore::None
    } else {
        CertificateStore::WebpkiRoots
    };
    let mut tls = TlsParameters::builder(host.to_owned()).certificate_store(store);
    for pem in &options.extra_root_certificates_pem {
        let certificate = Certificate::from_pem(pem)
            .map_err(|e| SmtpConfigError::RootCertificate(e.to_string()))?;
        tls = tls.add_root_certificate(certificate);
    }
    tls.build_rustls().map_err(|e| SmtpConfigError::Tls {
        host: host.to_owned(),
        reason: e.to_string(),
    })
}

/// Sorts a failed send: only a permanent (5xx) answer about this message is permanent.
/// Network trouble, timeouts, TLS and 4xx answers are worth another attempt, and so are 5xx
/// answers about authentication or encryption (530, 534, 535, 538): those are the operator's
/// settings, not the message, and the reply should survive until they are fixed.
fn classify(error: &lettre::transport::smtp::Error) -> DeliveryError {
    let message = error.to_string();
    if error.is_permanent() {
        let code = error.status().map(|code| code.to_string());
        if matches!(code.as_deref(), Some("530" | "534" | "535" | "538")) {
            return DeliveryError::Temporary(message);
        }
        return DeliveryError::Permanent(message);
    }
    DeliveryError::Temporary(message)
}

// Mails to agents about their tickets, sent beside the customers' conversations.
mod notice;
pub use notice::{Notice, build_notice};
