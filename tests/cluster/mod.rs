//! Several instances on one database: each channel consumer (a mailbox's intake, the Telegram
//! poller, the Discord gateway) runs on the one instance holding its lease, and another takes
//! it over when the holder dies. The lease itself on PostgreSQL, what the pages show of it on
//! both stores, and two real `serve` processes with one killed: with every channel polling,
//! with Telegram by webhook behind one address, and with attachments in an S3 bucket.

use std::time::Duration;

use crate::support;
use crate::support::web::WebApp;
use helpdesk::store::{Store, leases};

mod attachments;
mod failover;
mod webhook;

/// A `serve`'s settings for the Dovecot mailbox at `imap_port` (no acknowledgements) and the
/// SMTP server on 127.0.0.1 (at `smtp_port`, else the default port).
fn mail_settings(imap_port: u16, smtp_port: Option<u16>) -> Vec<(&'static str, String)> {
    use helpdesk_testkit::dovecot::{PASSWORD, USER};
    let mut settings = vec![
        ("HELPDESK_EMAIL__ENABLED", "true".into()),
        ("HELPDESK_EMAIL__ACKNOWLEDGE", "false".into()),
        ("HELPDESK_EMAIL__IMAP__HOST", "127.0.0.1".into()),
        ("HELPDESK_EMAIL__IMAP__PORT", imap_port.to_string()),
        ("HELPDESK_EMAIL__IMAP__TLS", "none".into()),
        ("HELPDESK_EMAIL__IMAP__USERNAME", USER.into()),
        ("HELPDESK_EMAIL__IMAP__PASSWORD", PASSWORD.into()),
        ("HELPDESK_EMAIL__SMTP__HOST", "127.0.0.1".into()),
        ("HELPDESK_EMAIL__SMTP__TLS", "none".into()),
    ];
    if let Some(port) = smtp_port {
        settings.push(("HELPDESK_EMAIL__SMTP__PORT", port.to_string()));
    }
    settings
}

/// A `serve`'s settings for the bot `token` of the fake Telegram, its agents in `agents_chat`.
fn telegram_settings(
    telegram: &helpdesk_testkit::telegram::FakeTelegram,
    token: &str,
    agents_chat: i64,
) -> Vec<(&'static str, String)> {
    vec![
        ("HELPDESK_TELEGRAM__ENABLED", "true".into()),
        ("HELPDESK_TELEGRAM__TOKEN", token.into()),
        ("HELPDESK_TELEGRAM__API_URL", telegram.url()),
        ("HELPDESK_TELEGRAM__AGENTS_CHAT_ID", agents_chat.to_string()),
    ]
}

/// The backend process id behind the connection holding lease `name`.
async fn backend_of(store: &Store, name: &str) -> i64 {
    let Store::Postgres { pool } = store else {
        unreachable!("a PostgreSQL store");
    };
    sqlx::query_scalar("SELECT backend_pid FROM leases WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("the lease's row")
}

/// Takes `name` for `instance`, trying for up to 5 s (a lock freed by a connection that ended
/// is released once its backend has gone).
async fn take_within(store: &Store, name: &str, instance: &str) -> leases::Held {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(held) = leases::take(store, name, instance).await.expect("take") {
            return held;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} not free within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn held_by(holders: &[leases::Holder]) -> Vec<(&str, &str)> {
    holders
        .iter()
        .map(|holder| (holder.name.as_str(), holder.instance_id.as_str()))
        .collect()
}

/// On PostgreSQL: one holder per lease; the lease is free again when the holder's connection
/// ends (killed by the server here, as when its process dies or the network drops it), when
/// it is released, and when it is dropped.
#[tokio::test]
async fn a_lease_has_one_holder_and_is_free_when_its_connection_ends() {
    let Some(server) = support::postgres_url() else {
        eprintln!("SKIPPED: DATABASE_URL is not set; leases are PostgreSQL's");
        return;
    };
    let db = support::postgres(&server, "cluster_lease").await;
    let other = Store::connect(&db.url, 2).await.expect("a second instance");

    let mut first = leases::take(&db.store, "telegram", "instance-a")
        .await
        .expect("take")
        .expect("a free lease is granted");
    assert!(
        leases::take(&other, "telegram", "instance-b")
            .await
            .expect("take")
            .is_none(),
        "a held lease is refused to another instance"
    );
    let mail = leases::take(&other, "email:billing", "instance-b")
        .await
        .expect("take")
        .expect("another lease is free");
    first.check().await.expect("still held");
    let holders = leases::holders(&db.store).await.expect("holders");
    assert_eq!(
        held_by(&holders),
        [("email:billing", "instance-b"), ("telegram", "instance-a")]
    );

    // The holder's connection ends: its lock with it, and the holder notices.
    let Store::Postgres { pool } = &db.store else {
        unreachable!("a PostgreSQL store");
    };
    let backend = backend_of(&db.store, "telegram").await;
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1::int)")
        .bind(backend)
        .fetch_one(pool)
        .await
        .expect("terminate");
    assert!(ended);
    assert!(
        first.check().await.is_err(),
        "the holder sees it lost the lease"
    );
    let second = take_within(&other, "telegram", "instance-b").await;
    let holders = leases::holders(&db.store).await.expect("holders");
    assert_eq!(
        held_by(&holders),
        [("email:billing", "instance-b"), ("telegram", "instance-b")]
    );

    // Released: free at once. Dropped: free once the connection has closed.
    second.release().await.expect("released");
    mail.release().await.expect("released");
    let again = leases::take(&db.store, "telegram", "instance-a")
        .await
        .expect("take")
        .expect("a released lease is free at once");
    assert!(
        held_by(&leases::holders(&db.store).await.expect("holders"))
            == [("telegram", "instance-a")]
    );
    drop(again);
    drop(first);
    take_within(&other, "telegram", "instance-b").await;
}

store_test! {
    /// The channels page, /readyz and /metrics name the instance holding each consumer; on
    /// SQLite (one instance) a lease is always granted.
    #[tokio::test]
    async fn the_pages_show_which_instance_holds_each_consumer(db: TestStore) {
        let instance = support::other_instance(&db.store, &[], chrono::Utc::now()).await;
        let held = leases::take(&db.store, "telegram", &instance.id)
            .await
            .expect("take")
            .expect("granted");
        if db.backend() == helpdesk::store::Backend::Sqlite {
            assert!(
                leases::take(&db.store, "telegram", "another")
                    .await
                    .expect("take")
                    .is_some(),
                "on SQLite a lease is always granted"
            );
            leases::take(&db.store, "telegram", &instance.id)
                .await
                .expect("take")
                .expect("granted");
        }
        let app = WebApp::new(db).await;
        let admin = app.admin().await;
        let page = app.get("/admin/channels", Some(&admin)).await;
        assert!(
            page.body.contains(&format!(
                "<tr data-consumer=\"telegram\" data-instance=\"{}\">",
                instance.id
            )),
            "{}",
            page.body
        );
        let ready: serde_json::Value =
            serde_json::from_str(&app.get("/readyz", None).await.body).expect("JSON");
        assert_eq!(ready["consumers"][0]["name"], "telegram");
        assert_eq!(ready["consumers"][0]["instance_id"], instance.id.as_str());
        let metrics = app.get("/metrics", None).await.body;
        assert!(
            metrics.contains(&format!(
                "helpdesk_consumer_held{{consumer=\"telegram\",instance_id=\"{}\"}} 1",
                instance.id
            )),
            "{metrics}"
        );
        held.release().await.expect("released");
    }
}
