//! What operators of several instances watch, in process: /metrics read as Prometheus text
//! shows request histograms by route template, intake and delivery histograms by channel and
//! job histograms by queue, each with the instance; every answer carries a request id, and a
//! problem body names it.

use std::collections::BTreeMap;

use super::*;
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::jobs::deliver::Deliverers;
use helpdesk_testkit::smtp;

/// One sample line of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Reads a Prometheus text exposition; a line that is not a comment, blank or a well-formed
/// sample fails the test.
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            value => value.parse().unwrap_or_else(|_| panic!("value of {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                (name, labels_of(rest, line))
            }
        };
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
            "metric name in {line}"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

/// `a="x",b="y\"z"` with the format's escapes.
fn labels_of(mut rest: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, escaped)) => value.push(escaped),
                    None => panic!("{line}"),
                },
                Some((at, '"')) => break at,
                Some((_, other)) => value.push(other),
                None => panic!("unterminated label in {line}"),
            }
        };
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// The sum of the samples named `name` whose labels include `want`.
fn total(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|sample| {
            sample.name == name
                && want
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(value))
        })
        .map(|sample| sample.value)
        .sum()
}

async fn scrape(app: &WebApp) -> Vec<Sample> {
    let answer = app.get("/metrics", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    parse(&answer.body)
}

store_test! {
    #[tokio::test]
    async fn metrics_show_requests_by_route_intake_delivery_and_jobs(app: WebApp) {
        let server = smtp::SmtpServer::start(smtp::Config::default()).await;
        let sender = support::smtp_sender(&server);
        let admin = token(&app, app.admin_id, Role::Admin).await;
        // The histograms are the process's: other tests in this binary add to them too, so
        // what this test did shows as growth.
        let before = scrape(&app).await;

        let number = app
            .ticket("observed@example.org", "Watch me", "hello")
            .await;
        let path = format!("/api/v1/tickets/{number}");
        for _ in 0..3 {
            let shown = call(&app, Method::GET, &path, Some(&admin), None, &[]).await;
            assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers = tokio::spawn(jobs::run(
            app.db.store.clone(),
            jobs::JobSettings::from_settings(
                &helpdesk::config::Settings::load_from(None, Vec::new()).expect("defaults"),
            ),
            Deliverers::default().with(ChannelKind::Email, Arc::new(sender)),
            app.db.intake.committed(),
            stopped,
        ));
        let replied = call(
            &app,
            Method::POST,
            &format!("{path}/replies"),
            Some(&admin),
            Some(json!({"text": "Seen it."})),
            &[],
        )
        .await;
        assert_eq!(replied.status, StatusCode::CREATED, "{}", replied.text);
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.received().is_empty() {
            assert!(Instant::now() < deadline, "the reply was not delivered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The job is acknowledged after it sent: its run is measured once it returns, and the
        // message counts as sent once its transaction commits, in either order.
        let grew = |before: &[Sample], after: &[Sample], name: &str, want: &[(&str, &str)]| {
            total(after, name, want) - total(before, name, want)
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let after = loop {
            let after = scrape(&app).await;
            let want = [("queue", "helpdesk.deliver"), ("outcome", "ok")];
            let sent = [("channel", "email")];
            if grew(&before, &after, "helpdesk_job_run_duration_seconds_count", &want) >= 1.0
                && total(&after, "helpdesk_messages_sent_total", &sent) >= 1.0
            {
                break after;
            }
            assert!(Instant::now() < deadline, "no deliver job run measured");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        stop.send(true).expect("running");
        tokio::time::timeout(Duration::from_secs(20), workers)
            .await
            .expect("stops")
            .expect("joined")
            .expect("clean stop");

        let route = [
            ("route", "/api/v1/tickets/{number}"),
            ("method", "GET"),
            ("status", "200"),
        ];
        let requests = "helpdesk_http_request_duration_seconds";
        assert!(grew(&before, &after, &format!("{requests}_count"), &route) >= 3.0);
        assert!(grew(&before, &after, &format!("{requests}_sum"), &route) > 0.0);
        // Every bucket up to +Inf, which holds them all.
        let inf = [route.as_slice(), &[("le", "+Inf")]].concat();
        assert_eq!(
            total(&after, &format!("{requests}_bucket"), &inf),
            total(&after, &format!("{requests}_count"), &route)
        );
        // Routes are templates: no series per ticket.
        assert!(
            after
                .iter()
                .filter(|sample| sample.name.starts_with(requests))
                .all(|sample| sample.labels.get("route") != Some(&path)),
            "a raw path became a label"
        );
        for (name, want) in [
            (
                "helpdesk_http_request_duration_seconds_count",
                &[("route", "/api/v1/tickets/{number}/replies"), ("method", "POST"), ("status", "201")][..],
            ),
            ("helpdesk_intake_duration_seconds_count", &[("channel", "email"), ("outcome", "taken")]),
            ("helpdesk_delivery_duration_seconds_count", &[("channel", "email"), ("outcome", "sent")]),
            ("helpdesk_job_wait_duration_seconds_count", &[("queue", "helpdesk.deliver")]),
        ] {
            assert!(grew(&before, &after, name, want) >= 1.0, "{name} {want:?}");
        }
        // The process's figures name their instance; the database's are the same everywhere
        // and do not.
        let instance = helpdesk::telemetry::instance_id();
        for sample in &after {
            let own = sample.name.ends_with("_bucket")
                || sample.name.ends_with("_sum")
                || sample.name.ends_with("_count");
            assert_eq!(
                sample.labels.get("instance_id").map(String::as_str),
                own.then_some(instance),
                "{sample:?}"
            );
        }
        assert_eq!(total(&after, "helpdesk_database_up", &[]), 1.0);
        assert!(total(&after, "helpdesk_messages_sent_total", &[("channel", "email")]) >= 1.0);
    }
}

#[tokio::test]
async fn every_answer_has_a_request_id_and_problems_name_it() {
    let app = WebApp::new(support::sqlite().await).await;
    let admin = token(&app, app.admin_id, Role::Admin).await;
    let id_of = |reply: &Reply| {
        reply.headers["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned()
    };

    // The caller's id is kept.
    let missing = call(
        &app,
        Method::GET,
        "/api/v1/tickets/999999",
        Some(&admin),
        None,
        &[("x-request-id", "caller-chose-this-1")],
    )
    .await;
    missing.problem(StatusCode::NOT_FOUND);
    assert_eq!(id_of(&missing), "caller-chose-this-1");
    assert_eq!(missing.body["request_id"], "caller-chose-this-1");

    // Without one (or with one that is not sane) the server makes one.
    for extra in [
        &[][..],
        &[("x-request-id", "has spaces and \"quotes\"")][..],
    ] {
        let unauthorized = call(&app, Method::GET, "/api/v1/tickets", None, None, extra).await;
        unauthorized.problem(StatusCode::UNAUTHORIZED);
        let id = id_of(&unauthorized);
        assert_eq!(id.len(), 32, "{id}");
        assert_eq!(unauthorized.body["request_id"], id.as_str());
    }

    // Unknown API paths, unreadable bodies and pages have one too.
    let unknown = call(
        &app,
        Method::GET,
        "/api/v1/nothing-here",
        Some(&admin),
        None,
        &[],
    )
    .await;
    unknown.problem(StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["request_id"], id_of(&unknown).as_str());
    let unreadable = call(
        &app,
        Method::POST,
        "/api/v1/tickets",
        Some(&admin),
        Some(json!({"subject": 5})),
        &[],
    )
    .await;
    assert!(unreadable.status.is_client_error(), "{}", unreadable.text);
    assert_eq!(unreadable.body["request_id"], id_of(&unreadable).as_str());
    let page = app.get("/login", None).await;
    assert_eq!(page.headers["x-request-id"].len(), 32);
    // Successful JSON answers are left as they were.
    let listed = call(
        &app,
        Method::GET,
        "/api/v1/tickets",
        Some(&admin),
        None,
        &[],
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(listed.body.get("request_id").is_none());

    // The OpenAPI description documents the field.
    let document = call(&app, Method::GET, "/api/openapi.json", None, None, &[]).await;
    assert!(
        document.body["components"]["schemas"]["Problem"]["properties"]["request_id"].is_object(),
        "{}",
        document.body["components"]["schemas"]["Problem"]
    );
}
