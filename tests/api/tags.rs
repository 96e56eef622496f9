//! Tags over the API and the ticket page: set exactly by PATCH, added and removed by the form,
//! one history event per change, and the list filtered by them.

use super::*;

store_test! {
    #[tokio::test]
    async fn tags_set_by_patch_show_in_the_ticket_and_filter_the_list(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let number = app
            .ticket("tags-1@example.org", "Invoice wrong", "Please fix the invoice")
            .await;
        let other = app
            .ticket("tags-2@example.org", "Login", "Cannot sign in")
            .await;
        let path = format!("/api/v1/tickets/{number}");
        let tagged = call(
            &app,
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"tags": ["Billing", "#vip", "billing"], "reason": "big customer"})),
            &[],
        )
        .await;
        assert_eq!(tagged.status, StatusCode::OK, "{}", tagged.text);
        assert_eq!(tagged.body["tags"], json!(["billing", "vip"]));
        let events: Vec<&Value> = tagged.body["history"]
            .as_array()
            .expect("history")
            .iter()
            .filter(|e| e["kind"] == "tags")
            .collect();
        assert_eq!(events.len(), 1, "{}", tagged.text);
        assert_eq!(events[0]["new_value"], "billing vip");
        assert_eq!(events[0]["reason"], "big customer");

        // The same tags again change nothing and add no history.
        let again = call(
            &app,
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"tags": ["vip", "billing"]})),
            &[],
        )
        .await;
        let count = |body: &Value| {
            body["history"]
                .as_array()
                .expect("history")
                .iter()
                .filter(|e| e["kind"] == "tags")
                .count()
        };
        assert_eq!(count(&again.body), 1, "{}", again.text);

        let listed = call(
            &app,
            Method::GET,
            "/api/v1/tickets?tag=vip",
            Some(&admin),
            None,
            &[],
        )
        .await;
        let numbers: Vec<i64> = listed.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|t| t["number"].as_i64().expect("number"))
            .collect();
        assert_eq!(numbers, [number], "{}", listed.text);
        assert!(!numbers.contains(&other));

        // A tag that is not one is refused whole; [] removes them all.
        call(
            &app,
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"tags": ["ok", "<script>"], "priority": "urgent"})),
            &[],
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
        let kept = call(&app, Method::GET, &path, Some(&admin), None, &[]).await;
        assert_eq!(kept.body["tags"], json!(["billing", "vip"]));
        assert_ne!(kept.body["priority"], "urgent");
        let cleared = call(
            &app,
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"tags": []})),
            &[],
        )
        .await;
        assert_eq!(cleared.body["tags"], json!([]), "{}", cleared.text);
    }
}

store_test! {
    #[tokio::test]
    async fn the_ticket_page_adds_and_removes_tags_in_one_save(app: WebApp) {
        let number = app
            .ticket("tags-3@example.org", "Refund", "I want my money back")
            .await;
        let admin = app.admin().await;
        let page = format!("/tickets/{number}");
        let saved = app
            .post(
                &format!("{page}/update"),
                &admin,
                &[("add_tags", "refund, VIP"), ("reason", "asked twice")],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let shown = app.get(&page, Some(&admin)).await;
        assert!(shown.body.contains("Remove tag vip"), "{}", shown.body);
        assert!(shown.body.contains("Tags: none → refund vip"), "{}", shown.body);

        let removed = app
            .post(
                &format!("{page}/update"),
                &admin,
                &[("remove_tag", "vip"), ("add_tags", "")],
            )
            .await;
        assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
        let shown = app.get(&page, Some(&admin)).await;
        assert!(shown.body.contains("Remove tag refund"), "{}", shown.body);
        assert!(!shown.body.contains("Remove tag vip"), "{}", shown.body);

        let refused = app
            .post(&format!("{page}/update"), &admin, &[("add_tags", "a<b")])
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    }
}
