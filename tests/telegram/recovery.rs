//! Restarts, rate limits and outages, and answers in the agents' group that fail: nothing is
//! lost or repeated.

use super::*;

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_loses_and_repeats_nothing(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
        let ada = User::new(42, "Ada");
        let sam = User::new(555, "Sam");

        let running = Running::start(&db, &fake).await;
        fake.customer_writes(&ada, "First");
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());
        let post = sent_to(&fake, AGENTS_CHAT, &format!("New ticket #{number}")).await;
        fake.group_message(AGENTS_CHAT, &sam, Some(post.message_id), "Answer one");
        sent_to(&fake, ada.id, "Answer one").await;
        running.stop().await;

        // While the helpdesk is down, people keep writing.
        fake.customer_writes(&ada, "Second");
        fake.group_message(AGENTS_CHAT, &sam, Some(post.message_id), "Answer two");
        let before = fake.get_updates_offsets().len();

        let running = Running::start(&db, &fake).await;
        sent_to(&fake, ada.id, "Answer two").await;
        let detail = until_ticket(&db.store, number, "four messages, all sent", |t| {
            t.messages.len() == 4
                && t.messages.iter().all(|m| {
                    m.direction == "inbound" || m.delivery_status.as_deref() == Some("sent")
                })
        })
        .await;
        let texts: Vec<&str> = detail
            .messages
            .iter()
            .map(|m| m.body_text.as_str())
            .collect();
        assert_eq!(texts, ["First", "Answer one", "Second", "Answer two"]);
        // The restarted poller asked from the stored offset, not from the start.
        let offsets = fake.get_updates_offsets();
        assert!(offsets[before] > 0, "the offset was kept: {offsets:?}");
        running.stop().await;
        let health = store::health::list(&db.store).await.expect("health");
        assert!(
            health
                .iter()
                .any(|h| h.channel == "telegram" && !h.connected),
            "a stopped poller says so: {health:?}"
        );

        let answers = |text: &str| {
            fake.sent()
                .iter()
                .filter(|s| s.chat_id == ada.id && s.text.as_deref() == Some(text))
                .count()
        };
        assert_eq!(answers("Answer one"), 1, "nothing is sent twice");
        assert_eq!(answers("Answer two"), 1);
        let greetings = fake
            .sent()
            .iter()
            .filter(|s| {
                s.text
                    .as_deref()
                    .is_some_and(|t| t.contains("Your ticket number"))
            })
            .count();
        assert_eq!(greetings, 1);
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limits_and_outages_go_back_to_the_delivery_queue(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        let sam = agent(&db.store, "sam@example.org", "Sam", 555).await;
        let settings = settings(&fake);
        let telegram = channels::telegram::client(&settings).expect("client");
        let deliverers = Deliverers::default().with(ChannelKind::Telegram, Arc::new(telegram));
        let desk = ChatDesk::new(db.intake.clone(), deliverers.clone(), "support@example.org");
        let ada = User::new(42, "Ada");
        let message = helpdesk::helpdesk_channel::InboundMessage {
            channel: ChannelKind::Telegram,
            external_id: "42:900".into(),
            sender: helpdesk::helpdesk_channel::Identity {
                channel: ChannelKind::Telegram,
                address: ada.id.to_string(),
                display_name: Some("Ada".into()),
                handle: None,
            },
            subject: None,
            text: "Hello".into(),
            html: None,
            attachments: Vec::new(),
            thread: helpdesk::helpdesk_channel::ThreadHints {
                conversation: Some(ada.id.to_string()),
                ..Default::default()
            },
            automation: Default::default(),
            sent_at: None,
            raw: b"{}".to_vec(),
        };
        desk.handle(helpdesk::helpdesk_channel::ChatEvent::Customer(message))
            .await
            .expect("taken in");
        let number = helpdesk::domain::TicketNumber(1001);
        let stored = helpdesk::ops::send_reply(
            &db.store,
            &store::outbound::NewReply {
                number,
                agent_id: sam,
                text: "On it",
                kind: helpdesk::domain::MessageKind::Public,
                external_id: None,
                channels_here: &[ChannelKind::Telegram],
                now: chrono::Utc::now(),
            },
        )
        .await
        .expect("reply stored");

        fake.fail_next("sendMessage", Failure::TooManyRequests { retry_after: 3 });
        fake.fail_next("sendMessage", Failure::BadGateway);
        let now = chrono::Utc::now();
        for _ in 0..2 {
            let outcome =
                jobs::deliver::deliver_message(&db.store, &deliverers, stored.message_id, now)
                    .await
                    .expect("attempt recorded");
            assert!(
                matches!(outcome, jobs::deliver::DeliveryOutcome::RetryAt(_)),
                "a rate limit or outage is retried later: {outcome:?}"
            );
        }
        let outcome =
            jobs::deliver::deliver_message(&db.store, &deliverers, stored.message_id, now)
                .await
                .expect("attempt recorded");
        assert!(
            matches!(outcome, jobs::deliver::DeliveryOutcome::Sent { .. }),
            "{outcome:?}"
        );
        assert_eq!(
            fake.sent()
                .iter()
                .filter(|s| s.text.as_deref() == Some("On it"))
                .count(),
            1
        );

        // A customer who blocked the bot: no use retrying.
        let stored = helpdesk::ops::send_reply(
            &db.store,
            &store::outbound::NewReply {
                number,
                agent_id: sam,
                text: "Hello?",
                kind: helpdesk::domain::MessageKind::Public,
                external_id: None,
                channels_here: &[ChannelKind::Telegram],
                now,
            },
        )
        .await
        .expect("reply stored");
        fake.fail_next("sendMessage", Failure::Blocked);
        let outcome =
            jobs::deliver::deliver_message(&db.store, &deliverers, stored.message_id, now)
                .await
                .expect("attempt recorded");
        assert!(
            matches!(outcome, jobs::deliver::DeliveryOutcome::Failed(_)),
            "{outcome:?}"
        );
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answer_in_the_agents_group_that_fails_is_sent_again(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
        let running = Running::start(&db, &fake).await;
        let sam = User::new(555, "Sam");

        // Telegram has trouble the first time the bot answers.
        fake.fail_next("sendMessage", Failure::BadGateway);
        let asked = fake.group_message(AGENTS_CHAT, &sam, None, "/help");
        let answer = sent_to(&fake, AGENTS_CHAT, "/claim - take the ticket yourself").await;
        assert_eq!(
            answer.reply_to,
            Some(asked),
            "the answer replies to the command"
        );
        let attempts = fake
            .calls()
            .iter()
            .filter(|call| *call == "sendMessage")
            .count();
        assert_eq!(attempts, 2, "refused once, then sent: {:?}", fake.calls());
        running.stop().await;
        let answers = fake
            .sent()
            .iter()
            .filter(|s| s.chat_id == AGENTS_CHAT)
            .count();
        assert_eq!(answers, 1, "answered once: {:#?}", fake.sent());
    }
}
