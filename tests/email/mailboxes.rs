//! Several mailboxes on real servers (Dovecot users, an SMTP server): mail to each opens its
//! ticket in the mailbox's department, replies go out From that mailbox with the agent's and
//! the mailbox's signatures, a mail to two mailboxes is one ticket, and a mailbox whose server
//! is down stops no other.
//! (Long because every test here needs the same two Dovecot users, SMTP servers and settings,
//! which are kept beside them.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use helpdesk_testkit::{dovecot, smtp};

use crate::support::{TestStore, mail};
use helpdesk::channels::mailboxes;
use helpdesk::config::{Mailbox, Settings};
use helpdesk::domain::{AssignmentStrategy, MessageKind};
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::intake::Outcome;
use helpdesk::intake::autoreply::AutoReplies;
use helpdesk::jobs::{self, deliver::Deliverers};
use helpdesk::store;
use helpdesk::store::outbound::NewReply;
use tokio::sync::watch;

const SUPPORT: &str = "support@helpdesk.example";
const BILLING: &str = "billing@helpdesk.example";

/// Settings with two mailboxes: `support` (Dovecot user helpdesk, department Sales) and
/// `billing` (user billing, department Billing), each on its own IMAP port, sending through
/// the shared SMTP server on `smtp_port`, or billing through its own on `billing_smtp`.
fn two_mailboxes(
    support_port: u16,
    billing_port: u16,
    smtp_port: u16,
    billing_smtp: Option<u16>,
) -> Settings {
    let billing_smtp = billing_smtp
        .map(|port| format!("[email.mailboxes.smtp]\nhost = \"127.0.0.1\"\nport = {port}\n"))
        .unwrap_or_default();
    let text = format!(
        r#"
[email]
enabled = true
[email.imap]
host = "127.0.0.1"
tls = "none"
password = "{password}"
poll_seconds = 3600
[email.smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
[[email.mailboxes]]
name = "support"
address = "{SUPPORT}"
department = "Sales"
display_name = "Example Support"
signature = "Example Support\nhttps://help.example/support"
[email.mailboxes.imap]
port = {support_port}
username = "{user}"
[[email.mailboxes]]
name = "billing"
address = "{BILLING}"
department = "Billing"
display_name = "Example Billing"
signature = "Example Billing\nInvoices within 3 days"
[email.mailboxes.imap]
port = {billing_port}
username = "{second}"
{billing_smtp}"#,
        password = dovecot::PASSWORD,
        user = dovecot::USER,
        second = dovecot::SECOND_USER,
    );
    settings_of(&text)
}

fn settings_of(text: &str) -> Settings {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("helpdesk.toml");
    std::fs::write(&path, text).expect("settings written");
    Settings::load_from(Some(&path), Vec::new()).expect("valid settings")
}

async fn departments(db: &TestStore) {
    for name in ["Sales", "Billing"] {
        store::agents::create_department(
            &db.store,
            name,
            AssignmentStrategy::LeastOpen,
            chrono::Utc::now(),
        )
        .await
        .expect("department");
    }
}

/// Each mailbox's intake started as `serve` starts it; `true` on the channel stops them all.
fn start_all(
    intake: &helpdesk::intake::Intake,
    mailboxes: &[Mailbox],
) -> (watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>) {
    let (stop, stopped) = watch::channel(false);
    let tasks = mailboxes
        .iter()
        .map(|mailbox| {
            let mut stopped = stopped.clone();
            mailboxes::start(mailbox, intake, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .1
        })
        .collect();
    (stop, tasks)
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "{what} within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A ticket's number, subject, mailbox and department name.
type TicketRow = (i64, String, Option<String>, Option<String>);

/// Every ticket, by number.
async fn tickets(db: &TestStore) -> Vec<TicketRow> {
    let sql = "SELECT t.number, t.subject, t.mailbox, d.name FROM tickets t
               LEFT JOIN departments d ON d.id = t.department_id ORDER BY t.number";
    match &db.store {
        store::Store::Sqlite { writer, .. } => sqlx::query_as(sql)
            .fetch_all(writer)
            .await
            .expect("tickets"),
        store::Store::Postgres { pool } => {
            sqlx::query_as(sql).fetch_all(pool).await.expect("tickets")
        }
    }
}

fn ticket_of<'a>(tickets: &'a [TicketRow], subject: &str) -> &'a TicketRow {
    let found: Vec<_> = tickets.iter().filter(|t| t.1 == subject).collect();
    assert_eq!(found.len(), 1, "one ticket {subject:?}: {tickets:?}");
    found[0]
}

/// The text of the mail the SMTP server received that contains `needle`.
fn received_with(server: &smtp::SmtpServer, needle: &str) -> (smtp::Received, String) {
    let found: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| String::from_utf8_lossy(&r.data).contains(needle))
        .collect();
    assert_eq!(found.len(), 1, "one mail with {needle:?}");
    let text = String::from_utf8_lossy(&found[0].data).replace("\r\n", "\n");
    (found[0].clone(), text)
}

fn header<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(':'))
        })
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} header in {text}"))
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_mailboxes_land_in_their_departments_and_answer_from_their_own_address(
        db: TestStore,
    ) {
        let Some(dovecot) = dovecot::Dovecot::start() else {
            return;
        };
        // Support sends through the shared server, billing through its own.
        let server = smtp::SmtpServer::start(smtp::Config::default()).await;
        let billing_server = smtp::SmtpServer::start(smtp::Config::default()).await;
        let settings = two_mailboxes(
            dovecot.port(),
            dovecot.port(),
            server.addr.port(),
            Some(billing_server.addr.port()),
        );
        let boxes = settings.email.mailboxes();
        // A department that does not exist stops the start with a clear error.
        let missing = mailboxes::check_departments(&db.store, &boxes)
            .await
            .expect_err("Sales and Billing do not exist yet")
            .to_string();
        assert!(missing.contains("\"support\"") && missing.contains("\"Sales\""), "{missing}");
        departments(&db).await;
        mailboxes::check_departments(&db.store, &boxes).await.expect("departments exist");

        let intake = db
            .intake
            .clone()
            .with_auto_replies(AutoReplies::from_settings(&settings).expect("valid"));
        let deliverers =
            mailboxes::with_senders(Deliverers::default(), &boxes).expect("senders");
        let (stop_jobs, jobs_stopped) = watch::channel(false);
        let workers = tokio::spawn(jobs::run(
            db.store.clone(),
            jobs::JobSettings::from_settings(&settings),
            deliverers,
            intake.committed(),
            jobs_stopped,
        ));

        let n = db.backend() as u8;
        let id = |name: &str| format!("{name}.{n}@customer.example");
        dovecot
            .append_to(
                dovecot::USER,
                &mail(
                    &[
                        "From: Ada <ada@customer.example>",
                        &format!("To: {SUPPORT}"),
                        "Subject: Printer on fire",
                        &format!("Message-ID: <{}>", id("printer")),
                    ],
                    "It is on fire.",
                ),
            )
            .await;
        dovecot
            .append_to(
                dovecot::SECOND_USER,
                &mail(
                    &[
                        "From: Grace <grace@customer.example>",
                        &format!("To: {BILLING}"),
                        "Subject: Invoice twice",
                        &format!("Message-ID: <{}>", id("invoice")),
                    ],
                    "You billed me twice.",
                ),
            )
            .await;
        // One mail to both mailboxes (To and Cc): each mailbox gets its own copy.
        for (user, delivered_to) in [(dovecot::USER, SUPPORT), (dovecot::SECOND_USER, BILLING)] {
            dovecot
                .append_to(
                    user,
                    &mail(
                        &[
                            &format!("Delivered-To: {delivered_to}"),
                            "From: Linus <linus@customer.example>",
                            &format!("To: {SUPPORT}"),
                            &format!("Cc: {BILLING}"),
                            "Subject: Refund for the broken printer",
                            &format!("Message-ID: <{}>", id("both")),
                        ],
                        "Who pays?",
                    ),
                )
                .await;
        }

        let (stop, tasks) = start_all(&intake, &boxes);
        wait_until("both mailboxes taken in", async || {
            dovecot.seen_of(dovecot::USER).await.len() == 2
                && dovecot.seen_of(dovecot::SECOND_USER).await.len() == 2
        })
        .await;
        let all = tickets(&db).await;
        assert_eq!(all.len(), 3, "the mail to both is one ticket: {all:?}");
        let printer = ticket_of(&all, "Printer on fire");
        assert_eq!(
            (printer.2.as_deref(), printer.3.as_deref()),
            (Some("support"), Some("Sales"))
        );
        let invoice = ticket_of(&all, "Invoice twice");
        assert_eq!(
            (invoice.2.as_deref(), invoice.3.as_deref()),
            (Some("billing"), Some("Billing"))
        );
        let both = ticket_of(&all, "Refund for the broken printer");
        assert!(
            matches!(
                (both.2.as_deref(), both.3.as_deref()),
                (Some("support"), Some("Sales")) | (Some("billing"), Some("Billing"))
            ),
            "{both:?}"
        );
        let raw = store::raw::counts(&db.store).await.expect("counts");
        assert_eq!((raw.kept, raw.duplicates_dropped), (3, 1), "{raw:?}");

        // Each mailbox kept its own position.
        for scope in ["support", "billing"] {
            let cursor = store::cursors::get(&db.store, "email", &format!("{scope}/imap:INBOX"))
                .await
                .expect("cursor");
            assert!(cursor.is_some_and(|c| c.contains(':')), "{scope}");
        }

        // An agent with a signature answers both.
        let agent = crate::support::plain_agent(&db.store, "sam@helpdesk.example", "Sam").await;
        store::mailboxes::set_agent_signature(&db.store, agent, "Sam Spade\r\nSecond level\n\n")
            .await
            .expect("signature");
        for (ticket, text) in [(printer, "Unplug it (support)."), (invoice, "Refunded (billing).")] {
            let external = helpdesk::domain::new_mail_message_id(SUPPORT, ticket.0.into());
            helpdesk::ops::send_reply(
                &db.store,
                &NewReply {
                    number: ticket.0.into(),
                    agent_id: agent,
                    text,
                    kind: MessageKind::Public,
                    external_id: Some(&external),
                    channels_here: &[ChannelKind::Email],
                    now: chrono::Utc::now(),
                },
            )
            .await
            .expect("reply stored");
        }
        let all_received = || [server.received(), billing_server.received()].concat();
        wait_until("the replies and acknowledgements delivered", async || {
            store::outbound::delivery_counts(&db.store).await.expect("counts").0 == 0
                && all_received().len() >= 5
        })
        .await;

        let (sent, text) = received_with(&server, "Unplug it (support).");
        assert_eq!(sent.mail_from, SUPPORT);
        assert_eq!(sent.rcpt_to, ["ada@customer.example"]);
        let from = header(&text, "From");
        assert!(from.contains("Example Support") && from.contains(SUPPORT), "{from}");
        assert!(header(&text, "In-Reply-To").contains(&id("printer")), "{text}");
        assert!(header(&text, "Subject").contains(&format!("[#{}]", printer.0)), "{text}");
        let signed = "Unplug it (support).\n\n-- \nSam Spade\nSecond level\n\nExample Support\nhttps://help.example/support";
        assert!(text.contains(signed), "agent's, then the mailbox's signature: {text}");
        assert!(!text.contains("Example Billing"), "{text}");

        let (sent, text) = received_with(&billing_server, "Refunded (billing).");
        assert!(
            !server
                .received()
                .iter()
                .any(|r| String::from_utf8_lossy(&r.data).contains("Refunded (billing).")),
            "billing's reply goes through billing's own server only"
        );
        assert_eq!(sent.mail_from, BILLING);
        assert_eq!(sent.rcpt_to, ["grace@customer.example"]);
        let from = header(&text, "From");
        assert!(from.contains("Example Billing") && from.contains(BILLING), "{from}");
        assert!(header(&text, "In-Reply-To").contains(&id("invoice")), "{text}");
        assert!(
            text.contains("-- \nSam Spade\nSecond level\n\nExample Billing\nInvoices within 3 days"),
            "{text}"
        );

        // The acknowledgements come from and name the mailbox written to; one for the mail
        // to both.
        let acks: Vec<_> = all_received()
            .into_iter()
            .filter(|r| String::from_utf8_lossy(&r.data).contains("Auto-Submitted: auto-replied"))
            .collect();
        assert_eq!(acks.len(), 3, "{acks:?}");
        let ack_to = |who: &str| {
            acks.iter()
                .find(|r| r.rcpt_to == [who])
                .map(|r| (r.mail_from.clone(), String::from_utf8_lossy(&r.data).replace("\r\n", "\n")))
                .unwrap_or_else(|| panic!("an acknowledgement to {who}"))
        };
        let (from, text) = ack_to("grace@customer.example");
        assert_eq!(from, BILLING);
        assert!(
            billing_server.received().iter().any(|r| r.rcpt_to == ["grace@customer.example"]),
            "billing's acknowledgement goes through billing's server"
        );
        assert!(text.contains(&format!("Example Billing <{BILLING}>")), "{text}");
        assert!(!text.contains("Sam Spade"), "no agent signature on automatic mail: {text}");
        let (from, text) = ack_to("ada@customer.example");
        assert_eq!(from, SUPPORT);
        assert!(
            server.received().iter().any(|r| r.rcpt_to == ["ada@customer.example"]),
            "support's acknowledgement goes through the shared server"
        );
        assert!(text.contains(&format!("Example Support <{SUPPORT}>")), "{text}");

        stop.send(true).expect("running");
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("stops")
                .expect("task");
        }
        stop_jobs.send(true).expect("workers run");
        workers.await.expect("workers").expect("stopped cleanly");
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_mailbox_whose_server_is_down_stops_no_other(db: TestStore) {
        let (Some(support), Some(mut billing)) =
            (dovecot::Dovecot::start(), dovecot::Dovecot::start())
        else {
            return;
        };
        departments(&db).await;
        let settings = two_mailboxes(support.port(), billing.port(), 25, None);
        let boxes = settings.email.mailboxes();
        billing.stop();
        let (stop, tasks) = start_all(&db.intake, &boxes);

        let n = db.backend() as u8;
        support
            .append_to(
                dovecot::USER,
                &mail(
                    &[
                        "From: ada@customer.example",
                        "Subject: Still working",
                        &format!("Message-ID: <up.{n}@customer.example>"),
                    ],
                    "Hello?",
                ),
            )
            .await;
        wait_until("the mailbox that is up takes its mail in", async || {
            tickets(&db).await.len() == 1
        })
        .await;
        // The up mailbox records its success after the mail's ticket is committed.
        wait_until("the down mailbox says so, the up one its success", async || {
            let health = store::health::list(&db.store).await.expect("health");
            let down = health.iter().any(|h| {
                h.name == "imap:billing/INBOX" && !h.connected && h.consecutive_failures >= 1
            });
            let up = health
                .iter()
                .any(|h| h.name == "imap:support/INBOX" && h.last_success_at.is_some());
            down && up
        })
        .await;
        let health = store::health::list(&db.store).await.expect("health");
        let up = health
            .iter()
            .find(|h| h.name == "imap:support/INBOX")
            .expect("support's health row");
        assert_eq!(up.consecutive_failures, 0, "{up:?}");
        assert!(up.last_success_at.is_some(), "{up:?}");
        let all = tickets(&db).await;
        assert_eq!(all[0].2.as_deref(), Some("support"));

        // Back up, it catches up on its own.
        billing.start_again();
        billing
            .append_to(
                dovecot::SECOND_USER,
                &mail(
                    &[
                        "From: grace@customer.example",
                        "Subject: Back again",
                        &format!("Message-ID: <back.{n}@customer.example>"),
                    ],
                    "Hi.",
                ),
            )
            .await;
        wait_until("the mailbox that came back takes its mail in", async || {
            tickets(&db).await.len() == 2
        })
        .await;
        let all = tickets(&db).await;
        let back = ticket_of(&all, "Back again");
        assert_eq!((back.2.as_deref(), back.3.as_deref()), (Some("billing"), Some("Billing")));

        stop.send(true).expect("running");
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("stops")
                .expect("task");
        }
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_same_mail_arriving_in_two_mailboxes_at_once_is_one_ticket(db: TestStore) {
        departments(&db).await;
        let settings = two_mailboxes(1, 2, 25, None);
        let boxes = settings.email.mailboxes();
        let support = Arc::new(db.intake.clone().in_mailbox(&boxes[0]));
        let billing = Arc::new(db.intake.clone().in_mailbox(&boxes[1]));
        const MAILS: usize = 12;
        let mut both = Vec::new();
        for i in 0..MAILS {
            let copy = |delivered_to: &str| {
                mail(
                    &[
                        &format!("Delivered-To: {delivered_to}"),
                        &format!("From: customer{i}@customer.example"),
                        &format!("To: {SUPPORT}"),
                        &format!("Cc: {BILLING}"),
                        &format!("Subject: Question {i}"),
                        &format!("Message-ID: <q{i}@customer.example>"),
                    ],
                    "To both of you.",
                )
            };
            let (support, billing) = (Arc::clone(&support), Arc::clone(&billing));
            let (one, two) = (copy(SUPPORT), copy(BILLING));
            both.push(tokio::spawn(async move {
                let (a, b) = tokio::join!(
                    tokio::spawn(async move { support.accept_email(one).await }),
                    tokio::spawn(async move { billing.accept_email(two).await }),
                );
                (
                    a.expect("task").expect("taken in"),
                    b.expect("task").expect("taken in"),
                )
            }));
        }
        for pair in both {
            let (a, b) = pair.await.expect("pair");
            let created = [&a, &b]
                .iter()
                .filter(|o| matches!(o, Outcome::Created { .. }))
                .count();
            let duplicate = [&a, &b]
                .iter()
                .filter(|o| matches!(o, Outcome::Duplicate))
                .count();
            assert_eq!((created, duplicate), (1, 1), "{a:?} {b:?}");
        }
        let all = tickets(&db).await;
        assert_eq!(all.len(), MAILS, "{all:?}");
        for ticket in &all {
            assert!(
                matches!(
                    (ticket.2.as_deref(), ticket.3.as_deref()),
                    (Some("support"), Some("Sales")) | (Some("billing"), Some("Billing"))
                ),
                "{ticket:?}"
            );
        }
        let raw = store::raw::counts(&db.store).await.expect("counts");
        assert_eq!(
            (raw.kept, raw.duplicates_dropped),
            (MAILS as i64, MAILS as i64),
            "{raw:?}"
        );
    }
}

/// With an SMTP server per mailbox and none shared, agents' notices by mail go out through the
/// first mailbox's server, From its address.
#[tokio::test]
async fn notices_go_out_through_the_first_mailbox_when_no_smtp_server_is_shared() {
    let support_server = smtp::SmtpServer::start(smtp::Config::default()).await;
    let billing_server = smtp::SmtpServer::start(smtp::Config::default()).await;
    let settings = settings_of(&format!(
        r#"
[email]
enabled = true
[email.imap]
host = "127.0.0.1"
[[email.mailboxes]]
name = "support"
address = "{SUPPORT}"
display_name = "Example Support"
[email.mailboxes.smtp]
host = "127.0.0.1"
port = {support}
tls = "none"
[[email.mailboxes]]
name = "billing"
address = "{BILLING}"
[email.mailboxes.smtp]
host = "127.0.0.1"
port = {billing}
tls = "none"
"#,
        support = support_server.addr.port(),
        billing = billing_server.addr.port(),
    ));
    assert!(settings.email.smtp.host.is_empty(), "no shared server");
    let deliverers = mailboxes::with_senders(Deliverers::default(), &settings.email.mailboxes())
        .expect("senders");
    let mailer = deliverers
        .notice_mail()
        .expect("notices can go out by mail");
    mailer
        .send_notice(&helpdesk_email::smtp::Notice {
            to_address: "sam@helpdesk.example".into(),
            to_name: Some("Sam".into()),
            subject: "Ticket #7 is yours".into(),
            text: "https://help.example/tickets/7".into(),
        })
        .await
        .expect("sent");
    let received = support_server.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].mail_from, SUPPORT);
    assert_eq!(received[0].rcpt_to, ["sam@helpdesk.example"]);
    let text = String::from_utf8_lossy(&received[0].data).replace("\r\n", "\n");
    let from = header(&text, "From");
    assert!(
        from.contains("Example Support") && from.contains(SUPPORT),
        "{from}"
    );
    assert!(billing_server.received().is_empty());
}

store_test! {
    #[tokio::test]
    async fn a_rule_still_moves_a_ticket_that_came_in_through_a_mailbox(db: TestStore) {
        use helpdesk::domain::rules::{Action, Condition};

        departments(&db).await;
        let billing = store::agents::department_by_name(&db.store, "Billing")
            .await
            .expect("read")
            .expect("Billing")
            .id;
        store::rules::create(
            &db.store,
            store::rules::NewRule {
                name: "Invoices go to billing".into(),
                enabled: true,
                conditions: vec![Condition::SubjectContains {
                    any: vec!["invoice".into()],
                }],
                actions: vec![Action::SetDepartment { department: billing }],
                stop: false,
            },
            chrono::Utc::now(),
        )
        .await
        .expect("valid rule");
        let settings = two_mailboxes(1, 2, 25, None);
        let boxes = settings.email.mailboxes();
        // Written to support, whose tickets start in Sales.
        let support = db.intake.clone().in_mailbox(&boxes[0]);
        let outcome = support
            .accept_email(mail(
                &[
                    "From: ada@customer.example",
                    &format!("To: {SUPPORT}"),
                    "Subject: Invoice 42 is wrong",
                    "Message-ID: <rule-1@customer.example>",
                ],
                "The amount is off.",
            ))
            .await
            .expect("taken in");
        let Outcome::Created { number, .. } = outcome else {
            panic!("a new ticket: {outcome:?}");
        };
        let all = tickets(&db).await;
        let ticket = ticket_of(&all, "Invoice 42 is wrong");
        assert_eq!((ticket.2.as_deref(), ticket.3.as_deref()), (Some("support"), Some("Sales")));

        jobs::relay_outbox(&db.store, &jobs::JobSettings::from_settings(&settings), 100)
            .await
            .expect("relay");
        let all = tickets(&db).await;
        let ticket = ticket_of(&all, "Invoice 42 is wrong");
        assert_eq!(
            (ticket.2.as_deref(), ticket.3.as_deref()),
            (Some("support"), Some("Billing")),
            "the rule moved it; it still answers from support"
        );
        let detail = store::tickets::detail(&db.store, number)
            .await
            .expect("read")
            .expect("ticket");
        let departments: Vec<Option<&str>> = detail
            .history
            .iter()
            .filter(|e| e.kind == "department")
            .map(|e| e.new_value.as_deref())
            .collect();
        assert_eq!(departments, [Some("Sales"), Some("Billing")], "{:?}", detail.history);
        assert!(
            detail
                .history
                .iter()
                .any(|e| e.kind == "rule" && e.new_value.as_deref() == Some("Invoices go to billing")),
            "{:?}",
            detail.history
        );
    }
}
