//! One change to many tickets over the API: one transaction, one group of history per
//! ticket, and a ticket the token may not see, or one that refuses the change, stops them all.

use super::*;

const BULK: &str = "/api/v1/tickets/bulk";

/// The history groups (time, actor, reason) of a ticket's events after its first `since`.
async fn groups_since(
    app: &WebApp,
    number: i64,
    since: usize,
) -> Vec<(chrono::DateTime<Utc>, String, Option<String>)> {
    let history = app.detail(number).await.history;
    let mut groups: Vec<_> = history[since..]
        .iter()
        .map(|event| (event.at, event.actor.clone(), event.reason.clone()))
        .collect();
    groups.dedup();
    groups
}

async fn history_len(app: &WebApp, number: i64) -> usize {
    app.detail(number).await.history.len()
}

async fn status_of(app: &WebApp, number: i64) -> String {
    app.detail(number).await.summary.status.to_string()
}

store_test! {
    #[tokio::test]
    async fn three_tickets_close_in_one_action_with_one_history_group_each(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let mut numbers = Vec::new();
        for (i, subject) in ["Outage A", "Outage B", "Outage C"].iter().enumerate() {
            numbers.push(
                app.ticket(&format!("bulk-close-{i}@example.org"), subject, "Down again")
                    .await,
            );
        }
        let mut before = Vec::new();
        for &number in &numbers {
            before.push(history_len(&app, number).await);
        }

        // Out of order and with a repeat: each ticket changes once, reported in order.
        let closed = call(
            &app,
            Method::POST,
            BULK,
            Some(&admin),
            Some(json!({
                "numbers": [numbers[2], numbers[0], numbers[1], numbers[0]],
                "changes": {"status": "closed", "reason": "one outage, fixed"},
            })),
            &[],
        )
        .await;
        assert_eq!(closed.status, StatusCode::OK, "{}", closed.text);
        assert_eq!(closed.body["changed"], json!(numbers), "{}", closed.text);
        assert_eq!(closed.body["unchanged"], json!([]), "{}", closed.text);
        for (&number, &since) in numbers.iter().zip(&before) {
            assert_eq!(status_of(&app, number).await, "closed");
            let groups = groups_since(&app, number, since).await;
            assert_eq!(groups.len(), 1, "#{number}: {groups:?}");
            assert_eq!(groups[0].1, "Ada Admin");
            assert_eq!(groups[0].2.as_deref(), Some("one outage, fixed"));
        }

        // Again: nothing changes and no history is added.
        let again = call(
            &app,
            Method::POST,
            BULK,
            Some(&admin),
            Some(json!({"numbers": numbers, "changes": {"status": "closed"}})),
            &[],
        )
        .await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text);
        assert_eq!(again.body["changed"], json!([]));
        assert_eq!(again.body["unchanged"], json!(numbers));
        for (&number, &since) in numbers.iter().zip(&before) {
            assert_eq!(history_len(&app, number).await, since + 1);
        }

        // The OpenAPI document describes the endpoint.
        let document = call(&app, Method::GET, "/api/openapi.json", None, None, &[]).await;
        let operation = &document.body["paths"][BULK]["post"];
        assert!(operation["responses"]["409"].is_object(), "{operation}");
        assert!(
            document.body["components"]["schemas"]["BulkChanges"]["properties"]["numbers"]
                .is_object()
        );
    }
}

store_test! {
    #[tokio::test]
    async fn tags_and_priority_change_together_in_one_group(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let first = app.ticket("bulk-tag-1@example.org", "Slow", "Slow page").await;
        let second = app.ticket("bulk-tag-2@example.org", "Slower", "Slower page").await;
        let before = [
            history_len(&app, first).await,
            history_len(&app, second).await,
        ];
        let changed = call(
            &app,
            Method::POST,
            BULK,
            Some(&admin),
            Some(json!({
                "numbers": [first, second],
                "changes": {"priority": "urgent", "tags": ["Outage", "#eu"], "reason": "incident"},
            })),
            &[],
        )
        .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
        assert_eq!(changed.body["changed"], json!([first, second]));
        for (number, since) in [(first, before[0]), (second, before[1])] {
            let shown = call(
                &app,
                Method::GET,
                &format!("/api/v1/tickets/{number}"),
                Some(&admin),
                None,
                &[],
            )
            .await;
            assert_eq!(shown.body["priority"], "urgent", "{}", shown.text);
            assert_eq!(shown.body["tags"], json!(["eu", "outage"]), "{}", shown.text);
            let history = app.detail(number).await.history;
            let kinds: Vec<&str> = history[since..].iter().map(|e| e.kind.as_str()).collect();
            assert_eq!(kinds, ["priority", "tags"], "#{number}");
            assert_eq!(groups_since(&app, number, since).await.len(), 1, "#{number}");
        }

        // A tag that is not one, or no change at all, is refused before anything is read.
        call(
            &app,
            Method::POST,
            BULK,
            Some(&admin),
            Some(json!({"numbers": [first], "changes": {"tags": ["<b>"]}})),
            &[],
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
        call(
            &app,
            Method::POST,
            BULK,
            Some(&admin),
            Some(json!({"numbers": [first], "changes": {"reason": "nothing"}})),
            &[],
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
        call(
            &app,
            Method::POST,
            BULK,
            Some(&admin),
            Some(json!({"numbers": [], "changes": {"priority": "low"}})),
            &[],
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
        let too_many: Vec<i64> = (1..=501).collect();
        let refused = call(
            &app,
            Method::POST,
            BULK,
            Some(&admin),
            Some(json!({"numbers": too_many, "changes": {"priority": "low"}})),
            &[],
        )
        .await;
        refused.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            refused.body["detail"].as_str().is_some_and(|d| d.contains("500")),
            "{}",
            refused.text
        );
    }
}

store_test! {
    #[tokio::test]
    async fn an_unknown_ticket_or_a_refusal_leaves_every_ticket_as_it_was(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let open = app.ticket("bulk-all-1@example.org", "Printer", "Jammed").await;
        let closed = app.ticket("bulk-all-2@example.org", "Scanner", "Broken").await;
        let since = history_len(&app, open).await;

        let unknown = call(
            &app,
            Method::POST,
            BULK,
            Some(&admin),
            Some(json!({"numbers": [open, 999_999], "changes": {"status": "closed"}})),
            &[],
        )
        .await;
        unknown.problem(StatusCode::NOT_FOUND);
        assert!(unknown.text.contains("#999999"), "{}", unknown.text);
        assert_eq!(status_of(&app, open).await, "new");
        assert_eq!(history_len(&app, open).await, since);

        // A closed ticket cannot open again: the ticket before it, already changed in the
        // same transaction, goes back too.
        let patched = call(
            &app,
            Method::PATCH,
            &format!("/api/v1/tickets/{closed}"),
            Some(&admin),
            Some(json!({"status": "closed"})),
            &[],
        )
        .await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
        assert!(open < closed);
        let refused = call(
            &app,
            Method::POST,
            BULK,
            Some(&admin),
            Some(json!({"numbers": [open, closed], "changes": {"status": "open", "priority": "high"}})),
            &[],
        )
        .await;
        refused.problem(StatusCode::CONFLICT);
        assert!(
            refused.text.contains(&format!("ticket #{closed}")),
            "{}",
            refused.text
        );
        assert_eq!(status_of(&app, open).await, "new");
        assert_eq!(app.detail(open).await.summary.priority.to_string(), "normal");
        assert_eq!(history_len(&app, open).await, since);
    }
}

store_test! {
    #[tokio::test]
    async fn an_agent_cannot_act_on_another_departments_ticket(app: WebApp) {
        let agent = token(&app, app.agent_id, Role::Agent).await;
        let mine = app.ticket("bulk-dept-1@example.org", "Invoice", "Wrong total").await;
        let theirs = app.ticket("bulk-dept-2@example.org", "Server", "Down").await;
        app.route(mine, Some(app.billing)).await;
        app.route(theirs, Some(app.technical)).await;
        let since = history_len(&app, mine).await;

        let refused = call(
            &app,
            Method::POST,
            BULK,
            Some(&agent),
            Some(json!({"numbers": [mine, theirs], "changes": {"priority": "high"}})),
            &[],
        )
        .await;
        refused.problem(StatusCode::NOT_FOUND);
        assert!(refused.text.contains(&format!("#{theirs}")), "{}", refused.text);
        assert_eq!(history_len(&app, mine).await, since);
        assert_eq!(app.detail(theirs).await.summary.priority.to_string(), "normal");

        let allowed = call(
            &app,
            Method::POST,
            BULK,
            Some(&agent),
            Some(json!({"numbers": [mine], "changes": {"priority": "high"}})),
            &[],
        )
        .await;
        assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.text);
        assert_eq!(allowed.body["changed"], json!([mine]));
        assert_eq!(app.detail(mine).await.summary.priority.to_string(), "high");
    }
}
