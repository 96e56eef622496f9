//! A support mailbox as a new user brings it: a few hundred messages, real-world ones (encodings,
//! multipart, broken headers) and a support team's usual traffic (threads, out-of-office replies,
//! bounces, list mail), drained from a real Dovecot by the application's IMAP intake with
//! acknowledgements mailed through a real SMTP server. The intake crashes in the middle of a
//! batch and is started again: nothing is lost or taken twice, and nobody gets two
//! acknowledgements.

use helpdesk_testkit::dovecot;
use helpdesk_testkit::smtp;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{TestStore, mail};
use helpdesk::channels::StoredCursor;
use helpdesk::channels::email::{self, IntakeSink};
use helpdesk::config::Settings;
use helpdesk::corpus::{self, CorpusSpec};
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::intake::IntakeError;
use helpdesk::intake::autoreply::AutoReplies;
use helpdesk::intake::{Intake, Limits};
use helpdesk::jobs::{self, deliver::Deliverers};
use helpdesk::store;
use helpdesk_email::RawMail;
use helpdesk_email::imap::{ImapIntake, Sink, Uid};
use helpdesk_email::smtp::{SmtpSender, SmtpSettings, SmtpTls};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

const SUPPORT: &str = "support@helpdesk.example";

/// The real-world sample mail shipped with the mail-parser crate this build uses: RFC examples,
/// malformed mail and messages from other projects' test suites, in many encodings.
fn sample_mail() -> Vec<Vec<u8>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let metadata = |offline: bool| {
        let mut command = std::process::Command::new(&cargo);
        command
            .args(["metadata", "--format-version", "1"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if offline {
            command.arg("--offline");
        }
        command.output().expect("cargo metadata runs")
    };
    // Offline first; metadata also lists other platforms' crates, which a fresh machine has
    // not downloaded, and then it has to fetch them.
    let mut output = metadata(true);
    if !output.status.success() {
        output = metadata(false);
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let manifest = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "mail-parser")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("mail-parser is a dependency");
    let resources = PathBuf::from(manifest)
        .parent()
        .expect("crate dir")
        .join("resources/eml");
    let mut files = Vec::new();
    for folder in ["rfc", "malformed", "thirdparty", "legacy"] {
        let dir = resources.join(folder);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "eml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .iter()
        .map(|path| std::fs::read(path).expect("readable"))
        .collect()
}

/// The acknowledgements the SMTP server received, by recipient.
fn acknowledgements(server: &smtp::SmtpServer) -> BTreeMap<String, usize> {
    let mut by_recipient = BTreeMap::new();
    for received in server.received() {
        let raw = String::from_utf8_lossy(&received.data);
        assert!(raw.contains("Auto-Submitted: auto-replied"), "{raw}");
        for to in &received.rcpt_to {
            *by_recipient.entry(to.clone()).or_insert(0) += 1;
        }
    }
    by_recipient
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done().await {
        assert!(Instant::now() < deadline, "{what} within 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the mailbox is taken in (every message \Seen) and nothing waits for delivery.
async fn drained(db: &TestStore, dovecot: &dovecot::Dovecot, messages: usize) {
    wait_until("the mailbox drained", async || {
        dovecot.seen().await.len() == messages
    })
    .await;
    wait_until("the acknowledgements delivered", async || {
        store::outbound::delivery_counts(&db.store)
            .await
            .expect("counts")
            .0
            == 0
    })
    .await;
}

/// The application's intake that dies after committing its `nth` batch, before the mailbox
/// hears of it: the worst moment for a crash.
struct CrashingSink {
    inner: IntakeSink,
    batches_before_crash: AtomicUsize,
    crashed: Arc<Notify>,
}

impl Sink<(Uid, RawMail)> for CrashingSink {
    type Error = IntakeError;

    async fn accept(&self, batch: Vec<(Uid, RawMail)>) -> Result<(), IntakeError> {
        self.inner.accept(batch).await?;
        if self.batches_before_crash.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.crashed.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

fn start_intake(
    intake: &Intake,
    dovecot: &dovecot::Dovecot,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let (_health, task) = email::start_imap_with(dovecot.settings(), intake.clone(), async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    });
    (stop, task)
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_real_mailbox_drains_into_tickets_across_a_crash_without_an_acknowledgement_storm(
        db: TestStore,
    ) {
        let Some(dovecot) = dovecot::Dovecot::start() else {
            return;
        };
        let server = smtp::SmtpServer::start(smtp::Config::default()).await;
        let sender = SmtpSender::new(&SmtpSettings {
            host: "127.0.0.1".into(),
            port: server.addr.port(),
            tls: SmtpTls::None,
            username: String::new(),
            password: String::new(),
            from_address: SUPPORT.into(),
            from_name: None,
        })
        .expect("sender");
        let settings = Settings::load_from(None, Vec::new()).expect("defaults");
        let intake = db
            .intake_with(Limits {
                max_attachment_bytes: 256 << 10,
                max_message_bytes: 8 << 20,
            })
            .with_auto_replies(AutoReplies {
                support_address: SUPPORT.to_owned(),
                ..AutoReplies::from_settings(&settings).expect("valid")
            });
        let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
        let workers = tokio::spawn(jobs::run(
            db.store.clone(),
            jobs::JobSettings::from_settings(&settings),
            Deliverers::default().with(ChannelKind::Email, Arc::new(sender)),
            intake.committed(),
            jobs_stopped,
        ));

        // Phase 1: real-world mail nobody wrote for this test.
        let samples = sample_mail();
        assert!(samples.len() >= 100, "{} sample mails", samples.len());
        let appended = dovecot.append_all(samples.iter().map(Vec::as_slice)).await;
        assert!(
            appended * 10 >= samples.len() * 9,
            "Dovecot took {appended}"
        );
        let (stop, task) = start_intake(&intake, &dovecot);
        drained(&db, &dovecot, appended).await;
        let raw = store::raw::counts(&db.store).await.expect("counts");
        assert_eq!(
            raw.kept + raw.duplicates_dropped,
            appended as i64,
            "every message kept or known: {raw:?}"
        );
        let phase_one = store::tickets::totals(&db.store).await.expect("totals");
        assert!(phase_one.tickets > 0);
        let acked = acknowledgements(&server);
        let acked_phase_one = acked.len();
        assert!(
            acked.values().all(|n| *n == 1),
            "an address acknowledged twice: {acked:?}"
        );
        assert!(acked.len() as i64 <= phase_one.tickets);
        let never = AutoReplies::from_settings(&settings)
            .expect("valid")
            .never_to;
        assert!(acked.keys().all(|to| !never.is_match(to)), "{acked:?}");

        stop.send(true).expect("running");
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("intake stops")
            .expect("task");

        // Phase 2: a support team's week: threads with replies and quotes, out-of-office
        // replies, list mail and stray bounces.
        let generated = corpus::generate(&CorpusSpec {
            messages: 240,
            seed: 7,
            ..CorpusSpec::default()
        });
        let threads = generated.iter().filter(|m| m.starts_thread).count();
        let mut openers = BTreeSet::new();
        let mut traffic: Vec<Vec<u8>> = Vec::new();
        for generated_mail in &generated {
            let parsed = helpdesk_email::parse_message(&generated_mail.raw).expect("parses");
            if generated_mail.starts_thread {
                openers.insert(parsed.sender.address.clone());
                if generated_mail.thread % 20 == 0 {
                    traffic.push(generated_mail.raw.clone());
                    traffic.push(mail(
                        &[
                            &format!("From: {}", parsed.sender.address),
                            "Subject: Automatic reply: out of office",
                            "Auto-Submitted: auto-replied",
                            &format!("Message-ID: <ooo-{}@example.org>", generated_mail.thread),
                            &format!("In-Reply-To: <{}>", parsed.external_id),
                        ],
                        "I am out of the office until Monday.",
                    ));
                    continue;
                }
            }
            traffic.push(generated_mail.raw.clone());
        }
        let out_of_office = traffic.len() - generated.len();
        for n in 0..5 {
            traffic.push(mail(
                &[
                    "From: announce@lists.example.org",
                    "List-Id: <announce.lists.example.org>",
                    &format!("Subject: Release {n}"),
                    &format!("Message-ID: <list-{n}@lists.example.org>"),
                ],
                "A new release is out.",
            ));
            traffic.push(mail(
                &[
                    "Return-Path: <>",
                    "From: MAILER-DAEMON@mx.example.net",
                    "Subject: Undelivered Mail Returned to Sender",
                    &format!("Message-ID: <stray-{n}@mx.example.net>"),
                ],
                &format!("Message-ID: <never-sent-{n}@elsewhere.example>\r\n"),
            ));
        }
        let total = appended + dovecot.append_all(traffic.iter().map(Vec::as_slice)).await;
        assert_eq!(total, appended + traffic.len());

        // The intake dies in the middle of taking this in, and is started again.
        let crashed = Arc::new(Notify::new());
        let doomed = ImapIntake::new(
            dovecot.settings(),
            StoredCursor::new(db.store.clone(), ChannelKind::Email),
            CrashingSink {
                inner: IntakeSink::new(intake.clone()),
                batches_before_crash: AtomicUsize::new(3),
                crashed: crashed.clone(),
            },
        )
        .with_batch_size(20);
        let task = tokio::spawn(doomed.run(std::future::pending::<()>()));
        tokio::time::timeout(Duration::from_secs(60), crashed.notified())
            .await
            .expect("three batches taken in");
        task.abort();
        let before_restart = store::raw::counts(&db.store).await.expect("counts");
        let (stop, task) = start_intake(&intake, &dovecot);
        drained(&db, &dovecot, total).await;
        // The batch committed just before the crash came again and was recognised.
        let raw = store::raw::counts(&db.store).await.expect("counts");
        assert_eq!(
            raw.duplicates_dropped - before_restart.duplicates_dropped,
            20,
            "{raw:?}"
        );

        let totals = store::tickets::totals(&db.store).await.expect("totals");
        assert_eq!(
            totals.tickets - phase_one.tickets,
            threads as i64 + 5,
            "one ticket per thread and per list mail; none for bounces"
        );
        let acked = acknowledgements(&server);
        assert_eq!(
            totals.messages - phase_one.messages,
            (generated.len() + out_of_office + 5 + acked.len() - acked_phase_one) as i64,
            "every message once, none twice, and the acknowledgements"
        );
        assert!(acked.values().all(|n| *n == 1), "{acked:?}");
        for opener in &openers {
            assert_eq!(acked.get(opener), Some(&1), "{opener} acknowledged once");
        }
        assert!(!acked.contains_key("announce@lists.example.org"));
        assert!(!acked.keys().any(|to| to.contains("mailer-daemon")));
        let raw = store::raw::counts(&db.store).await.expect("counts");
        assert_eq!(
            raw.kept + raw.duplicates_dropped - 20,
            total as i64,
            "every message kept or known, apart from the batch delivered twice: {raw:?}"
        );

        stop.send(true).expect("running");
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("intake stops")
            .expect("task");
        stop_jobs.send(true).expect("running");
        tokio::time::timeout(Duration::from_secs(20), workers)
            .await
            .expect("workers stop")
            .expect("task")
            .expect("clean");
        eprintln!(
            "{:?}: {} sample mails ({} tickets, {} acknowledged), then {} more messages into {} tickets; {} acknowledgements in all",
            db.backend(),
            appended,
            phase_one.tickets,
            acked_phase_one,
            total - appended,
            threads + 5,
            acknowledgements(&server).len()
        );
    }
}
