//! IMAP intake against a real Dovecot (see `helpdesk_testkit::dovecot`; skipped without
//! Dovecot unless `CI=true`).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helpdesk_channel::MemoryCursor;
use helpdesk_email::RawMail;
use helpdesk_email::imap::{
    Cursor, CursorPosition, Health, ImapIntake, ImapSettings, ImapTls, Sink, Uid, rustls,
};
use helpdesk_testkit::dovecot::Dovecot;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

/// Upper bound for anything the tests wait for; they poll and go on as soon as it happened.
const PATIENCE: Duration = Duration::from_secs(20);

fn mail(n: u32) -> Vec<u8> {
    format!(
        "From: Customer {n} <customer{n}@example.org>\r\n\
         To: support@example.org\r\n\
         Subject: Question {n}\r\n\
         Message-ID: <{n}@test.example.org>\r\n\
         Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n\
         \r\n\
         Body of message {n}.\r\n"
    )
    .into_bytes()
}

/// The one position the intake under test keeps (the cursor holds nothing else).
async fn position(cursor: &MemoryCursor) -> Option<CursorPosition> {
    let all = match cursor.positions("").await {
        Ok(all) => all,
        Err(never) => match never {},
    };
    all.first()
        .and_then(|(_, value)| CursorPosition::parse(value))
}

#[derive(Debug, thiserror::Error)]
#[error("database unavailable")]
struct SinkDown;

/// Records every delivery attempt; can fail the first attempts and hold attempts at a gate
/// until the test lets them commit.
#[derive(Clone, Default)]
struct TestSink(Arc<SinkState>);

#[derive(Default)]
struct SinkState {
    attempts: Mutex<Vec<Vec<Uid>>>,
    committed: Mutex<Vec<(Uid, RawMail)>>,
    failures_left: AtomicUsize,
    gate: Option<Semaphore>,
}

impl TestSink {
    /// Fails the first `failures` attempts; with `gated`, holds each later attempt until
    /// [`release_one`](Self::release_one).
    fn new(failures: usize, gated: bool) -> Self {
        TestSink(Arc::new(SinkState {
            failures_left: AtomicUsize::new(failures),
            gate: gated.then(|| Semaphore::new(0)),
            ..SinkState::default()
        }))
    }

    /// Lets one held attempt commit.
    fn release_one(&self) {
        self.0.gate.as_ref().expect("gated sink").add_permits(1);
    }

    fn attempts(&self) -> Vec<Vec<Uid>> {
        self.0.attempts.lock().unwrap().clone()
    }

    fn committed_uids(&self) -> Vec<Uid> {
        self.0
            .committed
            .lock()
            .unwrap()
            .iter()
            .map(|(uid, _)| *uid)
            .collect()
    }

    fn committed_raw(&self, uid: Uid) -> RawMail {
        let committed = self.0.committed.lock().unwrap();
        committed
            .iter()
            .find(|(u, _)| *u == uid)
            .map(|(_, raw)| raw.clone())
            .unwrap_or_else(|| panic!("uid {uid} not committed"))
    }
}

impl Sink<(Uid, RawMail)> for TestSink {
    type Error = SinkDown;

    async fn accept(&self, batch: Vec<(Uid, RawMail)>) -> Result<(), SinkDown> {
        let s = &self.0;
        s.attempts
            .lock()
            .unwrap()
            .push(batch.iter().map(|(uid, _)| *uid).collect());
        let fail = s
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Err(SinkDown);
        }
        if let Some(gate) = &s.gate {
            gate.acquire().await.expect("gate open").forget();
        }
        s.committed.lock().unwrap().extend(batch);
        Ok(())
    }
}

/// A running intake and the means to stop it.
struct Running {
    health: Health,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    fn start<C: Cursor + 'static, S: Sink<(Uid, RawMail)> + 'static>(
        intake: ImapIntake<C, S>,
    ) -> Self {
        let health = intake.health();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(intake.run(async move {
            stopped.wait_for(|&s| s).await.ok();
        }));
        Running { health, stop, task }
    }

    async fn shut_down(self) {
        self.stop.send_replace(true);
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("intake stops on shutdown")
            .expect("intake task did not panic");
    }
}

fn intake<S: Sink<(Uid, RawMail)> + Clone>(
    settings: ImapSettings,
    cursor: &MemoryCursor,
    sink: &S,
) -> ImapIntake<MemoryCursor, S> {
    ImapIntake::new(settings, cursor.clone(), sink.clone())
        .with_backoff(Duration::from_millis(50), Duration::from_millis(400))
}

/// Polls `check` until it returns `Some`, or fails the test with `what`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cursor_at(cursor: &MemoryCursor, uid_validity: u32, last_uid: Uid) {
    let want = CursorPosition {
        uid_validity,
        last_uid,
    };
    eventually(&format!("cursor at {want:?}"), || async {
        (position(cursor).await == Some(want)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_arrive_in_uid_order_and_are_seen_only_after_commit() {
    let Some(server) = Dovecot::start() else {
        return;
    };
    for n in 1..=5 {
        server.append(&mail(n)).await;
    }
    let validity = server.uid_validity().await;
    let cursor = MemoryCursor::default();
    let sink = TestSink::new(0, true);
    let running = Running::start(intake(server.settings(), &cursor, &sink).with_batch_size(2));

    let expected: [&[Uid]; 3] = [&[1, 2], &[3, 4], &[5]];
    let mut seen_before: Vec<Uid> = Vec::new();
    for (i, batch) in expected.iter().enumerate() {
        eventually(&format!("delivery attempt {}", i + 1), || async {
            (sink.attempts().len() == i + 1).then_some(())
        })
        .await;
        assert_eq!(sink.attempts()[i], *batch);
        // Held in the sink (not committed): earlier batches are acknowledged, this one not.
        assert_eq!(server.seen().await, seen_before);
        assert_eq!(
            position(&cursor).await.map(|p| p.last_uid),
            seen_before.last().copied()
        );
        sink.release_one();
        seen_before.extend_from_slice(batch);
        cursor_at(&cursor, validity, *batch.last().unwrap()).await;
        assert_eq!(server.seen().await, seen_before);
    }

    assert_eq!(sink.committed_uids(), [1, 2, 3, 4, 5]);
    assert_eq!(sink.committed_raw(3), RawMail::Whole(mail(3)));
    let health = eventually("idle after the backlog", || async {
        let h = running.health.get();
        h.idling.then_some(h)
    })
    .await;
    assert!(health.connected);
    assert_eq!(health.backlog, 0);
    assert_eq!(health.consecutive_failures, 0);
    assert!(health.last_success_at.is_some());
    assert_eq!(health.last_error, None);
    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_delivery_leaves_mail_unseen_and_is_retried() {
    let Some(server) = Dovecot::start() else {
        return;
    };
    server.append(&mail(1)).await;
    server.append(&mail(2)).await;
    let validity = server.uid_validity().await;
    let cursor = MemoryCursor::default();
    let sink = TestSink::new(2, true);
    let running = Running::start(intake(server.settings(), &cursor, &sink));

    eventually("the third attempt, held in the sink", || async {
        (sink.attempts().len() == 3).then_some(())
    })
    .await;
    let health = running.health.get();
    assert_eq!(health.consecutive_failures, 2);
    assert_eq!(
        health.last_error.as_deref(),
        Some("sink: database unavailable")
    );
    assert!(health.last_error_at.is_some());
    assert_eq!(health.backlog, 2);
    assert_eq!(position(&cursor).await, None);
    assert_eq!(server.seen().await, Vec::<Uid>::new());

    sink.release_one();
    cursor_at(&cursor, validity, 2).await;
    assert_eq!(sink.attempts(), [vec![1, 2], vec![1, 2], vec![1, 2]]);
    assert_eq!(sink.committed_uids(), [1, 2]);
    assert_eq!(server.seen().await, [1, 2]);
    let health = eventually("recovered", || async {
        let h = running.health.get();
        (h.consecutive_failures == 0 && h.idling).then_some(h)
    })
    .await;
    assert_eq!(health.backlog, 0);
    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_acknowledged_while_delivery_fails() {
    let Some(server) = Dovecot::start() else {
        return;
    };
    server.append(&mail(1)).await;
    let cursor = MemoryCursor::default();
    // Every attempt fails: the mail must stay unseen and the cursor unset.
    let sink = TestSink::new(usize::MAX, false);
    let running = Running::start(intake(server.settings(), &cursor, &sink));

    eventually("three failed attempts", || async {
        (sink.attempts().len() >= 3).then_some(())
    })
    .await;
    let health = running.health.get();
    assert!(health.consecutive_failures >= 2, "{health:?}");
    assert_eq!(health.backlog, 1);
    assert_eq!(health.last_success_at, None);
    assert_eq!(position(&cursor).await, None);
    assert_eq!(server.seen().await, Vec::<Uid>::new());
    assert!(sink.attempts().iter().all(|a| a == &[1]));
    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_intake_fetches_nothing_twice() {
    let Some(server) = Dovecot::start() else {
        return;
    };
    for n in 1..=3 {
        server.append(&mail(n)).await;
    }
    let validity = server.uid_validity().await;
    let cursor = MemoryCursor::default();
    let first = TestSink::default();
    let running = Running::start(intake(server.settings(), &cursor, &first));
    cursor_at(&cursor, validity, 3).await;
    running.shut_down().await;

    server.append(&mail(4)).await;
    server.append(&mail(5)).await;
    // A person marks the old mail unread: the cursor, not the flag, decides what is new.
    server.store("1:3", "-FLAGS (\\Seen)").await;

    let second = TestSink::default();
    let running = Running::start(intake(server.settings(), &cursor, &second));
    cursor_at(&cursor, validity, 5).await;
    eventually("second intake idle", || async {
        running.health.get().idling.then_some(())
    })
    .await;
    running.shut_down().await;

    assert_eq!(first.committed_uids(), [1, 2, 3]);
    assert_eq!(second.attempts(), [vec![4, 5]]);
    assert_eq!(second.committed_raw(5), RawMail::Whole(mail(5)));
    assert_eq!(server.seen().await, [4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_uidvalidity_reads_the_mailbox_again() {
    let Some(server) = Dovecot::start() else {
        return;
    };
    server.append(&mail(1)).await;
    server.append(&mail(2)).await;
    let validity = server.uid_validity().await;
    // A position from an earlier incarnation of the mailbox, already past every UID.
    let cursor = MemoryCursor::default();
    let earlier = CursorPosition {
        uid_validity: validity.wrapping_sub(1),
        last_uid: 7,
    };
    let name = CursorPosition::name(&server.settings().mailbox);
    let Ok(()) = cursor.set_position(&name, &earlier.to_string()).await;
    let sink = TestSink::default();
    let running = Running::start(intake(server.settings(), &cursor, &sink));
    cursor_at(&cursor, validity, 2).await;
    running.shut_down().await;
    assert_eq!(sink.attempts(), [vec![1, 2]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_appended_while_idling_arrives() {
    let Some(server) = Dovecot::start() else {
        return;
    };
    let validity = server.uid_validity().await;
    let cursor = MemoryCursor::default();
    let sink = TestSink::default();
    // An hour between polls: only IDLE can bring the mail in time.
    let running = Running::start(intake(server.settings(), &cursor, &sink));
    eventually("idling", || async {
        running.health.get().idling.then_some(())
    })
    .await;
    assert_eq!(position(&cursor).await, None);

    server.append(&mail(1)).await;
    cursor_at(&cursor, validity, 1).await;
    server.append(&mail(2)).await;
    cursor_at(&cursor, validity, 2).await;
    let health = running.health.get();
    running.shut_down().await;

    // Neither mail came by a reconnect.
    assert_eq!(health.last_error, None);
    assert_eq!(sink.attempts(), [vec![1], vec![2]]);
    assert_eq!(server.seen().await, [1, 2]);
    // Stopping ended IDLE and logged out, like every other session here.
    eventually("every session logged out", || async {
        let log = server.log();
        let logins = log.matches(": Login: ").count();
        (logins > 0 && log.matches(": Logged out ").count() == logins).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idle_the_mailbox_is_polled() {
    let Some(server) = Dovecot::start() else {
        return;
    };
    let validity = server.uid_validity().await;
    let cursor = MemoryCursor::default();
    let sink = TestSink::default();
    let settings = ImapSettings {
        idle: false,
        poll_seconds: 1,
        ..server.settings()
    };
    let running = Running::start(intake(settings, &cursor, &sink));
    eventually("first poll", || async {
        running.health.get().last_success_at.is_some().then_some(())
    })
    .await;
    server.append(&mail(1)).await;
    cursor_at(&cursor, validity, 1).await;
    let health = running.health.get();
    assert!(!health.idling);
    running.shut_down().await;
    assert_eq!(sink.attempts(), [vec![1]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dovecot_restart_is_survived() {
    let Some(mut server) = Dovecot::start() else {
        return;
    };
    server.append(&mail(1)).await;
    let validity = server.uid_validity().await;
    let cursor = MemoryCursor::default();
    let sink = TestSink::default();
    let running = Running::start(intake(server.settings(), &cursor, &sink));
    cursor_at(&cursor, validity, 1).await;
    eventually("idling", || async {
        running.health.get().idling.then_some(())
    })
    .await;

    tokio::task::block_in_place(|| server.stop());
    // The first errors may be resets from processes still dying; then connects are refused.
    let down = eventually("refused connections in health", || async {
        let h = running.health.get();
        let refused = h.last_error.as_ref().is_some_and(|e| {
            e.starts_with(&format!("connecting to 127.0.0.1:{}: ", server.port()))
        });
        refused.then_some(h)
    })
    .await;
    assert!(!down.connected);
    assert!(down.consecutive_failures >= 1, "{down:?}");

    tokio::task::block_in_place(|| server.start_again());
    server.append(&mail(2)).await;
    cursor_at(&cursor, validity, 2).await;
    let up = eventually("recovered health", || async {
        let h = running.health.get();
        (h.connected && h.consecutive_failures == 0).then_some(h)
    })
    .await;
    assert!(up.last_success_at > down.last_success_at);
    running.shut_down().await;

    assert_eq!(sink.attempts(), [vec![1], vec![2]]);
    assert_eq!(server.seen().await, [1, 2]);
}

/// A client configuration that trusts only the test server's certificate.
fn trusting(certificate: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            certificate.to_vec(),
        ))
        .expect("test certificate is valid DER");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_is_read_over_tls_and_starttls() {
    let Some(server) = Dovecot::start_tls() else {
        return;
    };
    server.append(&mail(1)).await;
    let validity = server.uid_validity().await;
    let tls = server.tls();
    for (mode, port) in [(ImapTls::Tls, tls.port), (ImapTls::Starttls, server.port())] {
        let cursor = MemoryCursor::default();
        let sink = TestSink::default();
        let settings = ImapSettings {
            tls: mode,
            port,
            ..server.settings()
        };
        let running = Running::start(
            intake(settings, &cursor, &sink).with_tls_config(trusting(&tls.certificate)),
        );
        cursor_at(&cursor, validity, 1).await;
        running.shut_down().await;
        assert_eq!(sink.committed_raw(1), RawMail::Whole(mail(1)), "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused() {
    let Some(server) = Dovecot::start_tls() else {
        return;
    };
    server.append(&mail(1)).await;
    let cursor = MemoryCursor::default();
    let sink = TestSink::default();
    let settings = ImapSettings {
        tls: ImapTls::Tls,
        port: server.tls().port,
        ..server.settings()
    };
    // The default configuration trusts the public web PKI, not a self-signed certificate.
    let running = Running::start(intake(settings, &cursor, &sink));
    let health = eventually("a failed handshake", || async {
        let h = running.health.get();
        (h.consecutive_failures >= 1).then_some(h)
    })
    .await;
    running.shut_down().await;
    let error = health.last_error.expect("an error is recorded");
    assert!(error.starts_with("TLS handshake: "), "{error}");
    assert!(error.contains("UnknownIssuer"), "{error}");
    assert!(!health.connected);
    assert_eq!(sink.attempts(), Vec::<Vec<Uid>>::new());
    assert_eq!(server.seen().await, Vec::<Uid>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_limit_is_fetched_as_its_headers_and_the_rest_in_parts() {
    let Some(server) = Dovecot::start() else {
        return;
    };
    let limit = 2 * mail(1).len() as u64;
    let large = format!(
        "From: Big Sender <big@example.org>\r\n\
         Subject: Scans\r\n\
         Message-ID: <big@test.example.org>\r\n\
         \r\n\
         {}\r\n",
        "x".repeat(4 * limit as usize)
    )
    .into_bytes();
    server.append(&mail(1)).await;
    server.append(&large).await;
    server.append(&mail(3)).await;
    server.append(&mail(4)).await;
    server.append(&mail(5)).await;
    let validity = server.uid_validity().await;
    let cursor = MemoryCursor::default();
    let sink = TestSink::new(0, false);
    let running =
        Running::start(intake(server.settings(), &cursor, &sink).with_max_message_bytes(limit));
    cursor_at(&cursor, validity, 5).await;

    assert_eq!(sink.committed_uids(), [1, 2, 3, 4, 5]);
    let headers_end = large.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        sink.committed_raw(2),
        RawMail::Oversized {
            headers: large[..headers_end].to_vec(),
            size: large.len() as u64,
        }
    );
    assert_eq!(sink.committed_raw(4), RawMail::Whole(mail(4)));
    // Two small messages fill a part: no delivery holds more than the limit.
    assert_eq!(sink.attempts(), [vec![1, 2, 3], vec![4, 5]]);
    assert_eq!(server.seen().await, [1, 2, 3, 4, 5]);
    running.shut_down().await;
}
