//! The admin pages: jobs, agents, departments and channels, and which instances run each
//! channel.

use super::*;

store_test! {
    #[tokio::test]
    async fn the_jobs_page_filters_by_queue_and_state_and_links_the_ticket(app: WebApp) {
        let backend = app.db.backend();
        let admin = app.admin().await;
        let number = app.ticket("jobs@example.org", "Job", "x").await;
        helpdesk::ops::send_reply(
            &app.db.store,
            &helpdesk::store::outbound::NewReply {
                number: number.into(),
                agent_id: app.admin_id,
                text: "Hi",
                kind: helpdesk::domain::MessageKind::Public,
                external_id: Some("<reply-1@helpdesk.example>"),
                now: Utc::now(),
                channels_here: &[helpdesk::helpdesk_channel::ChannelKind::Email],
            },
        )
        .await
        .expect("reply queued");
        let deliveries = helpdesk::jobs::query(
            &app.db.store,
            &helpdesk::jobs::JobQuery {
                queue: Some("helpdesk.deliver"),
                status: None,
                before: None,
                limit: 10,
            },
        )
        .await
        .expect("jobs");
        let job = deliveries.first().expect("a delivery job").clone();
        assert_eq!(job.ticket.map(|t| t.get()), Some(number), "{backend:?}");
        assert!(job.created_at.is_some() && job.run_at.is_some());

        let page = app
            .get("/admin/jobs?queue=helpdesk.deliver", Some(&admin))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(&job.id));
        assert!(
            page.body
                .contains(&format!(r#"<a href="/tickets/{number}">#{number}</a>"#))
        );
        let other_queue = app
            .get("/admin/jobs?queue=helpdesk.sla", Some(&admin))
            .await;
        assert!(!other_queue.body.contains(&job.id));
        assert_eq!(
            app.get("/admin/jobs?queue=nowhere", Some(&admin))
                .await
                .status,
            StatusCode::BAD_REQUEST
        );

        let fail = match backend {
            helpdesk::store::Backend::Sqlite => {
                r#"UPDATE Jobs SET status = 'Failed', attempts = 5, last_result = '{"Err":"smtp down"}' WHERE id = $1"#
            }
            helpdesk::store::Backend::Postgres => {
                r#"UPDATE apalis.jobs SET status = 'Failed', attempts = 5, last_result = '{"Err":"smtp down"}' WHERE id = $1"#
            }
        };
        match &app.db.store {
            helpdesk::store::Store::Sqlite { writer, .. } => {
                sqlx::query(fail)
                    .bind(&job.id)
                    .execute(writer)
                    .await
                    .expect("failed");
            }
            helpdesk::store::Store::Postgres { pool } => {
                sqlx::query(fail)
                    .bind(&job.id)
                    .execute(pool)
                    .await
                    .expect("failed");
            }
        }
        let failed = app
            .get(
                "/admin/jobs?queue=helpdesk.deliver&state=Failed",
                Some(&admin),
            )
            .await
            .body;
        assert!(
            failed.contains(&job.id) && failed.contains("smtp down"),
            "{backend:?}: {failed}"
        );
        assert!(failed.contains("5/5"));
        let pending = app
            .get(
                "/admin/jobs?queue=helpdesk.deliver&state=Pending",
                Some(&admin),
            )
            .await
            .body;
        assert!(!pending.contains(&job.id));
    }
}

store_test! {
    #[tokio::test]
    async fn agents_departments_jobs_and_channels_pages_change_what_they_show(app: WebApp) {
        let backend = app.db.backend();
        let admin = app.admin().await;
        let updated = app
            .post(
                &format!("/admin/departments/{}", app.billing),
                &admin,
                &[("strategy", "least_open")],
            )
            .await;
        assert_eq!(updated.status, StatusCode::SEE_OTHER);
        let departments = helpdesk::store::agents::departments(&app.db.store)
            .await
            .expect("read");
        assert!(
            departments
                .iter()
                .any(|d| d.name == "Billing" && d.assignment_strategy == "least_open")
        );
        let duplicate = app
            .post(
                "/admin/departments",
                &admin,
                &[("name", "Billing"), ("strategy", "round_robin")],
            )
            .await;
        assert_eq!(duplicate.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(duplicate.body.contains("already exists"));

        let technical = app.technical.to_string();
        let changed = app
            .post(
                &format!("/admin/agents/{}", app.agent_id),
                &admin,
                &[
                    ("role", "agent"),
                    ("department", &technical),
                    ("max_open_tickets", "3"),
                ],
            )
            .await;
        assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
        let agents = helpdesk::store::agents::list_agents(&app.db.store)
            .await
            .expect("read");
        let abe = agents.iter().find(|a| a.id == app.agent_id).expect("agent");
        assert_eq!(
            (
                abe.departments.as_str(),
                abe.max_open_tickets,
                abe.available
            ),
            ("Technical", Some(3), false)
        );
        let demote_self = app
            .post(
                &format!("/admin/agents/{}", app.admin_id),
                &admin,
                &[("role", "agent")],
            )
            .await;
        assert_eq!(demote_self.status, StatusCode::UNPROCESSABLE_ENTITY);

        // A new agent with a password can sign in; a disabled one is signed out.
        let created = app
            .post(
                "/admin/agents",
                &admin,
                &[
                    ("email", "zoe@helpdesk.example"),
                    ("name", "Zoe"),
                    ("role", "agent"),
                    ("password", PASSWORD),
                    ("department", &technical),
                ],
            )
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let zoe = app.sign_in("zoe@helpdesk.example").await;
        let zoe_id =
            helpdesk::store::agents::agent_id_by_email(&app.db.store, "zoe@helpdesk.example")
                .await
                .expect("read")
                .expect("exists");
        app.post(
            &format!("/admin/agents/{zoe_id}/active"),
            &admin,
            &[("active", "off")],
        )
        .await;
        assert_eq!(app.get("/", Some(&zoe)).await.status, StatusCode::SEE_OTHER);

        let channels = app.get("/admin/channels", Some(&admin)).await.body;
        for name in ["email", "telegram", "discord"] {
            assert!(channels.contains(&format!("id=\"channel-{name}\"")));
        }
        // This instance runs mail; nothing runs the chat channels.
        assert!(section(&channels, "channel-email").contains(">enabled<"));
        assert!(section(&channels, "channel-telegram").contains(">not enabled<"));
        // What a channel reports about its connection is shown.
        helpdesk::store::health::report(
            &app.db.store,
            &helpdesk::store::health::ChannelHealth {
                channel: "email".into(),
                name: "imap:INBOX".into(),
                connected: false,
                detail: Some("reconnecting".into()),
                last_success_at: Some(Utc::now()),
                last_error: Some("connection refused".into()),
                last_error_at: Some(Utc::now()),
                consecutive_failures: 3,
                backlog: 0,
                updated_at: Utc::now(),
            },
        )
        .await
        .expect("reported");
        let channels = app.get("/admin/channels", Some(&admin)).await.body;
        assert!(channels.contains("imap:INBOX") && channels.contains("connection refused"));
        assert!(!channels.contains("enabled on another instance"));
        let departments = app.get("/admin/departments", Some(&admin)).await.body;
        assert!(
            departments.contains("SLA targets") && departments.contains("8 h 0 min"),
            "normal: 480 min"
        );

        // A failed job goes back to the queue.
        let number = app.ticket("j1@example.org", "Job", "x").await;
        app.post(
            &format!("/tickets/{number}/reply"),
            &admin,
            &[("text", "Hi")],
        )
        .await;
        let job = helpdesk::jobs::list(&app.db.store, None, 10)
            .await
            .expect("jobs")[0]
            .id
            .clone();
        let fail = match backend {
            helpdesk::store::Backend::Sqlite => {
                "UPDATE Jobs SET status = 'Failed', last_result = '\"smtp down\"' WHERE id = $1"
            }
            helpdesk::store::Backend::Postgres => {
                "UPDATE apalis.jobs SET status = 'Failed' WHERE id = $1"
            }
        };
        match &app.db.store {
            helpdesk::store::Store::Sqlite { writer, .. } => {
                sqlx::query(fail)
                    .bind(&job)
                    .execute(writer)
                    .await
                    .expect("failed");
            }
            helpdesk::store::Store::Postgres { pool } => {
                sqlx::query(fail)
                    .bind(&job)
                    .execute(pool)
                    .await
                    .expect("failed");
            }
        }
        let page = app.get("/admin/jobs?state=Failed", Some(&admin)).await.body;
        assert!(page.contains(&job) && page.contains("Retry"), "{backend:?}");
        let retried = app
            .post(&format!("/admin/jobs/{job}/retry"), &admin, &[])
            .await;
        assert_eq!(retried.status, StatusCode::SEE_OTHER);
        let pending = helpdesk::jobs::list(&app.db.store, Some("Pending"), 10)
            .await
            .expect("jobs");
        assert!(pending.iter().any(|j| j.id == job));
        let again = app
            .post(&format!("/admin/jobs/{job}/retry"), &admin, &[])
            .await;
        assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

store_test! {
    #[tokio::test]
    async fn the_channels_page_names_the_instances_that_run_each_channel(db: TestStore) {
        let config = support::web::config(&db);
        let app = WebApp::with_config(db, config).await;
        let admin = app.admin().await;
        // A connection report left behind by an instance that has stopped.
        helpdesk::store::health::report(
            &app.db.store,
            &helpdesk::store::health::ChannelHealth {
                channel: "email".into(),
                name: "delivery".into(),
                connected: false,
                detail: None,
                last_success_at: None,
                last_error: Some("451 try again".into()),
                last_error_at: Some(Utc::now()),
                consecutive_failures: 2,
                backlog: 1,
                updated_at: Utc::now(),
            },
        )
        .await
        .expect("reported");
        let page = app.get("/admin/channels", Some(&admin)).await.body;
        let email = section(&page, "channel-email");
        assert!(email.contains(">not enabled<"), "{email}");
        assert!(!page.contains("enabled on another instance"), "{page}");
        assert!(page.contains("No server has reported"), "{page}");

        support::other_instance(
            &app.db.store,
            &[helpdesk::helpdesk_channel::ChannelKind::Email],
            Utc::now(),
        )
        .await;
        let page = app.get("/admin/channels", Some(&admin)).await.body;
        let email = section(&page, "channel-email");
        assert!(email.contains("enabled on another instance"), "{email}");
        assert!(email.contains("other-host (pid"), "{email}");
        assert!(section(&page, "channel-telegram").contains(">not enabled<"));
        assert!(section(&page, "instances").contains("other-host"));
    }
}
