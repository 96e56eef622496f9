//! Parsing real-world shaped mail from `tests/fixtures/` into inbound messages.
//! (Long because it is one fixture-driven case per kind of real-world mail; each is short.)

use chrono::{TimeZone, Utc};
use helpdesk_channel::{ChannelKind, InboundMessage};
use helpdesk_email::{ParseError, fallback_message_id, parse_message};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn parse_fixture(name: &str) -> InboundMessage {
    parse_message(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    for &b in raw {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[test]
fn plain_text_mail() {
    let raw = fixture("plain.eml");
    let m = parse_message(&raw).unwrap();
    assert_eq!(m.channel, ChannelKind::Email);
    assert_eq!(m.external_id, "plain-1@mail.example.com");
    assert_eq!(m.sender.channel, ChannelKind::Email);
    assert_eq!(m.sender.address, "ada.lovelace@example.com");
    assert_eq!(m.sender.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(m.subject.as_deref(), Some("Printer on floor 3 is jammed"));
    assert_eq!(
        m.text,
        "Hello,\n\nthe printer on floor 3 is jammed again.\n\nAda\n"
    );
    assert_eq!(m.html, None);
    assert!(m.attachments.is_empty());
    assert_eq!(m.thread.in_reply_to, Vec::<String>::new());
    assert_eq!(m.thread.references, Vec::<String>::new());
    assert_eq!(m.thread.ticket_number, None);
    assert!(!m.automation.auto_reply);
    assert!(!m.automation.bounce);
    assert_eq!(
        m.sent_at,
        Some(Utc.with_ymd_and_hms(2024, 5, 14, 7, 30, 0).unwrap())
    );
    assert_eq!(m.raw, raw);
}

#[test]
fn multipart_alternative_keeps_text_and_sanitized_html() {
    let m = parse_fixture("alternative.eml");
    assert_eq!(m.sender.address, "grace@navy.example");
    assert_eq!(m.sender.display_name.as_deref(), Some("Grace Hopper"));
    assert_eq!(m.text, "Does the compiler support COBOL?");
    assert_eq!(
        m.html.as_deref(),
        Some("<p>Does the compiler support <b>COBOL</b>?</p>")
    );
    assert!(m.attachments.is_empty());
    // -0400 is four hours behind UTC.
    assert_eq!(
        m.sent_at,
        Some(Utc.with_ymd_and_hms(2024, 5, 15, 18, 5, 10).unwrap())
    );
}

#[test]
fn html_only_mail_derives_text_and_sanitizes_html() {
    let m = parse_fixture("html_only.eml");
    assert_eq!(m.text, "Please reset my password.\n Thanks\n");
    let html = m.html.expect("html body");
    assert_eq!(
        html,
        "\n<p>Please <a href=\"https://example.com/reset\" rel=\"noopener noreferrer\">reset</a> my password.</p>\n\n<p>Thanks</p>\n\n"
    );
    for removed in [
        "<script",
        "onclick",
        "onmouseover",
        "evil.example",
        "<style",
        "color: red",
    ] {
        assert!(!html.contains(removed), "{removed} survived: {html}");
    }
}

#[test]
fn iso_8859_1_quoted_printable_and_rfc2047_headers() {
    let m = parse_fixture("latin1_qp.eml");
    assert_eq!(m.subject.as_deref(), Some("Grüße aus München"));
    assert_eq!(m.sender.address, "juergen.mueller@example.de");
    assert_eq!(m.sender.display_name.as_deref(), Some("Jürgen Müller"));
    // The soft line break ("d=\n") joins the word again.
    assert_eq!(
        m.text,
        "Der Drucker im Büro ist kaputt. Schöne Grüße, ein sehr langer Satz, der umbrochen wird.\n"
    );
    assert_eq!(
        m.sent_at,
        Some(Utc.with_ymd_and_hms(2024, 5, 25, 14, 45, 0).unwrap())
    );
}

#[test]
fn koi8_r_base64_body_and_encoded_words() {
    let m = parse_fixture("koi8r.eml");
    assert_eq!(m.subject.as_deref(), Some("Принтер"));
    assert_eq!(m.sender.display_name.as_deref(), Some("Иван Петров"));
    assert_eq!(m.sender.address, "ivan@example.ru");
    assert_eq!(m.text, "Привет! Принтер не работает.\n");
}

#[test]
fn shift_jis_8bit_body_and_iso_2022_jp_subject() {
    let m = parse_fixture("shift_jis.eml");
    assert_eq!(m.subject.as_deref(), Some("プリンター"));
    assert_eq!(m.text, "プリンターが壊れました。\n");
    assert_eq!(m.sender.display_name, None);
    // No Date header.
    assert_eq!(m.sent_at, None);
}

#[test]
fn multipart_mixed_with_pdf_and_inline_image() {
    let m = parse_fixture("mixed.eml");
    assert_eq!(m.text, "See the invoice attached. Logo below.");
    // The cid: source survives sanitizing so the image can be resolved later.
    assert_eq!(
        m.html.as_deref(),
        Some(
            r#"<p>See the invoice attached. Logo below.</p><img src="cid:logo@apollo.example" alt="logo">"#
        )
    );
    assert_eq!(m.attachments.len(), 3);

    let logo = &m.attachments[0];
    assert_eq!(logo.filename, "attachment-1.png");
    assert_eq!(logo.content_type, "image/png");
    assert!(logo.inline);
    assert_eq!(logo.content_id.as_deref(), Some("logo@apollo.example"));
    assert_eq!(logo.content.len(), 70);
    assert_eq!(&logo.content[..8], b"\x89PNG\r\n\x1a\n");

    let pdf = &m.attachments[1];
    assert_eq!(pdf.filename, "invoice 2024-05.pdf");
    assert_eq!(pdf.content_type, "application/pdf");
    assert!(!pdf.inline);
    assert_eq!(pdf.content_id, None);
    assert_eq!(
        pdf.content,
        "%PDF-1.4\n%äüöß\n1 0 obj\n<</Type/Catalog>>\nendobj\n%%EOF\n".as_bytes()
    );

    let unnamed = &m.attachments[2];
    assert_eq!(unnamed.filename, "attachment-3");
    assert_eq!(unnamed.content_type, "application/octet-stream");
    assert!(!unnamed.inline);
    assert_eq!(unnamed.content, [0, 1, 2, 3, 4, 5]);
}

#[test]
fn forwarded_message_becomes_an_eml_attachment() {
    let m = parse_fixture("forwarded.eml");
    assert_eq!(m.text, "See the message below.");
    assert_eq!(m.attachments.len(), 1);
    let eml = &m.attachments[0];
    assert_eq!(eml.filename, "forwarded-message.eml");
    assert_eq!(eml.content_type, "message/rfc822");
    assert!(!eml.inline);
    assert_eq!(
        String::from_utf8(eml.content.clone()).unwrap(),
        "From: Dennis Ritchie <dmr@bell.example>\nTo: ken@bell.example\nSubject: Original problem\nMessage-ID: <orig-1@bell.example>\n\nThe terminal prints garbage."
    );
    // The forwarded message's own headers do not leak into the outer one.
    assert_eq!(m.external_id, "fwd-1@bell.example");
    assert_eq!(m.sender.address, "ken@bell.example");

    // The attached message parses as a message in its own right.
    let inner = parse_message(&eml.content).unwrap();
    assert_eq!(inner.external_id, "orig-1@bell.example");
    assert_eq!(inner.text, "The terminal prints garbage.");
}

#[test]
fn base64_encoded_forwarded_message_is_decoded() {
    let raw = b"From: ken@bell.example\nMessage-ID: <fwd-2@bell.example>\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee below\n--b\nContent-Type: message/rfc822; name=\"problem.eml\"\nContent-Transfer-Encoding: base64\n\nRnJvbTogZG1yQGJlbGwuZXhhbXBsZQpTdWJqZWN0OiBIaQoKQm9keQo=\n--b--\n";
    let m = parse_message(raw).unwrap();
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].filename, "problem.eml");
    assert_eq!(m.attachments[0].content_type, "message/rfc822");
    assert_eq!(
        m.attachments[0].content,
        b"From: dmr@bell.example\nSubject: Hi\n\nBody\n"
    );
}

#[test]
fn missing_message_id_gets_a_stable_fallback() {
    let raw = fixture("no_message_id.eml");
    let first = parse_message(&raw).unwrap();
    let second = parse_message(&raw).unwrap();
    assert_eq!(
        first.external_id,
        "27117a7535ba6b3d1bd4bd4e6c66c2c0802dfeec88623189ea187d4db4775477@generated.helpdesk.invalid"
    );
    assert_eq!(first.external_id, second.external_id);
    assert_eq!(first.external_id, fallback_message_id(&raw));

    let mut other = raw.clone();
    other.extend_from_slice(b"P.S. one more line\n");
    let third = parse_message(&other).unwrap();
    assert_ne!(third.external_id, first.external_id);
    assert!(third.external_id.ends_with("@generated.helpdesk.invalid"));
    assert_eq!(
        third.external_id.len(),
        64 + "@generated.helpdesk.invalid".len()
    );
}

#[test]
fn empty_message_id_gets_the_fallback() {
    let raw = b"From: a@example.com\nMessage-ID: <>\n\nhi\n";
    assert_eq!(
        parse_message(raw).unwrap().external_id,
        fallback_message_id(raw)
    );
}

#[test]
fn fallback_message_id_is_sha256_of_the_bytes() {
    assert_eq!(
        fallback_message_id(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855@generated.helpdesk.invalid"
    );
}

#[test]
fn in_reply_to_and_references_in_order_and_deduplicated() {
    let m = parse_fixture("reply.eml");
    assert_eq!(m.thread.in_reply_to, ["ticket-1042-3@helpdesk.example"]);
    assert_eq!(
        m.thread.references,
        [
            "plain-1@mail.example.com",
            "ticket-1042-1@helpdesk.example",
            "ticket-1042-3@helpdesk.example",
        ]
    );
    assert_eq!(
        m.subject.as_deref(),
        Some("Re: [#1042] Printer on floor 3 is jammed")
    );
    assert_eq!(m.thread.ticket_number, Some(1042));
    assert_eq!(m.thread.conversation, None);
    assert_eq!(m.thread.reply_to, None);
}

#[test]
fn subject_without_tag_has_no_ticket_number() {
    let m = parse_message(b"From: a@example.com\nSubject: Printer #1042\n\nx\n").unwrap();
    assert_eq!(m.thread.ticket_number, None);
    let m = parse_message(b"From: a@example.com\nSubject: AW: [#77] Drucker\n\nx\n").unwrap();
    assert_eq!(m.thread.ticket_number, Some(77));
}

#[test]
fn auto_submitted_marks_an_auto_reply() {
    let m = parse_fixture("autoreply.eml");
    assert!(m.automation.auto_reply);
    assert!(!m.automation.bounce);
    assert_eq!(m.thread.ticket_number, Some(7));
}

#[test]
fn auto_reply_headers_and_their_negatives() {
    let marked = |headers: &str| {
        let raw = format!("From: a@example.com\n{headers}\n\nbody\n");
        parse_message(raw.as_bytes()).unwrap().automation.auto_reply
    };
    assert!(marked("Precedence: bulk"));
    assert!(marked("Precedence: Junk"));
    assert!(marked("Precedence: list"));
    assert!(marked("Precedence: auto_reply"));
    assert!(marked("Auto-Submitted: auto-generated; type=foo"));
    assert!(marked("X-Autoreply: yes"));
    assert!(marked("X-Autorespond: Out of office"));
    assert!(marked("X-Auto-Response-Suppress: DR, OOF, AutoReply"));
    assert!(marked("List-Id: Users <users.lists.example.org>"));
    assert!(marked("List-Unsubscribe: <mailto:leave@lists.example.org>"));

    assert!(!marked("Auto-Submitted: no"));
    assert!(!marked("Auto-Submitted: No"));
    assert!(!marked("Precedence: first-class"));
    assert!(!marked("X-Auto-Response-Suppress: DR, RN"));
    assert!(!marked("X-Mailer: Thunderbird"));
}

#[test]
fn delivery_status_bounce_from_mailer_daemon() {
    let m = parse_fixture("bounce.eml");
    assert!(m.automation.bounce);
    assert!(m.automation.auto_reply);
    // A null Return-Path does not take the sender away: From still names the daemon.
    assert_eq!(m.sender.address, "mailer-daemon@mx.example.net");
    assert_eq!(
        m.sender.display_name.as_deref(),
        Some("Mail Delivery System")
    );
    assert_eq!(
        m.text,
        "This is the mail system at host mx.example.net.\nI'm sorry to have to inform you that your message could not be delivered."
    );
    let names: Vec<_> = m.attachments.iter().map(|a| a.filename.as_str()).collect();
    assert_eq!(names, ["attachment-1.txt", "forwarded-message.eml"]);
    let types: Vec<_> = m
        .attachments
        .iter()
        .map(|a| a.content_type.as_str())
        .collect();
    assert_eq!(types, ["message/delivery-status", "message/rfc822"]);
    // The bounced message (ours) keeps its ticket tag for intake to find.
    assert!(
        String::from_utf8_lossy(&m.attachments[1].content).contains("Subject: [#1042] Your ticket")
    );
}

#[test]
fn a_bounce_points_to_the_mail_that_came_back() {
    let m = parse_fixture("bounce.eml");
    assert_eq!(m.thread.references, ["ticket-1042-4@helpdesk.example"]);
    assert_eq!(m.thread.ticket_number, Some(1042));

    // qmail and others quote the returned mail in their text instead of attaching it.
    let quoted = "From: MAILER-DAEMON@mail.example.com\nSubject: failure notice\nMessage-ID: <q-1@mail.example.com>\n\nHi. This is the qmail-send program.\n\n--- Below this line is a copy of the message.\n\nMessage-Id: <Reply-7@helpdesk.example>\nSubject: Re: [#7] VPN\n\nHello\n";
    let m = parse_message(quoted.as_bytes()).unwrap();
    assert!(m.automation.bounce);
    assert_eq!(m.thread.references, ["Reply-7@helpdesk.example"]);
    assert_eq!(m.thread.ticket_number, Some(7));
}

#[test]
fn bounce_marks_each_on_its_own() {
    let bounce = |raw: &str| parse_message(raw.as_bytes()).unwrap().automation.bounce;
    assert!(bounce("Return-Path: <>\nFrom: someone@example.com\n\nx\n"));
    assert!(bounce(
        "From: postmaster@mx.example.com\nSubject: Delivery Status Notification (Failure)\n\nx\n"
    ));
    assert!(bounce(
        "From: a@example.com\nContent-Type: multipart/report; report-type=\"delivery-status\"; boundary=b\n\n--b\nContent-Type: text/plain\n\nfailed\n--b--\n"
    ));
    // A daemon writing about something else, or a person mentioning failures, is no bounce.
    assert!(!bounce(
        "From: postmaster@mx.example.com\nSubject: Scheduled maintenance\n\nx\n"
    ));
    assert!(!bounce(
        "From: a@example.com\nSubject: Undeliverable: parcel\n\nx\n"
    ));
}

#[test]
fn crlf_line_endings_are_normalised() {
    let lf = parse_fixture("plain.eml");
    let raw = to_crlf(&fixture("plain.eml"));
    let m = parse_message(&raw).unwrap();
    assert_eq!(
        m.text,
        "Hello,\n\nthe printer on floor 3 is jammed again.\n\nAda\n"
    );
    assert_eq!(m.subject.as_deref(), Some("Printer on floor 3 is jammed"));
    assert_eq!(m.external_id, lf.external_id);
    assert_eq!(m.sender, lf.sender);
    assert_eq!(m.sent_at, lf.sent_at);
    assert_eq!(m.raw, raw);

    let mixed = parse_message(&to_crlf(&fixture("mixed.eml"))).unwrap();
    assert_eq!(mixed.text, "See the invoice attached. Logo below.");
    assert_eq!(mixed.attachments.len(), 3);
    assert_eq!(mixed.attachments[1].filename, "invoice 2024-05.pdf");
    assert_eq!(
        mixed.attachments[1].content,
        parse_fixture("mixed.eml").attachments[1].content
    );
}

#[test]
fn sender_falls_back_through_sender_reply_to_and_return_path() {
    let sender = |raw: &str| parse_message(raw.as_bytes()).unwrap().sender;

    let s = sender("From: undisclosed\nSender: =?UTF-8?Q?Bj=C3=B6rn?= <Bjorn@Example.SE>\n\nx\n");
    assert_eq!(s.address, "bjorn@example.se");
    assert_eq!(s.display_name.as_deref(), Some("Björn"));

    let s = sender("Reply-To: Help <  Help@Example.org >\nSubject: x\n\nx\n");
    assert_eq!(s.address, "help@example.org");
    assert_eq!(s.display_name.as_deref(), Some("Help"));

    let s = sender("Return-Path: <Bounces@Example.net>\nSubject: x\n\nx\n");
    assert_eq!(s.address, "bounces@example.net");
    assert_eq!(s.display_name, None);

    let s = sender("From: \"\" <plain@example.com>\n\nx\n");
    assert_eq!(s.address, "plain@example.com");
    assert_eq!(s.display_name, None);
}

#[test]
fn message_without_body_has_empty_text() {
    let m = parse_message(b"From: a@example.com\nSubject:   \n").unwrap();
    assert_eq!(m.text, "");
    assert_eq!(m.html, None);
    assert_eq!(m.subject, None);
    assert!(m.attachments.is_empty());
}

#[test]
fn invalid_date_is_none() {
    let m = parse_message(b"From: a@example.com\nDate: Feb 31 2024 99:99\n\nx\n").unwrap();
    assert_eq!(m.sent_at, None);
}

#[test]
fn empty_input_is_an_error() {
    assert_eq!(parse_message(b"").unwrap_err(), ParseError::Empty);
    assert_eq!(parse_message(b" \r\n\t\n").unwrap_err(), ParseError::Empty);
    assert_eq!(ParseError::Empty.to_string(), "empty message");
}

#[test]
fn garbage_is_not_rfc822() {
    for garbage in [
        &b"hello world"[..],
        b"\x00\x01\x02\xff\xfe\xfd",
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00",
        b"just a line\n\nand a body\n",
        b"no colon here\nnor here\n",
        b"\n\nFrom: a@example.com\n",
        b"has space: in name\n\nbody",
    ] {
        assert_eq!(
            parse_message(garbage).unwrap_err(),
            ParseError::NotRfc822,
            "{garbage:?}"
        );
    }
    assert_eq!(
        ParseError::NotRfc822.to_string(),
        "not an RFC 822 message: no headers"
    );
}

#[test]
fn missing_sender_is_an_error() {
    for raw in [
        &b"To: support@helpdesk.example\nSubject: who am I\n\nbody\n"[..],
        b"From: Nobody\nSubject: x\n\nbody\n",
        b"From: @\nSender: local-only\nReply-To: <>\n\nbody\n",
        // A null Return-Path alone names no one.
        b"Return-Path: <>\nSubject: bounce\n\nbody\n",
    ] {
        assert_eq!(
            parse_message(raw).unwrap_err(),
            ParseError::NoSender,
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
    assert_eq!(
        ParseError::NoSender.to_string(),
        "no sender address (From, Sender, Reply-To and Return-Path are all missing or invalid)"
    );
}

#[test]
fn attachment_names_are_cleaned() {
    let raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=\"../../etc/passwd\"\n\nx\n--b\nContent-Type: image/jpeg\nContent-Disposition: attachment; filename=\"..\"\n\ny\n--b\nContent-Type: TEXT/CSV\nContent-Disposition: inline; filename=\"C:\\\\tmp\\\\report.csv\"\n\na,b\n--b--\n";
    let m = parse_message(raw).unwrap();
    let names: Vec<_> = m.attachments.iter().map(|a| a.filename.as_str()).collect();
    assert_eq!(names, ["passwd", "attachment-2.jpg", "report.csv"]);
    let types: Vec<_> = m
        .attachments
        .iter()
        .map(|a| a.content_type.as_str())
        .collect();
    assert_eq!(types, ["application/pdf", "image/jpeg", "text/csv"]);
    let inline: Vec<_> = m.attachments.iter().map(|a| a.inline).collect();
    assert_eq!(inline, [false, false, true]);
}

#[test]
fn malformed_nesting_that_trips_the_mime_parser_still_yields_the_headers() {
    // Found by fuzzing: a broken message/rfc822 part inside multipart/mixed makes
    // mail-parser hit a debug assertion. The sender must not be lost for it.
    let m = parse_fixture("malformed_nested.eml");
    assert_eq!(m.external_id, "fwd-1@bell.example");
    assert_eq!(m.sender.address, "ken@bell.example");
    assert_eq!(m.sender.display_name.as_deref(), Some("Ken Thompson"));
    assert_eq!(m.subject.as_deref(), Some("Fwd: Original problem"));
    assert_eq!(
        m.sent_at,
        Some(Utc.with_ymd_and_hms(2024, 5, 20, 12, 0, 0).unwrap())
    );
    assert_eq!(m.raw, fixture("malformed_nested.eml"));
}

/// xorshift64*: deterministic, no dependency, good enough to pick bytes to flip.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn every_prefix_of_a_multipart_mail_parses_or_errs_without_panic() {
    let raw = fixture("mixed.eml");
    let mut parsed = 0;
    for end in 0..=raw.len() {
        if parse_message(&raw[..end]).is_ok() {
            parsed += 1;
        }
    }
    // Once the From address is closed by its '>', every longer prefix is a (partial) message.
    let from_closed = raw.windows(2).position(|w| w == b"e>").unwrap() + 2;
    assert_eq!(parsed, raw.len() + 1 - from_closed);
    assert_eq!(
        parse_message(&raw[..from_closed - 1]).unwrap_err(),
        ParseError::NoSender
    );
    assert_eq!(parse_message(&raw[..3]).unwrap_err(), ParseError::NotRfc822);
}

#[test]
fn random_byte_flips_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let specials = b"\n\r:;<>=\"-\\ \t\x00\xff";
    let mut outcomes = [0usize; 2];
    for name in ["mixed.eml", "bounce.eml", "forwarded.eml", "latin1_qp.eml"] {
        let original = fixture(name);
        for _ in 0..500 {
            let mut raw = original.clone();
            for _ in 0..=rng.below(8) {
                let at = rng.below(raw.len());
                raw[at] = match rng.below(3) {
                    0 => specials[rng.below(specials.len())],
                    1 => rng.next() as u8,
                    _ => raw[rng.below(raw.len())],
                };
            }
            if rng.below(4) == 0 {
                raw.truncate(rng.below(raw.len()));
            }
            match parse_message(&raw) {
                Ok(m) => {
                    assert!(!m.external_id.is_empty());
                    assert!(m.sender.address.contains('@'));
                    assert_eq!(m.raw, raw);
                    outcomes[0] += 1;
                }
                Err(_) => outcomes[1] += 1,
            }
        }
    }
    assert_eq!(outcomes[0] + outcomes[1], 2000);
    // Most flips leave a readable mail behind.
    assert!(outcomes[0] > 1000, "{outcomes:?}");
}

#[test]
fn the_header_section_ends_with_its_blank_line_and_is_bounded() {
    use helpdesk_email::{MAX_HEADER_BYTES, header_section};
    let raw = b"From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n\r\nmore";
    assert_eq!(
        header_section(raw),
        b"From: a@example.org\r\nSubject: x\r\n\r\n"
    );
    assert_eq!(
        header_section(b"Subject: x\nX: y\n\nbody"),
        b"Subject: x\nX: y\n\n"
    );
    assert_eq!(header_section(b"Subject: no body"), b"Subject: no body");
    let many = "X-Filler: 0123456789\r\n".repeat(MAX_HEADER_BYTES / 10);
    let cut = header_section(many.as_bytes());
    assert!(cut.len() <= MAX_HEADER_BYTES && cut.ends_with(b"\r\n"));
    let endless = "x".repeat(MAX_HEADER_BYTES * 2);
    assert_eq!(header_section(endless.as_bytes()).len(), MAX_HEADER_BYTES);
}

#[test]
fn recipients_are_the_to_and_cc_addresses_lower_cased() {
    let raw = b"From: Ada <ada@example.org>\r\n\
        To: Support <support@helpdesk.example>, \"Grace H.\" <Grace@Navy.Example>\r\n\
        Cc: team: alan@example.org, linus@example.org;, grace@navy.example\r\n\
        Cc: Margaret <margaret@example.org>\r\n\
        Subject: hi\r\n\r\nbody\r\n";
    assert_eq!(
        helpdesk_email::recipients(raw),
        vec![
            "support@helpdesk.example",
            "grace@navy.example",
            "alan@example.org",
            "linus@example.org",
            "margaret@example.org",
        ]
    );
    assert!(helpdesk_email::recipients(b"\x00\x01 not mail").is_empty());
    assert!(helpdesk_email::recipients(b"From: ada@example.org\r\n\r\nno recipients").is_empty());
}
