//! Presence on a ticket: an open ticket page's event stream makes its agent present, a typing
//! post marks them writing, closing the stream ends it; only on tickets the viewer may see,
//! and across instances on PostgreSQL.

use super::*;
use helpdesk::domain::TicketNumber;

/// Reads server-sent events from a response body until `wanted` shows up.
async fn read_until(body: &mut axum::body::Body, wanted: &str) -> String {
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

async fn stream(app: &WebApp, cookie: &str, path: &str) -> axum::body::Body {
    let request = axum::http::Request::builder()
        .uri(path)
        .header(header::COOKIE, cookie)
        .body(axum::body::Body::empty())
        .expect("request");
    let response = app.router.clone().oneshot(request).await.expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body()
}

store_test! {
    #[tokio::test]
    async fn a_ticket_page_shows_who_else_is_there_and_who_writes(app: WebApp) {
        let number = app.ticket("p1@example.org", "Presence", "x").await;
        app.route(number, Some(app.billing)).await;
        let agent = app.agent().await;
        let admin = app.admin().await;

        let mut abe = stream(&app, &agent.cookie, &format!("/events?ticket={number}")).await;
        let seen = read_until(&mut abe, "event: presence").await;
        assert!(seen.contains("\"people\":[]"), "{seen}");

        // Ada opens the ticket: Abe's page names her.
        let ada = stream(&app, &admin.cookie, &format!("/events?ticket={number}")).await;
        let seen = read_until(&mut abe, "Ada Admin").await;
        assert!(seen.contains("\"typing\":false"), "{seen}");

        // She writes: "typing" needs the form's token, then marks her as writing.
        let refused = app
            .request(
                Method::POST,
                &format!("/tickets/{number}/typing"),
                Some(&admin.cookie),
                Some(&[("csrf", "wrong")]),
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let typing = app.post(&format!("/tickets/{number}/typing"), &admin, &[]).await;
        assert_eq!(typing.status, StatusCode::NO_CONTENT, "{}", typing.body);
        read_until(&mut abe, "\"typing\":true").await;
        let listed = app
            .get(&format!("/tickets/{number}"), Some(&agent))
            .await;
        assert!(listed.body.contains("id=\"presence\""), "{}", listed.body);

        // She closes the page: gone from Abe's.
        drop(ada);
        read_until(&mut abe, "\"people\":[]").await;

        // A ticket Abe may not see: no presence for him there, and he cannot announce any.
        let hidden = app.ticket("p2@example.org", "Elsewhere", "x").await;
        app.route(hidden, Some(app.technical)).await;
        let denied = app.post(&format!("/tickets/{hidden}/typing"), &agent, &[]).await;
        assert_eq!(denied.status, StatusCode::NOT_FOUND);
        let _ada_there = stream(&app, &admin.cookie, &format!("/events?ticket={hidden}")).await;
        assert!(
            app.state.live.presence().people(hidden.into(), app.agent_id).len() == 1,
            "Ada is on the hidden ticket"
        );
        let mut elsewhere = stream(&app, &agent.cookie, &format!("/events?ticket={hidden}")).await;
        let marker = app.ticket("p3@example.org", "Marker", "x").await;
        app.route(marker, Some(app.billing)).await;
        let seen = read_until(&mut elsewhere, &format!("\"number\":{marker}")).await;
        assert!(!seen.contains("presence"), "{seen}");
        assert!(!seen.contains("Ada Admin"), "{seen}");
    }
}

/// Several instances on one PostgreSQL database: presence on one shows on the others, and
/// ends there too.
#[tokio::test]
async fn presence_reaches_another_instance() {
    let Some(server) = support::postgres_url() else {
        eprintln!("skipped: DATABASE_URL names no PostgreSQL server");
        return;
    };
    let db = support::postgres(&server, "web_presence_instances").await;
    let first = helpdesk::web::live::Hub::start(db.store.clone());
    let other = helpdesk::store::Store::connect(&db.url, 4)
        .await
        .expect("second instance");
    let second = helpdesk::web::live::Hub::start(other);
    // Both need a moment to LISTEN.
    tokio::time::sleep(Duration::from_millis(400)).await;

    async fn until(
        hub: &helpdesk::web::live::Hub,
        what: &str,
        done: impl Fn(&[helpdesk::web::presence::Person]) -> bool,
    ) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let people = hub.presence().people(TicketNumber(42), 0);
            if done(&people) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{what}: {people:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let kim = first.presence().join(TicketNumber(42), 7, "Kim");
    until(&second, "Kim shows on the other instance", |people| {
        people.len() == 1 && people[0].name == "Kim" && !people[0].typing
    })
    .await;
    first.presence().typing(TicketNumber(42), 7, "Kim");
    until(&second, "Kim writes", |people| {
        people.iter().any(|p| p.typing)
    })
    .await;
    drop(kim);
    until(&second, "Kim left", |people| people.is_empty()).await;
    first.close();
    second.close();
}
