//! Rules over the API, validated and previewed like the web editor's, and the job list.

use super::*;

store_test! {
    #[tokio::test]
    async fn rules_are_validated_like_the_web_editor(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let created = call(
            &app,
            Method::POST,
            "/api/v1/rules",
            Some(&admin),
            Some(json!({
                "name": "Refunds to billing",
                "conditions": [{"if": "subject_contains", "any": ["refund"]}],
                "actions": [{"then": "set_department", "department": app.billing}],
            })),
            &[],
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        assert_eq!(created.body["position"], 1);
        assert_eq!(created.body["enabled"], true);
        let id = created.body["id"].as_i64().expect("id");
        let wrong = call(
            &app,
            Method::POST,
            "/api/v1/rules",
            Some(&admin),
            Some(json!({
                "name": "Broken", "conditions": [{"if": "subject_contains", "anything": 1}],
                "actions": [{"then": "set_priority", "priority": "high"}],
            })),
            &[],
        )
        .await;
        wrong.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            wrong.body["detail"]
                .as_str()
                .expect("detail")
                .starts_with("conditions at [0]"),
            "{}",
            wrong.text
        );
        call(
            &app,
            Method::POST,
            "/api/v1/rules",
            Some(&admin),
            Some(json!({"name": "No actions", "actions": []})),
            &[],
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
        let updated = call(
            &app,
            Method::PUT,
            &format!("/api/v1/rules/{id}"),
            Some(&admin),
            Some(json!({
                "name": "Refunds", "enabled": false,
                "conditions": [], "actions": [{"then": "set_priority", "priority": "low"}],
            })),
            &[],
        )
        .await;
        assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
        assert_eq!(updated.body["enabled"], false);
        let listed = call(&app, Method::GET, "/api/v1/rules", Some(&admin), None, &[]).await;
        assert_eq!(listed.body.as_array().expect("rules").len(), 1);
        let deleted = call(
            &app,
            Method::DELETE,
            &format!("/api/v1/rules/{id}"),
            Some(&admin),
            None,
            &[],
        )
        .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        call(
            &app,
            Method::DELETE,
            &format!("/api/v1/rules/{id}"),
            Some(&admin),
            None,
            &[],
        )
        .await
        .problem(StatusCode::NOT_FOUND);
    }
}

store_test! {
    #[tokio::test]
    async fn rules_come_with_warnings_a_preview_and_a_place_to_move_to(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let invoice = app
            .ticket(
                "api-inv@example.org",
                "Invoice 88 is wrong",
                "Please check.",
            )
            .await;
        app.ticket("api-hi@example.org", "Hello", "hi").await;
        let mut ids = Vec::new();
        for (name, conditions, department) in [
            (
                "Invoices to Billing",
                json!([{"if": "subject_contains", "any": ["invoice"]}]),
                app.billing,
            ),
            ("Everything to Technical", json!([]), app.technical),
        ] {
            let created = call(
                &app,
                Method::POST,
                "/api/v1/rules",
                Some(&admin),
                Some(json!({
                    "name": name,
                    "conditions": conditions,
                    "actions": [{"then": "set_department", "department": department}],
                })),
                &[],
            )
            .await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
            ids.push(created.body["id"].as_i64().expect("id"));
        }
        let listed = call(&app, Method::GET, "/api/v1/rules", Some(&admin), None, &[]).await;
        let warnings = listed.body[0]["warnings"].as_array().expect("warnings");
        assert_eq!(warnings.len(), 1, "{}", listed.text);
        let warning = warnings[0].as_str().expect("text");
        assert!(
            warning.contains("“Everything to Technical”")
                && warning.contains(&format!("#{invoice}")),
            "{warning}"
        );
        assert_eq!(listed.body[1]["warnings"], json!([]));

        let preview = call(
            &app,
            Method::GET,
            &format!("/api/v1/rules/{}/preview", ids[0]),
            Some(&admin),
            None,
            &[],
        )
        .await;
        assert_eq!(preview.status, StatusCode::OK, "{}", preview.text);
        assert_eq!(
            preview.body,
            json!([{
                "ticket": invoice, "subject": "Invoice 88 is wrong", "applies": true,
                "stopped_by": null,
                "overridden": [{"field": "department", "by": ids[1]}],
            }])
        );

        let moved = call(
            &app,
            Method::POST,
            &format!("/api/v1/rules/{}/move", ids[1]),
            Some(&admin),
            Some(json!({"position": 1})),
            &[],
        )
        .await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
        assert_eq!(moved.body["position"], 1);
        let listed = call(&app, Method::GET, "/api/v1/rules", Some(&admin), None, &[]).await;
        assert_eq!(listed.body[0]["id"], ids[1]);
        call(
            &app,
            Method::POST,
            &format!("/api/v1/rules/{}/move", ids[1]),
            Some(&admin),
            Some(json!({"position": 0})),
            &[],
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
        call(
            &app,
            Method::GET,
            "/api/v1/rules/999999/preview",
            Some(&admin),
            None,
            &[],
        )
        .await
        .problem(StatusCode::NOT_FOUND);
    }
}

store_test! {
    #[tokio::test]
    async fn jobs_name_their_ticket_and_times_and_filter_by_queue(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let number = app.ticket("api-job@example.org", "Deliver me", "x").await;
        helpdesk::ops::send_reply(
            &app.db.store,
            &store::outbound::NewReply {
                number: number.into(),
                agent_id: app.admin_id,
                text: "On it",
                kind: helpdesk::domain::MessageKind::Public,
                external_id: Some("<api-job@helpdesk.example>"),
                now: Utc::now(),
                channels_here: &[helpdesk::helpdesk_channel::ChannelKind::Email],
            },
        )
        .await
        .expect("queued");
        let listed = call(
            &app,
            Method::GET,
            "/api/v1/jobs?queue=helpdesk.deliver&state=Pending",
            Some(&admin),
            None,
            &[],
        )
        .await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
        let jobs = listed.body.as_array().expect("jobs");
        assert_eq!(jobs.len(), 1, "{}", listed.text);
        assert_eq!(jobs[0]["ticket"], number);
        assert_eq!(jobs[0]["queue"], "helpdesk.deliver");
        assert!(jobs[0]["created_at"].is_string() && jobs[0]["run_at"].is_string());
        assert_eq!(jobs[0]["last_error"], Value::Null);
        // The reply also queued its SLA check: the other queue lists that one only.
        let other = call(
            &app,
            Method::GET,
            "/api/v1/jobs?queue=helpdesk.sla",
            Some(&admin),
            None,
            &[],
        )
        .await;
        let other = other.body.as_array().expect("jobs");
        assert!(!other.is_empty());
        assert!(
            other
                .iter()
                .all(|job| job["queue"] == "helpdesk.sla" && job["id"] != jobs[0]["id"]),
            "{other:?}"
        );
        let older = call(
            &app,
            Method::GET,
            &format!(
                "/api/v1/jobs?before={}",
                jobs[0]["id"].as_str().expect("id")
            ),
            Some(&admin),
            None,
            &[],
        )
        .await;
        assert!(
            older
                .body
                .as_array()
                .expect("jobs")
                .iter()
                .all(|j| j["id"] != jobs[0]["id"]),
            "{}",
            older.text
        );
        call(
            &app,
            Method::GET,
            "/api/v1/jobs?queue=nowhere",
            Some(&admin),
            None,
            &[],
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
    }
}
