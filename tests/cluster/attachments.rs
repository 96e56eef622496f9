//! Two `helpdesk serve` processes on one PostgreSQL with `attachments.store = "s3"`: a file a
//! customer mails in is taken in by the instance holding the mailbox, kept in the bucket, then
//! downloaded through the other instance and sent back attached to a reply that the other
//! instance delivers, after the first has been killed.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support;
use crate::support::cli::{Env, Serve};
use helpdesk_testkit::dovecot::Dovecot;
use helpdesk_testkit::s3::{self, S3Server};
use helpdesk_testkit::smtp::{Config, SmtpServer};
use serde_json::Value;

const PASSWORD_LINE: &str = "a long enough password\n";

fn settings(imap_port: u16, smtp_port: u16, bucket: &S3Server) -> Vec<(&'static str, String)> {
    let mut settings = super::mail_settings(imap_port, Some(smtp_port));
    settings.extend([
        ("HELPDESK_ATTACHMENTS__STORE", "s3".into()),
        ("HELPDESK_ATTACHMENTS__S3__BUCKET", "cluster".into()),
        ("HELPDESK_ATTACHMENTS__S3__ENDPOINT", bucket.endpoint()),
        ("HELPDESK_ATTACHMENTS__S3__REGION", s3::REGION.into()),
        (
            "HELPDESK_ATTACHMENTS__S3__ACCESS_KEY_ID",
            s3::ACCESS_KEY_ID.into(),
        ),
        (
            "HELPDESK_ATTACHMENTS__S3__SECRET_ACCESS_KEY",
            s3::SECRET_ACCESS_KEY.into(),
        ),
        ("HELPDESK_ATTACHMENTS__S3__PATH_STYLE", "true".into()),
        ("HELPDESK_ATTACHMENTS__S3__PREFIX", "files/".into()),
    ]);
    settings
}

async fn api(client: &reqwest::Client, serve: &Serve, token: &str, path: &str) -> Value {
    let answer = client
        .get(format!("{}/api/v1/{path}", serve.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200, "GET {path}");
    answer.json().await.expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_taken_in_by_one_instance_is_downloaded_and_sent_by_another() {
    let Some(server) = support::postgres_url() else {
        eprintln!("SKIPPED: DATABASE_URL is not set; a cluster needs PostgreSQL");
        return;
    };
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let Some(bucket) = S3Server::start().await else {
        return;
    };
    bucket.create_bucket("cluster").await;
    let smtp = SmtpServer::start(Config::default()).await;
    let env =
        <Env as support::Fixture>::postgres(&server, "helpdesk_test_cluster_attachments").await;
    env.ok(&["migrate"]);
    env.ok_with(
        &[
            "user",
            "add",
            "--email",
            "ada@helpdesk.example",
            "--name",
            "Ada",
            "--role",
            "admin",
        ],
        PASSWORD_LINE,
    );
    let token = env.ok(&[
        "token",
        "create",
        "--agent",
        "ada@helpdesk.example",
        "--name",
        "test",
    ]);
    let token = token.trim();
    let settings = settings(dovecot.port(), smtp.addr.port(), &bucket);

    // A starts alone, so it holds the mailbox and takes the mail in.
    let a = Serve::start_with(&env, &settings, Stdio::inherit()).await;
    let client = reqwest::Client::new();
    let file: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let text = String::from_utf8(file.clone()).expect("letters");
    dovecot
        .append(&support::mail_with_file(
            &[
                "From: Carla <carla@example.org>",
                "Subject: The log",
                "Message-ID: <cluster-file@example.org>",
            ],
            "server.log",
            &text,
        ))
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let number = loop {
        let list = api(&client, &a, token, "tickets").await;
        if let Some(number) = list["items"][0]["number"].as_i64() {
            break number;
        }
        assert!(
            Instant::now() < deadline,
            "the mail was not taken in: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let sha256 = helpdesk::store::blobs::BlobStore::hash(&file);
    let key = format!("files/{}/{}/{sha256}", &sha256[..2], &sha256[2..4]);
    assert!(
        bucket.keys("cluster").await.contains(&key),
        "kept under {key}"
    );
    let local = env.dir.path().join("attachments");
    assert!(
        !local.exists() || std::fs::read_dir(&local).expect("dir").next().is_none(),
        "nothing in the data directory"
    );

    // A dies; B starts and does the rest.
    drop(a);
    let b = Serve::start_with(&env, &settings, Stdio::inherit()).await;
    let ticket = api(&client, &b, token, &format!("tickets/{number}")).await;
    let attachment = ticket["messages"][0]["attachments"][0]["id"]
        .as_i64()
        .expect("the customer's file");
    let (status, cookie) = b
        .session("ada@helpdesk.example", PASSWORD_LINE.trim())
        .await;
    assert_eq!(status, 303);
    let download = client
        .get(format!(
            "{}/tickets/{number}/attachments/{attachment}",
            b.base
        ))
        .header(reqwest::header::COOKIE, cookie.expect("a session"))
        .send()
        .await
        .expect("download");
    assert_eq!(download.status(), 200);
    let downloaded = download.bytes().await.expect("body");
    assert!(
        downloaded == file,
        "the download is the file, byte for byte"
    );

    let (content_type, body) = crate::support::web::multipart(
        &[("text", "Here is your log back, with my notes.")],
        &[
            ("server.log", "text/plain", &downloaded),
            ("notes.txt", "text/plain", b"line 3 is the cause"),
        ],
    );
    let replied = client
        .post(format!("{}/api/v1/tickets/{number}/replies", b.base))
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .expect("reply");
    assert_eq!(replied.status(), 201);

    // B's job workers deliver it: the mail carries both files from the bucket.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mail = loop {
        let to_carla = smtp
            .received()
            .into_iter()
            .find(|mail| mail.rcpt_to == ["carla@example.org"]);
        if let Some(mail) = to_carla {
            break mail;
        }
        assert!(Instant::now() < deadline, "the reply was not delivered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let sent = helpdesk_email::parse_message(&mail.data).expect("a mail");
    let files: Vec<(&str, &[u8])> = sent
        .attachments
        .iter()
        .map(|a| (a.filename.as_str(), a.content.as_slice()))
        .collect();
    assert_eq!(
        files,
        [
            ("server.log", file.as_slice()),
            ("notes.txt", b"line 3 is the cause".as_slice())
        ]
    );
    let ready: Value = client
        .get(format!("{}/readyz", b.base))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("JSON");
    assert_eq!(ready["status"], "ready", "{ready}");
}
