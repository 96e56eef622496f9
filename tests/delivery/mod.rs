//! Replies go out on the customer's channel through the job queue, with retries, and a reply
//! that cannot be delivered is marked failed on its ticket.

mod instances;

fn test_settings() -> helpdesk::jobs::JobSettings {
    helpdesk::jobs::JobSettings::from_settings(
        &helpdesk::config::Settings::load_from(None, Vec::new()).expect("default settings"),
    )
}

use crate::support;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::{TestStore, mail};
use chrono::{DateTime, Utc};
use helpdesk::domain::MessageKind;
use helpdesk::helpdesk_channel::{ChannelKind, Deliver, Delivered, DeliveryError, OutboundMessage};
use helpdesk::intake::Outcome;
use helpdesk::jobs::{
    self, Job,
    deliver::{Deliverers, DeliveryOutcome, backoff},
};
use helpdesk::store;
use helpdesk::store::outbound::NewReply;

/// A mail channel that fails a number of times before it delivers.
struct FlakyMail {
    failures_left: AtomicUsize,
    permanent: bool,
    sent: Mutex<Vec<OutboundMessage>>,
}

impl FlakyMail {
    fn new(failures: usize, permanent: bool) -> Arc<FlakyMail> {
        Arc::new(FlakyMail {
            failures_left: AtomicUsize::new(failures),
            permanent,
            sent: Mutex::new(Vec::new()),
        })
    }
}

impl Deliver for FlakyMail {
    fn channel(&self) -> ChannelKind {
        ChannelKind::Email
    }

    async fn deliver(&self, message: &OutboundMessage) -> Result<Delivered, DeliveryError> {
        if self.failures_left.load(Ordering::SeqCst) > 0 {
            self.failures_left.fetch_sub(1, Ordering::SeqCst);
            return Err(if self.permanent {
                DeliveryError::Permanent("550 no such user".into())
            } else {
                DeliveryError::Temporary("451 try again later".into())
            });
        }
        self.sent.lock().expect("lock").push(message.clone());
        Ok(Delivered {
            external_id: message.external_id.clone().unwrap_or_default(),
        })
    }
}

async fn setup(db: &TestStore) -> (i64, i64) {
    let raw = mail(
        &[
            "From: Ada <ada@example.org>",
            "Subject: Printer",
            "Message-ID: <ask-1@example.org>",
        ],
        "It is on fire.",
    );
    let Outcome::Created { number, .. } = db.intake.accept_email(raw).await.expect("taken in")
    else {
        panic!("a new ticket");
    };
    let agent = support::plain_agent(&db.store, "sam@helpdesk.example", "Sam").await;
    (number.get(), agent)
}

async fn reply(
    db: &TestStore,
    number: i64,
    agent: i64,
    kind: MessageKind,
    now: DateTime<Utc>,
) -> i64 {
    let id = helpdesk::domain::new_mail_message_id("support@helpdesk.example", number.into());
    let stored = helpdesk::ops::send_reply(
        &db.store,
        &NewReply {
            number: number.into(),
            agent_id: agent,
            text: "We are on it.",
            kind,
            external_id: Some(&id),
            channels_here: &[ChannelKind::Email],
            now,
        },
    )
    .await
    .expect("stored");
    stored.message_id
}

store_test! {
    #[tokio::test]
    async fn a_reply_is_retried_with_growing_waits_then_sent_with_threading_headers(db: TestStore) {
        let (number, agent) = setup(&db).await;
        let t0: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().expect("time");
        let message = reply(&db, number, agent, MessageKind::Public, t0).await;
        let queued = jobs::list(&db.store, Some("Pending"), 10)
            .await
            .expect("jobs");
        assert!(
            queued
                .iter()
                .any(|job| job.queue == jobs::deliver::DeliverMessage::QUEUE),
            "{queued:?}"
        );

        let channel = FlakyMail::new(2, false);
        let deliverers = Deliverers::default().with(ChannelKind::Email, channel.clone());
        let first = jobs::deliver::deliver_message(&db.store, &deliverers, message, t0)
            .await
            .expect("runs");
        assert_eq!(first, DeliveryOutcome::RetryAt(t0 + backoff(1)));
        let t1 = t0 + backoff(1);
        let second = jobs::deliver::deliver_message(&db.store, &deliverers, message, t1)
            .await
            .expect("runs");
        assert_eq!(second, DeliveryOutcome::RetryAt(t1 + backoff(2)));
        assert_eq!(
            (backoff(1).num_seconds(), backoff(2).num_seconds()),
            (30, 60)
        );
        let third =
            jobs::deliver::deliver_message(&db.store, &deliverers, message, t1 + backoff(2))
                .await
                .expect("runs");
        assert!(matches!(third, DeliveryOutcome::Sent { .. }), "{third:?}");
        assert_eq!(
            jobs::deliver::deliver_message(&db.store, &deliverers, message, t1)
                .await
                .expect("runs"),
            DeliveryOutcome::NothingToDo,
            "a repeated job sends nothing twice"
        );

        let sent = channel.sent.lock().expect("lock").clone();
        assert_eq!(sent.len(), 1);
        let out = &sent[0];
        assert_eq!(out.recipient.address, "ada@example.org");
        assert_eq!(out.subject, "Re: Printer");
        assert_eq!(out.ticket_number, number);
        assert_eq!(out.thread.in_reply_to, vec!["ask-1@example.org".to_owned()]);
        assert_eq!(out.thread.references, vec!["ask-1@example.org".to_owned()]);
        assert!(
            out.external_id
                .as_deref()
                .is_some_and(|id| id.ends_with(&format!(".{number}@helpdesk.example")))
        );

        let ticket = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(
            ticket.summary.status, "open",
            "the first reply opens a new ticket"
        );
        let out = ticket.messages.last().expect("reply");
        assert_eq!(
            (out.direction.as_str(), out.author.as_str()),
            ("outbound", "Sam")
        );
        assert_eq!(out.delivery_status.as_deref(), Some("sent"));
        assert_eq!(
            store::outbound::delivery_counts(&db.store)
                .await
                .expect("counts"),
            (0, 0)
        );
    }
}

store_test! {
    #[tokio::test]
    async fn a_reply_that_cannot_be_delivered_is_marked_failed_and_kept(db: TestStore) {
        let (number, agent) = setup(&db).await;
        let mut now: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().expect("time");
        let message = reply(&db, number, agent, MessageKind::Public, now).await;
        let channel = FlakyMail::new(usize::MAX, false);
        let deliverers = Deliverers::default().with(ChannelKind::Email, channel);
        let mut outcomes = Vec::new();
        loop {
            let outcome = jobs::deliver::deliver_message(&db.store, &deliverers, message, now)
                .await
                .expect("runs");
            match outcome {
                DeliveryOutcome::RetryAt(at) => now = at,
                other => {
                    outcomes.push(other);
                    break;
                }
            }
            outcomes.push(DeliveryOutcome::NothingToDo);
        }
        assert_eq!(
            outcomes.len(),
            jobs::deliver::MAX_DELIVERY_ATTEMPTS as usize
        );
        let DeliveryOutcome::Failed(reason) = outcomes.last().expect("last") else {
            panic!("{outcomes:?}");
        };
        assert!(
            reason.contains("after 8 attempts") && reason.contains("451"),
            "{reason}"
        );
        let ticket = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        let out = ticket.messages.last().expect("reply kept");
        assert_eq!(out.body_text, "We are on it.");
        assert_eq!(out.delivery_status.as_deref(), Some("failed"));
        assert!(
            out.delivery_error
                .as_deref()
                .is_some_and(|e| e.contains("451"))
        );
        assert_eq!(
            ticket.history.last().map(|e| e.kind.as_str()),
            Some("delivery_failed")
        );
        assert_eq!(
            store::outbound::delivery_counts(&db.store)
                .await
                .expect("counts"),
            (0, 1)
        );
        let health = store::health::list(&db.store).await.expect("health");
        let delivery = health
            .iter()
            .find(|h| (h.channel.as_str(), h.name.as_str()) == ("email", "delivery"))
            .expect("delivery health recorded");
        assert!(!delivery.connected);
        assert_eq!(delivery.consecutive_failures, 8);
        assert!(
            delivery
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("451"))
        );
        assert_eq!(delivery.last_success_at, None);

        // A permanent refusal is not retried; a note is never delivered.
        let second = reply(&db, number, agent, MessageKind::Public, now).await;
        let refusing = Deliverers::default().with(ChannelKind::Email, FlakyMail::new(1, true));
        let outcome = jobs::deliver::deliver_message(&db.store, &refusing, second, now)
            .await
            .expect("runs");
        assert!(
            matches!(outcome, DeliveryOutcome::Failed(ref r) if r.contains("after 1 attempts")),
            "{outcome:?}"
        );
        let note = reply(&db, number, agent, MessageKind::Internal, now).await;
        assert_eq!(
            jobs::deliver::deliver_message(&db.store, &refusing, note, now)
                .await
                .expect("runs"),
            DeliveryOutcome::NothingToDo
        );
        // The server answered, so the connection counts as working again.
        let health = store::health::list(&db.store).await.expect("health");
        assert!(
            health
                .iter()
                .any(|h| h.name == "delivery" && h.connected && h.consecutive_failures == 0)
        );
    }
}

store_test! {
    #[tokio::test]
    async fn the_delivery_worker_sends_a_reply_soon_after_it_is_written(db: TestStore) {
        let (number, agent) = setup(&db).await;
        let channel = FlakyMail::new(0, false);
        let deliverers = Deliverers::default().with(ChannelKind::Email, channel.clone());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers = tokio::spawn(jobs::run(
            db.store.clone(),
            test_settings(),
            deliverers,
            db.intake.committed(),
            stopped,
        ));
        reply(&db, number, agent, MessageKind::Public, Utc::now()).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while channel.sent.lock().expect("lock").is_empty() {
            assert!(
                Instant::now() < deadline,
                "not delivered within 20 s on {:?}",
                db.backend()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.send(true).expect("running");
        tokio::time::timeout(Duration::from_secs(20), workers)
            .await
            .expect("stops")
            .expect("task")
            .expect("clean stop");
        let ticket = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(
            ticket
                .messages
                .last()
                .and_then(|m| m.delivery_status.clone())
                .as_deref(),
            Some("sent")
        );
    }
}

async fn health_of_mail_connected(db: &TestStore) -> bool {
    store::health::list(&db.store)
        .await
        .expect("health")
        .iter()
        .any(|h| h.channel == "email" && h.connected)
}

store_test! {
    #[tokio::test]
    async fn a_reply_to_a_customer_without_an_address_on_the_channel_fails_at_once(db: TestStore) {
        let (number, agent) = setup(&db).await;
        let now = Utc::now();
        let message = reply(&db, number, agent, MessageKind::Public, now).await;
        // The customer's address went away (e.g. records merged by hand).
        match &db.store {
            store::Store::Sqlite { writer, .. } => {
                sqlx::query("DELETE FROM customer_identities")
                    .execute(writer)
                    .await
                    .expect("deleted");
            }
            store::Store::Postgres { pool } => {
                sqlx::query("DELETE FROM customer_identities")
                    .execute(pool)
                    .await
                    .expect("deleted");
            }
        }
        let deliverers = Deliverers::default().with(ChannelKind::Email, FlakyMail::new(0, false));
        let outcome = jobs::deliver::deliver_message(&db.store, &deliverers, message, now)
            .await
            .expect("runs without an error the job queue would retry");
        assert!(
            matches!(&outcome, DeliveryOutcome::Failed(why) if why.contains("no email identity")),
            "{outcome:?}"
        );
        let ticket = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(
            ticket
                .messages
                .last()
                .and_then(|m| m.delivery_status.clone())
                .as_deref(),
            Some("failed")
        );
        assert_eq!(
            ticket.history.last().map(|e| e.kind.as_str()),
            Some("delivery_failed")
        );
    }
}

store_test! {
    #[tokio::test]
    async fn a_healthy_channels_deliveries_do_not_queue_on_its_health_row(db: TestStore) {
        use helpdesk::store::health::record_delivery;

        let s = &db.store;
        let delivery = |health: Vec<store::health::ChannelHealth>| {
            health
                .into_iter()
                .find(|h| (h.channel.as_str(), h.name.as_str()) == ("email", "delivery"))
                .expect("delivery health recorded")
        };
        let at = |seconds: i64| {
            DateTime::parse_from_rfc3339("2026-06-01T10:00:00Z")
                .expect("time")
                .with_timezone(&Utc)
                + chrono::Duration::milliseconds(seconds * 1000)
        };
        let record = |result: Result<(), (&'static str, bool)>, now: DateTime<Utc>| async move {
            let mut tx = s.begin_write().await.expect("begin");
            record_delivery(&mut tx, "email", result, now)
                .await
                .expect("recorded");
            tx.commit().await.expect("commit");
        };

        record(Ok(()), at(0)).await;
        let first = delivery(store::health::list(s).await.expect("health"));
        assert!(first.connected);
        assert_eq!(first.last_success_at, Some(at(0)));
        // Another success within the second changes nothing; one after it is written.
        record(Ok(()), at(0) + chrono::Duration::milliseconds(500)).await;
        let same = delivery(store::health::list(s).await.expect("health"));
        assert_eq!(same.last_success_at, Some(at(0)));
        record(Ok(()), at(2)).await;
        let later = delivery(store::health::list(s).await.expect("health"));
        assert_eq!(later.last_success_at, Some(at(2)));
        // A failure is always written, and the next success at once clears it.
        record(Err(("451 try later", false)), at(2)).await;
        let failed = delivery(store::health::list(s).await.expect("health"));
        assert!(!failed.connected);
        assert_eq!(failed.consecutive_failures, 1);
        record(Ok(()), at(2) + chrono::Duration::milliseconds(100)).await;
        let recovered = delivery(store::health::list(s).await.expect("health"));
        assert!(recovered.connected);
        assert_eq!(recovered.consecutive_failures, 0);
        assert_eq!(
            recovered.last_success_at,
            Some(at(2) + chrono::Duration::milliseconds(100))
        );

        // On PostgreSQL, deliveries run in parallel transactions: one still open must not
        // hold up the next one's success (SQLite has a single writer anyway).
        if s.backend() == store::Backend::Postgres {
            let mut open = s.begin_write().await.expect("begin");
            record_delivery(&mut open, "email", Ok(()), at(3))
                .await
                .expect("recorded");
            let next = tokio::time::timeout(
                Duration::from_secs(3),
                record(Ok(()), at(3) + chrono::Duration::milliseconds(200)),
            )
            .await;
            open.commit().await.expect("commit");
            assert!(
                next.is_ok(),
                "a second delivery waited on the first one's health row"
            );
        }
    }
}
