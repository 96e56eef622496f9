//! Tickets over the API: list filters and pages, changes and answers with their history, and
//! the JSON of one ticket.

use super::*;

store_test! {
    #[tokio::test]
    async fn the_ticket_list_filters_like_the_web_page_and_pages_with_a_cursor(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let agent = token(&app, app.agent_id, Role::Agent).await;
        let mut billing = Vec::new();
        for n in 0..5 {
            let number = app
                .ticket(
                    &format!("list-{n}@example.org"),
                    &format!("Refund {n}"),
                    "Please refund",
                )
                .await;
            if n % 2 == 0 {
                app.route(number, Some(app.billing)).await;
                billing.push(number);
            }
        }
        // Pages of two, following `next`, cover every ticket once.
        let mut seen = Vec::new();
        let mut path = "/api/v1/tickets?limit=2".to_owned();
        loop {
            let page = call(&app, Method::GET, &path, Some(&admin), None, &[]).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text);
            for item in page.body["items"].as_array().expect("items") {
                seen.push(item["number"].as_i64().expect("number"));
            }
            match page.body["next"].as_str() {
                Some(next) => {
                    assert!(
                        page.headers["link"]
                            .to_str()
                            .expect("link")
                            .contains("rel=\"next\"")
                    );
                    path = next.to_owned();
                }
                None => break,
            }
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 5);

        let filtered = call(
            &app,
            Method::GET,
            &format!("/api/v1/tickets?department={}", app.billing),
            Some(&admin),
            None,
            &[],
        )
        .await;
        let mut numbers: Vec<i64> = filtered.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|t| t["number"].as_i64().expect("n"))
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, billing);
        let none = call(
            &app,
            Method::GET,
            "/api/v1/tickets?status=closed",
            Some(&admin),
            None,
            &[],
        )
        .await;
        assert_eq!(none.body["items"], json!([]));
        let searched = call(
            &app,
            Method::GET,
            "/api/v1/tickets?q=%23"
                .to_owned()
                .as_str()
                .replace("%23", &format!("%23{}", billing[0]))
                .as_str(),
            Some(&admin),
            None,
            &[],
        )
        .await;
        assert_eq!(
            searched.body["items"][0]["number"],
            json!(billing[0]),
            "{}",
            searched.text
        );

        // An agent sees the tickets of their department only, as on the web page.
        let theirs = call(
            &app,
            Method::GET,
            "/api/v1/tickets",
            Some(&agent),
            None,
            &[],
        )
        .await;
        assert_eq!(
            theirs.body["items"].as_array().expect("items").len(),
            billing.len()
        );
        let outside = seen
            .iter()
            .find(|n| !billing.contains(n))
            .expect("one outside");
        call(
            &app,
            Method::GET,
            &format!("/api/v1/tickets/{outside}"),
            Some(&agent),
            None,
            &[],
        )
        .await
        .problem(StatusCode::NOT_FOUND);

        // Bad filters are problems, not empty lists.
        for bad in [
            "status=lost",
            "assignee=someone",
            "cursor=xyz",
            "limit=0",
            "limit=1000",
            "priority=meh",
            "sort=sideways",
        ] {
            call(
                &app,
                Method::GET,
                &format!("/api/v1/tickets?{bad}"),
                Some(&admin),
                None,
                &[],
            )
            .await
            .problem(StatusCode::BAD_REQUEST);
        }
    }
}

store_test! {
    #[tokio::test]
    async fn tickets_change_and_answer_through_the_api_with_history_and_problems(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let number = app
            .ticket("changes-1@example.org", "Login broken", "I cannot sign in")
            .await;
        let path = format!("/api/v1/tickets/{number}");
        let changed = call(
            &app,
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({
                "priority": "urgent", "department_id": app.technical, "assignee_id": app.agent_id,
                "status": "pending", "reason": "waiting for logs"
            })),
            &[],
        )
        .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
        assert_eq!(changed.body["status"], "pending");
        assert_eq!(changed.body["priority"], "urgent");
        assert_eq!(changed.body["assignee_id"], json!(app.agent_id));
        let kinds: Vec<&str> = changed.body["history"]
            .as_array()
            .expect("history")
            .iter()
            .map(|e| e["kind"].as_str().expect("kind"))
            .collect();
        for kind in ["priority", "department", "assignee", "status"] {
            assert!(kinds.contains(&kind), "{kinds:?}");
        }
        assert!(
            changed.body["history"]
                .as_array()
                .expect("history")
                .iter()
                .any(|e| e["reason"] == "waiting for logs" && e["actor"] == "Ada Admin")
        );
        // null clears the assignee; a missing field stays.
        let cleared = call(
            &app,
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"assignee_id": null})),
            &[],
        )
        .await;
        assert_eq!(cleared.body["assignee_id"], Value::Null, "{}", cleared.text);
        assert_eq!(cleared.body["department_id"], json!(app.technical));

        let reply = call(
            &app,
            Method::POST,
            &format!("{path}/replies"),
            Some(&admin),
            Some(json!({"text": "Please send the logs"})),
            &[],
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        assert_eq!(reply.body["delivery_status"], "pending");
        let note = call(
            &app,
            Method::POST,
            &format!("{path}/notes"),
            Some(&admin),
            Some(json!({"text": "probably SSO"})),
            &[],
        )
        .await;
        assert_eq!(note.status, StatusCode::CREATED, "{}", note.text);
        assert_eq!(note.body["delivery_status"], Value::Null);
        let shown = call(&app, Method::GET, &path, Some(&admin), None, &[]).await;
        let kinds: Vec<&str> = shown.body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["kind"].as_str().expect("kind"))
            .collect();
        assert_eq!(kinds, ["public", "public", "internal"]);

        // Problems: unknown department, closed ticket, workflow, empty text, unreadable input.
        call(
            &app,
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"department_id": 99999})),
            &[],
        )
        .await
        .problem(StatusCode::NOT_FOUND);
        // One request is one transaction: a refused field leaves the others as they were.
        call(
            &app,
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"priority": "low", "department_id": 99999})),
            &[],
        )
        .await
        .problem(StatusCode::NOT_FOUND);
        let kept = call(&app, Method::GET, &path, Some(&admin), None, &[]).await;
        assert_eq!(kept.body["priority"], "urgent", "{}", kept.text);
        call(
            &app,
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"status": "closed"})),
            &[],
        )
        .await;
        call(
            &app,
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"status": "open"})),
            &[],
        )
        .await
        .problem(StatusCode::CONFLICT);
        call(
            &app,
            Method::POST,
            &format!("{path}/replies"),
            Some(&admin),
            Some(json!({"text": "late"})),
            &[],
        )
        .await
        .problem(StatusCode::CONFLICT);
        call(
            &app,
            Method::POST,
            &format!("{path}/notes"),
            Some(&admin),
            Some(json!({"text": "  "})),
            &[],
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
        call(
            &app,
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"status": "lost"})),
            &[],
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
        call(
            &app,
            Method::GET,
            "/api/v1/tickets/abc",
            Some(&admin),
            None,
            &[],
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
        call(
            &app,
            Method::GET,
            "/api/v1/tickets/99999",
            Some(&admin),
            None,
            &[],
        )
        .await
        .problem(StatusCode::NOT_FOUND);
        call(
            &app,
            Method::GET,
            "/api/v1/nothing-here",
            Some(&admin),
            None,
            &[],
        )
        .await
        .problem(StatusCode::NOT_FOUND);
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("{path}/notes"));
        request = request
            .header(header::AUTHORIZATION, format!("Bearer {admin}"))
            .header(header::CONTENT_TYPE, "application/json");
        let response = app
            .router
            .clone()
            .oneshot(request.body(Body::from("{not json")).expect("request"))
            .await
            .expect("answer");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );

        // Customers, agents and departments read back what the tickets made.
        let customers = call(
            &app,
            Method::GET,
            "/api/v1/customers?q=CARLA",
            Some(&admin),
            None,
            &[],
        )
        .await;
        let customer = &customers.body["items"][0];
        assert_eq!(
            customer["identities"][0]["address"], "carla@example.org",
            "{}",
            customers.text
        );
        let nobody = call(
            &app,
            Method::GET,
            "/api/v1/customers?q=zelda",
            Some(&admin),
            None,
            &[],
        )
        .await;
        assert_eq!(nobody.body["items"], json!([]));
        let id = customer["id"].as_i64().expect("id");
        let detail = call(
            &app,
            Method::GET,
            &format!("/api/v1/customers/{id}"),
            Some(&admin),
            None,
            &[],
        )
        .await;
        assert_eq!(detail.body["tickets"][0]["number"], json!(number));
        let agents = call(&app, Method::GET, "/api/v1/agents", Some(&admin), None, &[]).await;
        assert_eq!(agents.body.as_array().expect("agents").len(), 2);
        let departments = call(
            &app,
            Method::GET,
            "/api/v1/departments",
            Some(&admin),
            None,
            &[],
        )
        .await;
        // Billing and Technical, and General, the default department of every fresh database.
        assert_eq!(departments.body.as_array().expect("departments").len(), 3);
    }
}

store_test! {
    #[tokio::test]
    async fn a_reply_on_a_channel_no_instance_runs_answers_409_naming_the_setting(db: TestStore) {
        let config = support::web::config(&db);
        let app = WebApp::with_config(db, config).await;
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let number = app.ticket("off-api@example.org", "Invoice", "Wrong").await;
        let path = format!("/api/v1/tickets/{number}");
        let refused = call(
            &app,
            Method::POST,
            &format!("{path}/replies"),
            Some(&admin),
            Some(json!({"text": "On its way"})),
            &[],
        )
        .await;
        refused.problem(StatusCode::CONFLICT);
        let detail = refused.body["detail"].as_str().expect("detail");
        assert!(
            detail.contains("email") && detail.contains("email.enabled"),
            "{detail}"
        );
        let note = call(
            &app,
            Method::POST,
            &format!("{path}/notes"),
            Some(&admin),
            Some(json!({"text": "asked the bank"})),
            &[],
        )
        .await;
        assert_eq!(note.status, StatusCode::CREATED, "{}", note.text);
        let shown = call(&app, Method::GET, &path, Some(&admin), None, &[]).await;
        assert_eq!(
            shown.body["messages"].as_array().expect("messages").len(),
            2,
            "the mail and the note; no reply: {}",
            shown.text
        );
    }
}

store_test! {
    #[tokio::test]
    async fn ticket_json_names_each_sender_address_and_the_link_a_stranger_made(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let number = app
            .mail_from("Ada Lovelace <ada@example.org>", "al1@x", "Printer")
            .await;
        // A stranger under Ada's name, naming her ticket by its tag: a ticket of its own.
        let apart = app
            .ticket_by(
                "Ada Lovelace <mallory@evil.example>",
                "al2@x",
                &format!("Re: [#{number}] Printer"),
                "Send the refund to my other account.",
            )
            .await;

        let named = call(
            &app,
            Method::GET,
            &format!("/api/v1/tickets/{number}"),
            Some(&admin),
            None,
            &[],
        )
        .await;
        assert_eq!(named.status, StatusCode::OK);
        assert_eq!(named.body["messages"].as_array().map(Vec::len), Some(1));
        assert_eq!(named.body["messages"][0]["author"], "Ada Lovelace");
        assert_eq!(
            named.body["messages"][0]["author_address"],
            "ada@example.org"
        );
        assert_eq!(named.body["linked_to"], Value::Null);
        assert_eq!(named.body["linked_from"], json!([apart]));
        let history = named.body["history"].as_array().expect("history");
        assert!(
            history
                .iter()
                .any(|e| e["kind"] == "linked" && e["old_value"] == format!("#{apart}")),
            "{history:?}"
        );

        let new = call(
            &app,
            Method::GET,
            &format!("/api/v1/tickets/{apart}"),
            Some(&admin),
            None,
            &[],
        )
        .await;
        assert_eq!(new.body["linked_to"], json!(number));
        assert_eq!(new.body["linked_from"], json!([]));
        assert_eq!(
            new.body["messages"][0]["author_address"],
            "mallory@evil.example"
        );
    }
}
