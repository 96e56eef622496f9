//! The service around the API: its OpenAPI document, /metrics, and /readyz when the database
//! goes away.

use super::*;

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
        "/api/v1/canned-responses",
        "/api/v1/canned-responses/{id}",
        "/api/v1/customers",
        "/api/v1/customers/{id}",
        "/api/v1/customers/{id}/merge",
        "/api/v1/agents",
        "/api/v1/departments",
        "/api/v1/tags",
        "/api/v1/account/time-zone",
        "/api/v1/account/signature",
        "/api/v1/account/notifications",
        "/api/v1/channels",
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

/// One request to an operation of the OpenAPI document: its path parameters set to `id`.
struct Probe<'a> {
    path: &'a str,
    method: Method,
    operation: &'a Value,
}

impl Probe<'_> {
    fn uri(&self, id: &str) -> String {
        self.path
            .split('/')
            .map(|part| if part.starts_with('{') { id } else { part })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Sends it with an admin token; `Some(problem)` when the answer's status is not one the
    /// operation lists.
    async fn undocumented(
        &self,
        app: &WebApp,
        admin: &str,
        id: &str,
        body: Option<Value>,
    ) -> Option<String> {
        let uri = self.uri(id);
        let answer = call(app, self.method.clone(), &uri, Some(admin), body, &[]).await;
        let documented = self.operation["responses"].as_object().expect("responses");
        (!documented.contains_key(answer.status.as_str()))
            .then(|| format!("{} {uri}: {} {}", self.method, answer.status, answer.text))
    }
}

/// Every operation of the document.
fn probes(document: &Value) -> Vec<Probe<'_>> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .expect("operations")
                .iter()
                .filter_map(move |(method, operation)| {
                    let method = method.to_uppercase().parse::<Method>().ok()?;
                    Some(Probe {
                        path,
                        method,
                        operation,
                    })
                })
        })
        .collect()
}

/// A signed-in admin's app and its OpenAPI document.
async fn described() -> (WebApp, String, Value) {
    let app = WebApp::new(support::sqlite().await).await;
    let admin = token(&app, app.admin_id, Role::Admin).await;
    let document = call(&app, Method::GET, "/api/openapi.json", None, None, &[]).await;
    (app, admin, document.body)
}

/// Every operation with a path parameter answers an id that is no number, or one past the
/// largest, with a status its description lists (a client generated from the document, or
/// a contract checker, must not meet an undocumented answer).
#[tokio::test]
async fn every_operation_documents_what_it_answers_to_a_bad_path_parameter() {
    let (app, admin, document) = described().await;
    let mut checked = 0;
    let mut undocumented = Vec::new();
    for probe in probes(&document).iter().filter(|p| p.path.contains('{')) {
        for bad in ["9223372036854775808", "not-a-number"] {
            let body = matches!(probe.method, Method::POST | Method::PUT | Method::PATCH)
                .then(|| json!({}));
            checked += 1;
            undocumented.extend(probe.undocumented(&app, &admin, bad, body).await);
        }
    }
    assert!(
        checked > 40,
        "only {checked} operations with a path parameter"
    );
    assert!(undocumented.is_empty(), "{undocumented:#?}");
}

/// Every operation that takes a JSON body answers one with a field it does not know with a
/// status its description lists.
#[tokio::test]
async fn every_operation_documents_what_it_answers_to_an_unknown_field() {
    let (app, admin, document) = described().await;
    let mut checked = 0;
    let mut undocumented = Vec::new();
    for probe in probes(&document)
        .iter()
        .filter(|p| !p.operation["requestBody"]["content"]["application/json"].is_null())
    {
        let body = json!({"x-unknown-property": 42});
        checked += 1;
        undocumented.extend(probe.undocumented(&app, &admin, "1", Some(body)).await);
    }
    assert!(checked > 20, "only {checked} operations with a JSON body");
    assert!(undocumented.is_empty(), "{undocumented:#?}");
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
