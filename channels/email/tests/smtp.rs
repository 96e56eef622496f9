//! SMTP delivery against an SMTP server in the test process (see `helpdesk_testkit::smtp`);
//! what it receives is read back with this crate's own `parse_message`.

use std::time::Duration;

use helpdesk_channel::{
    Attachment, ChannelKind, Deliver, DeliveryError, Identity, OutboundMessage, ThreadHints,
};
use helpdesk_email::parse_message;
use helpdesk_email::smtp::{
    BuildError, Kind, Originator, SmtpOptions, SmtpSender, SmtpSettings, SmtpTls, build_message,
    tagged_subject,
};
use helpdesk_testkit::smtp::{Config, SmtpServer, Stage, TlsMode};
use mail_parser::{MessageParser, MimeHeaders};

const PDF: &[u8] = b"%PDF-1.4\n\x00\x01\x02\xff\xfe binary \r\n.\r\n tail";

fn settings(server: &SmtpServer, tls: SmtpTls) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".to_owned(),
        port: server.addr.port(),
        tls,
        username: String::new(),
        password: String::new(),
        from_address: "support@example.org".to_owned(),
        from_name: Some("Example Support".to_owned()),
    }
}

fn options(server: &SmtpServer) -> SmtpOptions {
    SmtpOptions {
        extra_root_certificates_pem: vec![server.certificate_pem.clone().into_bytes()],
        only_extra_roots: true,
        timeout: Duration::from_secs(10),
    }
}

fn reply() -> OutboundMessage {
    OutboundMessage {
        channel: ChannelKind::Email,
        external_id: Some("reply-1@example.org".to_owned()),
        ticket_number: 1042,
        recipient: Identity {
            channel: ChannelKind::Email,
            address: "ada@example.com".to_owned(),
            display_name: Some("Ada Lovelace".to_owned()),
            handle: None,
        },
        subject: "Re: Printer prints blank pages".to_owned(),
        text: "Hello Ada,\n\nplease restart the printer.\n.hidden line starting with a dot\n\nÜmlauts work too.".to_owned(),
        html: Some("<p>Hello Ada,</p><p>please <b>restart</b> the printer.</p>".to_owned()),
        attachments: vec![Attachment {
            filename: "manual.pdf".to_owned(),
            content_type: "application/pdf".to_owned(),
            content: PDF.to_vec(),
            inline: false,
            content_id: None,
        }],
        thread: ThreadHints {
            in_reply_to: vec!["customer-2@example.com".to_owned()],
            references: vec![
                "customer-1@example.com".to_owned(),
                "ack-1@example.org".to_owned(),
            ],
            ..ThreadHints::default()
        },
        automatic: false,
        choices: Vec::new(),
    }
}

async fn send(server: &SmtpServer, message: &OutboundMessage) -> Result<String, DeliveryError> {
    let sender = SmtpSender::with_options(&settings(server, SmtpTls::None), options(server))
        .expect("sender");
    sender.deliver(message).await.map(|d| d.external_id)
}

#[tokio::test]
async fn delivers_a_reply_with_threading_headers_bodies_and_attachment() {
    let server = SmtpServer::start(Config::default()).await;
    let id = send(&server, &reply()).await.expect("delivered");
    assert_eq!(id, "reply-1@example.org");

    let received = server.received();
    assert_eq!(received.len(), 1);
    let received = &received[0];
    assert_eq!(received.mail_from, "support@example.org");
    assert_eq!(received.rcpt_to, ["ada@example.com"]);
    assert!(!received.tls);
    assert_eq!(received.authenticated_as, None);

    let parsed = parse_message(&received.data).expect("parses");
    assert_eq!(parsed.external_id, "reply-1@example.org");
    assert_eq!(parsed.sender.address, "support@example.org");
    assert_eq!(
        parsed.sender.display_name.as_deref(),
        Some("Example Support")
    );
    assert_eq!(
        parsed.subject.as_deref(),
        Some("Re: [#1042] Printer prints blank pages")
    );
    assert_eq!(parsed.thread.ticket_number, Some(1042));
    assert_eq!(parsed.thread.in_reply_to, ["customer-2@example.com"]);
    assert_eq!(
        parsed.thread.references,
        [
            "customer-1@example.com",
            "ack-1@example.org",
            "customer-2@example.com"
        ]
    );
    assert_eq!(parsed.text.trim_end(), reply().text);
    let html = parsed.html.expect("html body");
    assert!(html.contains("<b>restart</b>"), "{html}");
    assert!(!parsed.automation.auto_reply);
    assert_eq!(parsed.attachments.len(), 1);
    let attachment = &parsed.attachments[0];
    assert_eq!(attachment.filename, "manual.pdf");
    assert_eq!(attachment.content_type, "application/pdf");
    assert_eq!(attachment.content, PDF);

    // To: is not part of the neutral message; read it with mail-parser directly.
    let raw = MessageParser::default()
        .parse(&received.data)
        .expect("mail-parser");
    let to = raw.to().and_then(|to| to.first()).expect("To:");
    assert_eq!(to.address(), Some("ada@example.com"));
    assert_eq!(to.name(), Some("Ada Lovelace"));
    assert!(
        raw.content_type()
            .is_some_and(|ct| ct.subtype() == Some("mixed")),
        "top level is multipart/mixed"
    );
}

#[tokio::test]
async fn acknowledgement_is_marked_as_automatic() {
    let server = SmtpServer::start(Config::default()).await;
    let sender = SmtpSender::with_options(&settings(&server, SmtpTls::None), options(&server))
        .expect("sender");
    let message = OutboundMessage {
        external_id: None,
        subject: "Drucker: Seiten bleiben weiß".to_owned(),
        recipient: Identity {
            channel: ChannelKind::Email,
            address: "joerg@example.de".to_owned(),
            display_name: Some("Jörg Müller".to_owned()),
            handle: None,
        },
        html: None,
        attachments: Vec::new(),
        thread: ThreadHints {
            in_reply_to: vec!["customer-1@example.com".to_owned()],
            ..ThreadHints::default()
        },
        // Automatic mail goes out as an acknowledgement, marked as such.
        automatic: true,
        choices: Vec::new(),
        ..reply()
    };
    let delivered = sender.deliver(&message).await.expect("delivered");

    let received = server.received();
    let raw = String::from_utf8_lossy(&received[0].data).into_owned();
    assert!(raw.contains("Auto-Submitted: auto-replied\r\n"), "{raw}");
    let parsed = parse_message(&received[0].data).expect("parses");
    assert!(parsed.automation.auto_reply);
    assert_eq!(
        parsed.subject.as_deref(),
        Some("[#1042] Drucker: Seiten bleiben weiß")
    );
    let to = MessageParser::default()
        .parse(&received[0].data)
        .and_then(|m| {
            m.to()
                .and_then(|to| to.first())
                .and_then(|a| a.name().map(str::to_owned))
        });
    assert_eq!(to.as_deref(), Some("Jörg Müller"));
    assert_eq!(parsed.external_id, delivered.external_id);
    assert!(
        delivered.external_id.ends_with("@example.org"),
        "generated id uses the From domain: {}",
        delivered.external_id
    );
    assert_eq!(parsed.thread.in_reply_to, ["customer-1@example.com"]);
    assert_eq!(parsed.thread.references, ["customer-1@example.com"]);
    assert!(parsed.html.is_none());
    assert!(parsed.attachments.is_empty());
}

#[tokio::test]
async fn customer_answer_to_our_reply_threads_back() {
    let server = SmtpServer::start(Config::default()).await;
    let ours = send(&server, &reply()).await.expect("delivered");
    let sent = parse_message(&server.received()[0].data).expect("parses");

    // What the customer's client writes when answering our mail.
    let answer = format!(
        "From: Ada Lovelace <ada@example.com>\r\n\
         To: Example Support <support@example.org>\r\n\
         Subject: Re: {subject}\r\n\
         Message-ID: <customer-3@example.com>\r\n\
         In-Reply-To: <{ours}>\r\n\
         References: {references} <{ours}>\r\n\
         Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n\
         \r\n\
         It works now, thanks!\r\n",
        subject = sent.subject.as_deref().unwrap_or_default(),
        references = sent
            .thread
            .references
            .iter()
            .map(|id| format!("<{id}>"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    let parsed = parse_message(answer.as_bytes()).expect("parses");
    assert_eq!(parsed.thread.in_reply_to, std::slice::from_ref(&ours));
    assert_eq!(parsed.thread.references.last(), Some(&ours));
    assert_eq!(parsed.thread.ticket_number, Some(1042));
}

#[tokio::test]
async fn transient_reply_is_a_temporary_failure() {
    let server = SmtpServer::start(Config {
        fail: Some((Stage::Data, "451 4.3.0 Try again later".to_owned())),
        ..Config::default()
    })
    .await;
    let error = send(&server, &reply()).await.expect_err("rejected");
    assert!(matches!(error, DeliveryError::Temporary(_)), "{error:?}");
    assert!(error.to_string().contains("451"), "{error}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn permanent_reply_is_a_permanent_failure() {
    let server = SmtpServer::start(Config {
        fail: Some((Stage::Rcpt, "550 5.1.1 No such user".to_owned())),
        ..Config::default()
    })
    .await;
    let error = send(&server, &reply()).await.expect_err("rejected");
    assert!(matches!(error, DeliveryError::Permanent(_)), "{error:?}");
    assert!(error.to_string().contains("No such user"), "{error}");
}

#[tokio::test]
async fn refused_connection_is_a_temporary_failure() {
    // A port nobody listens on: bound once, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let settings = SmtpSettings {
        host: "127.0.0.1".to_owned(),
        port,
        tls: SmtpTls::None,
        username: String::new(),
        password: String::new(),
        from_address: "support@example.org".to_owned(),
        from_name: None,
    };
    let sender = SmtpSender::new(&settings).expect("sender");
    let error = sender.deliver(&reply()).await.expect_err("refused");
    assert!(matches!(error, DeliveryError::Temporary(_)), "{error:?}");
}

#[tokio::test]
async fn authenticates_when_a_username_is_set() {
    let server = SmtpServer::start(Config {
        credentials: Some(("helpdesk".to_owned(), "s3cret".to_owned())),
        ..Config::default()
    })
    .await;
    let mut with_login = settings(&server, SmtpTls::None);
    with_login.username = "helpdesk".to_owned();
    with_login.password = "s3cret".to_owned();
    let sender = SmtpSender::with_options(&with_login, options(&server)).expect("sender");
    sender.deliver(&reply()).await.expect("delivered");
    assert_eq!(
        server.received()[0].authenticated_as.as_deref(),
        Some("helpdesk")
    );

    // A wrong password is the operator's to fix, not the message's fault: retry later.
    with_login.password = "wrong".to_owned();
    let sender = SmtpSender::with_options(&with_login, options(&server)).expect("sender");
    let error = sender.deliver(&reply()).await.expect_err("refused");
    assert!(matches!(error, DeliveryError::Temporary(_)), "{error:?}");
    assert!(error.to_string().contains("535"), "{error}");
}

#[tokio::test]
async fn delivers_over_starttls_and_implicit_tls() {
    for (mode, tls) in [
        (TlsMode::Starttls, SmtpTls::Starttls),
        (TlsMode::Implicit, SmtpTls::Tls),
    ] {
        let server = SmtpServer::start(Config {
            tls: mode,
            ..Config::default()
        })
        .await;
        let sender =
            SmtpSender::with_options(&settings(&server, tls), options(&server)).expect("sender");
        sender.deliver(&reply()).await.expect("delivered");
        let received = server.received();
        assert_eq!(received.len(), 1, "{tls}");
        assert!(received[0].tls, "{tls}: message came over TLS");
        let parsed = parse_message(&received[0].data).expect("parses");
        assert_eq!(parsed.external_id, "reply-1@example.org");
    }
}

#[tokio::test]
async fn untrusted_certificate_is_refused() {
    let server = SmtpServer::start(Config {
        tls: TlsMode::Starttls,
        ..Config::default()
    })
    .await;
    // Only the webpki roots: the test server's self-signed certificate is not among them.
    let sender = SmtpSender::with_options(
        &settings(&server, SmtpTls::Starttls),
        SmtpOptions {
            timeout: Duration::from_secs(10),
            ..SmtpOptions::default()
        },
    )
    .expect("sender");
    let error = sender.deliver(&reply()).await.expect_err("refused");
    assert!(matches!(error, DeliveryError::Temporary(_)), "{error:?}");
    assert!(
        error.to_string().contains("invalid peer certificate"),
        "{error}"
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn starttls_is_required_when_configured() {
    // A server that does not offer STARTTLS must not get the mail in plain text.
    let server = SmtpServer::start(Config::default()).await;
    let sender = SmtpSender::with_options(&settings(&server, SmtpTls::Starttls), options(&server))
        .expect("sender");
    let error = sender.deliver(&reply()).await.expect_err("refused");
    assert!(matches!(error, DeliveryError::Temporary(_)), "{error:?}");
    assert!(error.to_string().contains("STARTTLS"), "{error}");
    assert!(server.received().is_empty());
}

fn originator() -> Originator {
    Originator::new("support@example.org", Some("Example Support")).expect("valid From")
}

fn formatted(message: &OutboundMessage, kind: Kind) -> String {
    let (mail, _) = build_message(&originator(), message, kind).expect("builds");
    String::from_utf8(mail.formatted()).expect("ASCII mail")
}

#[test]
fn headers_of_a_built_message() {
    let raw = formatted(&reply(), Kind::Reply);
    let header_end = raw.find("\r\n\r\n").expect("header section");
    // Long headers are folded; compare them unfolded.
    let headers = raw[..header_end + 2].replace("\r\n ", " ");
    assert!(
        headers.contains("From: \"Example Support\" <support@example.org>\r\n"),
        "{headers}"
    );
    assert!(
        headers.contains("To: \"Ada Lovelace\" <ada@example.com>\r\n"),
        "{headers}"
    );
    assert!(headers.contains("Message-ID: <reply-1@example.org>\r\n"));
    assert!(headers.contains("In-Reply-To: <customer-2@example.com>\r\n"));
    assert!(
        headers.contains(
            "References: <customer-1@example.com> <ack-1@example.org> <customer-2@example.com>\r\n"
        ),
        "{headers}"
    );
    assert!(headers.contains("Subject: Re: [#1042] Printer prints blank pages\r\n"));
    assert!(headers.contains("Date: "));
    assert!(headers.contains("MIME-Version: 1.0\r\n"));
    assert!(!headers.contains("Auto-Submitted"));
    assert!(headers.contains("Content-Type: multipart/mixed;"));
    assert!(raw.contains("Content-Type: multipart/alternative;"));
    assert!(raw.contains("Content-Disposition: attachment; filename=\"manual.pdf\""));

    let ack = formatted(&reply(), Kind::Acknowledgement);
    assert!(ack.contains("\r\nAuto-Submitted: auto-replied\r\n"));
    assert!(ack.contains("\r\nX-Auto-Response-Suppress: All\r\n"));
}

#[test]
fn a_plain_reply_is_a_single_text_part() {
    let message = OutboundMessage {
        html: None,
        attachments: Vec::new(),
        thread: ThreadHints::default(),
        external_id: Some("<bracketed@example.org>".to_owned()),
        ..reply()
    };
    let (mail, id) = build_message(&originator(), &message, Kind::Reply).expect("builds");
    assert_eq!(id, "bracketed@example.org");
    let raw = String::from_utf8(mail.formatted()).expect("ASCII");
    assert!(
        raw.contains("Content-Type: text/plain; charset=utf-8\r\n"),
        "{raw}"
    );
    assert!(!raw.contains("multipart"));
    assert!(!raw.contains("In-Reply-To"));
    assert!(!raw.contains("References"));
    assert!(raw.contains("Message-ID: <bracketed@example.org>\r\n"));
}

#[test]
fn inline_images_go_next_to_the_html() {
    let message = OutboundMessage {
        html: Some("<p><img src=\"cid:logo@example.org\"></p>".to_owned()),
        attachments: vec![Attachment {
            filename: "logo.png".to_owned(),
            content_type: "image/png".to_owned(),
            content: b"\x89PNG\r\n".to_vec(),
            inline: true,
            content_id: Some("logo@example.org".to_owned()),
        }],
        ..reply()
    };
    let raw = formatted(&message, Kind::Reply);
    assert!(raw.contains("multipart/related"), "{raw}");
    assert!(raw.contains("Content-ID: <logo@example.org>"), "{raw}");
    assert!(!raw.contains("multipart/mixed"), "{raw}");
    let parsed = parse_message(raw.as_bytes()).expect("parses");
    assert_eq!(parsed.attachments.len(), 1);
    assert!(parsed.attachments[0].inline);
    assert_eq!(
        parsed.attachments[0].content_id.as_deref(),
        Some("logo@example.org")
    );
}

#[test]
fn thread_ids_are_cleaned_and_deduplicated() {
    let message = OutboundMessage {
        thread: ThreadHints {
            in_reply_to: vec!["<b@x>".to_owned(), "has space@x".to_owned()],
            references: vec!["a@x".to_owned(), "b@x".to_owned(), "".to_owned()],
            ..ThreadHints::default()
        },
        ..reply()
    };
    let raw = formatted(&message, Kind::Reply);
    assert!(raw.contains("In-Reply-To: <b@x>\r\n"), "{raw}");
    assert!(raw.contains("References: <a@x> <b@x>\r\n"), "{raw}");

    let only_references = OutboundMessage {
        thread: ThreadHints {
            references: vec!["a@x".to_owned(), "c@x".to_owned()],
            ..ThreadHints::default()
        },
        ..reply()
    };
    let raw = formatted(&only_references, Kind::Reply);
    assert!(raw.contains("In-Reply-To: <c@x>\r\n"), "{raw}");
}

#[test]
fn bad_input_is_a_build_error() {
    let bad_recipient = OutboundMessage {
        recipient: Identity {
            channel: ChannelKind::Email,
            address: "not an address".to_owned(),
            display_name: None,
            handle: None,
        },
        ..reply()
    };
    assert!(matches!(
        build_message(&originator(), &bad_recipient, Kind::Reply),
        Err(BuildError::InvalidRecipient { .. })
    ));
    let bad_id = OutboundMessage {
        external_id: Some("two words@x".to_owned()),
        ..reply()
    };
    assert!(matches!(
        build_message(&originator(), &bad_id, Kind::Reply),
        Err(BuildError::InvalidMessageId(_))
    ));
    assert!(Originator::new("no-at-sign", None).is_err());
}

#[test]
fn line_breaks_cannot_inject_headers() {
    let message = OutboundMessage {
        subject: "Printer\r\nBcc: evil@example.net".to_owned(),
        recipient: Identity {
            channel: ChannelKind::Email,
            address: "ada@example.com".to_owned(),
            display_name: Some("Ada\r\nCc: evil@example.net".to_owned()),
            handle: None,
        },
        ..reply()
    };
    let (mail, _) = build_message(&originator(), &message, Kind::Reply).expect("builds");
    assert_eq!(mail.envelope().to().len(), 1);
    let raw = String::from_utf8(mail.formatted()).expect("ASCII");
    let headers = &raw[..raw.find("\r\n\r\n").expect("header section")];
    assert!(!headers.contains("\r\nBcc:"), "{headers}");
    assert!(!headers.contains("\r\nCc:"), "{headers}");
    let parsed = parse_message(raw.as_bytes()).expect("parses");
    assert_eq!(
        parsed.subject.as_deref(),
        Some("[#1042] Printer  Bcc: evil@example.net")
    );
}

#[test]
fn subject_gets_the_ticket_tag_once() {
    assert_eq!(tagged_subject("Printer", 7), "[#7] Printer");
    assert_eq!(tagged_subject("Re: Printer", 7), "Re: [#7] Printer");
    assert_eq!(tagged_subject("AW: Re: Printer", 7), "AW: Re: [#7] Printer");
    assert_eq!(tagged_subject("Re: [#7] Printer", 7), "Re: [#7] Printer");
    assert_eq!(tagged_subject("Printer [#7]", 7), "Printer [#7]");
    // A follow-up of a closed ticket: ours must be the first tag.
    assert_eq!(
        tagged_subject("Re: [#6] Printer", 7),
        "Re: [#7] [#6] Printer"
    );
    assert_eq!(tagged_subject("", 7), "[#7]");
    assert_eq!(
        tagged_subject("Regarding printer", 7),
        "[#7] Regarding printer"
    );
}

#[test]
fn settings_debug_hides_the_password() {
    let settings = SmtpSettings {
        host: "smtp.example.org".to_owned(),
        port: 587,
        tls: SmtpTls::Starttls,
        username: "helpdesk".to_owned(),
        password: "s3cret".to_owned(),
        from_address: "support@example.org".to_owned(),
        from_name: None,
    };
    let debug = format!("{settings:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("helpdesk"));
    let sender = format!("{:?}", SmtpSender::new(&settings).expect("sender"));
    assert!(!sender.contains("s3cret"), "{sender}");
    assert_eq!("starttls".parse::<SmtpTls>(), Ok(SmtpTls::Starttls));
    assert!("ssl".parse::<SmtpTls>().is_err());
}
