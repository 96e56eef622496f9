//! Dropped gateways, restarts, rate limits, outages and refused tokens: nothing is lost or
//! repeated.

use super::*;

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_gateway_connection_is_resumed_and_nothing_is_missed(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");
        let sam = User::new(555, "Sam");
        let (number, thread) = open_ticket(&fake, &ada, "First").await;
        let dm = fake.dm_channel_of(&ada);

        // The connection drops; what people write meanwhile comes with the resumed session.
        fake.drop_connection();
        fake.customer_writes(&ada, "Written while the bot was cut off");
        fake.agent_writes_in_thread(&sam, thread, "Answered while cut off");
        assert!(
            fake.wait_for_resume(1, WAIT).await,
            "the client resumed; identifies {}, calls {:?}",
            fake.identifies(),
            fake.calls()
        );
        sent_to(&fake, thread, "Written while the bot was cut off").await;
        sent_to(&fake, dm, "Answered while cut off").await;

        // Discord may also ask for a reconnect (op 7): resumed as well.
        fake.request_reconnect();
        assert!(fake.wait_for_resume(2, WAIT).await, "resumed after op 7");
        fake.customer_writes(&ada, "And after the reconnect");
        sent_to(&fake, thread, "And after the reconnect").await;
        assert_eq!(fake.identifies(), 1, "resumed, never identified anew");

        let detail = until_ticket(&db.store, number, "five messages, the reply sent", |t| {
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
        assert_eq!(
            texts,
            [
                "First",
                "Written while the bot was cut off",
                "Answered while cut off",
                "And after the reconnect",
            ]
        );
        running.stop().await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_repeats_nothing(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
        let ada = User::new(42, "Ada");
        let sam = User::new(555, "Sam");
        let dm = fake.dm_channel_of(&ada);

        let running = Running::start(&db, &fake).await;
        let (number, thread) = open_ticket(&fake, &ada, "First").await;
        let first = fake.sent().iter().filter(|s| s.channel_id == dm).count();
        let answer = fake.agent_writes_in_thread(&sam, thread, "Answer one");
        sent_to(&fake, dm, "Answer one").await;
        until_ticket(&db.store, number, "the answer is sent", |t| {
            t.messages
                .iter()
                .any(|m| m.delivery_status.as_deref() == Some("sent"))
        })
        .await;
        running.stop().await;

        let running = Running::start(&db, &fake).await;
        // Discord sends the same messages again: nothing happens twice.
        let customer_first = fake
            .sent()
            .iter()
            .find(|s| s.channel_id == dm)
            .and_then(|greeting| greeting.reply_to)
            .expect("the greeting replied to the first DM");
        fake.dispatch_again(customer_first);
        fake.dispatch_again(answer);
        fake.customer_writes(&ada, "Second");
        sent_to(&fake, thread, "Second").await;
        fake.agent_writes_in_thread(&sam, thread, "Answer two");
        sent_to(&fake, dm, "Answer two").await;
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
        running.stop().await;

        let to_ada: Vec<String> = fake
            .sent()
            .into_iter()
            .filter(|s| s.channel_id == dm)
            .map(|s| s.content)
            .collect();
        assert_eq!(first, 1, "one greeting before the restart");
        assert_eq!(
            to_ada
                .iter()
                .filter(|t| t.contains("Your ticket number"))
                .count(),
            1,
            "{to_ada:?}"
        );
        assert_eq!(to_ada.iter().filter(|t| *t == "Answer one").count(), 1);
        assert_eq!(to_ada.iter().filter(|t| *t == "Answer two").count(), 1);
        assert!(
            store::tickets::detail(&db.store, (number + 1).into())
                .await
                .expect("ticket query")
                .is_none(),
            "no second ticket"
        );
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limits_and_outages_go_back_to_the_delivery_queue(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        let sam = agent(&db.store, "sam@example.org", "Sam", 555).await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");
        let (number, _) = open_ticket(&fake, &ada, "Hello").await;
        running.stop().await;

        let settings = settings(&fake);
        let discord = channels::discord::client(&settings).expect("client");
        let deliverers = Deliverers::default().with(
            ChannelKind::Discord,
            Arc::new(channels::discord::DiscordDelivery::new(
                discord,
                db.store.clone(),
            )),
        );
        let stored = helpdesk::ops::send_reply(
            &db.store,
            &store::outbound::NewReply {
                number: number.into(),
                agent_id: sam,
                text: "On it",
                kind: helpdesk::domain::MessageKind::Public,
                external_id: None,
                channels_here: &[ChannelKind::Discord],
                now: chrono::Utc::now(),
            },
        )
        .await
        .expect("reply stored");
        fake.fail_next(
            "POST /channels/",
            Failure::TooManyRequests { retry_after: 2.5 },
        );
        fake.fail_next("POST /channels/", Failure::BadGateway);
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
            fake.sent().iter().filter(|s| s.content == "On it").count(),
            1
        );

        // A customer who does not accept DMs from the bot: no use retrying.
        let stored = helpdesk::ops::send_reply(
            &db.store,
            &store::outbound::NewReply {
                number: number.into(),
                agent_id: sam,
                text: "Hello?",
                kind: helpdesk::domain::MessageKind::Public,
                external_id: None,
                channels_here: &[ChannelKind::Discord],
                now,
            },
        )
        .await
        .expect("reply stored");
        fake.fail_next("POST /channels/", Failure::CannotMessageUser);
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
    async fn a_refused_token_is_reported_and_no_gateway_is_tried(db: TestStore) {
        logs();
        let fake = FakeDiscord::start("another-bots-token").await;
        let settings = settings(&fake);
        let discord = channels::discord::client(&settings).expect("client");
        let desk = ChatDesk::new(
            db.intake.clone(),
            Deliverers::default(),
            "support@example.org",
        );
        let (stop, mut stopped) = watch::channel(false);
        let bot = channels::discord::start(discord, desk, db.store.clone(), async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        let deadline = tokio::time::Instant::now() + WAIT;
        let report = loop {
            let health = store::health::list(&db.store).await.expect("health");
            if let Some(report) = health.into_iter().find(|h| {
                h.channel == "discord"
                    && h.last_error
                        .as_deref()
                        .is_some_and(|error| error.contains("401"))
            }) {
                break report;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the refused token is not reported; calls: {:?}",
                fake.calls()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(!report.connected);
        assert_eq!(fake.identifies(), 0);
        assert!(
            fake.calls().iter().all(|call| call == "GET /users/@me"),
            "nothing else is tried with a refused token: {:?}",
            fake.calls()
        );
        stop.send(true).ok();
        bot.await.expect("bot stops");
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dms_sent_while_the_bot_was_away_join_the_ticket_once_and_in_order(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        let ada = User::new(42, "Ada");
        let dm = fake.dm_channel_of(&ada);

        let running = Running::start(&db, &fake).await;
        let (number, thread) = open_ticket(&fake, &ada, "First").await;
        running.stop().await;

        // While the bot is away Discord keeps no events for it; the messages stay in the DM.
        fake.customer_writes(&ada, "Second");
        fake.customer_writes(&ada, "Third");
        // One more right after the next READY, before the bot may have set up its collector.
        fake.customer_writes_when_ready(&ada, "Fourth");
        let history_calls = |fake: &FakeDiscord| {
            fake.calls()
                .iter()
                .filter(|call| **call == format!("GET /channels/{dm}/messages"))
                .count()
        };
        let asked_before = history_calls(&fake);

        let running = Running::start(&db, &fake).await;
        sent_to(&fake, thread, "Fourth").await;
        fake.customer_writes(&ada, "Fifth");
        let detail = until_ticket(&db.store, number, "five messages", |t| {
            t.messages.len() >= 5
        })
        .await;
        let texts: Vec<&str> = detail
            .messages
            .iter()
            .map(|m| m.body_text.as_str())
            .collect();
        assert_eq!(texts, ["First", "Second", "Third", "Fourth", "Fifth"]);
        assert!(
            history_calls(&fake) > asked_before,
            "the DM's history was asked for: {:?}",
            fake.calls()
        );
        running.stop().await;

        // Another start fetches the same history again and takes nothing twice.
        let running = Running::start(&db, &fake).await;
        fake.customer_writes(&ada, "Sixth");
        sent_to(&fake, thread, "Sixth").await;
        let detail =
            until_ticket(&db.store, number, "six messages", |t| t.messages.len() >= 6).await;
        let texts: Vec<&str> = detail
            .messages
            .iter()
            .map(|m| m.body_text.as_str())
            .collect();
        assert_eq!(
            texts,
            ["First", "Second", "Third", "Fourth", "Fifth", "Sixth"]
        );
        running.stop().await;
        assert!(
            store::tickets::detail(&db.store, (number + 1).into())
                .await
                .expect("ticket query")
                .is_none(),
            "no second ticket"
        );
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_to_agents_that_fail_are_sent_again_and_a_failed_slash_answer_follows(
        db: TestStore,
    ) {
        let fake = FakeDiscord::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");
        let sam = User::new(555, "Sam");
        let (_, thread) = open_ticket(&fake, &ada, "Cannot log in").await;

        // Discord has trouble the first time the bot answers in the thread.
        fake.fail_next(
            &format!("POST /channels/{thread}/messages"),
            Failure::BadGateway,
        );
        let asked = fake.agent_writes_in_thread(&sam, thread, "/note she called");
        let answer = sent_to(&fake, thread, "Note added").await;
        assert_eq!(
            answer.reply_to,
            Some(asked),
            "the answer replies to the command"
        );

        // A slash command's answer is due at once; when neither the interaction response nor
        // the post in the thread goes through, it follows through the queue.
        fake.fail_next("POST /interactions/", Failure::BadGateway);
        fake.fail_next(
            &format!("POST /channels/{thread}/messages"),
            Failure::BadGateway,
        );
        let claim = fake.agent_runs_slash_command(&sam, thread, "claim", &[]);
        let follow_up = sent_to(&fake, thread, "is yours, Sam").await;
        assert_eq!(follow_up.interaction, None, "a message, not the response");
        assert!(
            !fake.sent().iter().any(|s| s.interaction == Some(claim)),
            "the refused response is not counted as sent"
        );
        running.stop().await;
        let answers = |text: &str| {
            fake.sent()
                .iter()
                .filter(|s| s.channel_id == thread && s.content.contains(text))
                .count()
        };
        assert_eq!(answers("Note added"), 1);
        assert_eq!(answers("is yours, Sam"), 1);
    }
}
