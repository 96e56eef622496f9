//! Who else has a ticket's page open, over the API: an agent holding the ticket's event stream
//! is named, the token's own agent is not, and the stream's end takes them off.

use super::*;

store_test! {
    #[tokio::test]
    async fn presence_names_the_agents_on_a_tickets_page(app: WebApp) {
        let backend = app.db.backend();
        let number = app.ticket("api-presence@example.org", "Presence", "x").await;
        app.route(number, Some(app.billing)).await;
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let path = format!("/api/v1/tickets/{number}/presence");
        let people = || async {
            let answer = call(&app, Method::GET, &path, Some(&admin), None, &[]).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
            assert_eq!(answer.body["number"], number, "{}", answer.text);
            answer.body["people"].clone()
        };
        assert_eq!(people().await, json!([]), "{backend:?}: nobody yet");

        // Abe opens the ticket's page, whose event stream stays open while it is shown.
        let agent = app.agent().await;
        let request = Request::builder()
            .uri(format!("/events?ticket={number}"))
            .header(header::COOKIE, &agent.cookie)
            .body(Body::empty())
            .expect("request");
        let page = app.router.clone().oneshot(request).await.expect("answer");
        assert_eq!(page.status(), StatusCode::OK);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = people().await;
        while seen == json!([]) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            seen = people().await;
        }
        assert_eq!(
            seen,
            json!([{"agent_id": app.agent_id, "name": "Abe Agent", "typing": false}]),
            "{backend:?}"
        );

        // The token's own agent on the page is not named to themselves.
        let own = token(&app, app.agent_id, Role::Agent).await;
        let theirs = call(&app, Method::GET, &path, Some(&own), None, &[]).await;
        assert_eq!(theirs.body["people"], json!([]), "{}", theirs.text);

        // The page closes: gone.
        drop(page);
        let deadline = Instant::now() + Duration::from_secs(10);
        while people().await != json!([]) {
            assert!(Instant::now() < deadline, "{backend:?}: still present");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
