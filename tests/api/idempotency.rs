//! Creates with an Idempotency-Key: a repeat is answered as a replay, never a second ticket.

use super::*;

async fn ticket_count(app: &WebApp) -> i64 {
    store::tickets::totals(&app.db.store)
        .await
        .expect("totals")
        .tickets
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn creates_racing_with_one_key_make_one_ticket_and_only_repeats_say_replayed(
        app: WebApp,
    ) {
        let backend = app.db.backend();
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let before = ticket_count(&app).await;
        let app = Arc::new(app);
        let sent: Vec<_> = (0..8)
            .map(|_| {
                let (app, admin) = (app.clone(), admin.clone());
                tokio::spawn(async move {
                    call(
                        &app,
                        Method::POST,
                        "/api/v1/tickets",
                        Some(&admin),
                        Some(json!({
                            "subject": "Order 4713 never came",
                            "body": "Where is it?",
                            "customer_email": "eve@example.org",
                        })),
                        &[("Idempotency-Key", "order-4713")],
                    )
                    .await
                })
            })
            .collect();
        let mut replies = Vec::new();
        for reply in sent {
            replies.push(reply.await.expect("answered"));
        }
        for reply in &replies {
            assert_eq!(
                reply.status,
                StatusCode::CREATED,
                "{backend:?} {}",
                reply.text
            );
            assert_eq!(reply.body["number"], replies[0].body["number"]);
        }
        let fresh = replies
            .iter()
            .filter(|reply| reply.headers.get("idempotent-replayed").is_none())
            .count();
        assert_eq!(fresh, 1, "{backend:?}: one answer opened the ticket");
        assert!(
            replies
                .iter()
                .filter_map(|reply| reply.headers.get("idempotent-replayed"))
                .all(|value| value == "true")
        );
        assert_eq!(ticket_count(&app).await, before + 1);
    }
}

store_test! {
    #[tokio::test]
    async fn a_create_sent_twice_with_one_idempotency_key_makes_one_ticket(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let before = ticket_count(&app).await;
        let body = json!({
            "subject": "Invoice missing",
            "body": "I never got the invoice for March.",
            "customer_email": "Dora@Example.org",
            "customer_name": "Dora Dürr",
            "priority": "high",
            "department_id": app.billing,
        });
        let key = [("Idempotency-Key", "order-4711")];
        let first = call(
            &app,
            Method::POST,
            "/api/v1/tickets",
            Some(&admin),
            Some(body.clone()),
            &key,
        )
        .await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
        assert!(
            first.headers.get("idempotent-replayed").is_none(),
            "the request that opened the ticket is no replay"
        );
        let number = first.body["number"].as_i64().expect("number");
        assert_eq!(
            first.headers[header::LOCATION],
            format!("/api/v1/tickets/{number}").as_str()
        );
        assert_eq!(first.body["priority"], "high");
        assert_eq!(first.body["department"], "Billing");
        assert_eq!(first.body["channel"], "email");
        assert_eq!(first.body["customer"], "Dora Dürr");
        assert_eq!(
            first.body["messages"][0]["body_text"],
            "I never got the invoice for March."
        );
        let second = call(
            &app,
            Method::POST,
            "/api/v1/tickets",
            Some(&admin),
            Some(body.clone()),
            &key,
        )
        .await;
        assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
        assert_eq!(second.headers["idempotent-replayed"], "true");
        assert_eq!(second.body, first.body);
        assert_eq!(ticket_count(&app).await, before + 1);

        // The same key for another request is refused; a new key makes a new ticket.
        let mut other = body.clone();
        other["subject"] = json!("Something else");
        call(
            &app,
            Method::POST,
            "/api/v1/tickets",
            Some(&admin),
            Some(other.clone()),
            &key,
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
        let fresh = call(
            &app,
            Method::POST,
            "/api/v1/tickets",
            Some(&admin),
            Some(other),
            &[("Idempotency-Key", "order-4712")],
        )
        .await;
        assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.text);
        assert_eq!(ticket_count(&app).await, before + 2);

        // Keys are per agent: the same key from another agent is another request.
        let agent = token(&app, app.agent_id, Role::Agent).await;
        let theirs = call(
            &app,
            Method::POST,
            "/api/v1/tickets",
            Some(&agent),
            Some(body),
            &key,
        )
        .await;
        assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.text);
        assert_ne!(theirs.body["number"], first.body["number"]);

        // Bad input loses nothing and says what is wrong.
        let bad = call(
            &app,
            Method::POST,
            "/api/v1/tickets",
            Some(&admin),
            Some(json!({"subject": "x", "body": "y", "customer_email": "not an address"})),
            &[],
        )
        .await;
        bad.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            bad.body["detail"]
                .as_str()
                .expect("detail")
                .contains("customer_email")
        );
        call(
            &app,
            Method::POST,
            "/api/v1/tickets",
            Some(&admin),
            Some(json!({"subject": "x"})),
            &[],
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ticket_count(&app).await, before + 3);
    }
}
