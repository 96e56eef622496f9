//! Which instance delivers: a reply is refused when no running instance has its channel, fails
//! after its attempts when the channel stopped running, and is handed over to the instance that
//! runs the channel.

use super::*;

/// A public reply as an instance running `here` writes it.
async fn reply_from(
    db: &TestStore,
    number: i64,
    agent: i64,
    kind: MessageKind,
    here: &[ChannelKind],
    now: DateTime<Utc>,
) -> Result<i64, store::StoreError> {
    let id = helpdesk::domain::new_mail_message_id("support@helpdesk.example", number.into());
    helpdesk::ops::send_reply(
        &db.store,
        &NewReply {
            number: number.into(),
            agent_id: agent,
            text: "We are on it.",
            kind,
            external_id: Some(&id),
            channels_here: here,
            now,
        },
    )
    .await
    .map(|stored| stored.message_id)
}

async fn deliver_jobs(db: &TestStore) -> usize {
    jobs::list(&db.store, Some("Pending"), 100)
        .await
        .expect("jobs")
        .iter()
        .filter(|job| job.queue == jobs::deliver::DeliverMessage::QUEUE)
        .count()
}

store_test! {
    #[tokio::test]
    async fn a_reply_on_a_channel_no_running_instance_has_is_refused_when_written(db: TestStore) {
        let (number, agent) = setup(&db).await;
        let now = Utc::now();
        let before = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");

        // Mail runs neither here nor anywhere: refused, nothing stored or queued.
        let refused = reply_from(&db, number, agent, MessageKind::Public, &[], now).await;
        let Err(store::StoreError::Conflict(why)) = refused else {
            panic!("{refused:?}");
        };
        assert!(
            why.contains("by email") && why.contains("email.enabled"),
            "{why}"
        );
        let after = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(after.messages.len(), before.messages.len());
        assert_eq!(after.summary.status, "new", "a refused reply opens nothing");
        assert_eq!(deliver_jobs(&db).await, 0);

        // A note never leaves, so it is always taken.
        reply_from(&db, number, agent, MessageKind::Internal, &[], now)
            .await
            .expect("a note is stored");

        // Only a running instance counts: one silent for a minute does not.
        support::other_instance(
            &db.store,
            &[ChannelKind::Email],
            now - chrono::Duration::minutes(1),
        )
        .await;
        assert!(
            reply_from(
                &db,
                number,
                agent,
                MessageKind::Public,
                &[ChannelKind::Telegram],
                now
            )
            .await
            .is_err(),
            "a stopped instance's mail channel does not count"
        );
        let other = support::other_instance(&db.store, &[ChannelKind::Email], now).await;
        reply_from(&db, number, agent, MessageKind::Public, &[], now)
            .await
            .expect("another running instance sends mail");
        assert_eq!(deliver_jobs(&db).await, 1);
        // Once it has stopped cleanly, replies are refused again.
        store::instances::remove(&db.store, &other.id)
            .await
            .expect("removed");
        assert!(
            reply_from(&db, number, agent, MessageKind::Public, &[], now)
                .await
                .is_err()
        );
        // This process's own channels count without any instance row.
        reply_from(
            &db,
            number,
            agent,
            MessageKind::Public,
            &[ChannelKind::Email],
            now,
        )
        .await
        .expect("mail runs here");
    }
}

store_test! {
    #[tokio::test]
    async fn a_reply_whose_channel_stopped_running_fails_after_its_attempts(db: TestStore) {
        let (number, agent) = setup(&db).await;
        let mut now: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().expect("time");
        // Written while mail ran; now no process delivers mail.
        let message = reply(&db, number, agent, MessageKind::Public, now).await;
        let without_mail = Deliverers::default();
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            match jobs::deliver::deliver_message(&db.store, &without_mail, message, now)
                .await
                .expect("runs")
            {
                DeliveryOutcome::RetryAt(at) => now = at,
                other => break other,
            }
            assert!(attempts < 100, "retried for ever");
        };
        assert_eq!(attempts, jobs::deliver::MAX_DELIVERY_ATTEMPTS);
        let DeliveryOutcome::Failed(reason) = outcome else {
            panic!("{outcome:?}");
        };
        assert!(
            reason.contains("after 8 attempts") && reason.contains("email.enabled"),
            "{reason}"
        );
        let ticket = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        let out = ticket.messages.last().expect("reply kept");
        assert_eq!(out.delivery_status.as_deref(), Some("failed"));
        let failed = ticket.history.last().expect("history");
        assert_eq!(failed.kind, "delivery_failed");
        assert_eq!(failed.text, "Delivery by mail failed");
        // Nothing here runs mail, so nothing is said about a mail connection.
        let health = store::health::list(&db.store).await.expect("health");
        assert!(health.iter().all(|h| h.channel != "email"), "{health:?}");

        // The ticket page says so on the reply, with why.
        let app = support::WebApp::new(db).await;
        let page = app
            .get(&format!("/tickets/{number}"), Some(&app.admin().await))
            .await;
        let shown = &page.body[page
            .body
            .find(&format!("id=\"message-{message}\""))
            .unwrap_or_else(|| panic!("the reply on the page: {}", page.body))..];
        let shown = &shown[..shown.find("</header>").unwrap_or(shown.len())];
        assert!(shown.contains("· delivery failed"), "{shown}");
        let error = &shown[shown.find("<span class=\"error\">(").unwrap_or_else(|| {
            panic!("the error beside the status: {shown}")
        })..];
        assert!(
            error.contains("not enabled on any running instance") && error.contains("email.enabled"),
            "{error}"
        );
    }
}

store_test! {
    #[tokio::test]
    async fn a_reply_for_a_channel_another_instance_runs_is_handed_over_uncounted(db: TestStore) {
        let (number, agent) = setup(&db).await;
        let now = Utc::now();
        support::other_instance(&db.store, &[ChannelKind::Email], now).await;
        let message = reply_from(&db, number, agent, MessageKind::Public, &[], now)
            .await
            .expect("the other instance sends mail");
        // A process without mail takes the job: it goes back for the other instance, again and
        // again without using up the reply's attempts.
        for round in 0..12 {
            let outcome =
                jobs::deliver::deliver_message(&db.store, &Deliverers::default(), message, now)
                    .await
                    .expect("runs");
            assert!(
                matches!(outcome, DeliveryOutcome::RetryAt(at) if at <= now + chrono::Duration::seconds(5)),
                "round {round}: {outcome:?}"
            );
        }
        assert_eq!(
            deliver_jobs(&db).await,
            13,
            "each hand-over is a job of its own"
        );
        let channel = FlakyMail::new(0, false);
        let with_mail = Deliverers::default().with(ChannelKind::Email, channel.clone());
        let sent = jobs::deliver::deliver_message(&db.store, &with_mail, message, now)
            .await
            .expect("runs");
        assert!(matches!(sent, DeliveryOutcome::Sent { .. }), "{sent:?}");
        assert_eq!(channel.sent.lock().expect("lock").len(), 1);
        let ticket = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(
            ticket
                .messages
                .last()
                .and_then(|m| m.delivery_status.clone())
                .as_deref(),
            Some("sent")
        );
        assert!(health_of_mail_connected(&db).await);
    }
}
