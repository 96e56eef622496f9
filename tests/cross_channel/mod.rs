//! Across channels: a customer writes by email, an agent answers from the Telegram group, the
//! answer is mailed with the headers that thread it in the customer's mail client, and the
//! customer's next mail lands on the same ticket.

use helpdesk_testkit::smtp;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::mail;
use helpdesk::channels::{self, ChatDesk};
use helpdesk::config::Settings;
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::intake::Outcome;
use helpdesk::jobs::{self, deliver::Deliverers};
use helpdesk::store;
use helpdesk_email::smtp::{SmtpSender, SmtpSettings, SmtpTls};
use helpdesk_testkit::telegram::{FakeTelegram, User};

const TOKEN: &str = "123456:TEST-token";
const AGENTS_CHAT: i64 = -1_001_234_567_890;
const SUPPORT: &str = "support@helpdesk.example";

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_email_answered_from_telegram_threads_in_the_customers_mail_client(db: TestStore) {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,helpdesk=debug")
            .with_test_writer()
            .try_init();
        let fake = FakeTelegram::start(TOKEN).await;
        let server = smtp::SmtpServer::start(smtp::Config::default()).await;
        let settings = Settings::load_from(
            None,
            [
                ("HELPDESK_TELEGRAM__ENABLED", "true".to_owned()),
                ("HELPDESK_TELEGRAM__TOKEN", TOKEN.to_owned()),
                ("HELPDESK_TELEGRAM__API_URL", fake.url()),
                ("HELPDESK_TELEGRAM__AGENTS_CHAT_ID", AGENTS_CHAT.to_string()),
            ]
            .map(|(key, value)| (key.to_owned(), value)),
        )
        .expect("settings");
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
        let telegram = channels::telegram::client(&settings).expect("telegram");
        let deliverers = Deliverers::default()
            .with(ChannelKind::Email, Arc::new(sender))
            .with(ChannelKind::Telegram, Arc::new(telegram.clone()));
        store::agents::create_agent(
            &db.store,
            &store::agents::NewAgent {
                email: "sam@helpdesk.example",
                name: "Sam",
                role: helpdesk::domain::Role::Agent,
                password_hash: None,
                department_ids: &[],
                identities: &[(ChannelKind::Telegram, "555")],
                max_open_tickets: None,
            },
            chrono::Utc::now(),
        )
        .await
        .expect("agent");
        let desk = ChatDesk::new(db.intake.clone(), deliverers.clone(), SUPPORT);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut bot_stop = stopped.clone();
        let bot = channels::telegram::start(telegram, desk, db.store.clone(), async move {
            let _ = bot_stop.wait_for(|stop| *stop).await;
        });
        let workers = tokio::spawn(jobs::run(
            db.store.clone(),
            jobs::JobSettings::from_settings(&settings),
            deliverers,
            db.intake.committed(),
            stopped,
        ));

        let question = mail(
            &[
                "From: Ada Lovelace <ada@example.org>",
                "To: support@helpdesk.example",
                "Subject: Printer on fire",
                "Message-ID: <q1@example.org>",
            ],
            "It smokes. Help!",
        );
        let Outcome::Created { number, .. } =
            db.intake.accept_email(question).await.expect("taken in")
        else {
            panic!("a new ticket");
        };

        let post = fake
            .wait_for_sent(Duration::from_secs(20), |sent| {
                sent.chat_id == AGENTS_CHAT
                    && sent
                        .text
                        .as_deref()
                        .is_some_and(|text| text.contains(&format!("New ticket #{number}")))
            })
            .await
            .unwrap_or_else(|| panic!("the agents are told; sent: {:#?}", fake.sent()));
        assert!(
            post.text
                .as_deref()
                .is_some_and(|text| text.contains("Printer on fire") && text.contains("via email")),
            "{post:?}"
        );
        fake.group_message(
            AGENTS_CHAT,
            &User::new(555, "Sam"),
            Some(post.message_id),
            "The fire brigade is on its way.",
        );

        let deadline = Instant::now() + Duration::from_secs(20);
        while server.received().is_empty() {
            assert!(
                Instant::now() < deadline,
                "nothing mailed within 20 s on {:?}; sent on Telegram: {:#?}",
                db.backend(),
                fake.sent()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.send(true).expect("running");
        bot.await.expect("bot stops");
        workers
            .await
            .expect("workers stop")
            .expect("workers end cleanly");

        let received = server.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].rcpt_to, vec!["ada@example.org".to_owned()]);
        let sent = helpdesk_email::parse_message(&received[0].data).expect("a valid mail");
        assert_eq!(
            sent.subject.as_deref(),
            Some(format!("Re: [#{number}] Printer on fire").as_str())
        );
        assert_eq!(sent.thread.in_reply_to, vec!["q1@example.org".to_owned()]);
        assert_eq!(sent.thread.references, vec!["q1@example.org".to_owned()]);
        assert!(
            sent.external_id.ends_with("@helpdesk.example"),
            "{}",
            sent.external_id
        );
        assert!(sent.text.contains("fire brigade"));

        let detail = store::tickets::detail(&db.store, number)
            .await
            .expect("query")
            .expect("ticket");
        let reply = &detail.messages[1];
        assert_eq!(
            (reply.author.as_str(), reply.channel.as_str()),
            ("Sam", "email")
        );
        assert_eq!(
            reply.external_id.as_deref(),
            Some(sent.external_id.as_str())
        );

        // Ada's mail client answers the reply: it threads by In-Reply-To onto the ticket.
        let answer = mail(
            &[
                "From: ada@example.org",
                &format!("Subject: Re: [#{number}] Printer on fire"),
                "Message-ID: <q2@example.org>",
                &format!("In-Reply-To: <{}>", sent.external_id),
                &format!("References: <q1@example.org> <{}>", sent.external_id),
            ],
            "Thanks, they are here.",
        );
        let outcome = db.intake.accept_email(answer).await.expect("taken in");
        assert!(
            matches!(outcome, Outcome::Threaded { number: n, .. } if n == number),
            "{outcome:?}"
        );
    }
}
