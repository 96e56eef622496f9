//! Attachment contents in S3-compatible storage (moto's server from testkit): taken in by one
//! instance and served and delivered by another, the store cut off and back, and the copy of
//! an fs directory into a bucket.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::Utc;
use helpdesk::config::S3Settings;
use helpdesk::domain::MessageKind;
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::intake::{Intake, Limits, Outcome};
use helpdesk::jobs::deliver::{Deliverers, DeliveryOutcome, deliver_message};
use helpdesk::store::blobs::BlobStore;
use helpdesk::store::outbound::NewReply;
use helpdesk_testkit::s3::{self, S3Server};
use helpdesk_testkit::smtp::{Config, SmtpServer};

use crate::support::web::{multipart, post_body};
use crate::support::{self, Env, TestStore, WebApp};

mod migrate;

/// Large enough that the content goes up in parts (more than 8 MiB).
const LARGE: usize = 9 << 20;

/// moto with a fresh bucket, and the settings that name it under a prefix.
async fn bucket(name: &str) -> Option<(S3Server, S3Settings)> {
    let server = S3Server::start().await?;
    server.create_bucket(name).await;
    let settings = S3Settings {
        bucket: name.to_owned(),
        endpoint: server.endpoint(),
        region: s3::REGION.into(),
        access_key_id: s3::ACCESS_KEY_ID.into(),
        secret_access_key: s3::SECRET_ACCESS_KEY.into(),
        path_style: true,
        prefix: "helpdesk/".into(),
    };
    Some((server, settings))
}

fn intake(db: &TestStore, blobs: BlobStore) -> Intake {
    Intake::new(
        db.store.clone(),
        blobs,
        Limits {
            max_attachment_bytes: 16 << 20,
            max_message_bytes: 32 << 20,
        },
    )
}

/// A public reply with one file already in the store, its delivery queued.
async fn reply_with(
    db: &TestStore,
    number: i64,
    filename: &str,
    content: &[u8],
    sha256: String,
) -> i64 {
    let agent = support::plain_agent(&db.store, "sam@helpdesk.example", "Sam").await;
    helpdesk::ops::send_reply_with_files(
        &db.store,
        &NewReply {
            number: number.into(),
            agent_id: agent,
            text: "Here it is.",
            kind: MessageKind::Public,
            external_id: None,
            channels_here: &[ChannelKind::Email],
            now: Utc::now(),
        },
        &[helpdesk::ops::AttachedFile {
            filename: filename.into(),
            content_type: "application/octet-stream".into(),
            size: content.len() as i64,
            sha256,
        }],
    )
    .await
    .expect("reply")
    .message_id
}

store_test! {
    #[tokio::test]
    async fn a_file_taken_in_by_one_instance_is_downloaded_and_delivered_by_another(db: TestStore) {
        let Some((server, settings)) = bucket("shared").await else { return };
        // Instance A takes mail in; its data directory is not instance B's.
        let a = intake(&db, BlobStore::s3(&settings).expect("store A"));
        let large = "0123456789abcdef".repeat(LARGE / 16);
        let raw = support::mail_with_file(
            &["From: ada@example.org", "Subject: Logs", "Message-ID: <s3-1@example.org>"],
            "logs.txt",
            &large,
        );
        let Outcome::Created { number, .. } = a.accept_email(raw).await.expect("taken in") else {
            panic!("a new ticket");
        };
        let sha256 = BlobStore::hash(large.as_bytes());
        let key = format!("helpdesk/{}/{}/{sha256}", &sha256[..2], &sha256[2..4]);
        assert!(server.keys("shared").await.contains(&key), "kept under {key}");
        assert!(
            !db.dir.path().join("attachments").join(&sha256[..2]).exists(),
            "nothing written under A's data directory"
        );

        // Instance B: its own store client and data directory, the same database.
        let b_blobs = BlobStore::s3(&settings).expect("store B");
        let settings_b = helpdesk::config::Settings::load_from(None, Vec::new()).expect("defaults");
        let mut config = helpdesk::web::WebConfig::from_settings(&settings_b, b_blobs.clone());
        config.email_enabled = true;
        let b = WebApp::with_config(db, config).await;
        let admin = b.admin().await;
        let detail = b.detail(number.get()).await;
        let logs = &detail.messages[0].attachments[0];
        let download = b
            .get(&format!("/tickets/{number}/attachments/{}", logs.id), Some(&admin))
            .await;
        assert_eq!(download.status, StatusCode::OK);
        assert_eq!(
            download.headers.get("content-length").and_then(|v| v.to_str().ok()),
            Some(large.len().to_string().as_str())
        );
        assert!(download.body == large, "the download is the file, byte for byte");

        // An agent on B attaches a file through the reply form; B delivers it with the
        // customer's file.
        let page = b.get(&format!("/tickets/{number}"), Some(&admin)).await;
        assert_eq!(page.status, StatusCode::OK);
        let sent = post_body(
            &b,
            &format!("/tickets/{number}/reply"),
            &[("cookie", admin.cookie.as_str())],
            multipart(
                &[("csrf", admin.csrf.as_str()), ("text", "Here is the fix.")],
                &[("fix.txt", "text/plain", b"apply the patch")],
            ),
        )
        .await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
        let detail = b.detail(number.get()).await;
        let reply = detail.messages.last().expect("reply");
        let fix = reply.attachments[0].sha256.clone().expect("kept");
        assert!(b_blobs.contains(&fix).await.expect("asked"), "the form's file is in the bucket");

        let smtp = SmtpServer::start(Config::default()).await;
        let deliverers = Deliverers::default()
            .with(ChannelKind::Email, Arc::new(support::smtp_sender(&smtp)))
            .with_attachments(b_blobs);
        let outcome = deliver_message(&b.db.store, &deliverers, reply.id, Utc::now())
            .await
            .expect("runs");
        assert!(matches!(outcome, DeliveryOutcome::Sent { .. }), "{outcome:?}");
        let forwarded = reply_with(&b.db, number.get(), "logs.txt", large.as_bytes(), sha256).await;
        let outcome = deliver_message(&b.db.store, &deliverers, forwarded, Utc::now())
            .await
            .expect("runs");
        assert!(matches!(outcome, DeliveryOutcome::Sent { .. }), "{outcome:?}");
        let received = smtp.received();
        assert_eq!(received.len(), 2);
        let first = helpdesk_email::parse_message(&received[0].data).expect("a mail");
        assert_eq!(first.attachments[0].content, b"apply the patch");
        let second = helpdesk_email::parse_message(&received[1].data).expect("a mail");
        assert_eq!(second.attachments[0].content, large.as_bytes());
    }
}

store_test! {
    #[tokio::test]
    async fn with_the_store_cut_off_intake_and_deliveries_wait_and_then_go_through(db: TestStore) {
        let Some((server, settings)) = bucket("outage").await else { return };
        let blobs = BlobStore::s3(&settings).expect("store");
        let intake = intake(&db, blobs.clone());
        let raw = support::mail_with_file(
            &["From: ada@example.org", "Subject: Scan", "Message-ID: <s3-2@example.org>"],
            "scan.txt",
            "the scanned page",
        );

        server.cut();
        // Intake fails before anything is written, as when the database is down: the source
        // keeps the mail unacknowledged and hands it again.
        let error = intake.accept_email(raw.clone()).await.expect_err("store is cut off");
        let helpdesk::intake::IntakeError::Store(error) = error;
        assert!(error.is_unavailable(), "{error}");
        assert!(error.to_string().contains("s3://outage/helpdesk/"), "{error}");
        let messages = helpdesk::store::attachments::blob_totals(&db.store).await.expect("totals");
        assert_eq!(messages, (0, 0), "nothing taken in");

        server.restore().await;
        let Outcome::Created { number, .. } = intake.accept_email(raw).await.expect("taken in")
        else {
            panic!("a new ticket");
        };
        let sha256 = BlobStore::hash(b"the scanned page");
        assert_eq!(blobs.get(&sha256).await.expect("stored"), b"the scanned page");

        // A delivery with the file waits while the store is cut off, then goes out.
        let message = reply_with(&db, number.get(), "scan.txt", b"the scanned page", sha256).await;
        let smtp = SmtpServer::start(Config::default()).await;
        let deliverers = Deliverers::default()
            .with(ChannelKind::Email, Arc::new(support::smtp_sender(&smtp)))
            .with_attachments(blobs);
        server.cut();
        let outcome = deliver_message(&db.store, &deliverers, message, Utc::now())
            .await
            .expect("runs");
        assert!(matches!(outcome, DeliveryOutcome::RetryAt(_)), "{outcome:?}");
        assert!(smtp.received().is_empty());
        server.restore().await;
        let outcome = deliver_message(&db.store, &deliverers, message, Utc::now())
            .await
            .expect("runs");
        assert!(matches!(outcome, DeliveryOutcome::Sent { .. }), "{outcome:?}");
        let sent = helpdesk_email::parse_message(&smtp.received()[0].data).expect("a mail");
        assert_eq!(sent.attachments[0].content, b"the scanned page");
    }
}

store_test! {
    /// While the bucket cannot be reached, /readyz says so and a download answers 503 naming
    /// the attachment store, not the database; both recover without a restart.
    #[tokio::test]
    async fn readyz_and_the_pages_name_the_attachment_store_while_it_is_cut_off(db: TestStore) {
        let Some((server, settings)) = bucket("readiness").await else { return };
        let blobs = BlobStore::s3(&settings).expect("store");
        let raw = support::mail_with_file(
            &["From: ada@example.org", "Subject: Scan", "Message-ID: <s3-3@example.org>"],
            "scan.txt",
            "the scanned page",
        );
        let Outcome::Created { number, .. } =
            intake(&db, blobs.clone()).accept_email(raw).await.expect("taken in")
        else {
            panic!("a new ticket");
        };
        let defaults = helpdesk::config::Settings::load_from(None, Vec::new()).expect("defaults");
        let config = helpdesk::web::WebConfig::from_settings(&defaults, blobs);
        let app = WebApp::with_config(db, config).await;
        let admin = app.admin().await;
        let file = app.detail(number.get()).await.messages[0].attachments[0].id;
        let download = format!("/tickets/{number}/attachments/{file}");
        assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);

        server.cut();
        let ready = app.get("/readyz", None).await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(ready.body.contains("s3://readiness/helpdesk/"), "{}", ready.body);
        let page = app.get(&download, Some(&admin)).await;
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(page.body.contains("cannot use its attachment store"), "{}", page.body);
        assert!(!page.body.contains("database"), "{}", page.body);

        server.restore().await;
        assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);
        let page = app.get(&download, Some(&admin)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.body, "the scanned page");
    }
}
