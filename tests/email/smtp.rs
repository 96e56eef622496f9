//! An agent's reply leaves through a real SMTP conversation with the threading headers a mail
//! client needs, and the customer's answer to it lands on the same ticket.

use crate::support;
use helpdesk_testkit::smtp;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::mail;
use chrono::Utc;
use helpdesk::domain::MessageKind;
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::intake::Outcome;
use helpdesk::jobs::{self, deliver::Deliverers};
use helpdesk::store::outbound::NewReply;
use helpdesk_email::smtp::{SmtpSender, SmtpSettings, SmtpTls};

store_test! {
    #[tokio::test]
    async fn a_reply_is_mailed_with_threading_headers_and_the_answer_threads_back(db: TestStore) {
        let server = smtp::SmtpServer::start(smtp::Config::default()).await;
        let sender = SmtpSender::new(&SmtpSettings {
            host: "127.0.0.1".into(),
            port: server.addr.port(),
            tls: SmtpTls::None,
            username: String::new(),
            password: String::new(),
            from_address: "support@helpdesk.example".into(),
            from_name: Some("Example Support".into()),
        })
        .expect("sender");
        let question = mail(
            &[
                "From: Ada Lovelace <ada@example.org>",
                "Subject: Printer on fire",
                "Message-ID: <q1@example.org>",
            ],
            "Help!",
        );
        let Outcome::Created { number, .. } =
            db.intake.accept_email(question).await.expect("taken in")
        else {
            panic!("a new ticket");
        };
        let agent = support::plain_agent(&db.store, "sam@helpdesk.example", "Sam").await;
        let settings = helpdesk::jobs::JobSettings::from_settings(
            &helpdesk::config::Settings::load_from(None, Vec::new()).expect("defaults"),
        );
        let deliverers = Deliverers::default().with(ChannelKind::Email, Arc::new(sender));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers = tokio::spawn(jobs::run(
            db.store.clone(),
            settings,
            deliverers,
            db.intake.committed(),
            stopped,
        ));
        let our_id = helpdesk::domain::new_mail_message_id("support@helpdesk.example", number);
        helpdesk::ops::send_reply(
            &db.store,
            &NewReply {
                number,
                agent_id: agent,
                text: "The fire brigade is on its way.",
                kind: MessageKind::Public,
                external_id: Some(&our_id),
                channels_here: &[ChannelKind::Email],
                now: Utc::now(),
            },
        )
        .await
        .expect("reply");

        let deadline = Instant::now() + Duration::from_secs(20);
        while server.received().is_empty() {
            assert!(
                Instant::now() < deadline,
                "nothing mailed within 20 s on {:?}",
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
        assert_eq!(received[0].rcpt_to, vec!["ada@example.org".to_owned()]);
        let sent = helpdesk_email::parse_message(&received[0].data).expect("a valid mail");
        assert_eq!(sent.external_id, our_id);
        assert_eq!(
            sent.subject.as_deref(),
            Some(format!("Re: [#{number}] Printer on fire").as_str())
        );
        assert_eq!(sent.thread.in_reply_to, vec!["q1@example.org".to_owned()]);
        assert_eq!(sent.thread.references, vec!["q1@example.org".to_owned()]);
        assert_eq!(sent.sender.address, "support@helpdesk.example");
        assert!(sent.text.contains("fire brigade"));

        // Ada's client answers our mail: it threads by In-Reply-To onto the same ticket.
        let answer = mail(
            &[
                "From: ada@example.org",
                "Subject: Re: [#1001] Printer on fire",
                "Message-ID: <q2@example.org>",
                &format!("In-Reply-To: <{our_id}>"),
                &format!("References: <q1@example.org> <{our_id}>"),
            ],
            "Thanks!",
        );
        let outcome = db.intake.accept_email(answer).await.expect("taken in");
        assert!(
            matches!(outcome, Outcome::Threaded { number: n, .. } if n == number),
            "{outcome:?}"
        );
    }
}

store_test! {
    #[tokio::test]
    async fn a_file_attached_to_a_reply_goes_out_with_it(db: TestStore) {
        let server = smtp::SmtpServer::start(smtp::Config::default()).await;
        let sender = SmtpSender::new(&SmtpSettings {
            host: "127.0.0.1".into(),
            port: server.addr.port(),
            tls: SmtpTls::None,
            username: String::new(),
            password: String::new(),
            from_address: "support@helpdesk.example".into(),
            from_name: None,
        })
        .expect("sender");
        let Outcome::Created { number, .. } = db
            .intake
            .accept_email(mail(
                &[
                    "From: ada@example.org",
                    "Subject: Manual",
                    "Message-ID: <m1@example.org>",
                ],
                "Where is the manual?",
            ))
            .await
            .expect("taken in")
        else {
            panic!("a new ticket");
        };
        let agent = support::plain_agent(&db.store, "sam@helpdesk.example", "Sam").await;
        let manual: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let sha256 = db.blobs().put(&manual).await.expect("stored");
        let stored = helpdesk::ops::send_reply_with_files(
            &db.store,
            &NewReply {
                number,
                agent_id: agent,
                text: "Here it is.",
                kind: MessageKind::Public,
                external_id: None,
                channels_here: &[ChannelKind::Email],
                now: Utc::now(),
            },
            &[helpdesk::ops::AttachedFile {
                filename: "manual.pdf".into(),
                content_type: "application/pdf".into(),
                size: manual.len() as i64,
                sha256,
            }],
        )
        .await
        .expect("reply");

        // Without the attachment store the reply waits; with it, it goes out with the file.
        let without = Deliverers::default().with(ChannelKind::Email, Arc::new(sender.clone()));
        let outcome =
            jobs::deliver::deliver_message(&db.store, &without, stored.message_id, Utc::now())
                .await
                .expect("runs");
        assert!(
            matches!(outcome, jobs::deliver::DeliveryOutcome::RetryAt(_)),
            "{outcome:?}"
        );
        let with = without.with_attachments(db.blobs());
        let outcome =
            jobs::deliver::deliver_message(&db.store, &with, stored.message_id, Utc::now())
                .await
                .expect("runs");
        assert!(
            matches!(outcome, jobs::deliver::DeliveryOutcome::Sent { .. }),
            "{outcome:?}"
        );

        let received = server.received();
        assert_eq!(received.len(), 1);
        let sent = helpdesk_email::parse_message(&received[0].data).expect("a valid mail");
        assert_eq!(sent.attachments.len(), 1);
        assert_eq!(sent.attachments[0].filename, "manual.pdf");
        assert_eq!(sent.attachments[0].content_type, "application/pdf");
        assert_eq!(sent.attachments[0].content, manual);
    }
}
