//! The agents' daily tools over the API: `unread` for the token's agent and `waiting` on
//! tickets, the unread filter, previous pages, tag counts and one's own time zone.

use super::*;

fn item(page: &Reply, number: i64) -> Value {
    page.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|item| item["number"] == number)
        .cloned()
        .unwrap_or_else(|| panic!("no #{number} in {}", page.text))
}

fn numbers(page: &Reply) -> Vec<i64> {
    page.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["number"].as_i64().expect("number"))
        .collect()
}

store_test! {
    #[tokio::test]
    async fn tickets_say_whether_they_are_unread_for_the_caller_and_whom_they_wait_for(app: WebApp) {
        let backend = app.db.backend();
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let agent = token(&app, app.agent_id, Role::Agent).await;
        let number = app.ticket("api-unread@example.org", "Modem", "No signal").await;
        app.route(number, Some(app.billing)).await;
        let get = |path: String, token: String| {
            let app = &app;
            async move { call(app, Method::GET, &path, Some(&token), None, &[]).await }
        };

        let listed = get("/api/v1/tickets".into(), admin.clone()).await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
        assert_eq!(item(&listed, number)["unread"], true, "{backend:?}");
        assert_eq!(item(&listed, number)["waiting"], "us");

        // Reading the ticket marks it seen for that token's agent only.
        let read = get(format!("/api/v1/tickets/{number}"), admin.clone()).await;
        assert_eq!(read.body["unread"], false, "{}", read.text);
        assert_eq!(read.body["waiting"], "us");
        let listed = get("/api/v1/tickets".into(), admin.clone()).await;
        assert_eq!(item(&listed, number)["unread"], false, "{backend:?}");
        let unread = get("/api/v1/tickets?unread=true".into(), admin.clone()).await;
        assert!(!numbers(&unread).contains(&number), "{}", unread.text);
        let theirs = get("/api/v1/tickets?unread=true".into(), agent.clone()).await;
        assert_eq!(item(&theirs, number)["unread"], true, "{}", theirs.text);

        // A reply over the API: the customer is the one to act now.
        let replied = call(
            &app,
            Method::POST,
            &format!("/api/v1/tickets/{number}/replies"),
            Some(&agent),
            Some(json!({"text": "Please restart the modem."})),
            &[],
        )
        .await;
        assert!(replied.status.is_success(), "{}", replied.text);
        let read = get(format!("/api/v1/tickets/{number}"), agent.clone()).await;
        assert_eq!(read.body["waiting"], "customer", "{}", read.text);
        assert_eq!(read.body["unread"], false);
    }
}

store_test! {
    #[tokio::test]
    async fn pages_go_back_with_before_and_tags_are_counted(app: WebApp) {
        let backend = app.db.backend();
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let mut all = Vec::new();
        for n in 0..5 {
            all.push(app.ticket(&format!("api-page-{n}@example.org"), "Page", "x").await);
        }
        let first = call(&app, Method::GET, "/api/v1/tickets?limit=2", Some(&admin), None, &[]).await;
        assert!(first.body["previous"].is_null(), "{}", first.text);
        let next = first.body["next"].as_str().expect("next").to_owned();
        let second = call(&app, Method::GET, &next, Some(&admin), None, &[]).await;
        let link = second.headers["link"].to_str().expect("link").to_owned();
        assert!(link.contains("rel=\"prev\"") && link.contains("rel=\"next\""), "{link}");
        let previous = second.body["previous"].as_str().expect("previous").to_owned();
        assert!(previous.contains("before="), "{previous}");
        let back = call(&app, Method::GET, &previous, Some(&admin), None, &[]).await;
        assert_eq!(numbers(&back), numbers(&first), "{backend:?}");
        let both = call(
            &app,
            Method::GET,
            "/api/v1/tickets?cursor=1_1&before=1_1",
            Some(&admin),
            None,
            &[],
        )
        .await;
        both.problem(StatusCode::BAD_REQUEST);

        for (number, tags) in [(all[0], json!(["vip", "billing"])), (all[1], json!(["vip"]))] {
            let tagged = call(
                &app,
                Method::PATCH,
                &format!("/api/v1/tickets/{number}"),
                Some(&admin),
                Some(json!({"tags": tags})),
                &[],
            )
            .await;
            assert_eq!(tagged.status, StatusCode::OK, "{}", tagged.text);
        }
        call(
            &app,
            Method::PATCH,
            &format!("/api/v1/tickets/{}", all[1]),
            Some(&admin),
            Some(json!({"status": "closed"})),
            &[],
        )
        .await;
        let tags = call(&app, Method::GET, "/api/v1/tags", Some(&admin), None, &[]).await;
        assert_eq!(
            tags.body,
            json!([
                {"tag": "vip", "tickets": 2, "active": 1},
                {"tag": "billing", "tickets": 1, "active": 1},
            ]),
            "{backend:?}"
        );
    }
}

store_test! {
    #[tokio::test]
    async fn the_own_time_zone_is_an_iana_name(app: WebApp) {
        let agent = token(&app, app.agent_id, Role::Agent).await;
        let path = "/api/v1/account/time-zone";
        let wrong = call(&app, Method::PUT, path, Some(&agent), Some(json!({"time_zone": "Mars/Base"})), &[]).await;
        wrong.problem(StatusCode::UNPROCESSABLE_ENTITY);
        let set = call(&app, Method::PUT, path, Some(&agent), Some(json!({"time_zone": "europe/berlin"})), &[]).await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.text);
        assert_eq!(set.body["time_zone"], "Europe/Berlin");
        let agents = call(&app, Method::GET, "/api/v1/agents", Some(&agent), None, &[]).await;
        let me = agents.body.as_array().expect("agents").iter().find(|a| a["id"] == app.agent_id).cloned();
        assert_eq!(me.expect("me")["time_zone"], "Europe/Berlin");
        let cleared = call(&app, Method::PUT, path, Some(&agent), Some(json!({"time_zone": null})), &[]).await;
        assert!(cleared.body["time_zone"].is_null(), "{}", cleared.text);
    }
}

store_test! {
    #[tokio::test]
    async fn the_list_counts_every_matching_ticket_and_shows_sla_due_times(app: WebApp) {
        let backend = app.db.backend();
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let mut made = Vec::new();
        for i in 0..5 {
            let id = format!("total-{i}@example.org");
            made.push(app.ticket(&id, &format!("Counted {i}"), "x").await);
        }
        // Its SLA check keeps when the first response falls due (8 h at normal priority).
        let now = Utc::now();
        let checked = app.detail(made[0]).await.summary.id;
        let created = now - chrono::Duration::minutes(7 * 60 + 30);
        crate::sla::clock::created_at(&app.db, checked.get(), created).await;
        let check = helpdesk::jobs::sla::SlaCheck {
            ticket_id: checked,
            target: helpdesk::domain::sla::Target::FirstResponse,
        };
        helpdesk::jobs::sla::check(&app.db.store, &app.state.config.sla, check, now)
            .await
            .expect("checked");

        let get = |path: String| {
            let (app, admin) = (&app, &admin);
            async move { call(app, Method::GET, &path, Some(admin), None, &[]).await }
        };
        let first = get("/api/v1/tickets?limit=2".into()).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);
        assert_eq!(numbers(&first).len(), 2);
        assert_eq!(first.body["total"], 5, "{backend:?}: {}", first.text);
        assert_eq!(first.body["total_at_least"], false);
        let next = first.body["next"].as_str().expect("a next page").to_owned();
        let second = get(next).await;
        assert_eq!(second.body["total"], 5, "the same on every page: {}", second.text);
        let filtered = get("/api/v1/tickets?q=Counted%203".into()).await;
        assert_eq!(filtered.body["total"], 1, "{backend:?}: {}", filtered.text);

        let all = get("/api/v1/tickets".into()).await;
        let due = item(&all, made[0])["sla_due_at"]
            .as_str()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .unwrap_or_else(|| panic!("{backend:?}: no sla_due_at in {}", all.text));
        let expected = created + chrono::Duration::hours(8);
        assert!(
            (due.with_timezone(&Utc) - expected).num_seconds().abs() <= 1,
            "{due} is not {expected}"
        );
    }
}
