//! Live events: changes and assignments reach open pages, also those of another instance and
//! those committed late.

use super::*;

/// Reads server-sent events from a response body until `wanted` shows up.
async fn read_events_until(body: &mut axum::body::Body, wanted: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(wanted) {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .unwrap_or_else(|_| panic!("no {wanted:?} within 10 s; got {seen:?}"))
            .expect("stream open")
            .expect("frame");
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    seen
}

store_test! {
    #[tokio::test]
    async fn live_events_tell_about_changes_and_assignments(app: WebApp) {
        let number = app.ticket("e1@example.org", "Live", "x").await;
        app.route(number, Some(app.billing)).await;
        let agent = app.agent().await;
        let admin = app.admin().await;
        let request = axum::http::Request::builder()
            .uri("/events")
            .header(header::COOKIE, &agent.cookie)
            .body(axum::body::Body::empty())
            .expect("request");
        let response = app.router.clone().oneshot(request).await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        let mut body = response.into_body();

        // A new mail arrives through intake (not the web): the feed still carries it.
        let arrived = app.ticket("e2@example.org", "Arrived live", "x").await;
        app.route(arrived, Some(app.billing)).await;
        let seen = read_events_until(&mut body, &format!("\"number\":{arrived}")).await;
        assert!(seen.contains("event: ticket"));

        let assigned = app
            .post(
                &format!("/tickets/{number}/update"),
                &admin,
                &[("assignee", &app.agent_id.to_string())],
            )
            .await;
        assert_eq!(assigned.status, StatusCode::SEE_OTHER);
        let seen = read_events_until(&mut body, "event: assigned").await;
        assert!(seen.contains(&format!("{{\"number\":{number}}}")), "{seen}");

        // Changes to tickets the agent cannot see are not sent to them.
        let hidden = app.ticket("e3@example.org", "Elsewhere", "x").await;
        app.route(hidden, Some(app.technical)).await;
        let marker = app.ticket("e4@example.org", "Marker", "x").await;
        app.route(marker, Some(app.billing)).await;
        let seen = read_events_until(&mut body, &format!("\"number\":{marker}")).await;
        assert!(!seen.contains(&format!("\"number\":{hidden}")), "{seen}");

        // Anonymous visitors get no stream.
        assert_eq!(app.get("/events", None).await.status, StatusCode::SEE_OTHER);
    }
}

/// Several instances on one PostgreSQL database: a change written by one reaches the pages
/// served by another (LISTEN/NOTIFY).
#[tokio::test]
async fn changes_reach_the_pages_of_another_instance() {
    let Some(server) = support::postgres_url() else {
        eprintln!("skipped: DATABASE_URL names no PostgreSQL server");
        return;
    };
    let db = support::postgres(&server, "web_instances").await;
    let other = helpdesk::store::Store::connect(&db.url, 4)
        .await
        .expect("second instance");
    let hub = helpdesk::web::live::Hub::start(other);
    let mut changes = hub.subscribe();
    // The reader of the second instance needs a moment to LISTEN.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let number = match db
        .intake
        .accept_email(support::mail(
            &[
                "From: a@example.org",
                "Subject: Hi",
                "Message-ID: <i1@example.org>",
            ],
            "x",
        ))
        .await
        .expect("taken in")
    {
        helpdesk::intake::Outcome::Created { number, .. } => number,
        other => panic!("{other:?}"),
    };
    let change = tokio::time::timeout(Duration::from_secs(5), changes.recv())
        .await
        .expect("in time")
        .expect("a change");
    assert_eq!(change.number, number);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "NOTIFY wakes the other instance before its poll interval ({:?})",
        started.elapsed()
    );
}

/// On PostgreSQL a change's id is taken when its row is written, but transactions commit in
/// any order. A change that commits after one with a higher id was already read still reaches
/// the pages.
#[tokio::test]
async fn a_change_committed_late_with_a_lower_id_still_reaches_the_pages() {
    let Some(server) = support::postgres_url() else {
        eprintln!("skipped: DATABASE_URL names no PostgreSQL server");
        return;
    };
    let db = support::postgres(&server, "web_feed_order").await;
    let helpdesk::store::Store::Postgres { pool } = &db.store else {
        unreachable!("a PostgreSQL store");
    };
    let mut numbers = Vec::new();
    for id in ["o1@example.org", "o2@example.org"] {
        match db
            .intake
            .accept_email(support::mail(
                &[
                    "From: a@example.org",
                    "Subject: Order",
                    &format!("Message-ID: <{id}>"),
                ],
                "x",
            ))
            .await
            .expect("taken in")
        {
            helpdesk::intake::Outcome::Created { number, .. } => numbers.push(number),
            other => panic!("{other:?}"),
        }
    }
    let (early, late) = (numbers[0], numbers[1]);
    let hub = helpdesk::web::live::Hub::start(db.store.clone());
    let mut changes = hub.subscribe();
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The first transaction takes the lower id and commits last.
    let mut first = pool.begin().await.expect("tx");
    sqlx::query("UPDATE tickets SET priority = 'high' WHERE number = $1")
        .bind(early)
        .execute(&mut *first)
        .await
        .expect("update");
    let mut second = pool.begin().await.expect("tx");
    sqlx::query("UPDATE tickets SET priority = 'urgent' WHERE number = $1")
        .bind(late)
        .execute(&mut *second)
        .await
        .expect("update");
    second.commit().await.expect("commit");
    hub.wake();
    let seen = tokio::time::timeout(Duration::from_secs(5), changes.recv())
        .await
        .expect("the second change in time")
        .expect("a change");
    assert_eq!(seen.number, late);
    // A few reads go by with the lower id missing.
    tokio::time::sleep(Duration::from_millis(700)).await;
    first.commit().await.expect("commit");
    hub.wake();
    let seen_late = tokio::time::timeout(Duration::from_secs(5), changes.recv())
        .await
        .expect("the change committed late in time")
        .expect("a change");
    assert_eq!(seen_late.number, early);
    assert!(
        seen_late.id < seen.id,
        "the ids were taken in the other order ({} then {})",
        seen_late.id,
        seen.id
    );

    // A rolled-back change leaves a gap that is given up; later changes flow as before.
    let mut rolled_back = pool.begin().await.expect("tx");
    sqlx::query("UPDATE tickets SET priority = 'low' WHERE number = $1")
        .bind(early)
        .execute(&mut *rolled_back)
        .await
        .expect("update");
    rolled_back.rollback().await.expect("rollback");
    sqlx::query("UPDATE tickets SET priority = 'low' WHERE number = $1")
        .bind(late)
        .execute(pool)
        .await
        .expect("update");
    hub.wake();
    let after = tokio::time::timeout(Duration::from_secs(5), changes.recv())
        .await
        .expect("in time")
        .expect("a change");
    assert_eq!((after.number, after.id), (late, seen.id + 2));
    hub.close();
}
