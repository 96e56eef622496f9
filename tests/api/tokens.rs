//! Tokens and roles: no token, a revoked one, an agent's on admin endpoints, and what an
//! agent's token may see.

use super::*;

store_test! {
    #[tokio::test]
    async fn tokens_are_required_and_agent_tokens_are_refused_admin_endpoints(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let agent = token(&app, app.agent_id, Role::Agent).await;
        let number = app
            .ticket("auth-1@example.org", "Printer", "It is on fire")
            .await;
        app.route(number, Some(app.billing)).await;
        let ticket = format!("/api/v1/tickets/{number}");
        // (method, path, body, admin only)
        let endpoints: Vec<(Method, String, Option<Value>, bool)> = vec![
            (Method::GET, "/api/v1/tickets".into(), None, false),
            (Method::GET, ticket.clone(), None, false),
            (
                Method::PATCH,
                ticket.clone(),
                Some(json!({"priority": "high"})),
                false,
            ),
            (
                Method::POST,
                format!("{ticket}/notes"),
                Some(json!({"text": "n"})),
                false,
            ),
            (Method::GET, "/api/v1/customers".into(), None, false),
            (Method::GET, "/api/v1/agents".into(), None, false),
            (Method::GET, "/api/v1/departments".into(), None, false),
            (Method::GET, "/api/v1/rules".into(), None, true),
            (
                Method::POST,
                "/api/v1/rules".into(),
                Some(
                    json!({"name": "r", "conditions": [], "actions": [{"then": "set_priority", "priority": "high"}]}),
                ),
                true,
            ),
            (Method::DELETE, "/api/v1/rules/999".into(), None, true),
            (Method::GET, "/api/v1/jobs".into(), None, true),
            (
                Method::POST,
                "/api/v1/jobs/nothing/retry".into(),
                None,
                true,
            ),
            (Method::GET, "/api/v1/webhooks".into(), None, true),
            (Method::GET, "/api/v1/tokens".into(), None, true),
            (
                Method::POST,
                "/api/v1/tokens".into(),
                Some(json!({"name": "x"})),
                true,
            ),
        ];
        for (method, path, body, admin_only) in &endpoints {
            let anonymous = call(&app, method.clone(), path, None, body.clone(), &[]).await;
            anonymous.problem(StatusCode::UNAUTHORIZED);
            assert_eq!(
                anonymous
                    .headers
                    .get(header::WWW_AUTHENTICATE)
                    .expect("challenge"),
                "Bearer realm=\"helpdesk\"",
                "{method} {path}"
            );
            let forged = call(
                &app,
                method.clone(),
                path,
                Some("hd_0000"),
                body.clone(),
                &[],
            )
            .await;
            forged.problem(StatusCode::UNAUTHORIZED);
            assert!(
                forged.headers[header::WWW_AUTHENTICATE]
                    .to_str()
                    .expect("text")
                    .contains("invalid_token")
            );
            let as_agent = call(&app, method.clone(), path, Some(&agent), body.clone(), &[]).await;
            if *admin_only {
                as_agent.problem(StatusCode::FORBIDDEN);
            } else {
                assert!(
                    as_agent.status.is_success(),
                    "{method} {path}: {}",
                    as_agent.text
                );
            }
            let as_admin = call(&app, method.clone(), path, Some(&admin), body.clone(), &[]).await;
            assert!(
                as_admin.status != StatusCode::UNAUTHORIZED
                    && as_admin.status != StatusCode::FORBIDDEN
                    && !as_admin.status.is_server_error(),
                "{method} {path}: {}",
                as_admin.text
            );
        }
        // An agent cannot hold an admin token; a demoted admin's token keeps agent rights only.
        let refused =
            api_tokens::create(&app.db.store, app.agent_id, "x", Role::Admin, Utc::now()).await;
        assert!(refused.is_err());

        // A revoked token stops working at once; a token cannot revoke itself.
        let listed = call(&app, Method::GET, "/api/v1/tokens", Some(&admin), None, &[]).await;
        let agent_token_id = listed
            .body
            .as_array()
            .expect("list")
            .iter()
            .find(|t| t["role"] == "agent")
            .expect("agent token")["id"]
            .as_i64()
            .expect("id");
        let admin_token_id = listed
            .body
            .as_array()
            .expect("list")
            .iter()
            .find(|t| {
                admin.starts_with(t["prefix"].as_str().expect("prefix")) && t["name"] == "test"
            })
            .expect("admin token")["id"]
            .as_i64()
            .expect("id");
        call(
            &app,
            Method::DELETE,
            &format!("/api/v1/tokens/{admin_token_id}"),
            Some(&admin),
            None,
            &[],
        )
        .await
        .problem(StatusCode::CONFLICT);
        let revoked = call(
            &app,
            Method::DELETE,
            &format!("/api/v1/tokens/{agent_token_id}"),
            Some(&admin),
            None,
            &[],
        )
        .await;
        assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
        call(
            &app,
            Method::GET,
            "/api/v1/tickets",
            Some(&agent),
            None,
            &[],
        )
        .await
        .problem(StatusCode::UNAUTHORIZED);
    }
}

store_test! {
    /// An agent's token sees the customers of the tickets it may see; an admin's sees all.
    #[tokio::test]
    async fn an_agents_token_sees_only_the_customers_of_their_departments_tickets(app: WebApp) {
        let backend = app.db.backend();
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let agent = token(&app, app.agent_id, Role::Agent).await;
        let billing = app
            .mail_from("Bea Billing <bea@example.org>", "s1@example.org", "Invoice")
            .await;
        app.route(billing, Some(app.billing)).await;
        let technical = app
            .mail_from(
                "Tom Tech <tom@example.org>",
                "s2@example.org",
                "Server down",
            )
            .await;
        app.route(technical, Some(app.technical)).await;
        let get = |path: String, token: String| {
            let app = &app;
            async move { call(app, Method::GET, &path, Some(&token), None, &[]).await }
        };
        let names = |reply: &Reply| -> Vec<String> {
            reply.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|item| item["name"].as_str().unwrap_or_default().to_owned())
                .collect()
        };

        for list in ["/api/v1/customers", "/api/v1/customers?q=example.org"] {
            let theirs = get(list.into(), agent.clone()).await;
            assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.text);
            assert_eq!(names(&theirs), ["Bea Billing"], "{backend:?} {list}");
            let all = get(list.into(), admin.clone()).await;
            assert_eq!(
                names(&all),
                ["Bea Billing", "Tom Tech"],
                "{backend:?} {list}"
            );
        }
        let all = get("/api/v1/customers".into(), admin.clone()).await;
        let id_of = |name: &str| {
            all.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .find(|item| item["name"] == name)
                .and_then(|item| item["id"].as_i64())
                .expect("listed")
        };
        let (bea, tom) = (id_of("Bea Billing"), id_of("Tom Tech"));
        let shown = get(format!("/api/v1/customers/{bea}"), agent.clone()).await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
        assert_eq!(shown.body["tickets"][0]["number"], json!(billing));
        get(format!("/api/v1/customers/{tom}"), agent.clone())
            .await
            .problem(StatusCode::NOT_FOUND);
        call(
            &app,
            Method::PATCH,
            &format!("/api/v1/customers/{tom}"),
            Some(&agent),
            Some(json!({"name": "Renamed by Abe"})),
            &[],
        )
        .await
        .problem(StatusCode::NOT_FOUND);
        let as_admin = get(format!("/api/v1/customers/{tom}"), admin.clone()).await;
        assert_eq!(as_admin.status, StatusCode::OK, "{}", as_admin.text);
        assert_eq!(as_admin.body["name"], "Tom Tech", "not renamed");

        // Assigned to the agent outside their departments: the ticket and its customer show.
        helpdesk::ops::apply(
            &app.db.store,
            technical.into(),
            helpdesk::ops::ChangedBy {
                agent_id: app.admin_id,
                now: Utc::now(),
            },
            &helpdesk::ops::TicketChange {
                assignee: Some(Some(app.agent_id)),
                reason: Some("test setup".to_owned()),
                ..Default::default()
            },
        )
        .await
        .expect("assigned");
        let theirs = get("/api/v1/customers".into(), agent.clone()).await;
        assert_eq!(names(&theirs), ["Bea Billing", "Tom Tech"], "{backend:?}");
    }
}
