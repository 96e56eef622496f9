//! Who gets a survey: a person's resolved mail ticket once, however often it is resolved; never
//! a ticket an auto-reply or list mail opened, a merged one, one of a department that turned
//! surveys off, or any when the settings turn them off.

use super::*;

store_test! {
    #[tokio::test]
    async fn a_resolved_ticket_is_asked_once_however_often_it_is_resolved(db: TestStore) {
        let agent = support::plain_agent(&db.store, "sam@helpdesk.example", "Sam").await;
        let (number, ticket_id) = mailed_ticket(&db, "ada@example.org", "once@example.org", &[]).await;
        let config = config();

        // Not while it is open.
        let early = helpdesk::jobs::survey::offer(&db.store, &config, ticket_id.into(), Utc::now())
            .await
            .expect("offer");
        assert_eq!(early, Offered::Skipped("the ticket is no longer resolved"));
        assert_eq!(surveys_of(&db.store, ticket_id).await, 0);

        set_status(&db.store, number, agent, Status::Resolved).await;
        let first = helpdesk::jobs::survey::offer(&db.store, &config, ticket_id.into(), Utc::now())
            .await
            .expect("offer");
        assert!(queued(&first), "{first:?}");
        assert_eq!(surveys_of(&db.store, ticket_id).await, 1);

        // Reopened and resolved again: still the one survey.
        set_status(&db.store, number, agent, Status::Open).await;
        set_status(&db.store, number, agent, Status::Resolved).await;
        let again = helpdesk::jobs::survey::offer(&db.store, &config, ticket_id.into(), Utc::now())
            .await
            .expect("offer");
        assert_eq!(again, Offered::Skipped("the customer was asked before"));
        let survey = store::surveys::of_ticket(&db.store, ticket_id.into())
            .await
            .expect("read")
            .expect("the survey");
        assert_eq!(survey.channel, "email");
        assert_eq!(survey.rating, None);
        assert!(survey.expires_at > survey.sent_at + chrono::Duration::days(13));

        // It is an automatic message of the ticket, queued for delivery, and the history says
        // it was sent; the ticket stays resolved.
        let detail = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("ticket");
        let asked: Vec<_> = detail
            .messages
            .iter()
            .filter(|message| message.body_text.contains("/survey/"))
            .collect();
        assert_eq!(asked.len(), 1, "{:#?}", detail.messages);
        assert_eq!(asked[0].kind, "system");
        assert_eq!(asked[0].delivery_status.as_deref(), Some("pending"));
        assert!(detail.history.iter().any(|event| event.kind == "survey_sent"));
        assert_eq!(detail.summary.status, "resolved");
    }
}

store_test! {
    #[tokio::test]
    async fn resolving_queues_the_survey_job(db: TestStore) {
        let agent = support::plain_agent(&db.store, "sam@helpdesk.example", "Sam").await;
        let (number, _) = mailed_ticket(&db, "ada@example.org", "job@example.org", &[]).await;
        set_status(&db.store, number, agent, Status::Resolved).await;
        let jobs = helpdesk::jobs::list(&db.store, None, 100).await.expect("jobs");
        assert!(
            jobs.iter().any(|job| job.queue == "helpdesk.survey"),
            "{jobs:#?}"
        );
    }
}

store_test! {
    #[tokio::test]
    async fn tickets_opened_by_auto_replies_or_list_mail_are_never_asked(db: TestStore) {
        let agent = support::plain_agent(&db.store, "sam@helpdesk.example", "Sam").await;
        let config = config();
        for (id, header) in [
            ("ooo@example.org", "Auto-Submitted: auto-replied"),
            ("list@example.org", "Precedence: list"),
        ] {
            let (number, ticket_id) = mailed_ticket(&db, "ada@example.org", id, &[header]).await;
            set_status(&db.store, number, agent, Status::Resolved).await;
            let offered = helpdesk::jobs::survey::offer(&db.store, &config, ticket_id.into(), Utc::now())
                .await
                .expect("offer");
            assert_eq!(
                offered,
                Offered::Skipped("an automatic message opened the ticket"),
                "{header}"
            );
            assert_eq!(surveys_of(&db.store, ticket_id).await, 0, "{header}");
        }
        // Nor an address that cannot answer.
        let (number, ticket_id) =
            mailed_ticket(&db, "noreply@shop.example", "noreply@example.org", &[]).await;
        set_status(&db.store, number, agent, Status::Resolved).await;
        let offered = helpdesk::jobs::survey::offer(&db.store, &config, ticket_id.into(), Utc::now())
            .await
            .expect("offer");
        assert_eq!(offered, Offered::Skipped("the address cannot answer"));
    }
}

store_test! {
    #[tokio::test]
    async fn merged_tickets_are_never_asked(db: TestStore) {
        let agent = support::plain_agent(&db.store, "sam@helpdesk.example", "Sam").await;
        let (kept, _) = mailed_ticket(&db, "ada@example.org", "kept@example.org", &[]).await;
        let (duplicate, duplicate_id) =
            mailed_ticket(&db, "ada@example.org", "dup@example.org", &[]).await;
        helpdesk::ops::merge(
            &db.store,
            duplicate.into(),
            kept.into(),
            false,
            &store::manage::Change {
                agent_id: agent,
                reason: Some("same question"),
                now: Utc::now(),
            },
        )
        .await
        .expect("merged");
        let offered = helpdesk::jobs::survey::offer(&db.store, &config(), duplicate_id.into(), Utc::now())
            .await
            .expect("offer");
        assert_eq!(
            offered,
            Offered::Skipped("the ticket was merged into another")
        );
        assert_eq!(surveys_of(&db.store, duplicate_id).await, 0);
    }
}

store_test! {
    #[tokio::test]
    async fn a_department_or_the_settings_can_turn_surveys_off(db: TestStore) {
        let agent = support::plain_agent(&db.store, "sam@helpdesk.example", "Sam").await;
        let quiet = store::agents::create_department(
            &db.store,
            "Quiet",
            helpdesk::domain::AssignmentStrategy::RoundRobin,
            Utc::now(),
        )
        .await
        .expect("department")
        .id;
        assert!(
            store::surveys::set_department_switch(&db.store, quiet, false)
                .await
                .expect("switched")
        );
        let (number, ticket_id) = mailed_ticket(&db, "ada@example.org", "dept@example.org", &[]).await;
        helpdesk::ops::apply(
            &db.store,
            number.into(),
            ChangedBy { agent_id: agent, now: Utc::now() },
            &TicketChange {
                department: Some(Some(quiet)),
                status: Some(Status::Resolved),
                ..TicketChange::default()
            },
        )
        .await
        .expect("changed");
        let offered = helpdesk::jobs::survey::offer(&db.store, &config(), ticket_id.into(), Utc::now())
            .await
            .expect("offer");
        assert_eq!(
            offered,
            Offered::Skipped("surveys are turned off for the ticket's department")
        );

        // Back on, the ticket is asked; the settings' switch turns every department off.
        store::surveys::set_department_switch(&db.store, quiet, true)
            .await
            .expect("switched");
        let off = SurveyConfig {
            enabled: false,
            ..config()
        };
        let offered = helpdesk::jobs::survey::offer(&db.store, &off, ticket_id.into(), Utc::now())
            .await
            .expect("offer");
        assert_eq!(
            offered,
            Offered::Skipped("surveys are turned off ([surveys] enabled)")
        );
        let offered = helpdesk::jobs::survey::offer(&db.store, &config(), ticket_id.into(), Utc::now())
            .await
            .expect("offer");
        assert!(queued(&offered), "{offered:?}");
        let survey = store::surveys::of_ticket(&db.store, ticket_id.into())
            .await
            .expect("read")
            .expect("survey");
        assert_eq!(survey.channel, "email");
        let switches = store::surveys::department_switches(&db.store)
            .await
            .expect("switches");
        assert!(switches.contains(&(quiet, true)), "{switches:?}");
    }
}
