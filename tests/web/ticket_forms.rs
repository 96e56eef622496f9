//! The ticket page's forms: replies, notes, changes and merges recorded with who and why, and
//! the replies and merges it refuses.

use super::*;

store_test! {
    #[tokio::test]
    async fn replies_notes_changes_and_merges_are_recorded_with_who_and_why(app: WebApp) {
        let backend = app.db.backend();
        let number = app
            .ticket("t1@example.org", "Cannot log in", "Password reset fails")
            .await;
        let duplicate = app
            .ticket("t2@example.org", "Login broken", "Same problem again")
            .await;
        app.route(number, Some(app.billing)).await;
        app.route(duplicate, Some(app.billing)).await;
        let agent = app.agent().await;
        let admin = app.admin().await;

        let page = app.get(&format!("/tickets/{number}"), Some(&agent)).await;
        assert!(page.body.contains("Password reset fails"));

        let reply = app
            .post(
                &format!("/tickets/{number}/reply"),
                &agent,
                &[("text", "Try this link.")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let note = app
            .post(
                &format!("/tickets/{number}/reply"),
                &agent,
                &[("text", "Customer sounds annoyed."), ("note", "1")],
            )
            .await;
        assert_eq!(note.status, StatusCode::SEE_OTHER);
        let empty = app
            .post(
                &format!("/tickets/{number}/reply"),
                &agent,
                &[("text", "  ")],
            )
            .await;
        assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);

        let detail = app.detail(number).await;
        assert_eq!(
            detail.summary.status, "open",
            "a first public reply opens the ticket"
        );
        let public = detail
            .messages
            .iter()
            .find(|m| m.body_text == "Try this link.")
            .expect("reply");
        assert_eq!(
            (public.kind.as_str(), public.delivery_status.as_deref()),
            ("public", Some("pending"))
        );
        let internal = detail
            .messages
            .iter()
            .find(|m| m.body_text == "Customer sounds annoyed.")
            .expect("note");
        assert_eq!(
            (internal.kind.as_str(), internal.delivery_status.as_deref()),
            ("internal", None)
        );
        let queued = helpdesk::jobs::list(&app.db.store, None, 50)
            .await
            .expect("jobs");
        assert!(
            queued.iter().any(|job| job.queue.contains("deliver")),
            "{backend:?}: {queued:?}"
        );

        let changed = app
            .post(
                &format!("/tickets/{number}/update"),
                &agent,
                &[
                    ("status", "pending"),
                    ("priority", "high"),
                    ("department", &app.technical.to_string()),
                    ("assignee", &app.agent_id.to_string()),
                    ("reason", "waiting for the customer"),
                ],
            )
            .await;
        assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
        let events = history(&app, number).await;
        for (kind, old, new) in [
            ("status", Some("open"), Some("pending")),
            ("priority", Some("normal"), Some("high")),
            ("department", Some("Billing"), Some("Technical")),
            ("assignee", None, Some("Abe Agent")),
        ] {
            let event = events
                .iter()
                .find(|e| e.kind == kind && e.reason.as_deref() == Some("waiting for the customer"))
                .unwrap_or_else(|| panic!("{backend:?}: no {kind} event in {events:?}"));
            assert_eq!(event.actor, "Abe Agent");
            assert_eq!(
                (event.old_value.as_deref(), event.new_value.as_deref()),
                (old, new)
            );
        }
        let page = app
            .get(&format!("/tickets/{number}"), Some(&agent))
            .await
            .body;
        assert!(
            page.contains("waiting for the customer"),
            "history is shown"
        );

        // A move the workflow does not allow is refused with the reason.
        app.post(
            &format!("/tickets/{number}/update"),
            &admin,
            &[("status", "closed")],
        )
        .await;
        let reopen = app
            .post(
                &format!("/tickets/{number}/update"),
                &admin,
                &[("status", "open")],
            )
            .await;
        assert_eq!(reopen.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            reopen.body.contains("cannot go from closed to open"),
            "{}",
            reopen.body
        );

        // Merge the duplicate into a ticket that goes on.
        let target = app
            .ticket("t3@example.org", "Login issue", "Original report")
            .await;
        app.route(target, Some(app.billing)).await;
        let merged = app
            .post(
                &format!("/tickets/{duplicate}/merge"),
                &agent,
                &[
                    ("into", &format!("#{target}")),
                    ("reason", "same customer, same problem"),
                ],
            )
            .await;
        assert_eq!(merged.status, StatusCode::SEE_OTHER, "{}", merged.body);
        assert_eq!(merged.location(), format!("/tickets/{target}"));
        let kept = app.detail(target).await;
        assert!(
            kept.messages
                .iter()
                .any(|m| m.body_text.contains("Same problem again"))
        );
        assert!(kept.history.iter().any(|e| e.kind == "merged"));
        let gone = app.detail(duplicate).await;
        assert_eq!(gone.summary.status, "closed");
        assert!(gone.messages.is_empty());
        let page = app
            .get(&format!("/tickets/{duplicate}"), Some(&agent))
            .await
            .body;
        assert!(page.contains(&format!("Merged into <a href=\"/tickets/{target}\"")));
        let into_self = app
            .post(
                &format!("/tickets/{target}/merge"),
                &agent,
                &[("into", &target.to_string())],
            )
            .await;
        assert_eq!(into_self.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

store_test! {
    #[tokio::test]
    async fn a_reply_on_a_channel_nothing_runs_is_refused_on_the_page_with_the_text_kept(
        db: TestStore,
    ) {
        // An instance without mail, and no other instance running.
        let config = support::web::config(&db);
        let app = WebApp::with_config(db, config).await;
        let number = app
            .ticket("off-1@example.org", "Invoice", "Wrong amount")
            .await;
        let admin = app.admin().await;
        let page = app
            .get(&format!("/tickets/{number}"), Some(&admin))
            .await
            .body;
        assert!(
            page.contains("id=\"channel-off\"") && page.contains("email.enabled"),
            "the page tells before anyone types: {page}"
        );

        let typed = "Dear Carla, the refund <is> on its way.";
        let refused = app
            .post(
                &format!("/tickets/{number}/reply"),
                &admin,
                &[("text", typed)],
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
        assert!(
            refused.body.contains("id=\"reply-error\""),
            "{}",
            refused.body
        );
        assert!(refused.body.contains("email.enabled"), "{}", refused.body);
        assert!(
            refused
                .body
                .contains("Dear Carla, the refund &#60;is&#62; on its way.</textarea>"),
            "the typed text is kept: {}",
            refused.body
        );
        let detail = app.detail(number).await;
        assert_eq!(detail.messages.len(), 1, "nothing was stored");

        // A note is taken.
        let noted = app
            .post(
                &format!("/tickets/{number}/reply"),
                &admin,
                &[("text", "Customer called, see CRM"), ("note", "1")],
            )
            .await;
        assert_eq!(noted.status, StatusCode::SEE_OTHER, "{}", noted.body);

        // Another running instance runs mail: the reply goes through.
        support::other_instance(
            &app.db.store,
            &[helpdesk::helpdesk_channel::ChannelKind::Email],
            Utc::now(),
        )
        .await;
        let page = app
            .get(&format!("/tickets/{number}"), Some(&admin))
            .await
            .body;
        assert!(!page.contains("id=\"channel-off\""));
        let sent = app
            .post(
                &format!("/tickets/{number}/reply"),
                &admin,
                &[("text", typed)],
            )
            .await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    }
}

store_test! {
    #[tokio::test]
    async fn merging_another_customers_ticket_asks_first_and_a_merged_ticket_takes_no_replies(
        app: WebApp,
    ) {
        let admin = app.admin().await;
        let max = app
            .mail_from("Max Muster <max@example.org>", "m-1@example.org", "Login")
            .await;
        let pia = app
            .mail_from(
                "Pia Example <pia@example.org>",
                "p-1@example.org",
                "Login too",
            )
            .await;
        let reply = app
            .post(
                &format!("/tickets/{pia}/reply"),
                &admin,
                &[("text", "Looking into it")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);

        // Different customers: a confirmation page says whose messages move where.
        let asked = app
            .post(
                &format!("/tickets/{pia}/merge"),
                &admin,
                &[("into", &max.to_string()), ("reason", "same outage")],
            )
            .await;
        assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
        assert!(
            asked.body.contains(&format!(
                "The 2 messages of Pia Example (pia@example.org) on #{pia} move to #{max} of \
                 Max Muster (max@example.org)."
            )),
            "{}",
            asked.body
        );
        assert!(asked.body.contains("name=\"confirm\" value=\"yes\""));
        assert!(asked.body.contains("name=\"reason\" value=\"same outage\""));
        assert_eq!(
            app.detail(pia).await.summary.status,
            "open",
            "nothing merged yet"
        );

        let merged = app
            .post(
                &format!("/tickets/{pia}/merge"),
                &admin,
                &[
                    ("into", &max.to_string()),
                    ("reason", "same outage"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(merged.status, StatusCode::SEE_OTHER, "{}", merged.body);
        assert_eq!(app.detail(max).await.messages.len(), 3);

        // The merged ticket points on and offers neither a reply nor a merge form.
        let page = app.get(&format!("/tickets/{pia}"), Some(&admin)).await.body;
        assert!(page.contains("id=\"merged-notice\""), "{page}");
        assert!(page.contains(&format!("<a href=\"/tickets/{max}\">#{max}</a>")));
        assert!(!page.contains("id=\"reply-form\"") && !page.contains("id=\"merge-form\""));
        let late = app
            .post(
                &format!("/tickets/{pia}/reply"),
                &admin,
                &[("text", "Hello?")],
            )
            .await;
        assert_eq!(
            late.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            late.body
        );
        assert!(
            section(&late.body, "reply-error").contains(&format!("merged into #{max}")),
            "{}",
            late.body
        );

        // The history reads as sentences with names.
        let history = section(&page, "history");
        assert!(
            history.contains(&format!("Merged into #{max}")),
            "{history}"
        );
        assert!(
            history.contains("Created by mail from Pia Example (pia@example.org)"),
            "{history}"
        );
        let page = app.get(&format!("/tickets/{max}"), Some(&admin)).await.body;
        assert!(
            section(&page, "history").contains(&format!("#{pia} merged into this ticket")),
            "{page}"
        );

        // The same customer's tickets merge without asking.
        let first = app.ticket("same-1@example.org", "Printer", "a").await;
        let second = app.ticket("same-2@example.org", "Printer again", "b").await;
        let merged = app
            .post(
                &format!("/tickets/{second}/merge"),
                &admin,
                &[("into", &first.to_string())],
            )
            .await;
        assert_eq!(merged.status, StatusCode::SEE_OTHER, "{}", merged.body);
    }
}

store_test! {
    #[tokio::test]
    async fn history_names_departments_agents_and_rules(app: WebApp) {
        let admin = app.admin().await;
        let number = app
            .ticket("h-1@example.org", "Invoice 7", "Charged twice")
            .await;
        app.route(number, Some(app.billing)).await;
        app.route(number, Some(app.technical)).await;
        let changed = app
            .post(
                &format!("/tickets/{number}/update"),
                &admin,
                &[
                    ("assignee", &app.agent_id.to_string()),
                    ("status", "open"),
                    ("reason", "needs the bank"),
                ],
            )
            .await;
        assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
        // A rule that names a department and an agent by id.
        let rule = helpdesk::store::rules::create(
            &app.db.store,
            helpdesk::store::rules::NewRule {
                name: "Invoices to Billing".into(),
                enabled: true,
                conditions: vec![helpdesk::domain::rules::Condition::SubjectContains {
                    any: vec!["invoice".into()],
                }],
                actions: vec![
                    helpdesk::domain::rules::Action::SetDepartment {
                        department: app.billing,
                    },
                    helpdesk::domain::rules::Action::AssignTo {
                        agent: app.agent_id,
                    },
                ],
                stop: true,
            },
            Utc::now(),
        )
        .await;
        assert!(rule.is_ok(), "{rule:?}");
        let routed = app.ticket("h-2@example.org", "Invoice 8", "Again").await;
        let id = views::ticket_facts(&app.db.store, routed.into())
            .await
            .expect("read")
            .expect("exists")
            .id
            .get();
        let settings = helpdesk::jobs::JobSettings::from_settings(
            &helpdesk::config::Settings::load_from(None, Vec::new()).expect("defaults"),
        );
        helpdesk::jobs::assign::assign_ticket(&app.db.store, id.into(), &settings.routing(), Utc::now())
            .await
            .expect("assigned");

        let page = app
            .get(&format!("/tickets/{number}"), Some(&admin))
            .await
            .body;
        let history = section(&page, "history");
        for line in [
            "Created by mail from Carla Customer (carla@example.org)",
            "Department: none → Billing",
            "Department: Billing → Technical",
            "Assignee: unassigned → Abe Agent",
            "Status: new → open",
            "needs the bank",
        ] {
            assert!(history.contains(line), "{line} missing in {history}");
        }
        let page = app
            .get(&format!("/tickets/{routed}"), Some(&admin))
            .await
            .body;
        let history = section(&page, "history");
        assert!(
            history.contains(
                "Rule “Invoices to Billing” applied: department → Billing; assignee → Abe Agent"
            ),
            "{history}"
        );
        assert!(!history.contains("agent #"), "{history}");
    }
}
