//! A generated corpus of support mail with realistic threading, for `seed` and `bench`.
//!
//! Deterministic for a given seed: customers open threads, about a third of all messages are
//! replies (with In-Reply-To, References and quoted text), some carry attachments (a few of
//! them the same file, as signatures' logos are), some are HTML or Latin-1 encoded.

use std::fmt::Write;

const PRODUCTS: &[&str] = &[
    "printer",
    "VPN",
    "invoice",
    "laptop",
    "password reset",
    "mailbox",
    "license",
    "router",
    "mobile app",
    "backup",
    "calendar",
    "shipment",
    "refund",
    "account",
    "dashboard",
];
const PROBLEMS: &[&str] = &[
    "does not work",
    "is very slow",
    "shows an error",
    "stopped syncing",
    "needs to be replaced",
    "was charged twice",
    "cannot be found",
    "keeps crashing",
];
const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Katherine",
    "John",
    "Hedy",
    "Niklaus",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Johnson",
    "Backus",
    "Lamarr",
    "Wirth",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.net",
    "example.org",
    "mail.example",
    "corp.example",
];
const SENTENCES: &[&str] = &[
    "Since this morning nothing I try seems to help.",
    "I already restarted everything twice.",
    "Could you please have a look as soon as possible?",
    "It worked fine until last week's update.",
    "My colleagues have the same issue.",
    "I attached what I could find.",
    "This is blocking our whole team.",
    "Thanks a lot for your help!",
    "The error message says the connection was refused.",
    "We need this fixed before the end of the month.",
];

/// Shape of the generated corpus.
#[derive(Debug, Clone, Copy)]
pub struct CorpusSpec {
    pub messages: usize,
    /// Share of messages that answer an earlier message of their thread.
    pub reply_ratio: f64,
    /// Share of messages with an attachment.
    pub attachment_ratio: f64,
    pub seed: u64,
}

impl Default for CorpusSpec {
    fn default() -> Self {
        CorpusSpec {
            messages: 1000,
            reply_ratio: 1.0 / 3.0,
            attachment_ratio: 0.1,
            seed: 42,
        }
    }
}

/// One generated message and whether it starts a thread.
#[derive(Debug, Clone)]
pub struct GeneratedMail {
    pub raw: Vec<u8>,
    /// Threads are numbered from 0 in the order they start.
    pub thread: usize,
    pub starts_thread: bool,
}

struct Thread {
    customer: usize,
    subject: String,
    message_ids: Vec<String>,
    last_body: String,
}

/// Generates the corpus in arrival order (a reply always comes after what it answers).
pub fn generate(spec: &CorpusSpec) -> Vec<GeneratedMail> {
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let customers = (spec.messages / 5).max(1);
    let shared_logo: Vec<u8> = (0..6000).map(|i| (i * 7 % 251) as u8).collect();
    let mut threads: Vec<Thread> = Vec::new();
    let mut mails = Vec::with_capacity(spec.messages);
    let start = 1_700_000_000i64;
    for index in 0..spec.messages {
        let reply = !threads.is_empty() && rng.f64() < spec.reply_ratio;
        let thread_index = if reply {
            // Replies mostly go to recent threads, as in a real inbox.
            let recent = threads.len().min(2000);
            threads.len() - 1 - rng.usize(..recent)
        } else {
            let customer = rng.usize(..customers);
            let subject = format!(
                "{} {}",
                capitalise(PRODUCTS[rng.usize(..PRODUCTS.len())]),
                PROBLEMS[rng.usize(..PROBLEMS.len())]
            );
            threads.push(Thread {
                customer,
                subject,
                message_ids: Vec::new(),
                last_body: String::new(),
            });
            threads.len() - 1
        };
        let thread = &mut threads[thread_index];
        let message_id = format!(
            "{index}.{:08x}@{}",
            rng.u32(..),
            DOMAINS[thread.customer % DOMAINS.len()]
        );
        let (name, address) = customer_identity(thread.customer);
        let mut body = String::new();
        for _ in 0..rng.usize(2..6) {
            body.push_str(SENTENCES[rng.usize(..SENTENCES.len())]);
            body.push(' ');
        }
        body.push_str("\n\nBest regards,\n");
        body.push_str(&name);
        body.push('\n');
        if reply {
            body.push_str("\nOn an earlier day, Support wrote:\n");
            for line in thread.last_body.lines().take(12) {
                body.push_str("> ");
                body.push_str(line);
                body.push('\n');
            }
        }
        let subject = if reply {
            format!("Re: {}", thread.subject)
        } else {
            thread.subject.clone()
        };
        let mut headers = String::new();
        let date = chrono::DateTime::from_timestamp(start + index as i64 * 7, 0)
            .unwrap_or_default()
            .to_rfc2822();
        let _ = write!(
            headers,
            "From: {name} <{address}>\r\nTo: Support <support@helpdesk.example>\r\n\
             Subject: {subject}\r\nDate: {date}\r\nMessage-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n"
        );
        if let Some(parent) = thread.message_ids.last() {
            let _ = write!(headers, "In-Reply-To: <{parent}>\r\nReferences:");
            for id in thread.message_ids.iter().rev().take(10).rev() {
                let _ = write!(headers, " <{id}>");
            }
            headers.push_str("\r\n");
        }
        let attachment = (rng.f64() < spec.attachment_ratio).then(|| {
            if rng.u8(..4) == 0 {
                ("logo.png", "image/png", shared_logo.clone())
            } else {
                let size = rng.usize(4_000..64_000);
                let content: Vec<u8> = (0..size).map(|_| rng.u8(..)).collect();
                ("screenshot.png", "image/png", content)
            }
        });
        let html = rng.u8(..10) < 3;
        let latin1 = !html && rng.u8(..20) == 0;
        let raw = render(&headers, &body, html, latin1, attachment, &mut rng);
        thread.message_ids.push(message_id);
        thread.last_body = body;
        mails.push(GeneratedMail {
            raw,
            thread: thread_index,
            starts_thread: !reply,
        });
    }
    mails
}

/// Writes `mails` as an mbox file (mboxrd: a line that starts with `From `, after any number
/// of `>`, gains one more `>`), which `helpdesk ingest` reads back byte for byte.
pub fn write_mbox(mails: &[GeneratedMail], out: &mut impl std::io::Write) -> std::io::Result<()> {
    for (index, mail) in mails.iter().enumerate() {
        writeln!(
            out,
            "From corpus-{index}@helpdesk.example Thu Jan  1 00:00:00 2026"
        )?;
        for line in mail.raw.split_inclusive(|byte| *byte == b'\n') {
            let quoted = line.iter().position(|byte| *byte != b'>');
            if quoted.is_some_and(|at| line[at..].starts_with(b"From ")) {
                out.write_all(b">")?;
            }
            out.write_all(line)?;
        }
        if !mail.raw.ends_with(b"\n") {
            out.write_all(b"\r\n")?;
        }
        // The blank line that ends a message in an mbox is not part of it.
        out.write_all(if mail.raw.ends_with(b"\r\n") {
            b"\r\n"
        } else {
            b"\n"
        })?;
    }
    Ok(())
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn customer_identity(customer: usize) -> (String, String) {
    let first = FIRST_NAMES[customer % FIRST_NAMES.len()];
    let last = LAST_NAMES[(customer / FIRST_NAMES.len()) % LAST_NAMES.len()];
    let domain = DOMAINS[customer % DOMAINS.len()];
    (
        format!("{first} {last}"),
        format!(
            "{}.{}{customer}@{domain}",
            first.to_lowercase(),
            last.to_lowercase()
        ),
    )
}

fn render(
    headers: &str,
    body: &str,
    html: bool,
    latin1: bool,
    attachment: Option<(&str, &str, Vec<u8>)>,
    rng: &mut fastrand::Rng,
) -> Vec<u8> {
    let boundary = format!("=_b{:016x}", rng.u64(..));
    let alt_boundary = format!("=_a{:016x}", rng.u64(..));
    let text_part = if latin1 {
        // "Grüße" in quoted-printable Latin-1, as older clients still send.
        format!(
            "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}\r\nGr=FC=DFe\r\n",
            body.replace('\n', "\r\n")
        )
    } else {
        format!(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}",
            body.replace('\n', "\r\n")
        )
    };
    let body_part = if html {
        let paragraphs: String = body
            .split("\n\n")
            .map(|p| format!("<p>{}</p>", p.replace('\n', "<br>")))
            .collect();
        format!(
            "Content-Type: multipart/alternative; boundary=\"{alt_boundary}\"\r\n\r\n\
             --{alt_boundary}\r\n{text_part}\r\n--{alt_boundary}\r\n\
             Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>{paragraphs}</body></html>\r\n\
             --{alt_boundary}--\r\n"
        )
    } else {
        text_part
    };
    let mut raw = String::from(headers);
    match attachment {
        None => raw.push_str(&body_part),
        Some((filename, content_type, content)) => {
            let _ = write!(
                raw,
                "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
                 --{boundary}\r\n{body_part}\r\n--{boundary}\r\n\
                 Content-Type: {content_type}; name=\"{filename}\"\r\n\
                 Content-Disposition: attachment; filename=\"{filename}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n"
            );
            raw.push_str(&base64_lines(&content));
            let _ = write!(raw, "--{boundary}--\r\n");
        }
    }
    raw.into_bytes()
}

/// Base64 in 76-character lines, as MIME wants it.
fn base64_lines(content: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(content.len() * 4 / 3 + content.len() / 57 * 2 + 4);
    for line in content.chunks(57) {
        for chunk in line.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            out.push(ALPHABET[(n >> 18) as usize & 63] as char);
            out.push(ALPHABET[(n >> 12) as usize & 63] as char);
            out.push(if chunk.len() > 1 {
                ALPHABET[(n >> 6) as usize & 63] as char
            } else {
                '='
            });
            out.push(if chunk.len() > 2 {
                ALPHABET[n as usize & 63] as char
            } else {
                '='
            });
        }
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_as_an_mbox_reads_back_byte_for_byte() {
        let mut mails = generate(&CorpusSpec {
            messages: 300,
            ..CorpusSpec::default()
        });
        let quoted = b"Subject: quoting\r\n\r\nFrom here on\r\n>From there\r\n".to_vec();
        mails.push(GeneratedMail {
            raw: quoted,
            thread: 0,
            starts_thread: true,
        });
        let mut mbox = Vec::new();
        write_mbox(&mails, &mut mbox).expect("written");
        let read: Vec<Vec<u8>> = crate::ingest::MboxReader::new(&mbox[..], u64::MAX)
            .map(|mail| match mail.expect("read") {
                helpdesk_email::RawMail::Whole(raw) => raw,
                other => panic!("cut: {other:?}"),
            })
            .collect();
        assert_eq!(read.len(), mails.len());
        for (read, mail) in read.iter().zip(&mails) {
            assert_eq!(
                String::from_utf8_lossy(read),
                String::from_utf8_lossy(&mail.raw)
            );
        }
    }

    #[test]
    fn corpus_has_the_asked_shape_and_is_deterministic() {
        let spec = CorpusSpec {
            messages: 3000,
            ..CorpusSpec::default()
        };
        let first = generate(&spec);
        let second = generate(&spec);
        assert_eq!(first.len(), 3000);
        assert!(first.iter().zip(&second).all(|(a, b)| a.raw == b.raw));
        let replies = first.iter().filter(|mail| !mail.starts_thread).count();
        assert!(
            (850..1150).contains(&replies),
            "about a third are replies: {replies}"
        );
        let with_attachments = first
            .iter()
            .filter(|mail| mail.raw.windows(20).any(|w| w == b"Content-Disposition:"))
            .count();
        assert!((200..400).contains(&with_attachments), "{with_attachments}");
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64_lines(b"Man"), "TWFu\r\n");
        assert_eq!(base64_lines(b"Ma"), "TWE=\r\n");
        assert_eq!(base64_lines(b"M"), "TQ==\r\n");
    }
}
