//! The JSON API, webhooks, /metrics and /readyz on every backend: the token and role matrix,
//! problem+json errors, creates with an Idempotency-Key, list filters and pages, ticket
//! changes, rules, signed webhook deliveries retried after failures, and readiness when the
//! database goes away.


use crate::support;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::Utc;
use helpdesk::domain::Role;
use helpdesk::jobs;
use helpdesk::store::{self, api_tokens};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use crate::support::stores;
use crate::support::web::{Reply, WebApp, apps, call};
use tower::ServiceExt;

async fn token(app: &WebApp, agent_id: i64, role: Role) -> String {
    api_tokens::create(&app.db.store, agent_id, "test", role, Utc::now())
        .await
        .expect("token")
        .token
}

async fn ticket_count(app: &WebApp) -> i64 {
    store::tickets::totals(&app.db.store)
        .await
        .expect("totals")
        .tickets
}

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
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn creates_racing_with_one_key_make_one_ticket_and_only_repeats_say_replayed(app: WebApp) {
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
        jobs::deliver::send_reply(
            &app.db.store,
            &store::outbound::NewReply {
                number,
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
        let other = call(
            &app,
            Method::GET,
            "/api/v1/jobs?queue=helpdesk.sla",
            Some(&admin),
            None,
            &[],
        )
        .await;
        assert_eq!(other.body, json!([]));
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

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let app = WebApp::new(support::sqlite().await).await;
    let document = call(&app, Method::GET, "/api/openapi.json", None, None, &[]).await;
    assert_eq!(document.status, StatusCode::OK);
    assert!(
        document.body["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.")
    );
    let paths = document.body["paths"].as_object().expect("paths");
    for path in [
        "/api/v1/tickets",
        "/api/v1/tickets/{number}",
        "/api/v1/tickets/{number}/replies",
        "/api/v1/tickets/{number}/notes",
        "/api/v1/customers",
        "/api/v1/customers/{id}",
        "/api/v1/customers/{id}/merge",
        "/api/v1/agents",
        "/api/v1/departments",
        "/api/v1/rules",
        "/api/v1/rules/{id}",
        "/api/v1/rules/{id}/move",
        "/api/v1/rules/{id}/preview",
        "/api/v1/jobs",
        "/api/v1/jobs/{id}/retry",
        "/api/v1/webhooks",
        "/api/v1/webhooks/{id}",
        "/api/v1/webhooks/{id}/deliveries",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    assert_eq!(
        document.body["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

/// The headers and body of one request the receiver got.
type Received = (HeaderMap, Vec<u8>);

/// A webhook receiver on loopback that answers 500 to the first `failures` requests.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    failures: Arc<Mutex<usize>>,
}

async fn start_receiver(failures: usize) -> (Receiver, String) {
    let receiver = Receiver {
        received: Arc::default(),
        arrivals: Arc::default(),
        failures: Arc::new(Mutex::new(failures)),
    };
    let state = receiver.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let state = state.clone();
            async move {
                state
                    .received
                    .lock()
                    .expect("lock")
                    .push((headers, body.to_vec()));
                state.arrivals.lock().expect("lock").push(Instant::now());
                let mut failures = state.failures.lock().expect("lock");
                if *failures > 0 {
                    *failures -= 1;
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (receiver, format!("http://{address}/hook"))
}

fn quick_retries(first_retry_seconds: u64, max_attempts: u32) -> jobs::JobSettings {
    let settings = helpdesk::config::Settings::load_from(
        None,
        vec![
            (
                "HELPDESK_WEBHOOKS__FIRST_RETRY_SECONDS".to_owned(),
                first_retry_seconds.to_string(),
            ),
            (
                "HELPDESK_WEBHOOKS__MAX_ATTEMPTS".to_owned(),
                max_attempts.to_string(),
            ),
        ],
    )
    .expect("settings");
    jobs::JobSettings::from_settings(&settings)
}

async fn wait_for(what: &str, seconds: u64, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done().await {
        assert!(Instant::now() < deadline, "{what} within {seconds} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

store_test! {
    #[tokio::test]
    async fn webhooks_are_signed_and_retried_until_the_receiver_accepts(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let (receiver, url) = start_receiver(2).await;
        let registered = call(
            &app,
            Method::POST,
            "/api/v1/webhooks",
            Some(&admin),
            Some(json!({
                "url": url, "events": ["ticket.created", "ticket.status_changed"],
            })),
            &[],
        )
        .await;
        assert_eq!(
            registered.status,
            StatusCode::CREATED,
            "{}",
            registered.text
        );
        let secret = registered.body["secret"]
            .as_str()
            .expect("secret")
            .to_owned();
        let hook_id = registered.body["id"].as_i64().expect("id");
        call(
            &app,
            Method::POST,
            "/api/v1/webhooks",
            Some(&admin),
            Some(json!({"url": "ftp://x", "events": ["ticket.created"]})),
            &[],
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
        call(
            &app,
            Method::POST,
            "/api/v1/webhooks",
            Some(&admin),
            Some(json!({"url": "http://x.example", "events": ["ticket.exploded"]})),
            &[],
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);

        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers = tokio::spawn(jobs::run(
            app.db.store.clone(),
            quick_retries(2, 5),
            jobs::deliver::Deliverers::default(),
            app.db.intake.committed(),
            stopped,
        ));
        let started = Utc::now().timestamp();
        let number = app
            .ticket("hook-1@example.org", "Webhook me", "hello")
            .await;
        // Created: 500, 500, then accepted on the third attempt, after 2 s and 4 s (the queue
        // counts whole seconds, so each wait may come out up to a second shorter).
        wait_for(
            &format!("three attempts on {:?}", app.db.backend()),
            120,
            async || receiver.received.lock().expect("lock").len() >= 3,
        )
        .await;
        let deliveries = call(
            &app,
            Method::GET,
            &format!("/api/v1/webhooks/{hook_id}/deliveries"),
            Some(&admin),
            None,
            &[],
        )
        .await;
        wait_for("delivered", 10, async || {
            let listed = call(
                &app,
                Method::GET,
                &format!("/api/v1/webhooks/{hook_id}/deliveries"),
                Some(&admin),
                None,
                &[],
            )
            .await;
            listed.body[0]["status"] == "delivered"
        })
        .await;
        let _ = deliveries;
        let listed = call(
            &app,
            Method::GET,
            &format!("/api/v1/webhooks/{hook_id}/deliveries"),
            Some(&admin),
            None,
            &[],
        )
        .await;
        assert_eq!(listed.body[0]["attempts"], 3, "{}", listed.text);
        assert_eq!(listed.body[0]["event"], "ticket.created");
        assert_eq!(listed.body[0]["last_status_code"], 204);
        {
            let arrivals = receiver.arrivals.lock().expect("lock");
            let first_wait = arrivals[1] - arrivals[0];
            let second_wait = arrivals[2] - arrivals[1];
            assert!(first_wait >= Duration::from_millis(900), "{first_wait:?}");
            assert!(
                second_wait >= Duration::from_millis(2900),
                "{second_wait:?}"
            );
        }
        {
            let received = receiver.received.lock().expect("lock");
            let bodies: Vec<&Vec<u8>> = received.iter().map(|(_, body)| body).collect();
            assert!(
                bodies.windows(2).all(|pair| pair[0] == pair[1]),
                "every attempt sends the same body"
            );
            for (headers, body) in received.iter() {
                let timestamp: i64 = headers["x-helpdesk-timestamp"]
                    .to_str()
                    .expect("text")
                    .parse()
                    .expect("number");
                assert!(timestamp >= started - 1 && timestamp <= Utc::now().timestamp() + 1);
                let signature = headers["x-helpdesk-signature"].to_str().expect("text");
                assert!(
                    jobs::webhooks::verify(&secret, timestamp, body, signature),
                    "signature verifies"
                );
                assert!(!jobs::webhooks::verify(
                    "wrong secret",
                    timestamp,
                    body,
                    signature
                ));
                assert_eq!(headers["x-helpdesk-event"], "ticket.created");
            }
            let payload: Value = serde_json::from_slice(&received[0].1).expect("json");
            assert_eq!(payload["event"], "ticket.created");
            assert_eq!(payload["ticket"]["number"], json!(number));
            assert_eq!(payload["ticket"]["subject"], "Webhook me");
        }

        // A status change is posted too; message.added was not subscribed.
        let before = receiver.received.lock().expect("lock").len();
        call(
            &app,
            Method::PATCH,
            &format!("/api/v1/tickets/{number}"),
            Some(&admin),
            Some(json!({"status": "open", "reason": "on it"})),
            &[],
        )
        .await;
        wait_for("status change posted", 20, async || {
            receiver.received.lock().expect("lock").len() > before
        })
        .await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let received = receiver.received.lock().expect("lock").clone();
        assert_eq!(received.len(), before + 1, "only the subscribed event");
        let payload: Value = serde_json::from_slice(&received[before].1).expect("json");
        assert_eq!(payload["event"], "ticket.status_changed");
        assert_eq!(payload["change"]["old"], "new");
        assert_eq!(payload["change"]["new"], "open");
        assert_eq!(payload["change"]["reason"], "on it");

        stop.send(true).expect("running");
        tokio::time::timeout(Duration::from_secs(20), workers)
            .await
            .expect("stops")
            .expect("task")
            .expect("clean stop");
    }
}

store_test! {
    #[tokio::test]
    async fn a_webhook_that_keeps_failing_is_marked_failed_and_shows_in_the_job_queue(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let (receiver, url) = start_receiver(usize::MAX).await;
        let registered = call(
            &app,
            Method::POST,
            "/api/v1/webhooks",
            Some(&admin),
            Some(json!({"url": url, "events": ["*"]})),
            &[],
        )
        .await;
        let hook_id = registered.body["id"].as_i64().expect("id");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers = tokio::spawn(jobs::run(
            app.db.store.clone(),
            quick_retries(1, 2),
            jobs::deliver::Deliverers::default(),
            app.db.intake.committed(),
            stopped,
        ));
        app.ticket("hook-2@example.org", "Nobody listens", "hello")
            .await;
        wait_for("deliveries failed", 120, async || {
            let listed = call(
                &app,
                Method::GET,
                &format!("/api/v1/webhooks/{hook_id}/deliveries"),
                Some(&admin),
                None,
                &[],
            )
            .await;
            let items = listed.body.as_array().cloned().unwrap_or_default();
            !items.is_empty() && items.iter().all(|d| d["status"] == "failed")
        })
        .await;
        let listed = call(
            &app,
            Method::GET,
            &format!("/api/v1/webhooks/{hook_id}/deliveries"),
            Some(&admin),
            None,
            &[],
        )
        .await;
        for delivery in listed.body.as_array().expect("deliveries") {
            assert_eq!(delivery["attempts"], 2, "{}", listed.text);
            assert_eq!(delivery["last_status_code"], 500);
            assert!(
                delivery["last_error"]
                    .as_str()
                    .expect("error")
                    .starts_with("after 2 attempts")
            );
        }
        // Every event (the ticket, its first message, what routing recorded), two attempts each.
        let deliveries = listed.body.as_array().expect("deliveries").len();
        assert!(deliveries >= 2, "{}", listed.text);
        assert_eq!(
            receiver.received.lock().expect("lock").len(),
            2 * deliveries
        );
        wait_for("failed jobs listed", 10, async || {
            let failed = call(
                &app,
                Method::GET,
                "/api/v1/jobs?state=Failed",
                Some(&admin),
                None,
                &[],
            )
            .await;
            failed.body.as_array().is_some_and(|jobs| {
                jobs.iter()
                    .filter(|j| j["queue"] == "helpdesk.webhook")
                    .count()
                    == deliveries
            })
        })
        .await;
        let metrics = app.get("/metrics", None).await;
        assert!(
            metrics.body.contains(&format!(
                "helpdesk_webhook_deliveries{{status=\"failed\"}} {deliveries}"
            )),
            "{}",
            metrics.body
        );
        stop.send(true).expect("running");
        tokio::time::timeout(Duration::from_secs(20), workers)
            .await
            .expect("stops")
            .expect("task")
            .expect("clean stop");
    }
}

store_test! {
    #[tokio::test]
    async fn metrics_count_the_traffic_and_readyz_turns_503_without_a_database(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        for n in 0..3 {
            app.ticket(&format!("metrics-{n}@example.org"), "Count me", "hello")
                .await;
        }
        let number = app
            .ticket("metrics-9@example.org", "Closed one", "bye")
            .await;
        call(
            &app,
            Method::PATCH,
            &format!("/api/v1/tickets/{number}"),
            Some(&admin),
            Some(json!({"status": "closed"})),
            &[],
        )
        .await;
        store::health::report(
            &app.db.store,
            &store::health::ChannelHealth {
                channel: "email".into(),
                name: "imap:INBOX".into(),
                connected: false,
                detail: None,
                last_success_at: None,
                last_error: Some("login refused".into()),
                last_error_at: Some(Utc::now()),
                consecutive_failures: 4,
                backlog: 0,
                updated_at: Utc::now(),
            },
        )
        .await
        .expect("health");
        let metrics = app.get("/metrics", None).await;
        assert_eq!(metrics.status, StatusCode::OK);
        assert!(
            metrics.headers[header::CONTENT_TYPE]
                .to_str()
                .expect("type")
                .starts_with("text/plain; version=0.0.4")
        );
        for line in [
            "helpdesk_database_up 1",
            "helpdesk_messages_received_total{channel=\"email\"} 4",
            "helpdesk_tickets{status=\"new\"} 3",
            "helpdesk_tickets{status=\"closed\"} 1",
            "helpdesk_tickets{status=\"open\"} 0",
            "helpdesk_channel_connected{channel=\"email\",name=\"imap:INBOX\"} 0",
            "helpdesk_channel_consecutive_failures{channel=\"email\",name=\"imap:INBOX\"} 4",
            "# TYPE helpdesk_jobs gauge",
        ] {
            assert!(
                metrics.body.lines().any(|l| l == line),
                "{line} missing in\n{}",
                metrics.body
            );
        }

        // Ready on an instance without email: the failing connection is not its own.
        let without_email = helpdesk::web::router(helpdesk::web::AppState::new(
            app.db.store.clone(),
            support::web::config(&app.db),
        ));
        let ready = without_email
            .oneshot(
                Request::builder()
                    .uri("/readyz")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("answer");
        assert_eq!(ready.status(), StatusCode::OK);
        // With email enabled (as the app's instance has), four failures in a row make the
        // instance not ready.
        let answer = app
            .router
            .clone()
            .oneshot(
                Request::builder()
                    .uri("/readyz")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("answer");
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value =
            serde_json::from_slice(&answer.into_body().collect().await.expect("body").to_bytes())
                .expect("json");
        assert!(
            body["reasons"][0]
                .as_str()
                .expect("reason")
                .contains("login refused"),
            "{body}"
        );

        // The database goes away: /healthz still answers, /readyz says why it is not ready.
        match app.db.backend() {
            store::Backend::Sqlite => app.db.store.close().await,
            store::Backend::Postgres => {
                let server = support::postgres_url().expect("server");
                let name = app.db.url.rsplit('/').next().expect("name").to_owned();
                store::scratch::drop_postgres_database(&server, &name)
                    .await
                    .expect("dropped");
            }
        }
        let health = app.get("/healthz", None).await;
        assert_eq!(health.status, StatusCode::OK);
        let ready = app.get("/readyz", None).await;
        assert_eq!(
            ready.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            ready.body
        );
        let reason: Value = serde_json::from_str(&ready.body).expect("json");
        assert_eq!(reason["status"], "unavailable");
        assert!(
            reason["reasons"][0]
                .as_str()
                .expect("reason")
                .starts_with("database:"),
            "{}",
            ready.body
        );
        let metrics = app.get("/metrics", None).await;
        assert!(
            metrics.body.contains("helpdesk_database_up 0"),
            "{}",
            metrics.body
        );
    }
}

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
        store::manage::set_assignee(
            &app.db.store,
            technical,
            Some(app.agent_id),
            &store::manage::Change {
                agent_id: app.admin_id,
                reason: Some("test setup"),
                now: Utc::now(),
            },
        )
        .await
        .expect("assigned");
        let theirs = get("/api/v1/customers".into(), agent.clone()).await;
        assert_eq!(names(&theirs), ["Bea Billing", "Tom Tech"], "{backend:?}");
    }
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
