//! Mailboxes and signatures from the pages and the API: admins see each mailbox with its
//! address, department and health; people set their mail signature at /account and over the
//! API, admins anyone's on the agents page.

use super::*;

/// A web configuration whose instance reads two mailboxes.
fn with_mailboxes(db: &crate::support::TestStore) -> helpdesk::web::WebConfig {
    let text = r#"
[email]
enabled = true
[email.imap]
host = "imap.example.org"
[email.smtp]
host = "smtp.example.org"
[[email.mailboxes]]
name = "support"
address = "support@helpdesk.example"
department = "Technical"
display_name = "Example Support"
[[email.mailboxes]]
name = "billing"
address = "billing@helpdesk.example"
department = "Billing"
signature = "Example Billing"
"#;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("helpdesk.toml");
    std::fs::write(&path, text).expect("written");
    let settings = helpdesk::config::Settings::load_from(Some(&path), Vec::new()).expect("valid");
    helpdesk::web::WebConfig::from_settings(&settings, db.blobs())
}

store_test! {
    #[tokio::test]
    async fn admins_see_the_mailboxes_and_people_set_their_signatures(db: TestStore) {
        let web = with_mailboxes(&db);
        let app = WebApp::with_config(db, web).await;
        store::health::report(
            &app.db.store,
            &store::health::ChannelHealth {
                channel: "email".into(),
                name: "imap:billing/INBOX".into(),
                connected: false,
                detail: None,
                last_success_at: None,
                last_error: Some("connecting to imap.example.org:993: refused".into()),
                last_error_at: Some(Utc::now()),
                consecutive_failures: 3,
                backlog: 0,
                updated_at: Utc::now(),
            },
        )
        .await
        .expect("health");

        // The channels page and its JSON twin.
        let admin = app.admin().await;
        let page = app.get("/admin/channels", Some(&admin)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(r#"id="mailbox-billing""#), "{}", page.body);
        assert!(page.body.contains("Example Support &lt;support@helpdesk.example&gt;"));
        assert!(page.body.contains("Technical"));
        assert!(page.body.contains("connecting to imap.example.org:993: refused"));
        let admin_token = token(&app, app.admin_id, Role::Admin).await;
        let agent_token = token(&app, app.agent_id, Role::Agent).await;
        let channels = call(&app, Method::GET, "/api/v1/channels", Some(&admin_token), None, &[]).await;
        assert_eq!(channels.status, StatusCode::OK, "{}", channels.text);
        let mailboxes = channels.body["mailboxes"].as_array().expect("mailboxes");
        assert_eq!(mailboxes.len(), 2);
        assert_eq!(mailboxes[0]["name"], "support");
        assert_eq!(mailboxes[0]["department"], "Technical");
        assert_eq!(mailboxes[0]["connection"], Value::Null, "not reported yet");
        assert_eq!(mailboxes[1]["address"], "billing@helpdesk.example");
        assert_eq!(mailboxes[1]["has_signature"], true);
        assert_eq!(mailboxes[1]["connection"]["consecutive_failures"], 3);
        assert!(!channels.text.contains("password"), "{}", channels.text);
        let refused = call(&app, Method::GET, "/api/v1/channels", Some(&agent_token), None, &[]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);

        // A person's own signature over the API.
        let set = call(
            &app,
            Method::PUT,
            "/api/v1/account/signature",
            Some(&agent_token),
            Some(json!({"signature": "Abe Agent\r\nBilling desk\n\n"})),
            &[],
        )
        .await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.text);
        assert_eq!(set.body["signature"], "Abe Agent\nBilling desk");
        let read = call(&app, Method::GET, "/api/v1/account/signature", Some(&agent_token), None, &[]).await;
        assert_eq!(read.body["signature"], "Abe Agent\nBilling desk");
        assert_eq!(
            store::mailboxes::agent_signature(&app.db.store, app.admin_id).await.expect("read"),
            None,
            "only the caller's"
        );

        // And at /account, where the form shows it.
        let agent = app.agent().await;
        let page = app.get("/account", Some(&agent)).await;
        assert!(page.body.contains("Abe Agent\nBilling desk</textarea>"), "{}", page.body);
        let saved = app.post("/account/signature", &agent, &[("signature", "Abe\nSecond level")]).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER);
        let page = app.get(saved.location(), Some(&agent)).await;
        assert!(page.body.contains(r#"id="signature-saved""#));
        assert_eq!(
            store::mailboxes::agent_signature(&app.db.store, app.agent_id).await.expect("read").as_deref(),
            Some("Abe\nSecond level")
        );

        // Admins set anyone's on the agents page; agents cannot.
        let path = format!("/admin/agents/{}/signature", app.agent_id);
        let forbidden = app.post(&path, &agent, &[("signature", "hijacked")]).await;
        assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
        let done = app.post(&path, &admin, &[("signature", "Abe Agent, Billing")]).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER);
        let agents = app.get("/admin/agents", Some(&admin)).await;
        assert!(agents.body.contains("Abe Agent, Billing</textarea>"), "{}", agents.body);
        let cleared = app.post(&path, &admin, &[("signature", "  \n ")]).await;
        assert_eq!(cleared.status, StatusCode::SEE_OTHER);
        assert_eq!(
            store::mailboxes::agent_signature(&app.db.store, app.agent_id).await.expect("read"),
            None
        );
        let missing = app.post("/admin/agents/999999/signature", &admin, &[("signature", "x")]).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
    }
}
