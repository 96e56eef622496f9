use std::panic;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use helpdesk_channel::{
    Attachment, AutomationMarks, ChannelKind, Identity, InboundMessage, ThreadHints,
    ticket_number_in_subject,
};
use mail_parser::{
    Encoding, Header, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders,
    PartType,
};

use crate::{ParseError, fallback_message_id, sanitize_html};

/// Parses one RFC 822 message into the neutral form intake takes.
///
/// The raw bytes are kept in the result as received.
pub fn parse_message(raw: &[u8]) -> Result<InboundMessage, ParseError> {
    if raw.trim_ascii().is_empty() {
        return Err(ParseError::Empty);
    }
    let message = parse_mime(raw).ok_or(ParseError::NotRfc822)?;
    // mail-parser reads any run of bytes up to a colon (or the end) as a header name, so
    // garbage still "parses"; insist on at least one well-formed header field.
    if !message.headers().iter().any(|h| is_real_header(raw, h)) {
        return Err(ParseError::NotRfc822);
    }

    let sender = sender(&message).ok_or(ParseError::NoSender)?;
    let subject = first_value(&message, HeaderName::Subject)
        .and_then(HeaderValue::as_text)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let external_id = first_value(&message, HeaderName::MessageId)
        .and_then(|value| ids(value).next())
        .unwrap_or_else(|| fallback_message_id(raw));

    // body_text derives text from the HTML body when there is no plain one.
    let text = message
        .body_text(0)
        .map(|text| text.replace("\r\n", "\n"))
        .unwrap_or_default();
    // html_body also lists plain-text parts (mail-parser would convert them); only a real
    // text/html part counts.
    let html = message.html_bodies().find_map(|part| match &part.body {
        PartType::Html(html) => Some(sanitize_html(html)),
        _ => None,
    });

    let mut forwarded = 0;
    let attachments = message
        .attachments()
        .enumerate()
        .map(|(index, part)| attachment(raw, part, index + 1, &mut forwarded))
        .collect();

    let thread = ThreadHints {
        in_reply_to: all_ids(&message, HeaderName::InReplyTo),
        references: all_ids(&message, HeaderName::References),
        ticket_number: subject.as_deref().and_then(ticket_number_in_subject),
        conversation: None,
        reply_to: None,
    };
    let automation = AutomationMarks {
        auto_reply: is_auto_reply(&message, raw),
        bounce: is_bounce(&message, raw, &sender, subject.as_deref()),
    };
    let mut thread = thread;
    if automation.bounce {
        // A bounce refers to the mail that came back: its ids and subject tag lead to it.
        let returned = returned_mail(&message, raw, &external_id);
        for id in returned.ids {
            if !thread.references.contains(&id) {
                thread.references.push(id);
            }
        }
        thread.ticket_number = thread.ticket_number.or(returned.ticket_number);
    }
    let sent_at = first_value(&message, HeaderName::Date)
        .and_then(HeaderValue::as_datetime)
        .and_then(to_utc);

    Ok(InboundMessage {
        channel: ChannelKind::Email,
        external_id,
        sender,
        subject,
        text,
        html,
        attachments,
        thread,
        automation,
        sent_at,
        raw: raw.to_vec(),
    })
}

/// Runs mail-parser, which has `debug_assert!`s that malformed nesting (a broken
/// message/rfc822 part inside a multipart) can trip. A mail must never take intake down, so
/// a panic is caught and the headers alone are parsed instead: sender and subject survive,
/// the body is left empty and the raw bytes are still kept.
fn parse_mime(raw: &[u8]) -> Option<Message<'_>> {
    let parser = MessageParser::default();
    match panic::catch_unwind(|| parser.parse(raw)) {
        Ok(message) => message,
        Err(_) => panic::catch_unwind(|| parser.parse_headers(raw))
            .ok()
            .flatten(),
    }
}

/// A header field whose name is printable ASCII without spaces and ends in a colon.
fn is_real_header(raw: &[u8], header: &Header<'_>) -> bool {
    let Some(field) = raw.get(header.offset_field as usize..header.offset_start as usize) else {
        return false;
    };
    let Some(name) = field.strip_suffix(b":") else {
        return false;
    };
    let name = name.trim_ascii_end();
    !name.is_empty() && name.iter().all(|&b| b.is_ascii_graphic() && b != b':')
}

/// The first occurrence of a top-level header (mail-parser's own accessors take the last).
fn first_value<'a>(
    message: &'a Message<'_>,
    name: HeaderName<'static>,
) -> Option<&'a HeaderValue<'a>> {
    message
        .headers()
        .iter()
        .find(|h| h.name == name)
        .map(|h| &h.value)
}

/// The top-level headers named `name`, as raw text with folding undone and whitespace
/// collapsed; used for headers mail-parser does not interpret (Precedence, X-...).
fn raw_values<'a>(
    message: &'a Message<'_>,
    raw: &'a [u8],
    name: &'a str,
) -> impl Iterator<Item = String> + 'a {
    message
        .headers()
        .iter()
        .filter(move |h| h.name.as_str().eq_ignore_ascii_case(name))
        .map(move |h| {
            raw.get(h.offset_start as usize..h.offset_end as usize)
                .map(|bytes| {
                    String::from_utf8_lossy(bytes)
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default()
        })
}

fn has_header(message: &Message<'_>, name: &str) -> bool {
    message
        .headers()
        .iter()
        .any(|h| h.name.as_str().eq_ignore_ascii_case(name))
}

/// Message ids of an id header, without angle brackets, empty ones dropped.
fn ids<'a>(value: &'a HeaderValue<'_>) -> impl Iterator<Item = String> + 'a {
    let list: &[_] = match value {
        HeaderValue::Text(id) => std::slice::from_ref(id),
        HeaderValue::TextList(ids) => ids,
        _ => &[],
    };
    list.iter()
        .map(|id| id.trim().trim_matches(['<', '>']).trim())
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// Every id of every occurrence of an id header, in order, deduplicated.
fn all_ids(message: &Message<'_>, name: HeaderName<'static>) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for value in message.header_values(name) {
        for id in ids(value) {
            if !all.contains(&id) {
                all.push(id);
            }
        }
    }
    all
}

/// From, else Sender, else Reply-To, else Return-Path: the first usable address.
fn sender(message: &Message<'_>) -> Option<Identity> {
    [HeaderName::From, HeaderName::Sender, HeaderName::ReplyTo]
        .into_iter()
        .flat_map(|name| message.header_values(name))
        .filter_map(|value| value.as_address()?.first())
        .find_map(|addr| identity(addr.address()?, addr.name()))
        .or_else(|| {
            // A null Return-Path `<>` parses to no id at all, so it never gets here.
            message
                .header_values(HeaderName::ReturnPath)
                .flat_map(ids)
                .find_map(|address| identity(&address, None))
        })
}

/// The addresses a mail was written to (To and Cc), lower-cased as senders are, without
/// repeats; none for bytes that are not mail. Reads the header section only.
pub fn recipients(raw: &[u8]) -> Vec<String> {
    let parser = MessageParser::default();
    let Some(message) = panic::catch_unwind(|| parser.parse_headers(raw))
        .ok()
        .flatten()
    else {
        return Vec::new();
    };
    let mut all: Vec<String> = Vec::new();
    for name in [HeaderName::To, HeaderName::Cc] {
        for value in message.header_values(name) {
            let Some(addresses) = value.as_address() else {
                continue;
            };
            for addr in addresses.iter() {
                if let Some(found) = addr.address().and_then(|a| identity(a, None))
                    && !all.contains(&found.address)
                {
                    all.push(found.address);
                }
            }
        }
    }
    all
}

fn identity(address: &str, name: Option<&str>) -> Option<Identity> {
    let address = address.trim().to_lowercase();
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() || address.contains(char::is_whitespace) {
        return None;
    }
    Some(Identity {
        channel: ChannelKind::Email,
        handle: None,
        display_name: name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        address,
    })
}

fn is_auto_reply(message: &Message<'_>, raw: &[u8]) -> bool {
    // RFC 3834: anything but "no" (parameters after ';' aside) is automatic.
    let auto_submitted = raw_values(message, raw, "Auto-Submitted").any(|v| {
        let keyword = v.split(';').next().unwrap_or_default().trim();
        !keyword.is_empty() && !keyword.eq_ignore_ascii_case("no")
    });
    let precedence = raw_values(message, raw, "Precedence").any(|v| {
        ["bulk", "junk", "list", "auto_reply"]
            .iter()
            .any(|p| v.eq_ignore_ascii_case(p))
    });
    let suppress = raw_values(message, raw, "X-Auto-Response-Suppress").any(|v| {
        v.split([',', ' ']).any(|t| {
            ["all", "oof", "autoreply"]
                .iter()
                .any(|k| t.eq_ignore_ascii_case(k))
        })
    });
    auto_submitted
        || precedence
        || suppress
        || has_header(message, "X-Autoreply")
        || has_header(message, "X-Autorespond")
        // Mailing-list traffic is bulk: never answer it with a ticket acknowledgement.
        || has_header(message, "List-Id")
        || has_header(message, "List-Unsubscribe")
}

fn is_bounce(message: &Message<'_>, raw: &[u8], sender: &Identity, subject: Option<&str>) -> bool {
    let delivery_report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
    });
    let local = sender.address.split('@').next().unwrap_or_default();
    let daemon = matches!(local, "mailer-daemon" | "postmaster")
        && subject.is_some_and(looks_like_delivery_failure);
    let null_sender = raw_values(message, raw, "Return-Path").any(|v| v.replace(' ', "") == "<>");
    delivery_report || daemon || null_sender
}

/// What a bounce tells of the mail that came back.
#[derive(Debug, Default)]
struct ReturnedMail {
    ids: Vec<String>,
    ticket_number: Option<i64>,
}

/// Finds the Message-ID and subject tag of the returned mail in a bounce: in its attached
/// message or headers part (RFC 3464), or quoted in its text as many MTAs do.
fn returned_mail(message: &Message<'_>, raw: &[u8], own_id: &str) -> ReturnedMail {
    let mut returned = ReturnedMail::default();
    let mut texts: Vec<String> = Vec::new();
    for part in message.attachments() {
        texts.push(String::from_utf8_lossy(part.contents()).into_owned());
    }
    if let Some(text) = message.body_text(0) {
        texts.push(text.into_owned());
    }
    // The body as it came, past the bounce's own header block.
    let body_start = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    texts.push(String::from_utf8_lossy(&raw[body_start..]).into_owned());
    for text in &texts {
        for line in text.lines() {
            let line = line.trim_start_matches(['>', ' ', '\t']);
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let name = name.trim();
            if name.eq_ignore_ascii_case("Message-ID") {
                let id = value
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .trim();
                if !id.is_empty() && id != own_id && !returned.ids.iter().any(|known| known == id) {
                    returned.ids.push(id.to_owned());
                }
            } else if name.eq_ignore_ascii_case("Subject") && returned.ticket_number.is_none() {
                returned.ticket_number = ticket_number_in_subject(value);
            }
        }
    }
    returned
}

fn looks_like_delivery_failure(subject: &str) -> bool {
    const MARKERS: [&str; 10] = [
        "undeliverable",
        "undelivered",
        "delivery status notification",
        "delivery failure",
        "delivery failed",
        "delivery has failed",
        "failure notice",
        "returned mail",
        "could not be delivered",
        "non-delivery",
    ];
    let subject = subject.to_lowercase();
    MARKERS.iter().any(|m| subject.contains(m))
}

/// One attachment part; `position` (1-based) and the count of forwarded messages so far
/// name the parts that came without a file name.
fn attachment(
    raw: &[u8],
    part: &MessagePart<'_>,
    position: usize,
    forwarded: &mut usize,
) -> Attachment {
    let content_type = part
        .content_type()
        .and_then(|ct| {
            let subtype = ct.subtype()?.trim();
            let ctype = ct.ctype().trim();
            (!ctype.is_empty() && !subtype.is_empty())
                .then(|| format!("{ctype}/{subtype}").to_ascii_lowercase())
        })
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let is_message = matches!(part.body, PartType::Message(_))
        || matches!(content_type.as_str(), "message/rfc822" | "message/global");

    let content = match &part.body {
        // An attached message is kept byte for byte as it sits in the raw mail, so it can
        // be downloaded as an .eml and opened elsewhere.
        PartType::Message(_) if part.encoding == Encoding::None => raw
            .get(part.offset_body as usize..part.offset_end as usize)
            .unwrap_or_else(|| part.contents())
            .to_vec(),
        _ => part.contents().to_vec(),
    };

    let filename = part
        .attachment_name()
        .and_then(clean_filename)
        .unwrap_or_else(|| generated_filename(&content_type, is_message, position, forwarded));

    let disposition = part.content_disposition();
    let content_id = part
        .headers
        .iter()
        .find(|h| h.name == HeaderName::ContentId)
        .and_then(|h| ids(&h.value).next());
    let inline = disposition.is_some_and(|d| d.is_inline())
        || (content_id.is_some() && !disposition.is_some_and(|d| d.is_attachment()));

    Attachment {
        filename,
        content_type,
        content,
        inline,
        content_id,
    }
}

fn generated_filename(
    content_type: &str,
    is_message: bool,
    position: usize,
    forwarded: &mut usize,
) -> String {
    if is_message {
        *forwarded += 1;
        return match *forwarded {
            1 => "forwarded-message.eml".to_owned(),
            n => format!("forwarded-message-{n}.eml"),
        };
    }
    match extension(content_type) {
        Some(ext) => format!("attachment-{position}.{ext}"),
        None => format!("attachment-{position}"),
    }
}

/// The last path component of a sender-supplied file name, without control characters:
/// the name is untrusted and may end up on a file system.
fn clean_filename(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty() && cleaned != "." && cleaned != "..").then(|| cleaned.to_owned())
}

fn extension(content_type: &str) -> Option<&'static str> {
    Some(match content_type {
        "application/pdf" => "pdf",
        "application/zip" => "zip",
        "application/json" => "json",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "text/plain" | "text/rfc822-headers" | "message/delivery-status" => "txt",
        "text/html" => "html",
        "text/csv" => "csv",
        "text/calendar" => "ics",
        "message/rfc822" | "message/global" => "eml",
        _ => return None,
    })
}

/// mail-parser keeps the local time and its offset; chrono also rejects impossible dates.
fn to_utc(date: &mail_parser::DateTime) -> Option<DateTime<Utc>> {
    let sign = if date.tz_before_gmt { -1 } else { 1 };
    let offset = sign * (i32::from(date.tz_hour) * 3600 + i32::from(date.tz_minute) * 60);
    let local = NaiveDate::from_ymd_opt(date.year.into(), date.month.into(), date.day.into())?
        .and_hms_opt(date.hour.into(), date.minute.into(), date.second.into())?;
    let zoned = FixedOffset::east_opt(offset)?
        .from_local_datetime(&local)
        .single()?;
    Some(zoned.with_timezone(&Utc))
}
