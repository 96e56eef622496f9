//! The ticket list's bulk form: tickets ticked on the list changed in one action, one group of
//! history per ticket, the same list again saying what was done, and a refusal that changes
//! nothing.

use super::*;

/// The history groups (time, actor, reason) of a ticket's events after its first `since`.
async fn groups_since(
    app: &WebApp,
    number: i64,
    since: usize,
) -> Vec<(chrono::DateTime<Utc>, String, Option<String>)> {
    let mut groups: Vec<_> = history(app, number).await[since..]
        .iter()
        .map(|event| (event.at, event.actor.clone(), event.reason.clone()))
        .collect();
    groups.dedup();
    groups
}

store_test! {
    #[tokio::test]
    async fn three_tickets_ticked_on_the_list_close_in_one_action(app: WebApp) {
        let admin = app.admin().await;
        let mut numbers = Vec::new();
        for i in 0..3 {
            numbers.push(
                app.ticket(&format!("web-bulk-{i}@example.org"), &format!("Outage {i}"), "Down")
                    .await,
            );
        }
        let spared = app.ticket("web-bulk-9@example.org", "Other", "Unrelated").await;

        // The list has a box per row and one for the page; other lists of rows have none.
        let list = app.get("/tickets?status=new", Some(&admin)).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
        assert!(list.body.contains("id=\"bulk-form\""), "{}", list.body);
        for number in &numbers {
            assert!(
                list.body.contains(&format!("aria-label=\"Select #{number}\"")),
                "{}",
                list.body
            );
        }
        assert!(list.body.contains("aria-label=\"Select all on this page\""));
        let dashboard = app.get("/", Some(&admin)).await;
        assert!(!dashboard.body.contains("form=\"bulk-form\""), "{}", dashboard.body);

        let mut before = Vec::new();
        for &number in &numbers {
            before.push(history(&app, number).await.len());
        }
        let texts: Vec<String> = numbers.iter().map(i64::to_string).collect();
        let mut form: Vec<(&str, &str)> = texts.iter().map(|n| ("ticket", n.as_str())).collect();
        form.extend([
            ("action", "close"),
            ("status", ""),
            ("reason", "one outage"),
            ("back", "status=new&sort=created_asc"),
        ]);
        let done = app.post("/tickets/bulk", &admin, &form).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(
            done.location(),
            "/tickets?status=new&sort=created_asc&done=closed&changed=3&unchanged=0"
        );
        let shown = app.get(done.location(), Some(&admin)).await;
        assert!(shown.body.contains("3 tickets closed."), "{}", shown.body);
        // The list keeps its filter: the closed tickets left it, the other stayed.
        assert!(shown.body.contains(&format!("Select #{spared}")), "{}", shown.body);
        assert!(!shown.body.contains(&format!("Select #{}", numbers[0])));

        for (&number, &since) in numbers.iter().zip(&before) {
            assert_eq!(app.detail(number).await.summary.status.to_string(), "closed");
            let groups = groups_since(&app, number, since).await;
            assert_eq!(groups.len(), 1, "#{number}: {groups:?}");
            assert_eq!(groups[0].2.as_deref(), Some("one outage"));
        }
        assert_eq!(app.detail(spared).await.summary.status.to_string(), "new");

        // The whole list shows them closed.
        let all = app.get("/tickets?status=closed", Some(&admin)).await;
        for number in &numbers {
            assert!(all.body.contains(&format!("Select #{number}")), "{}", all.body);
        }

        // Without a CSRF token nothing happens.
        let forged = app
            .request(
                Method::POST,
                "/tickets/bulk",
                Some(&admin.cookie),
                Some(&[("ticket", texts[0].as_str()), ("action", "close")]),
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
    }
}

store_test! {
    #[tokio::test]
    async fn select_all_on_the_page_tags_and_raises_priority_together(app: WebApp) {
        let admin = app.admin().await;
        let first = app.ticket("web-bulk-t1@example.org", "Slow", "Slow page").await;
        let second = app.ticket("web-bulk-t2@example.org", "Slower", "Slower page").await;
        let since = [
            history(&app, first).await.len(),
            history(&app, second).await.len(),
        ];
        // "Select all on this page" without JavaScript sends the page's numbers itself.
        let page = format!("{first} {second} ");
        let first_text = first.to_string();
        let done = app
            .post(
                "/tickets/bulk",
                &admin,
                &[
                    ("all_on_page", page.as_str()),
                    ("ticket", first_text.as_str()),
                    ("assignee", ""),
                    ("status", ""),
                    ("priority", "urgent"),
                    ("add_tags", "Outage"),
                    ("reason", ""),
                    ("action", "apply"),
                    ("back", ""),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(done.location(), "/tickets?done=changed&changed=2&unchanged=0");
        let shown = app.get(done.location(), Some(&admin)).await;
        assert!(shown.body.contains("2 tickets changed."), "{}", shown.body);
        for (number, since) in [(first, since[0]), (second, since[1])] {
            let detail = app.detail(number).await;
            assert_eq!(detail.summary.priority.to_string(), "urgent");
            let kinds: Vec<&str> = detail.history[since..]
                .iter()
                .map(|e| e.kind.as_str())
                .collect();
            assert_eq!(kinds, ["priority", "tags"], "#{number}");
            assert_eq!(groups_since(&app, number, since).await.len(), 1);
        }
        let tagged = app.get("/tickets?tag=outage", Some(&admin)).await;
        assert!(tagged.body.contains(&format!("Select #{first}")), "{}", tagged.body);
        assert!(tagged.body.contains(&format!("Select #{second}")), "{}", tagged.body);

        // Assigning to an agent, then once more: the second time nothing changes.
        let agent = app.agent_id.to_string();
        let numbers = [("ticket", first.to_string()), ("ticket", second.to_string())];
        let mut form: Vec<(&str, &str)> = numbers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        form.extend([("assignee", agent.as_str()), ("action", "apply")]);
        let assigned = app.post("/tickets/bulk", &admin, &form).await;
        assert_eq!(assigned.location(), "/tickets?done=changed&changed=2&unchanged=0");
        let again = app.post("/tickets/bulk", &admin, &form).await;
        let shown = app.get(again.location(), Some(&admin)).await;
        assert!(
            shown.body.contains("Nothing was changed. 2 tickets had these values already."),
            "{}",
            shown.body
        );

        // Nothing chosen, or nothing to change: the list again, saying so.
        let none = app
            .post("/tickets/bulk", &admin, &[("priority", "low"), ("action", "apply")])
            .await;
        assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(none.body.contains("choose at least one ticket"), "{}", none.body);
        let nothing = app
            .post(
                "/tickets/bulk",
                &admin,
                &[("ticket", first_text.as_str()), ("action", "apply")],
            )
            .await;
        assert_eq!(nothing.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(nothing.body.contains("choose something to change"), "{}", nothing.body);
    }
}

store_test! {
    #[tokio::test]
    async fn an_unknown_or_refusing_ticket_leaves_all_as_they_were(app: WebApp) {
        let admin = app.admin().await;
        let open = app.ticket("web-bulk-r1@example.org", "Printer", "Jammed").await;
        let closed = app.ticket("web-bulk-r2@example.org", "Scanner", "Broken").await;
        let since = history(&app, open).await.len();
        let open_text = open.to_string();

        let unknown = app
            .post(
                "/tickets/bulk",
                &admin,
                &[
                    ("ticket", open_text.as_str()),
                    ("ticket", "999999"),
                    ("action", "close"),
                    ("back", "status=new"),
                ],
            )
            .await;
        assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", unknown.body);
        assert!(
            unknown
                .body
                .contains("Not done: there is no ticket #999999 you can see; nothing was changed."),
            "{}",
            unknown.body
        );
        // The same list comes back, with its filter.
        assert!(unknown.body.contains(&format!("Select #{open}")), "{}", unknown.body);
        assert_eq!(app.detail(open).await.summary.status.to_string(), "new");
        assert_eq!(history(&app, open).await.len(), since);

        let closed_text = closed.to_string();
        let shut = app
            .post(
                "/tickets/bulk",
                &admin,
                &[("ticket", closed_text.as_str()), ("action", "close")],
            )
            .await;
        assert_eq!(shut.status, StatusCode::SEE_OTHER, "{}", shut.body);
        let refused = app
            .post(
                "/tickets/bulk",
                &admin,
                &[
                    ("ticket", open_text.as_str()),
                    ("ticket", closed_text.as_str()),
                    ("status", "open"),
                    ("action", "apply"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        assert!(
            refused
                .body
                .contains(&format!("ticket #{closed}: a ticket cannot go from closed to open")),
            "{}",
            refused.body
        );
        assert_eq!(app.detail(open).await.summary.status.to_string(), "new");
        assert_eq!(history(&app, open).await.len(), since);
    }
}

store_test! {
    #[tokio::test]
    async fn an_agent_cannot_act_on_another_departments_ticket(app: WebApp) {
        let agent = app.agent().await;
        let mine = app.ticket("web-bulk-d1@example.org", "Invoice", "Wrong total").await;
        let theirs = app.ticket("web-bulk-d2@example.org", "Server", "Down").await;
        app.route(mine, Some(app.billing)).await;
        app.route(theirs, Some(app.technical)).await;
        let since = history(&app, mine).await.len();
        let (mine_text, theirs_text) = (mine.to_string(), theirs.to_string());

        let refused = app
            .post(
                "/tickets/bulk",
                &agent,
                &[
                    ("ticket", mine_text.as_str()),
                    ("ticket", theirs_text.as_str()),
                    ("action", "close"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        assert!(
            refused.body.contains(&format!("there is no ticket #{theirs} you can see")),
            "{}",
            refused.body
        );
        assert_eq!(history(&app, mine).await.len(), since);
        assert_eq!(app.detail(theirs).await.summary.status.to_string(), "new");

        let closed = app
            .post(
                "/tickets/bulk",
                &agent,
                &[("ticket", mine_text.as_str()), ("action", "close")],
            )
            .await;
        assert_eq!(closed.status, StatusCode::SEE_OTHER, "{}", closed.body);
        assert_eq!(app.detail(mine).await.summary.status.to_string(), "closed");
    }
}
