//! A mail survey end to end: the ticket is resolved, the survey reaches a real SMTP server,
//! and its links, followed over HTTP against the running web server, record and change the
//! rating, take a comment, and refuse a forged or expired token.

use super::*;
use helpdesk::domain::Role;
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::jobs::{self, deliver::Deliverers};
use helpdesk::web::{AppState, WebConfig};
use helpdesk_email::smtp::{SmtpSender, SmtpSettings, SmtpTls};
use helpdesk_testkit::smtp;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// The links of a survey mail's text, by rating.
fn links_in(text: &str, base: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|word| word.starts_with(&format!("{base}/survey/")))
        .map(str::to_owned)
        .collect()
}

async fn satisfaction(client: &reqwest::Client, base: &str, token: &str, number: i64) -> Value {
    let text = client
        .get(format!("{base}/api/v1/tickets/{number}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("API answers")
        .text()
        .await
        .expect("a body");
    let ticket: Value = serde_json::from_str(&text).expect("JSON");
    ticket["satisfaction"].clone()
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_mailed_links_record_change_and_comment_on_the_rating(db: TestStore) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free local port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let settings = Settings::load_from(
            None,
            vec![
                ("HELPDESK_WEB__PUBLIC_URL".to_owned(), base.clone()),
                (
                    "HELPDESK_EMAIL__ADDRESS".to_owned(),
                    "support@helpdesk.example".to_owned(),
                ),
            ],
        )
        .expect("settings");
        let mut web_config = WebConfig::from_settings(&settings, db.blobs());
        web_config.email_enabled = true;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut web_stopped = stopped.clone();
        let server = tokio::spawn(helpdesk::web::serve_on(
            listener,
            AppState::new(db.store.clone(), web_config),
            async move {
                let _ = web_stopped.wait_for(|stop| *stop).await;
            },
        ));
        let smtp_server = smtp::SmtpServer::start(smtp::Config::default()).await;
        let sender = SmtpSender::new(&SmtpSettings {
            host: "127.0.0.1".into(),
            port: smtp_server.addr.port(),
            tls: SmtpTls::None,
            username: String::new(),
            password: String::new(),
            from_address: "support@helpdesk.example".into(),
            from_name: Some("Example Support".into()),
        })
        .expect("sender");
        let workers = tokio::spawn(jobs::run(
            db.store.clone(),
            jobs::JobSettings::from_settings(&settings),
            Deliverers::default().with(ChannelKind::Email, Arc::new(sender)),
            db.intake.committed(),
            stopped,
        ));
        let admin = store::agents::create_agent(
            &db.store,
            &store::agents::NewAgent {
                email: "admin@helpdesk.example",
                name: "Ada Admin",
                role: Role::Admin,
                password_hash: None,
                department_ids: &[],
                identities: &[],
                max_open_tickets: None,
            },
            Utc::now(),
        )
        .await
        .expect("admin");
        let api_token = store::api_tokens::create(&db.store, admin, "test", Role::Admin, Utc::now())
            .await
            .expect("token")
            .token;
        let client = reqwest::Client::new();

        let (number, ticket_id) = mailed_ticket(&db, "Pia <pia@example.org>", "q@example.org", &[]).await;
        assert_eq!(satisfaction(&client, &base, &api_token, number).await, Value::Null);
        set_status(&db.store, number, admin, Status::Resolved).await;

        // The survey reaches the SMTP server, threaded under the customer's mail.
        let deadline = Instant::now() + WAIT;
        let survey_mail = loop {
            let found = smtp_server.received().into_iter().find(|received| {
                String::from_utf8_lossy(&received.data).contains("/survey/")
            });
            if let Some(found) = found {
                break found;
            }
            assert!(Instant::now() < deadline, "no survey mailed within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(survey_mail.rcpt_to, vec!["pia@example.org".to_owned()]);
        let parsed = helpdesk_email::parse_message(&survey_mail.data).expect("a valid mail");
        assert_eq!(parsed.thread.in_reply_to, vec!["q@example.org".to_owned()]);
        assert!(parsed.automation.auto_reply, "marked as automatic");
        let links = links_in(&parsed.text, &base);
        assert_eq!(links.len(), 5, "{}", parsed.text);
        assert!(links[3].ends_with("?rating=4"), "{links:?}");

        // One click records the rating; the page thanks and offers the comment form.
        let page = client.get(&links[3]).send().await.expect("answer");
        assert_eq!(page.status(), reqwest::StatusCode::OK);
        let body = page.text().await.expect("page");
        assert!(body.contains("Your rating 4 of 5 is recorded."), "{body}");
        assert!(body.contains("<form method=\"post\""), "{body}");
        let rated = satisfaction(&client, &base, &api_token, number).await;
        assert_eq!(rated["rating"], 4, "{rated}");
        assert!(rated["rated_at"].is_string(), "{rated}");
        assert_eq!(rated["comment"], Value::Null);

        // A second link changes it.
        let page = client.get(&links[1]).send().await.expect("answer");
        assert_eq!(page.status(), reqwest::StatusCode::OK);
        let body = page.text().await.expect("page");
        assert!(body.contains("Your rating is now 2 of 5 (it was 4)."), "{body}");
        assert_eq!(satisfaction(&client, &base, &api_token, number).await["rating"], 2);

        // The comment form, posted without any session: the token authorizes it.
        let form_url = links[1].split('?').next().expect("the survey's page").to_owned();
        let page = client
            .post(&form_url)
            .form(&[("comment", "Quick, but the fire came back once.")])
            .send()
            .await
            .expect("answer");
        assert_eq!(page.status(), reqwest::StatusCode::OK);
        assert!(page.text().await.expect("page").contains("Your comment is recorded."));
        let commented = satisfaction(&client, &base, &api_token, number).await;
        assert_eq!(commented["comment"], "Quick, but the fire came back once.");
        assert_eq!(commented["rating"], 2);

        // The history has both ratings and the comment, as the customer's.
        let detail = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("ticket");
        let rated: Vec<_> = detail
            .history
            .iter()
            .filter(|event| event.kind == "rated")
            .map(|event| (event.old_value.clone(), event.new_value.clone()))
            .collect();
        assert_eq!(
            rated,
            [
                (None, Some("4".to_owned())),
                (Some("4".to_owned()), Some("2".to_owned()))
            ]
        );
        assert!(detail.history.iter().any(|event| event.kind == "rating_comment"));

        // A forged token is refused, and nothing changes.
        let token = form_url.rsplit('/').next().expect("token").to_owned();
        let (id, mac) = token.split_once('.').expect("id.mac");
        let flipped = if mac.starts_with('0') { "1" } else { "0" };
        for forged in [
            format!("{id}.{flipped}{}", &mac[1..]),
            format!("{}.{mac}", ticket_id + 1),
            "garbage".to_owned(),
        ] {
            let page = client
                .get(format!("{base}/survey/{forged}?rating=5"))
                .send()
                .await
                .expect("answer");
            assert_eq!(page.status(), reqwest::StatusCode::FORBIDDEN, "{forged}");
            assert!(page.text().await.expect("page").contains("This link is not valid"));
            let posted = client
                .post(format!("{base}/survey/{forged}"))
                .form(&[("comment", "forged")])
                .send()
                .await
                .expect("answer");
            assert_eq!(posted.status(), reqwest::StatusCode::FORBIDDEN, "{forged}");
        }
        assert_eq!(satisfaction(&client, &base, &api_token, number).await["rating"], 2);

        // Once expired, the genuine link is refused too.
        execute(
            &db.store,
            "UPDATE satisfaction_surveys SET expires_at = $1 WHERE ticket_id = $2",
            Utc::now() - chrono::Duration::minutes(1),
            ticket_id,
        )
        .await;
        let page = client.get(&links[4]).send().await.expect("answer");
        assert_eq!(page.status(), reqwest::StatusCode::GONE);
        assert!(page.text().await.expect("page").contains("This survey has expired"));
        assert_eq!(satisfaction(&client, &base, &api_token, number).await["rating"], 2);

        stop.send(true).expect("running");
        tokio::time::timeout(WAIT, workers)
            .await
            .expect("workers stop")
            .expect("task")
            .expect("clean");
        tokio::time::timeout(WAIT, server)
            .await
            .expect("server stops")
            .expect("task")
            .expect("clean");
    }
}
