//! Replies with files over the API (`multipart/form-data`): both files reach the customer in
//! one mail through a real SMTP conversation; files over the limit are refused; a reply
//! written without seeing newer messages is stopped with 409.

use super::*;
use crate::support::web::{Answer, multipart, post_body};
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::jobs::deliver::{self, Deliverers, DeliveryOutcome};
use helpdesk_email::smtp::{SmtpSender, SmtpSettings, SmtpTls};
use helpdesk_testkit::smtp;

fn as_reply(answer: Answer) -> Reply {
    Reply {
        status: answer.status,
        headers: answer.headers,
        body: serde_json::from_str(&answer.body).unwrap_or(Value::Null),
        text: answer.body,
    }
}

async fn post_form(
    app: &WebApp,
    path: &str,
    token: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &str, &[u8])],
) -> Reply {
    let bearer = format!("Bearer {token}");
    as_reply(
        post_body(
            app,
            path,
            &[("authorization", bearer.as_str())],
            multipart(fields, files),
        )
        .await,
    )
}

/// A customer's mail that continues ticket `number` (its first mail was `first_id`).
async fn customer_writes_again(app: &WebApp, number: i64, first_id: &str, id: &str) {
    let outcome = app
        .db
        .intake
        .accept_email(support::mail(
            &[
                "From: Carla Customer <carla@example.org>",
                &format!("Subject: Re: [#{number}] Invoice"),
                &format!("Message-ID: <{id}>"),
                &format!("In-Reply-To: <{first_id}>"),
            ],
            "One more thing: the address changed.",
        ))
        .await
        .expect("taken in");
    assert!(
        matches!(outcome, helpdesk::intake::Outcome::Threaded { number: n, .. } if n == number.into()),
        "{outcome:?}"
    );
}

fn newest_message(detail: &helpdesk::store::tickets::TicketDetail) -> i64 {
    detail
        .messages
        .iter()
        .map(|m| m.id)
        .max()
        .expect("messages")
}

store_test! {
    #[tokio::test]
    async fn a_reply_with_two_files_arrives_with_both(app: WebApp) {
        let server = smtp::SmtpServer::start(smtp::Config::default()).await;
        let sender = SmtpSender::new(&SmtpSettings {
            host: "127.0.0.1".into(),
            port: server.addr.port(),
            tls: SmtpTls::None,
            username: String::new(),
            password: String::new(),
            from_address: "support@helpdesk.example".into(),
            from_name: None,
        })
        .expect("sender");
        let number = app.ticket("files-1@example.org", "Invoice", "Send me the invoice").await;
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let invoice: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let photo = b"\x89PNG\r\n\x1a\n not really a picture".to_vec();
        let posted = post_form(
            &app,
            &format!("/api/v1/tickets/{number}/replies"),
            &admin,
            &[("text", "Both files are attached.")],
            &[
                ("invoice.pdf", "application/pdf", &invoice),
                ("photo.png", "image/png", &photo),
            ],
        )
        .await;
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
        assert_eq!(posted.body["delivery_status"], "pending");
        let message_id = posted.body["message_id"].as_i64().expect("message id");

        // The delivery job's own run, against the SMTP server.
        let deliverers = Deliverers::default()
            .with(ChannelKind::Email, Arc::new(sender))
            .with_attachments(app.db.blobs());
        let outcome = deliver::deliver_message(&app.db.store, &deliverers, message_id, Utc::now())
            .await
            .expect("runs");
        assert!(matches!(outcome, DeliveryOutcome::Sent { .. }), "{outcome:?}");

        let received = server.received();
        assert_eq!(received.len(), 1, "one mail");
        assert_eq!(received[0].rcpt_to, vec!["carla@example.org".to_owned()]);
        let sent = helpdesk_email::parse_message(&received[0].data).expect("a valid mail");
        assert!(sent.text.contains("Both files are attached."), "{}", sent.text);
        let files: Vec<(&str, &str, &[u8])> = sent
            .attachments
            .iter()
            .map(|a| (a.filename.as_str(), a.content_type.as_str(), a.content.as_slice()))
            .collect();
        assert_eq!(
            files,
            vec![
                ("invoice.pdf", "application/pdf", invoice.as_slice()),
                ("photo.png", "image/png", photo.as_slice()),
            ]
        );
        // The ticket shows them with the reply.
        let shown = call(&app, Method::GET, &format!("/api/v1/tickets/{number}"), Some(&admin), None, &[]).await;
        let reply = shown.body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .find(|m| m["id"] == json!(message_id))
            .expect("the reply");
        assert_eq!(reply["attachments"].as_array().expect("attachments").len(), 2);
    }
}

store_test! {
    #[tokio::test]
    async fn files_over_the_limit_are_refused_and_nothing_is_sent(app: WebApp) {
        let mut config = support::web::config(&app.db);
        config.email_enabled = true;
        config.intake_limits.max_attachment_bytes = 1_000;
        let state = helpdesk::web::AppState::new(app.db.store.clone(), config);
        let router = helpdesk::web::router(state.clone());
        let app = WebApp { state, router, ..app };
        let number = app.ticket("files-2@example.org", "Invoice", "Send me the invoice").await;
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let before = app.detail(number).await.messages.len();
        let big = vec![7u8; 1_001];
        let refused = post_form(
            &app,
            &format!("/api/v1/tickets/{number}/replies"),
            &admin,
            &[("text", "Too big.")],
            &[("small.txt", "text/plain", b"fine"), ("big.bin", "application/octet-stream", &big)],
        )
        .await;
        refused.problem(StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            refused.body["detail"].as_str().expect("detail").contains("big.bin"),
            "{}",
            refused.text
        );
        assert_eq!(app.detail(number).await.messages.len(), before, "nothing stored");

        // Within the limit the same form goes through, as a note too.
        let fine = post_form(
            &app,
            &format!("/api/v1/tickets/{number}/notes"),
            &admin,
            &[("text", "For us only.")],
            &[("small.txt", "text/plain", b"fine")],
        )
        .await;
        assert_eq!(fine.status, StatusCode::CREATED, "{}", fine.text);
        assert_eq!(fine.body["delivery_status"], Value::Null);
        let detail = app.detail(number).await;
        let note = detail.messages.last().expect("the note");
        assert_eq!(note.kind, "internal");
        assert_eq!(note.attachments.len(), 1);
        assert_eq!(note.attachments[0].filename, "small.txt");
    }
}

store_test! {
    #[tokio::test]
    async fn a_reply_with_a_stale_last_seen_message_id_answers_409(app: WebApp) {
        let number = app.ticket("stale-1@example.org", "Invoice", "Send me the invoice").await;
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let agent = token(&app, app.agent_id, Role::Agent).await;
        app.route(number, Some(app.billing)).await;
        let seen = newest_message(&app.detail(number).await);
        let path = format!("/api/v1/tickets/{number}/replies");

        // What the writer sent themselves is nothing new to them.
        let own = call(&app, Method::POST, &path, Some(&admin),
            Some(json!({"text": "Looking into it.", "last_seen_message_id": seen})), &[]).await;
        assert_eq!(own.status, StatusCode::CREATED, "{}", own.text);
        let own_id = own.body["message_id"].as_i64().expect("id");
        let again = call(&app, Method::POST, &path, Some(&admin),
            Some(json!({"text": "Still on it.", "last_seen_message_id": seen})), &[]).await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
        let again_id = again.body["message_id"].as_i64().expect("id");

        // The customer writes, and another agent's note arrives: both are new to the agent.
        customer_writes_again(&app, number, "stale-1@example.org", "stale-2@example.org").await;
        let customer_id = newest_message(&app.detail(number).await);
        let before = app.detail(number).await.messages.len();
        let stale = call(&app, Method::POST, &path, Some(&agent),
            Some(json!({"text": "Here is the invoice.", "last_seen_message_id": seen})), &[]).await;
        stale.problem(StatusCode::CONFLICT);
        let detail = stale.body["detail"].as_str().expect("detail");
        assert!(
            detail.contains(&format!("you saw: {own_id}, {again_id}, {customer_id};")),
            "{detail}"
        );
        assert_eq!(app.detail(number).await.messages.len(), before, "nothing stored");
        // The same check in a multipart form.
        let stale_form = post_form(&app, &path, &agent,
            &[("text", "Here is the invoice."), ("last_seen_message_id", &seen.to_string())],
            &[("invoice.pdf", "application/pdf", b"%PDF-1.4")]).await;
        stale_form.problem(StatusCode::CONFLICT);
        // For the admin, who wrote the earlier replies, only the customer's mail is new.
        let admin_stale = call(&app, Method::POST, &path, Some(&admin),
            Some(json!({"text": "Again.", "last_seen_message_id": own_id})), &[]).await;
        admin_stale.problem(StatusCode::CONFLICT);
        let detail = admin_stale.body["detail"].as_str().expect("detail");
        assert!(detail.contains(&format!("you saw: {customer_id};")), "{detail}");

        // Having seen everything, the reply goes out; without the field there is no check.
        let fresh = call(&app, Method::POST, &path, Some(&agent),
            Some(json!({"text": "Here is the invoice.", "last_seen_message_id": customer_id})), &[]).await;
        assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.text);
        let unchecked = call(&app, Method::POST, &path, Some(&agent),
            Some(json!({"text": "And the receipt."})), &[]).await;
        assert_eq!(unchecked.status, StatusCode::CREATED, "{}", unchecked.text);
    }
}

store_test! {
    #[tokio::test]
    async fn the_openapi_document_describes_both_request_bodies(app: WebApp) {
        let document = call(&app, Method::GET, "/api/openapi.json", None, None, &[]).await;
        assert_eq!(document.status, StatusCode::OK);
        for path in ["/api/v1/tickets/{number}/replies", "/api/v1/tickets/{number}/notes"] {
            let content = &document.body["paths"][path]["post"]["requestBody"]["content"];
            assert!(content["application/json"].is_object(), "{path}: {content}");
            let form = &content["multipart/form-data"]["schema"];
            assert!(form.is_object(), "{path}: {content}");
            let responses = &document.body["paths"][path]["post"]["responses"];
            assert!(responses["409"].is_object() && responses["413"].is_object(), "{responses}");
        }
        let form = &document.body["components"]["schemas"]["NewTextWithFiles"]["properties"];
        assert!(form["files"].is_object() && form["last_seen_message_id"].is_object(), "{form}");
    }
}
