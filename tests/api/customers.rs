//! Customers over the API: search, rename and merge, and merging tickets between them.

use super::*;

fn numbers(reply: &Reply) -> Vec<i64> {
    let mut numbers: Vec<i64> = reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items: {}", reply.text))
        .iter()
        .filter_map(|item| item["number"].as_i64())
        .collect();
    numbers.sort_unstable();
    numbers
}

store_test! {
    #[tokio::test]
    async fn customers_are_searched_renamed_and_merged_over_the_api(app: WebApp) {
        let backend = app.db.backend();
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let agent = token(&app, app.agent_id, Role::Agent).await;
        let work = app
            .mail_from(
                "Pia Pedersen <pia@customer.example>",
                "a1@example.org",
                "Printer jam",
            )
            .await;
        let home = app
            .mail_from(
                "Pia at home <pia.home@mail.example>",
                "a2@example.org",
                "Invoice address",
            )
            .await;
        app.route(work, Some(app.billing)).await;
        app.route(home, Some(app.billing)).await;
        let get = |path: String, token: String| {
            let app = &app;
            async move { call(app, Method::GET, &path, Some(&token), None, &[]).await }
        };

        // Ticket search by the customer's address and name.
        let found = get(
            "/api/v1/tickets?q=PIA@customer.example".into(),
            agent.clone(),
        )
        .await;
        assert_eq!(numbers(&found), vec![work], "{backend:?} {}", found.text);
        let found = get("/api/v1/tickets?q=pia".into(), agent.clone()).await;
        assert_eq!(
            numbers(&found),
            vec![work, home],
            "{backend:?} {}",
            found.text
        );

        let list = get("/api/v1/customers?q=mail.example".into(), agent.clone()).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        let items = list.body["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{}", list.text);
        let other = items[0]["id"].as_i64().expect("id");
        assert_eq!(items[0]["ticket_count"], json!(1));
        let list = get("/api/v1/customers?q=customer.example".into(), agent.clone()).await;
        let keep = list.body["items"][0]["id"].as_i64().expect("id");
        assert_ne!(keep, other);

        // Renaming: agents may; too long a name is refused; an unknown customer is 404.
        let path = format!("/api/v1/customers/{other}");
        let renamed = call(
            &app,
            Method::PATCH,
            &path,
            Some(&agent),
            Some(json!({"name": "  Pia Private "})),
            &[],
        )
        .await;
        assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
        assert_eq!(renamed.body["name"], json!("Pia Private"));
        assert_eq!(renamed.body["tickets"][0]["number"], json!(home));
        let long = "x".repeat(201);
        call(
            &app,
            Method::PATCH,
            &path,
            Some(&agent),
            Some(json!({ "name": long })),
            &[],
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
        call(
            &app,
            Method::PATCH,
            "/api/v1/customers/999999",
            Some(&agent),
            Some(json!({"name": "Nobody"})),
            &[],
        )
        .await
        .problem(StatusCode::NOT_FOUND);
        let found = get("/api/v1/tickets?q=private".into(), admin.clone()).await;
        assert_eq!(numbers(&found), vec![home], "the new name is searched");

        // Merging: admins only; into itself 409; the second of two merges finds the record gone.
        let merge = format!("/api/v1/customers/{keep}/merge");
        let body = json!({ "other_id": other });
        call(
            &app,
            Method::POST,
            &merge,
            Some(&agent),
            Some(body.clone()),
            &[],
        )
        .await
        .problem(StatusCode::FORBIDDEN);
        call(
            &app,
            Method::POST,
            &merge,
            Some(&admin),
            Some(json!({ "other_id": keep })),
            &[],
        )
        .await
        .problem(StatusCode::CONFLICT);
        let merged = call(
            &app,
            Method::POST,
            &merge,
            Some(&admin),
            Some(body.clone()),
            &[],
        )
        .await;
        assert_eq!(merged.status, StatusCode::OK, "{}", merged.text);
        let addresses: Vec<&str> = merged.body["identities"]
            .as_array()
            .expect("identities")
            .iter()
            .filter_map(|identity| identity["address"].as_str())
            .collect();
        assert_eq!(
            addresses,
            vec!["pia@customer.example", "pia.home@mail.example"]
        );
        assert_eq!(merged.body["ticket_count"], json!(2));
        assert_eq!(merged.body["name"], json!("Pia Pedersen"));
        call(&app, Method::POST, &merge, Some(&admin), Some(body), &[])
            .await
            .problem(StatusCode::NOT_FOUND);
        get(path.clone(), admin.clone())
            .await
            .problem(StatusCode::NOT_FOUND);
        let found = get(format!("/api/v1/tickets?customer={keep}"), agent.clone()).await;
        assert_eq!(numbers(&found), vec![work, home]);

        // Mail from the merged address joins the kept customer.
        let later = app
            .mail_from(
                "Pia at home <pia.home@mail.example>",
                "a3@example.org",
                "Another question",
            )
            .await;
        let detail = get(format!("/api/v1/customers/{keep}"), admin.clone()).await;
        let tickets: Vec<i64> = detail.body["tickets"]
            .as_array()
            .expect("tickets")
            .iter()
            .filter_map(|ticket| ticket["number"].as_i64())
            .collect();
        assert!(tickets.contains(&later), "{backend:?} {}", detail.text);
    }
}

store_test! {
    #[tokio::test]
    async fn merging_other_customers_tickets_needs_confirmation_and_history_has_text(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let mut numbers = Vec::new();
        for (from, id) in [
            ("Max Muster <max@example.org>", "am-1@example.org"),
            ("Pia Example <pia@example.org>", "ap-1@example.org"),
        ] {
            let raw = support::mail(
                &[
                    &format!("From: {from}"),
                    "Subject: Outage",
                    &format!("Message-ID: <{id}>"),
                ],
                "Down again",
            );
            match app.db.intake.accept_email(raw).await.expect("taken in") {
                helpdesk::intake::Outcome::Created { number, .. } => numbers.push(number),
                other => panic!("{other:?}"),
            }
        }
        let (max, pia) = (numbers[0], numbers[1]);
        let merge = format!("/api/v1/tickets/{pia}/merge");
        let refused = call(
            &app,
            Method::POST,
            &merge,
            Some(&admin),
            Some(json!({"into": max, "reason": "same outage"})),
            &[],
        )
        .await;
        refused.problem(StatusCode::CONFLICT);
        let detail = refused.body["detail"].as_str().expect("detail");
        assert!(
            detail.contains(&format!(
                "The one message of Pia Example (pia@example.org) on #{pia} moves to #{max} of \
                 Max Muster (max@example.org)"
            )) && detail.contains("confirm_different_customers"),
            "{detail}"
        );
        let merged = call(
            &app,
            Method::POST,
            &merge,
            Some(&admin),
            Some(
                json!({"into": max, "reason": "same outage", "confirm_different_customers": true}),
            ),
            &[],
        )
        .await;
        assert_eq!(merged.status, StatusCode::OK, "{}", merged.text);
        assert_eq!(merged.body["number"], json!(max));
        assert_eq!(
            merged.body["messages"].as_array().expect("messages").len(),
            2
        );
        let history = merged.body["history"].as_array().expect("history");
        assert!(
            history.iter().any(|e| e["kind"] == "merged"
                && e["old_value"] == json!(format!("#{pia}"))
                && e["text"] == json!(format!("#{pia} merged into this ticket"))),
            "{history:?}"
        );
        assert_eq!(
            history[0]["text"],
            json!("Created by mail from Max Muster (max@example.org)")
        );

        // The merged ticket takes no replies and no second merge.
        let gone = call(
            &app,
            Method::GET,
            &format!("/api/v1/tickets/{pia}"),
            Some(&admin),
            None,
            &[],
        )
        .await;
        assert_eq!(gone.body["merged_into"], json!(max));
        assert!(
            gone.body["history"]
                .as_array()
                .expect("history")
                .iter()
                .any(|e| e["text"] == json!(format!("Merged into #{max}")))
        );
        let reply = call(
            &app,
            Method::POST,
            &format!("/api/v1/tickets/{pia}/replies"),
            Some(&admin),
            Some(json!({"text": "Hello?"})),
            &[],
        )
        .await;
        reply.problem(StatusCode::CONFLICT);
        assert!(
            reply.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("merged into #{max}"))),
            "{}",
            reply.text
        );
        let again = call(
            &app,
            Method::POST,
            &merge,
            Some(&admin),
            Some(json!({"into": max, "confirm_different_customers": true})),
            &[],
        )
        .await;
        again.problem(StatusCode::CONFLICT);

        // The OpenAPI document describes the merge and its confirmation.
        let document = call(&app, Method::GET, "/api/openapi.json", None, None, &[]).await;
        let operation = &document.body["paths"]["/api/v1/tickets/{number}/merge"]["post"];
        assert!(operation["responses"]["409"].is_object(), "{operation}");
        assert!(
            document.body["components"]["schemas"]["MergeRequest"]["properties"]
                ["confirm_different_customers"]
                .is_object()
        );
    }
}

store_test! {
    #[tokio::test]
    async fn tickets_name_their_customer_record(app: WebApp) {
        let backend = app.db.backend();
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let pia = app
            .mail_from("Pia Pedersen <pia@customer.example>", "c1@example.org", "Printer jam")
            .await;
        let tom = app
            .mail_from("Tom <tom@other.example>", "c2@example.org", "Invoice")
            .await;
        let get = |path: String| {
            let (app, admin) = (&app, &admin);
            async move { call(app, Method::GET, &path, Some(admin), None, &[]).await }
        };

        let list = get("/api/v1/tickets".into()).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        let items = list.body["items"].as_array().expect("items");
        let customer_of = |number: i64| {
            items
                .iter()
                .find(|item| item["number"] == json!(number))
                .and_then(|item| item["customer_id"].as_i64())
                .unwrap_or_else(|| panic!("#{number} with a customer_id in {}", list.text))
        };
        let (pia_id, tom_id) = (customer_of(pia), customer_of(tom));
        assert_ne!(pia_id, tom_id, "{backend:?}");
        let single = get(format!("/api/v1/tickets/{pia}")).await;
        assert_eq!(single.body["customer_id"].as_i64(), Some(pia_id), "{}", single.text);

        for (id, address, number) in [(pia_id, "pia@customer.example", pia), (tom_id, "tom@other.example", tom)] {
            let customer = get(format!("/api/v1/customers/{id}")).await;
            assert_eq!(customer.status, StatusCode::OK, "{}", customer.text);
            assert_eq!(customer.body["identities"][0]["address"], json!(address));
            assert_eq!(customer.body["tickets"][0]["number"], json!(number));
        }
        let document = call(&app, Method::GET, "/api/openapi.json", None, None, &[]).await;
        assert_eq!(
            document.body["components"]["schemas"]["Ticket"]["properties"]["customer_id"]["type"],
            json!("integer"),
            "{}",
            document.text
        );
    }
}
