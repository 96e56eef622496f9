//! Each person chooses how they are told on `/account` and over the API; notes written on the
//! web page and over the API record their mentions.

use super::*;
use crate::support::web::call;
use axum::http::{Method, StatusCode};
use helpdesk::store::api_tokens;
use serde_json::json;

/// The outbox kinds recorded after entry `after`.
async fn kinds_since(store: &Store, after: i64) -> Vec<String> {
    outbox::pending(store, 1000)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|entry| entry.id > after)
        .map(|entry| entry.kind)
        .collect()
}

store_test! {
    #[tokio::test]
    async fn people_choose_how_they_are_told_on_the_page_and_over_the_api(app: WebApp) {
        let browser = app.agent().await;
        let page = app.get("/account", Some(&browser)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains(r#"id="notifications""#), "{}", page.body);
        assert!(page.body.contains(r#"<select name="mentioned">"#), "{}", page.body);
        // Abe has no chat account: the default is mail.
        assert!(page.body.contains("default (mail)"), "{}", page.body);

        let saved = app
            .post("/account/notifications", &browser, &[("mentioned", "none"), ("assigned", "both")])
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        assert_eq!(saved.location(), "/account?notices_saved=true#notifications");
        let page = app.get("/account?notices_saved=true", Some(&browser)).await;
        assert!(page.body.contains(r#"id="notifications-saved""#), "{}", page.body);
        assert!(page.body.contains(r#"<option value="none" selected>"#), "{}", page.body);
        let refused = app
            .post("/account/notifications", &browser, &[("mentioned", "pigeon")])
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);

        let token = api_tokens::create(&app.db.store, app.agent_id, "test", Role::Agent, Utc::now())
            .await
            .expect("token")
            .token;
        let path = "/api/v1/account/notifications";
        let shown = call(&app, Method::GET, path, Some(&token), None, &[]).await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
        assert_eq!(shown.body["mentioned"], json!({"how": "none", "default": false}));
        assert_eq!(shown.body["assigned"], json!({"how": "both", "default": false}));
        assert_eq!(shown.body["sla_warning"], json!({"how": "mail", "default": true}));

        let changed = call(
            &app,
            Method::PUT,
            path,
            Some(&token),
            Some(json!({"mentioned": "default", "sla_breached": "chat"})),
            &[],
        )
        .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
        assert_eq!(changed.body["mentioned"], json!({"how": "mail", "default": true}));
        assert_eq!(changed.body["sla_breached"], json!({"how": "chat", "default": false}));
        assert_eq!(changed.body["assigned"], json!({"how": "both", "default": false}));
        let bad = call(&app, Method::PUT, path, Some(&token), Some(json!({"mentioned": "pigeon"})), &[]).await;
        bad.problem(StatusCode::UNPROCESSABLE_ENTITY);

        let document = call(&app, Method::GET, "/api/openapi.json", None, None, &[]).await;
        assert!(document.body["paths"][path]["get"].is_object(), "{}", document.text);
        assert!(document.body["paths"][path]["put"].is_object(), "{}", document.text);
    }
}

store_test! {
    #[tokio::test]
    async fn notes_on_the_page_and_over_the_api_record_their_mentions(app: WebApp) {
        let number = app.ticket("notes-1@example.org", "Invoice twice", "Charged twice.").await;
        app.route(number, Some(app.billing)).await;
        let store = &app.db.store;
        let before = last_entry(&app.db).await;

        // The admin names Abe (the local part of his address) in a note on the page.
        let admin = app.admin().await;
        let posted = app
            .post(
                &format!("/tickets/{number}/reply"),
                &admin,
                &[("text", "@agent can you check the invoice?"), ("note", "true")],
            )
            .await;
        assert!(posted.status.is_redirection(), "{}", posted.body);
        assert_eq!(kinds_since(store, before).await, ["agent_mentioned"]);
        let page = app.get(&format!("/tickets/{number}"), Some(&admin)).await;
        assert!(page.body.contains(r#"<mark class="mention">@agent</mark> can you check"#), "{}", page.body);

        // Abe names the admin by name without spaces over the API; a public reply names nobody.
        let token = api_tokens::create(store, app.agent_id, "test", Role::Agent, Utc::now())
            .await
            .expect("token")
            .token;
        let last = last_entry(&app.db).await;
        let note = call(
            &app,
            Method::POST,
            &format!("/api/v1/tickets/{number}/notes"),
            Some(&token),
            Some(json!({"text": "done, @adaadmin"})),
            &[],
        )
        .await;
        assert_eq!(note.status, StatusCode::CREATED, "{}", note.text);
        assert_eq!(kinds_since(store, last).await, ["agent_mentioned"]);
        let last = last_entry(&app.db).await;
        let reply = call(
            &app,
            Method::POST,
            &format!("/api/v1/tickets/{number}/replies"),
            Some(&token),
            Some(json!({"text": "@adaadmin says hello"})),
            &[],
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        assert!(kinds_since(store, last).await.is_empty());
    }
}
