//! Mail in a real IMAP mailbox (Dovecot) becomes tickets through the application's intake,
//! once, across restarts.

use helpdesk_testkit::dovecot;
use std::time::{Duration, Instant};

use crate::support::{TestStore, mail};
use helpdesk::channels::email;
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::intake::{Intake, Limits};
use helpdesk::store;
use tokio::sync::watch;

/// The application's IMAP intake on `dovecot`'s mailbox, as `serve` starts it.
fn start(
    db: &TestStore,
    dovecot: &dovecot::Dovecot,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    start_with(db.intake.clone(), dovecot)
}

fn start_with(
    intake: Intake,
    dovecot: &dovecot::Dovecot,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, mut stopped) = watch::channel(false);
    let (_health, task) = email::start_imap_with(dovecot.settings(), intake, async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    });
    (stop, task)
}

async fn wait_for_messages(db: &TestStore, messages: i64) -> store::tickets::Totals {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let totals = store::tickets::totals(&db.store).await.expect("totals");
        if totals.messages >= messages {
            return totals;
        }
        assert!(
            Instant::now() < deadline,
            "only {totals:?} after 30 s on {:?}",
            db.backend()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

store_test! {
    #[tokio::test]
    async fn mailbox_mail_becomes_tickets_once_across_restarts(db: TestStore) {
        // A mailbox of its own per backend.
        let Some(dovecot) = dovecot::Dovecot::start() else {
            return;
        };
        let n = db.backend() as u8;
        let id = |name: &str| format!("{name}.{n}@example.org");
        dovecot
            .append(&mail(
                &[
                    "From: ada@example.org",
                    "Subject: Printer",
                    &format!("Message-ID: <{}>", id("a")),
                ],
                "It is on fire.",
            ))
            .await;
        dovecot
            .append(&mail(
                &[
                    "From: ada@example.org",
                    "Subject: Re: Printer",
                    &format!("Message-ID: <{}>", id("b")),
                    &format!("In-Reply-To: <{}>", id("a")),
                ],
                "Still burning.",
            ))
            .await;
        dovecot
            .append(&mail(
                &[
                    "From: grace@example.net",
                    "Subject: VPN",
                    &format!("Message-ID: <{}>", id("c")),
                ],
                "Down.",
            ))
            .await;

        let (stop, task) = start(&db, &dovecot);
        let totals = wait_for_messages(&db, 3).await;
        assert_eq!(
            (totals.tickets, totals.messages),
            (2, 3),
            "{:?}",
            db.backend()
        );
        // The fetch records its success after the commit that made the messages visible.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !store::health::list(&db.store)
            .await
            .expect("health")
            .iter()
            .any(|h| h.name == "imap:INBOX" && h.last_success_at.is_some())
        {
            assert!(tokio::time::Instant::now() < deadline, "no successful fetch recorded");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.send(true).expect("running");
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("stops")
            .expect("task");
        let cursor = store::cursors::get(&db.store, "email", "imap:INBOX")
            .await
            .expect("read");
        assert!(cursor.is_some_and(|value| value.contains(':')));
        let health = store::health::list(&db.store).await.expect("health");
        let imap = health
            .iter()
            .find(|h| (h.channel.as_str(), h.name.as_str()) == ("email", "imap:INBOX"))
            .expect("IMAP health recorded");
        assert!(!imap.connected, "stopped: {imap:?}");
        assert!(imap.last_success_at.is_some(), "{imap:?}");
        assert_eq!((imap.consecutive_failures, imap.backlog), (0, 0));

        // A restart reads nothing twice and picks up what came meanwhile.
        dovecot
            .append(&mail(
                &[
                    "From: grace@example.net",
                    "Subject: Re: VPN",
                    &format!("Message-ID: <{}>", id("d")),
                    &format!("References: <{}>", id("c")),
                ],
                "Thanks",
            ))
            .await;
        let (stop, task) = start(&db, &dovecot);
        let totals = wait_for_messages(&db, 4).await;
        stop.send(true).expect("running");
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("stops")
            .expect("task");
        assert_eq!((totals.tickets, totals.messages), (2, 4));
        let raw = store::raw::counts(&db.store).await.expect("counts");
        assert_eq!((raw.kept, raw.duplicates_dropped, raw.failed), (4, 0, 0));
        let seen = dovecot.seen().await;
        assert_eq!(seen.len(), 4);
        assert_eq!(
            seen,
            dovecot.all().await,
            "everything taken in is marked seen"
        );
    }
}

store_test! {
    #[tokio::test]
    async fn a_mail_over_the_size_limit_is_fetched_as_its_headers_and_becomes_a_ticket_that_says_so(
        db: TestStore,
    ) {
        let Some(dovecot) = dovecot::Dovecot::start() else {
            return;
        };
        let n = db.backend() as u8;
        let id = |name: &str| format!("{name}.{n}@example.org");
        let small = |name: &str, subject: &str| {
            mail(
                &[
                    "From: ada@example.org",
                    &format!("Subject: {subject}"),
                    &format!("Message-ID: <{}>", id(name)),
                ],
                "Short.",
            )
        };
        let headers = format!(
            "From: Grace Hopper <grace@example.net>\r\nSubject: Scans of the contract\r\n\
             Message-ID: <{}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n",
            id("big")
        );
        let mut big = headers.clone().into_bytes();
        for _ in 0..2000 {
            big.extend_from_slice(b"The body that is never read whole, line after line.\r\n");
        }
        dovecot.append(&small("a", "Before")).await;
        dovecot.append(&big).await;
        dovecot.append(&small("c", "After")).await;

        let intake = db.intake_with(Limits {
            max_attachment_bytes: 1024,
            max_message_bytes: 4096,
        });
        let (stop, task) = start_with(intake, &dovecot);
        let totals = wait_for_messages(&db, 3).await;
        assert_eq!((totals.tickets, totals.messages), (3, 3));
        // Marked handled only once stored.
        let deadline = Instant::now() + Duration::from_secs(30);
        while dovecot.seen().await.len() < 3 {
            assert!(Instant::now() < deadline, "not all marked seen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.send(true).expect("running");
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("stops")
            .expect("task");

        let row = store::raw::find(&db.store, ChannelKind::Email, &id("big"))
            .await
            .expect("read")
            .expect("kept raw");
        assert_eq!(row.content, headers.as_bytes(), "the headers only");
        assert_eq!(row.size, headers.len() as i64);
        let note = row.body_omitted.expect("the note");
        assert!(
            note.contains(&format!("({} bytes)", big.len())) && note.contains("4096 bytes"),
            "{note}"
        );
        let list = store::tickets::list(
            &db.store,
            &store::tickets::TicketFilter {
                status: None,
                limit: 10,
            },
        )
        .await
        .expect("list");
        let ticket = list
            .iter()
            .find(|t| t.subject == "Scans of the contract")
            .expect("a ticket for the large mail");
        let detail = store::tickets::detail(&db.store, ticket.number)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(detail.summary.customer, "Grace Hopper");
        assert_eq!(detail.messages[0].body_text, note);
        for name in ["a", "c"] {
            let row = store::raw::find(&db.store, ChannelKind::Email, &id(name))
                .await
                .expect("read")
                .expect("kept raw");
            assert_eq!(row.body_omitted, None, "a small mail arrives whole");
            assert!(row.content.ends_with(b"Short."));
        }
    }
}

store_test! {
    #[tokio::test]
    async fn a_mailbox_that_lists_replies_before_what_they_answer_gives_one_ticket(db: TestStore) {
        let Some(dovecot) = dovecot::Dovecot::start() else {
            return;
        };
        let n = db.backend() as u8;
        let id = |name: &str| format!("{name}.{n}@example.org");
        // A conversation moved into the mailbox newest first.
        for (name, subject, references) in [
            ("c", "Re: Re: Printer", vec!["a", "b"]),
            ("b", "Re: Printer", vec!["a"]),
            ("a", "Printer", vec![]),
        ] {
            let mut headers = vec![
                "From: ada@example.org".to_owned(),
                format!("Subject: {subject}"),
                format!("Message-ID: <{}>", id(name)),
            ];
            if let Some(parent) = references.last() {
                headers.push(format!("In-Reply-To: <{}>", id(parent)));
                let all: Vec<String> = references.iter().map(|r| format!("<{}>", id(r))).collect();
                headers.push(format!("References: {}", all.join(" ")));
            }
            let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
            dovecot.append(&mail(&headers, "It is on fire.")).await;
        }

        let (stop, task) = start(&db, &dovecot);
        let totals = wait_for_messages(&db, 3).await;
        stop.send(true).expect("running");
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("stops")
            .expect("task");
        assert_eq!(
            (totals.tickets, totals.messages),
            (1, 3),
            "{:?}",
            db.backend()
        );
        let tickets = store::tickets::list(
            &db.store,
            &store::tickets::TicketFilter {
                status: None,
                limit: 10,
            },
        )
        .await
        .expect("list");
        assert_eq!(tickets[0].subject, "Printer", "the first mail opened it");
    }
}
