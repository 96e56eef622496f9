//! Mail the helpdesk answers on its own, and mail it must not answer: the acknowledgement of a
//! new ticket (through a real SMTP conversation), loop protection, bounces of our own mail,
//! out-of-office replies, quoted text, and attachments too large to keep.

use crate::support;
use helpdesk_testkit::smtp;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{TestStore, mail};
use chrono::Utc;
use helpdesk::config::Settings;
use helpdesk::domain::{MessageKind, Status};
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::intake::autoreply::AutoReplies;
use helpdesk::intake::{Intake, Limits, Outcome};
use helpdesk::jobs::{self, deliver::Deliverers};
use helpdesk::store;
use helpdesk::store::outbound::NewReply;
use helpdesk::store::tickets::{Actor, MessageView, TicketDetail};
use helpdesk_email::smtp::{SmtpSender, SmtpSettings, SmtpTls};

const SUPPORT: &str = "support@helpdesk.example";

fn auto_replies() -> AutoReplies {
    let defaults = Settings::load_from(None, Vec::new()).expect("defaults");
    AutoReplies {
        support_address: SUPPORT.to_owned(),
        ..AutoReplies::from_settings(&defaults).expect("valid defaults")
    }
}

fn answering(db: &TestStore) -> Intake {
    db.intake.clone().with_auto_replies(auto_replies())
}

async fn created(intake: &Intake, raw: Vec<u8>) -> i64 {
    match intake.accept_email(raw).await.expect("taken in") {
        Outcome::Created { number, .. } => number.get(),
        other => panic!("expected a new ticket, got {other:?}"),
    }
}

async fn ticket(db: &TestStore, number: i64) -> TicketDetail {
    store::tickets::detail(&db.store, number.into())
        .await
        .expect("read")
        .expect("exists")
}

/// Sam, an agent, answers ticket `number` by mail; returns Sam's id and the reply's Message-ID.
async fn agent_replies(db: &TestStore, number: i64, text: &str) -> (i64, String) {
    let agent = support::plain_agent(&db.store, "sam@helpdesk.example", "Sam").await;
    let our_id = helpdesk::domain::new_mail_message_id(SUPPORT, number.into());
    helpdesk::ops::send_reply(
        &db.store,
        &NewReply {
            number: number.into(),
            agent_id: agent,
            text,
            kind: MessageKind::Public,
            external_id: Some(&our_id),
            channels_here: &[ChannelKind::Email],
            now: Utc::now(),
        },
    )
    .await
    .expect("reply");
    (agent, our_id)
}

/// The messages the helpdesk wrote on its own to the customer.
fn automatic(ticket: &TicketDetail) -> Vec<&MessageView> {
    ticket
        .messages
        .iter()
        .filter(|m| m.direction == "outbound" && m.kind == "system")
        .collect()
}

store_test! {
    #[tokio::test]
    async fn a_new_ticket_is_acknowledged_by_mail_once_and_the_answer_threads_back(db: TestStore) {
        let intake = answering(&db);
        let server = smtp::SmtpServer::start(smtp::Config::default()).await;
        let sender = SmtpSender::new(&SmtpSettings {
            host: "127.0.0.1".into(),
            port: server.addr.port(),
            tls: SmtpTls::None,
            username: String::new(),
            password: String::new(),
            from_address: SUPPORT.into(),
            from_name: Some("Example Support".into()),
        })
        .expect("sender");
        let number = created(
            &intake,
            mail(
                &[
                    "From: Ada Lovelace <ada@example.org>",
                    "Subject: Printer on fire",
                    "Message-ID: <q1@example.org>",
                ],
                "Help!",
            ),
        )
        .await;
        // A second question soon after opens a ticket, but no second acknowledgement.
        let second = created(
            &intake,
            mail(
                &[
                    "From: ada@example.org",
                    "Subject: And the scanner",
                    "Message-ID: <q2@example.org>",
                ],
                "Also broken.",
            ),
        )
        .await;
        assert_eq!(automatic(&ticket(&db, second).await).len(), 0);
        let detail = ticket(&db, number).await;
        let acks = automatic(&detail);
        assert_eq!(acks.len(), 1, "{:?}", detail.messages);
        assert_eq!(acks[0].delivery_status.as_deref(), Some("pending"));
        // An acknowledgement is no response: the ticket still waits for one.
        assert_eq!(detail.summary.status, Status::New.as_str());

        let settings = jobs::JobSettings::from_settings(
            &Settings::load_from(None, Vec::new()).expect("defaults"),
        );
        let deliverers = Deliverers::default().with(ChannelKind::Email, Arc::new(sender));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers = tokio::spawn(jobs::run(
            db.store.clone(),
            settings,
            deliverers,
            intake.committed(),
            stopped,
        ));
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.received().is_empty() {
            assert!(
                Instant::now() < deadline,
                "no acknowledgement mailed within 20 s on {:?}",
                db.backend()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.send(true).expect("running");
        tokio::time::timeout(Duration::from_secs(20), workers)
            .await
            .expect("stops")
            .expect("task")
            .expect("clean");

        let received = server.received();
        assert_eq!(received.len(), 1, "one acknowledgement, not one per ticket");
        assert_eq!(received[0].rcpt_to, vec!["ada@example.org".to_owned()]);
        let raw = String::from_utf8_lossy(&received[0].data).into_owned();
        assert!(raw.contains("Auto-Submitted: auto-replied\r\n"), "{raw}");
        assert!(
            raw.contains("multipart/alternative"),
            "text and HTML parts: {raw}"
        );
        let ack = helpdesk_email::parse_message(&received[0].data).expect("a valid mail");
        assert_eq!(
            ack.subject.as_deref(),
            Some(format!("Re: [#{number}] Printer on fire").as_str())
        );
        assert_eq!(ack.thread.in_reply_to, ["q1@example.org"]);
        assert!(ack.text.starts_with("Hello Ada Lovelace,"), "{}", ack.text);
        assert!(
            ack.text.contains(&format!("ticket #{number}")),
            "{}",
            ack.text
        );
        assert!(
            ack.html
                .is_some_and(|html| html.contains(&format!("#{number}")))
        );
        // The acknowledgement of our own is not taken for a customer's mail if it comes back
        // to the support mailbox (a Cc, a forward).
        assert!(ack.automation.auto_reply);
        assert_eq!(
            ticket(&db, number)
                .await
                .messages
                .iter()
                .filter(|m| m.delivery_status.as_deref() == Some("sent"))
                .count(),
            1
        );

        // Ada answers the acknowledgement from her mail client: it joins the same ticket.
        let answer = mail(
            &[
                "From: ada@example.org",
                &format!("Subject: Re: [#{number}] Printer on fire"),
                "Message-ID: <q3@example.org>",
                &format!("In-Reply-To: <{}>", ack.external_id),
                &format!("References: <q1@example.org> <{}>", ack.external_id),
            ],
            "It is out now.",
        );
        let outcome = intake.accept_email(answer).await.expect("taken in");
        assert!(
            matches!(outcome, Outcome::Threaded { number: n, .. } if n == number.into()),
            "{outcome:?}"
        );
    }
}

store_test! {
    #[tokio::test]
    async fn no_automatic_mail_to_auto_replies_lists_daemons_or_ourselves(db: TestStore) {
        let intake = answering(&db);
        let senders: [&[&str]; 6] = [
            &["From: ada@example.org", "Auto-Submitted: auto-replied"],
            &["From: grace@example.org", "Precedence: bulk"],
            &[
                "From: users@lists.example.org",
                "List-Id: <users.lists.example.org>",
            ],
            &["From: noreply@shop.example"],
            &["From: Helpdesk <Support@Helpdesk.example>"],
            &["From: alan@example.org", "X-Autoreply: yes"],
        ];
        for (index, headers) in senders.iter().enumerate() {
            let id = format!("Message-ID: <loop-{index}@example.org>");
            let subject = format!("Subject: Message {index}");
            let mut all: Vec<&str> = headers.to_vec();
            all.push(&id);
            all.push(&subject);
            let number = created(&intake, mail(&all, "Automatic text")).await;
            let detail = ticket(&db, number).await;
            assert!(
                automatic(&detail).is_empty(),
                "{headers:?} got an automatic answer"
            );
        }
        // A person writing next still gets one: the guards are per message, not global.
        let number = created(
            &intake,
            mail(
                &[
                    "From: edsger@example.org",
                    "Subject: Question",
                    "Message-ID: <p@example.org>",
                ],
                "A question.",
            ),
        )
        .await;
        assert_eq!(automatic(&ticket(&db, number).await).len(), 1);
    }
}

store_test! {
    #[tokio::test]
    async fn a_bounce_of_our_reply_joins_its_ticket_and_fails_the_reply(db: TestStore) {
        let intake = answering(&db);
        let number = created(
            &intake,
            mail(
                &[
                    "From: gone@example.net",
                    "Subject: VPN",
                    "Message-ID: <v1@example.net>",
                ],
                "Down.",
            ),
        )
        .await;
        let (_, our_id) = agent_replies(&db, number, "Try again now.").await;
        let totals_before = store::tickets::totals(&db.store).await.expect("totals");

        let bounce = format!(
            "Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n\
             To: {SUPPORT}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
             Message-ID: <bounce-{number}@mx.example.net>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n\
             --r\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
             --r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
             Final-Recipient: rfc822; gone@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\
             Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: user unknown\r\n\
             --r\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: {SUPPORT}\r\n\
             Subject: Re: [#{number}] VPN\r\nMessage-ID: <{our_id}>\r\n--r--\r\n"
        );
        let outcome = intake
            .accept_email(bounce.into_bytes())
            .await
            .expect("taken in");
        assert!(
            matches!(outcome, Outcome::Bounced { number: n, .. } if n == number.into()),
            "{outcome:?}"
        );
        let totals = store::tickets::totals(&db.store).await.expect("totals");
        assert_eq!(
            totals.tickets, totals_before.tickets,
            "no ticket for a bounce"
        );
        let detail = ticket(&db, number).await;
        let kept = detail.messages.last().expect("the bounce");
        assert_eq!(
            (kept.direction.as_str(), kept.kind.as_str()),
            ("inbound", "system")
        );
        let reply = detail
            .messages
            .iter()
            .find(|m| m.external_id.as_deref() == Some(our_id.as_str()))
            .expect("our reply");
        assert_eq!(reply.delivery_status.as_deref(), Some("failed"));
        assert!(
            reply
                .delivery_error
                .as_deref()
                .is_some_and(|e| e.contains("550 5.1.1")),
            "{:?}",
            reply.delivery_error
        );
        let event = detail.history.last().expect("history");
        assert_eq!(event.kind, "delivery_failed");
        // The bounce is no customer writing: nothing about the ticket's state changed, and no
        // automatic answer went to the daemon.
        assert_eq!(detail.summary.status, Status::Open.as_str());
        assert_eq!(automatic(&detail).len(), 1, "only the acknowledgement");

        // A bounce of mail we never sent becomes no ticket; it is kept raw with the reason.
        let stray = mail(
            &[
                "Return-Path: <>",
                "From: MAILER-DAEMON@mx.example.net",
                "Subject: Delivery Status Notification (Failure)",
                "Message-ID: <stray@mx.example.net>",
            ],
            "Message-ID: <someone-else@example.com>\r\nSubject: spam\r\n",
        );
        let outcome = intake.accept_email(stray).await.expect("taken in");
        assert!(matches!(outcome, Outcome::Rejected { .. }), "{outcome:?}");
        let totals = store::tickets::totals(&db.store).await.expect("totals");
        assert_eq!(totals.tickets, totals_before.tickets);
        let failed = store::raw::list_failed(&db.store, 10).await.expect("list");
        assert!(
            failed
                .iter()
                .any(|raw| raw.external_id == "stray@mx.example.net")
        );
    }
}

store_test! {
    #[tokio::test]
    async fn an_out_of_office_reply_reopens_nothing_and_a_reply_keeps_its_quote_apart(
        db: TestStore,
    ) {
        let intake = answering(&db);
        let number = created(
            &intake,
            mail(
                &[
                    "From: ada@example.org",
                    "Subject: Invoice",
                    "Message-ID: <i1@example.org>",
                ],
                "Where is my invoice?",
            ),
        )
        .await;
        let (agent, our_id) = agent_replies(&db, number, "Attached. Does it look right?").await;
        let mut tx = db.store.begin_write().await.expect("tx");
        store::tickets::change_status(
            &mut tx,
            number.into(),
            Status::Pending,
            Actor::Agent(agent),
            None,
            Utc::now(),
        )
        .await
        .expect("pending");
        tx.commit().await.expect("commit");

        let away = mail(
            &[
                "From: ada@example.org",
                "Subject: Out of office: Re: Invoice",
                "Auto-Submitted: auto-replied",
                "Message-ID: <ooo@example.org>",
                &format!("In-Reply-To: <{our_id}>"),
            ],
            "I am away until Monday.",
        );
        let outcome = intake.accept_email(away).await.expect("taken in");
        assert!(
            matches!(outcome, Outcome::Threaded { number: n, reopened: false, .. } if n == number.into()),
            "{outcome:?}"
        );
        let detail = ticket(&db, number).await;
        assert_eq!(detail.summary.status, Status::Pending.as_str());
        assert_eq!(
            detail.messages.last().map(|m| m.kind.as_str()),
            Some("system")
        );

        let answer = mail(
            &[
                "From: ada@example.org",
                "Subject: Re: Invoice",
                "Message-ID: <i2@example.org>",
                &format!("In-Reply-To: <{our_id}>"),
            ],
            "Yes, thank you!\r\n\r\nAda\r\n\r\nOn Tue, 24 Nov 2026, Sam wrote:\r\n> Attached. Does it look right?\r\n",
        );
        let outcome = intake.accept_email(answer).await.expect("taken in");
        assert!(
            matches!(outcome, Outcome::Threaded { reopened: true, .. }),
            "{outcome:?}"
        );
        let detail = ticket(&db, number).await;
        let last = detail.messages.last().expect("answer");
        assert_eq!(last.body_text, "Yes, thank you!\n\nAda");
        assert!(
            last.quoted_text
                .as_deref()
                .is_some_and(|q| q.contains("> Attached. Does it look right?")),
            "{:?}",
            last.quoted_text
        );
        // The first mail of a ticket is kept whole: a forward is all quote.
        assert!(detail.messages[0].quoted_text.is_none());
    }
}

/// A mail with one attachment of `size` bytes.
fn with_attachment(headers: &[&str], filename: &str, size: usize) -> Vec<u8> {
    support::mail_with_file(headers, filename, &"x".repeat(size))
}

store_test! {
    #[tokio::test]
    async fn an_attachment_too_large_is_recorded_and_the_customer_told(db: TestStore) {
        let intake = db
            .intake_with(Limits {
                max_attachment_bytes: 1024,
                max_message_bytes: 1 << 20,
            })
            .with_auto_replies(auto_replies());
        let number = created(
            &intake,
            with_attachment(
                &[
                    "From: ada@example.org",
                    "Subject: Logs",
                    "Message-ID: <l1@example.org>",
                ],
                "server.log",
                4096,
            ),
        )
        .await;
        let detail = ticket(&db, number).await;
        let attachment = &detail.messages[0].attachments[0];
        assert_eq!(
            (attachment.filename.as_str(), attachment.size),
            ("server.log", 4096)
        );
        assert_eq!(attachment.sha256, None, "not kept");
        assert!(attachment.rejected_reason.is_some());
        assert_eq!(detail.messages[0].body_text.trim(), "See the file.");
        // The acknowledgement says which file was refused.
        let acks = automatic(&detail);
        assert_eq!(acks.len(), 1);
        assert!(
            acks[0].body_text.contains("server.log (4 KiB)"),
            "{}",
            acks[0].body_text
        );
        assert!(
            acks[0].body_text.contains("the limit is 1 KiB"),
            "{}",
            acks[0].body_text
        );

        // On a reply (no acknowledgement, and within the interval) a notice is still sent.
        let reply = with_attachment(
            &[
                "From: ada@example.org",
                &format!("Subject: Re: [#{number}] Logs"),
                "Message-ID: <l2@example.org>",
                "In-Reply-To: <l1@example.org>",
            ],
            "server2.log",
            2048,
        );
        let outcome = intake.accept_email(reply).await.expect("taken in");
        assert!(matches!(outcome, Outcome::Threaded { .. }), "{outcome:?}");
        let detail = ticket(&db, number).await;
        let notices = automatic(&detail);
        assert_eq!(notices.len(), 2);
        assert!(
            notices[1].body_text.contains("server2.log (2 KiB)"),
            "{}",
            notices[1].body_text
        );
        assert_eq!(notices[1].delivery_status.as_deref(), Some("pending"));
    }
}
