//! Signed webhook deliveries, retried after failures, and one that keeps failing.

use super::*;

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
