//! Canned responses over the API: shared ones kept by admins, agents' own, placeholders checked
//! when saved, and a reply with one mailed with the placeholders filled in and its actions
//! applied in the same commit.

use super::*;
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk_email::smtp::{SmtpSender, SmtpSettings, SmtpTls};
use helpdesk_testkit::smtp;

store_test! {
    #[tokio::test]
    async fn admins_keep_shared_ones_and_agents_their_own(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let agent = token(&app, app.agent_id, Role::Agent).await;
        let post = |token: String, body: Value| {
            let app = &app;
            async move {
                call(app, Method::POST, "/api/v1/canned-responses", Some(&token), Some(body), &[])
                    .await
            }
        };

        let shared = post(
            admin.clone(),
            json!({"name": "Thanks", "body": "Thank you, {{customer_name}}!", "shared": true,
                   "status": "resolved", "tags": ["Done"]}),
        )
        .await;
        assert_eq!(shared.status, StatusCode::CREATED, "{}", shared.text);
        assert_eq!(shared.body["shared"], true);
        assert_eq!(shared.body["status"], "resolved");
        assert_eq!(shared.body["tags"], json!(["done"]));
        let shared_id = shared.body["id"].as_i64().expect("id");

        // An agent cannot make or change a shared one, but makes their own.
        post(agent.clone(), json!({"name": "Mine", "body": "x", "shared": true}))
            .await
            .problem(StatusCode::FORBIDDEN);
        let own = post(
            agent.clone(),
            json!({"name": "Hello", "body": "Hello {{ customer_name }}, {{agent_name}} here."}),
        )
        .await;
        assert_eq!(own.status, StatusCode::CREATED, "{}", own.text);
        assert_eq!(own.body["shared"], false);
        let own_id = own.body["id"].as_i64().expect("id");
        let path = |id: i64| format!("/api/v1/canned-responses/{id}");
        call(
            &app,
            Method::PUT,
            &path(shared_id),
            Some(&agent),
            Some(json!({"name": "Thanks", "body": "changed"})),
            &[],
        )
        .await
        .problem(StatusCode::FORBIDDEN);
        call(&app, Method::DELETE, &path(shared_id), Some(&agent), None, &[])
            .await
            .problem(StatusCode::FORBIDDEN);

        // Unknown placeholders are refused with the list of the known ones; names are unique
        // per owner, ignoring case.
        let unknown = post(agent.clone(), json!({"name": "Bad", "body": "Hi {{name}}"})).await;
        unknown.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            unknown.body["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("{{name}}")
                    && detail.contains("{{customer_name}}")),
            "{}",
            unknown.text
        );
        post(agent.clone(), json!({"name": "Bad", "body": "Hi {{customer_name"}))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
        post(agent.clone(), json!({"name": "HELLO", "body": "again"}))
            .await
            .problem(StatusCode::CONFLICT);
        // The same name as a shared one is fine for an agent's own.
        let same_as_shared = post(agent.clone(), json!({"name": "thanks", "body": "Cheers"})).await;
        assert_eq!(same_as_shared.status, StatusCode::CREATED, "{}", same_as_shared.text);

        // The agent sees the shared ones and their own; the admin does not see the agent's.
        let listed = call(&app, Method::GET, "/api/v1/canned-responses", Some(&agent), None, &[])
            .await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
        let names: Vec<&str> = listed
            .body
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|item| item["name"].as_str())
            .collect();
        assert_eq!(names, ["Thanks", "Hello", "thanks"], "{}", listed.text);
        let admins = call(&app, Method::GET, "/api/v1/canned-responses", Some(&admin), None, &[])
            .await;
        assert_eq!(admins.body.as_array().map(Vec::len), Some(1), "{}", admins.text);
        call(
            &app,
            Method::PUT,
            &path(own_id),
            Some(&admin),
            Some(json!({"name": "Hello", "body": "x"})),
            &[],
        )
        .await
        .problem(StatusCode::NOT_FOUND);

        // The owner changes and deletes their own; the admin the shared one.
        let changed = call(
            &app,
            Method::PUT,
            &path(own_id),
            Some(&agent),
            Some(json!({"name": "Hello", "body": "Hi {{customer_name}}", "priority": "high"})),
            &[],
        )
        .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
        assert_eq!(changed.body["priority"], "high");
        assert_eq!(changed.body["body"], "Hi {{customer_name}}");
        let deleted = call(&app, Method::DELETE, &path(own_id), Some(&agent), None, &[]).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
        let deleted = call(&app, Method::DELETE, &path(shared_id), Some(&admin), None, &[]).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
        let listed = call(&app, Method::GET, "/api/v1/canned-responses", Some(&agent), None, &[])
            .await;
        assert_eq!(listed.body.as_array().map(Vec::len), Some(1), "{}", listed.text);

        // The OpenAPI description has the endpoints and the reply's field.
        let openapi = call(&app, Method::GET, "/api/openapi.json", None, None, &[]).await;
        assert!(openapi.body["paths"]["/api/v1/canned-responses"]["post"].is_object());
        assert!(openapi.body["paths"]["/api/v1/canned-responses/{id}"]["put"].is_object());
        assert!(
            openapi.body["components"]["schemas"]["NewText"]["properties"]
                ["canned_response_id"]
                .is_object(),
            "{}",
            openapi.text
        );
    }
}

store_test! {
    #[tokio::test]
    async fn a_reply_with_a_canned_response_is_mailed_filled_in_with_its_actions(app: WebApp) {
        let agent = token(&app, app.agent_id, Role::Agent).await;
        let colleague = crate::support::web::agent_with_password(
            &app.db.store,
            "bea@helpdesk.example",
            "Bea Agent",
            Role::Agent,
            &[app.billing],
        )
        .await;
        let other_agent_token = token(&app, colleague, Role::Agent).await;
        let number = app
            .ticket("canned-1@example.org", "Refund please", "I want my money back")
            .await;
        app.route(number, Some(app.billing)).await;
        let created = call(
            &app,
            Method::POST,
            "/api/v1/canned-responses",
            Some(&agent),
            Some(json!({
                "name": "refund-done",
                "body": "Hello {{customer_name}},\n\nyour refund for ticket #{{ticket_number}} \
                         is on its way.\n\n{{agent_name}}, {{department}}",
                "status": "pending",
                "priority": "high",
                "tags": ["refund", "VIP"],
            })),
            &[],
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        let canned_id = created.body["id"].as_i64().expect("id");
        let replies = format!("/api/v1/tickets/{number}/replies");

        // Text and a canned response together are refused; so is one the token cannot use
        // (another agent's own), and nothing is stored.
        call(
            &app,
            Method::POST,
            &replies,
            Some(&agent),
            Some(json!({"text": "Hi", "canned_response_id": canned_id})),
            &[],
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
        call(
            &app,
            Method::POST,
            &replies,
            Some(&other_agent_token),
            Some(json!({"canned_response_id": canned_id})),
            &[],
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(app.detail(number).await.messages.len(), 1);

        let sent = call(
            &app,
            Method::POST,
            &replies,
            Some(&agent),
            Some(json!({"canned_response_id": canned_id})),
            &[],
        )
        .await;
        assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.text);
        assert_eq!(sent.body["delivery_status"], "pending");
        let message_id = sent.body["message_id"].as_i64().expect("message id");

        // The actions are applied, in one history group with the canned response named.
        let ticket = call(
            &app,
            Method::GET,
            &format!("/api/v1/tickets/{number}"),
            Some(&agent),
            None,
            &[],
        )
        .await;
        assert_eq!(ticket.body["status"], "pending", "{}", ticket.text);
        assert_eq!(ticket.body["priority"], "high", "{}", ticket.text);
        assert_eq!(ticket.body["tags"], json!(["refund", "vip"]), "{}", ticket.text);
        let reasons: Vec<&Value> = ticket.body["history"]
            .as_array()
            .expect("history")
            .iter()
            .filter(|event| ["priority", "tags"].contains(&event["kind"].as_str().unwrap_or("")))
            .map(|event| &event["reason"])
            .collect();
        assert_eq!(reasons.len(), 2, "{}", ticket.text);
        assert!(reasons.iter().all(|reason| *reason == "canned response \"refund-done\""));

        // The delivery job mails it to the SMTP server, placeholders filled in.
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
        let deliverers =
            jobs::deliver::Deliverers::default().with(ChannelKind::Email, Arc::new(sender));
        let outcome =
            jobs::deliver::deliver_message(&app.db.store, &deliverers, message_id, Utc::now())
                .await
                .expect("runs");
        assert!(
            matches!(outcome, jobs::deliver::DeliveryOutcome::Sent { .. }),
            "{outcome:?}"
        );
        let received = server.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].rcpt_to, ["carla@example.org"]);
        let mail = helpdesk_email::parse_message(&received[0].data).expect("a valid mail");
        assert!(
            mail.text.contains(&format!(
                "Hello Carla Customer,\n\nyour refund for ticket #{number} is on its way.\n\n\
                 Abe Agent, Billing"
            )),
            "{}",
            mail.text
        );
        assert!(!mail.text.contains("{{"), "{}", mail.text);
    }
}
