//! Intake on every backend: tickets, threading, duplicates, attachments, bad input.


use crate::support;
use chrono::Utc;
use helpdesk::domain::Status;
use helpdesk::helpdesk_channel::{
    AutomationMarks, ChannelKind, Identity, InboundMessage, ThreadHints,
};
use helpdesk::ingest;
use helpdesk::intake::{Intake, Limits, Outcome};
use helpdesk::store::tickets::Actor;
use helpdesk::store::{self, Backend};
use crate::support::{mail, stores};

fn first(id: &str, from: &str, subject: &str) -> Vec<u8> {
    mail(
        &[
            &format!("From: {from}"),
            "To: support@helpdesk.example",
            &format!("Subject: {subject}"),
            &format!("Message-ID: <{id}>"),
            "Date: Tue, 24 Nov 2026 10:00:00 +0000",
        ],
        "Hello, my printer is on fire.\r\n",
    )
}

fn reply(id: &str, in_reply_to: &str, references: &str, subject: &str) -> Vec<u8> {
    mail(
        &[
            "From: Ada Lovelace <ada@example.org>",
            &format!("Subject: {subject}"),
            &format!("Message-ID: <{id}>"),
            &format!("In-Reply-To: <{in_reply_to}>"),
            &format!("References: {references}"),
        ],
        "Any news?\r\n\r\n> Hello, my printer is on fire.\r\n",
    )
}

fn created(outcome: &Outcome) -> i64 {
    match outcome {
        Outcome::Created { number, .. } => *number,
        other => panic!("expected a new ticket, got {other:?}"),
    }
}

fn threaded(outcome: &Outcome) -> i64 {
    match outcome {
        Outcome::Threaded { number, .. } => *number,
        other => panic!("expected a threaded reply, got {other:?}"),
    }
}

store_test! {
    #[tokio::test]
    async fn a_new_mail_opens_a_ticket_and_keeps_the_raw_message(db: TestStore) {
        let raw = first(
            "a1@example.org",
            "Ada Lovelace <Ada@Example.org>",
            "Printer on fire",
        );
        let outcome = db.intake.accept_email(raw.clone()).await.expect("taken in");
        assert_eq!(created(&outcome), 1001, "{:?}", db.backend());

        let ticket = store::tickets::detail(&db.store, 1001)
            .await
            .expect("readable")
            .expect("ticket exists");
        assert_eq!(ticket.summary.subject, "Printer on fire");
        assert_eq!(ticket.summary.status, "new");
        assert_eq!(ticket.summary.priority, "normal");
        assert_eq!(ticket.summary.channel, "email");
        assert_eq!(ticket.summary.customer, "Ada Lovelace");
        assert_eq!(ticket.messages.len(), 1);
        let message = &ticket.messages[0];
        assert_eq!(message.direction, "inbound");
        assert_eq!(message.kind, "public");
        assert_eq!(message.external_id.as_deref(), Some("a1@example.org"));
        assert_eq!(message.body_text, "Hello, my printer is on fire.\n");
        assert_eq!(ticket.history.len(), 1);
        assert_eq!(ticket.history[0].kind, "created");
        assert_eq!(ticket.history[0].actor, "Ada Lovelace");

        let counts = store::raw::counts(&db.store).await.expect("counts");
        assert_eq!(
            (counts.kept, counts.failed, counts.duplicates_dropped),
            (1, 0, 0)
        );
        let pending = store::outbox::pending(&db.store, 10).await.expect("outbox");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].kind, "ticket_created");
    }
}

store_test! {
    #[tokio::test]
    async fn replies_thread_by_headers_and_by_subject_tag(db: TestStore) {
        let intake = &db.intake;
        let number = created(
            &intake
                .accept_email(first("t1@example.org", "ada@example.org", "Printer"))
                .await
                .expect("first"),
        );
        let by_in_reply_to = reply(
            "t2@example.org",
            "t1@example.org",
            "<t1@example.org>",
            "Re: Printer",
        );
        assert_eq!(
            threaded(&intake.accept_email(by_in_reply_to).await.expect("t2")),
            number
        );

        // Only References point into the thread (In-Reply-To names a message we never saw).
        let by_references = reply(
            "t3@example.org",
            "unknown@elsewhere",
            "<t1@example.org> <t2@example.org> <unknown@elsewhere>",
            "Re: Printer",
        );
        assert_eq!(
            threaded(&intake.accept_email(by_references).await.expect("t3")),
            number
        );

        // A mail client that dropped every header but kept the subject tag.
        let by_tag = mail(
            &[
                "From: ada@example.org",
                &format!("Subject: Re: [#{number}] Printer"),
                "Message-ID: <t4@example.org>",
            ],
            "Still broken.",
        );
        assert_eq!(
            threaded(&intake.accept_email(by_tag).await.expect("t4")),
            number
        );

        let unrelated = first("u1@example.org", "grace@example.net", "Invoice");
        assert_eq!(
            created(&intake.accept_email(unrelated).await.expect("u1")),
            number + 1
        );

        let totals = store::tickets::totals(&db.store).await.expect("totals");
        assert_eq!(
            (totals.tickets, totals.messages),
            (2, 5),
            "{:?}",
            db.backend()
        );
        assert_eq!(store::customers::count(&db.store).await.expect("count"), 2);
    }
}

store_test! {
    #[tokio::test]
    async fn a_reply_that_arrives_before_its_parent_still_shares_its_ticket(db: TestStore) {
        let child = reply(
            "o2@example.org",
            "o1@example.org",
            "<o1@example.org>",
            "Re: Modem",
        );
        let number = created(&db.intake.accept_email(child).await.expect("child"));
        let parent = first("o1@example.org", "ada@example.org", "Modem");
        assert_eq!(
            threaded(&db.intake.accept_email(parent).await.expect("parent")),
            number
        );
        assert_eq!(
            store::tickets::totals(&db.store)
                .await
                .expect("totals")
                .tickets,
            1
        );
    }
}

store_test! {
    #[tokio::test]
    async fn the_same_message_twice_is_a_counted_duplicate(db: TestStore) {
        let raw = first("d1@example.org", "ada@example.org", "Twice");
        created(&db.intake.accept_email(raw.clone()).await.expect("first"));
        assert_eq!(
            db.intake.accept_email(raw.clone()).await.expect("again"),
            Outcome::Duplicate
        );
        assert_eq!(
            db.intake.accept_email(raw).await.expect("third"),
            Outcome::Duplicate
        );
        let totals = store::tickets::totals(&db.store).await.expect("totals");
        assert_eq!((totals.tickets, totals.messages), (1, 1));
        let counts = store::raw::counts(&db.store).await.expect("counts");
        assert_eq!((counts.kept, counts.duplicates_dropped), (1, 2));
    }
}

store_test! {
    #[tokio::test]
    async fn concurrent_intakes_of_one_message_store_it_once(db: TestStore) {
        let raw = first("c1@example.org", "ada@example.org", "Race");
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let intake = db.intake.clone();
            let raw = raw.clone();
            tasks.push(tokio::spawn(async move { intake.accept_email(raw).await }));
        }
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("task").expect("taken in"));
        }
        let created = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Created { .. }))
            .count();
        let duplicates = outcomes
            .iter()
            .filter(|o| **o == Outcome::Duplicate)
            .count();
        assert_eq!(
            (created, duplicates),
            (1, 7),
            "{:?}: {outcomes:?}",
            db.backend()
        );
        let totals = store::tickets::totals(&db.store).await.expect("totals");
        assert_eq!((totals.tickets, totals.messages), (1, 1));
    }
}

store_test! {
    #[tokio::test]
    async fn a_parent_and_its_reply_taken_in_at_once_share_one_ticket(db: TestStore) {
        let pairs = 25;
        let mut tasks = Vec::new();
        for pair in 0..pairs {
            let parent_id = format!("p{pair}@example.org");
            let parent = first(&parent_id, &format!("c{pair}@example.org"), "Parent");
            let child = reply(
                &format!("r{pair}@example.org"),
                &parent_id,
                &format!("<{parent_id}>"),
                "Re: Parent",
            );
            for raw in [parent, child] {
                let intake = db.intake.clone();
                tasks.push(tokio::spawn(async move { intake.accept_email(raw).await }));
            }
        }
        for task in tasks {
            task.await.expect("task").expect("taken in");
        }
        let totals = store::tickets::totals(&db.store).await.expect("totals");
        assert_eq!(
            (totals.tickets, totals.messages),
            (pairs, pairs * 2),
            "{:?}",
            db.backend()
        );
    }
}

fn with_attachment(id: &str, filename: &str, content: &[u8]) -> Vec<u8> {
    use std::fmt::Write;
    let mut encoded = String::new();
    // Hex in a text/plain attachment keeps the test free of a base64 encoder; the content is
    // what the parser decodes.
    for byte in content {
        let _ = write!(encoded, "{byte:02x}");
    }
    format!(
        "From: ada@example.org\r\nSubject: Logs\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain\r\n\r\nSee attached.\r\n--b1\r\n\
         Content-Type: application/octet-stream; name=\"{filename}\"\r\n\
         Content-Disposition: attachment; filename=\"{filename}\"\r\n\r\n{encoded}\r\n--b1--\r\n"
    )
    .into_bytes()
}

store_test! {
    #[tokio::test]
    async fn attachment_contents_are_stored_once_and_oversized_ones_only_recorded(db: TestStore) {
        let content = vec![0xabu8; 3000];
        let a = created(
            &db.intake
                .accept_email(with_attachment("at1@x", "log.txt", &content))
                .await
                .expect("a"),
        );
        let b = created(
            &db.intake
                .accept_email(with_attachment("at2@x", "same-log.txt", &content))
                .await
                .expect("b"),
        );
        assert_ne!(a, b);
        let (blobs, bytes) = store::attachments::blob_totals(&db.store)
            .await
            .expect("totals");
        assert_eq!(blobs, 1, "same content stored once");
        assert_eq!(bytes, 6000, "hex text of 3000 bytes");

        let ticket = store::tickets::detail(&db.store, a)
            .await
            .expect("read")
            .expect("exists");
        let attachment = &ticket.messages[0].attachments[0];
        assert_eq!(attachment.filename, "log.txt");
        assert_eq!(attachment.size, 6000);
        let sha = attachment.sha256.clone().expect("content kept");
        assert_eq!(db.blobs().get(&sha).expect("on disk").len(), 6000);

        let small = db.intake_with(Limits {
            max_attachment_bytes: 100,
            ..support::LIMITS
        });
        let c = created(
            &small
                .accept_email(with_attachment("at3@x", "big.bin", &[7u8; 500]))
                .await
                .expect("c"),
        );
        let ticket = store::tickets::detail(&db.store, c)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(ticket.messages[0].body_text.trim(), "See attached.");
        let attachment = &ticket.messages[0].attachments[0];
        assert_eq!(
            (attachment.filename.as_str(), attachment.size),
            ("big.bin", 1000)
        );
        assert_eq!(attachment.sha256, None);
        let reason = attachment.rejected_reason.as_deref().expect("reason");
        assert!(reason.contains("max_attachment_bytes"), "{reason}");
    }
}

store_test! {
    #[tokio::test]
    async fn unreadable_mail_is_kept_raw_with_its_error(db: TestStore) {
        let garbage = b"\x00\x01\x02 this is not mail".to_vec();
        let outcome = db.intake.accept_email(garbage.clone()).await.expect("kept");
        assert!(
            matches!(&outcome, Outcome::Rejected { reason } if reason.contains("RFC 822")),
            "{outcome:?}"
        );
        let no_sender = mail(&["Subject: who am I", "Message-ID: <ns@x>"], "body");
        let outcome = db.intake.accept_email(no_sender).await.expect("kept");
        assert!(
            matches!(&outcome, Outcome::Rejected { reason } if reason.contains("no sender")),
            "{outcome:?}"
        );
        // Again: still kept once each, still not a ticket.
        let outcome = db
            .intake
            .accept_email(garbage.clone())
            .await
            .expect("kept again");
        assert!(matches!(outcome, Outcome::Rejected { .. }));
        let counts = store::raw::counts(&db.store).await.expect("counts");
        assert_eq!((counts.kept, counts.failed), (2, 2));
        assert_eq!(
            store::tickets::totals(&db.store)
                .await
                .expect("totals")
                .tickets,
            0
        );
        let failed = store::raw::list_failed(&db.store, 10)
            .await
            .expect("failed");
        let garbage_row = failed
            .iter()
            .find(|f| f.size == garbage.len() as i64)
            .expect("garbage kept");
        assert_eq!(
            store::raw::content(&db.store, garbage_row.id)
                .await
                .expect("read"),
            Some(garbage)
        );
    }
}

store_test! {
    #[tokio::test]
    async fn a_customer_reply_reopens_a_resolved_ticket_and_a_closed_one_gets_a_follow_up(db: TestStore) {
        let number = created(
            &db.intake
                .accept_email(first("r1@x", "ada@example.org", "VPN"))
                .await
                .expect("r1"),
        );
        for status in [Status::Open, Status::Resolved] {
            let mut tx = db.store.begin_write().await.expect("tx");
            store::tickets::change_status(
                &mut tx,
                number,
                status,
                Actor::System,
                Some("test"),
                Utc::now(),
            )
            .await
            .expect("status");
            tx.commit().await.expect("commit");
        }
        let outcome = db
            .intake
            .accept_email(reply("r2@x", "r1@x", "<r1@x>", "Re: VPN"))
            .await
            .expect("r2");
        assert_eq!(
            outcome,
            match outcome {
                Outcome::Threaded { message_id, .. } => Outcome::Threaded {
                    number,
                    message_id,
                    reopened: true
                },
                ref other => panic!("{other:?}"),
            }
        );
        let ticket = store::tickets::detail(&db.store, number)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(ticket.summary.status, "open");
        let last = ticket.history.last().expect("history");
        assert_eq!(
            (
                last.kind.as_str(),
                last.old_value.as_deref(),
                last.new_value.as_deref()
            ),
            ("status", Some("resolved"), Some("open"))
        );
        assert_eq!(last.reason.as_deref(), Some("the customer wrote again"));

        let mut tx = db.store.begin_write().await.expect("tx");
        store::tickets::change_status(
            &mut tx,
            number,
            Status::Closed,
            Actor::System,
            None,
            Utc::now(),
        )
        .await
        .expect("close");
        tx.commit().await.expect("commit");
        let mut tx = db.store.begin_write().await.expect("tx");
        let refused = store::tickets::change_status(
            &mut tx,
            number,
            Status::Open,
            Actor::System,
            None,
            Utc::now(),
        )
        .await;
        assert!(refused.is_err(), "closed is final");
        tx.rollback().await.expect("rollback");

        let follow_up = created(
            &db.intake
                .accept_email(reply("r3@x", "r2@x", "<r1@x> <r2@x>", "Re: VPN"))
                .await
                .expect("r3"),
        );
        assert_eq!(follow_up, number + 1);
        let ticket = store::tickets::detail(&db.store, follow_up)
            .await
            .expect("read")
            .expect("exists");
        let reason = ticket.history[0].reason.as_deref().expect("reason");
        assert!(
            reason.contains(&format!("closed ticket #{number}")),
            "{reason}"
        );
    }
}

fn chat(id: &str, conversation: &str, reply_to: Option<&str>, text: &str) -> InboundMessage {
    InboundMessage {
        channel: ChannelKind::Telegram,
        external_id: id.to_owned(),
        sender: Identity {
            channel: ChannelKind::Telegram,
            address: "424242".to_owned(),
            display_name: Some("@ada".to_owned()),
        },
        subject: None,
        text: text.to_owned(),
        html: None,
        attachments: Vec::new(),
        thread: ThreadHints {
            conversation: Some(conversation.to_owned()),
            reply_to: reply_to.map(str::to_owned),
            ..ThreadHints::default()
        },
        automation: AutomationMarks::default(),
        sent_at: None,
        raw: format!("{{\"message_id\":\"{id}\"}}").into_bytes(),
    }
}

store_test! {
    #[tokio::test]
    async fn chat_messages_continue_their_conversation_until_it_is_closed(db: TestStore) {
        let number = created(
            &db.intake
                .accept(chat(
                    "42:1",
                    "42",
                    None,
                    "My order never arrived\nit was #77",
                ))
                .await
                .expect("1"),
        );
        let ticket = store::tickets::summary(&db.store, number)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(ticket.subject, "My order never arrived");
        assert_eq!(ticket.channel, "telegram");
        assert_eq!(
            threaded(
                &db.intake
                    .accept(chat("42:2", "42", None, "Hello?"))
                    .await
                    .expect("2")
            ),
            number
        );
        assert_eq!(
            threaded(
                &db.intake
                    .accept(chat("42:3", "42", Some("42:1"), "See above"))
                    .await
                    .expect("3")
            ),
            number
        );
        // The same message id in another channel is another message.
        let email_with_same_id = first("42:1", "ada@example.org", "Not a duplicate");
        created(
            &db.intake
                .accept_email(email_with_same_id)
                .await
                .expect("email"),
        );

        let mut tx = db.store.begin_write().await.expect("tx");
        store::tickets::change_status(
            &mut tx,
            number,
            Status::Closed,
            Actor::System,
            None,
            Utc::now(),
        )
        .await
        .expect("close");
        tx.commit().await.expect("commit");
        let next = created(
            &db.intake
                .accept(chat("42:4", "42", None, "Another question"))
                .await
                .expect("4"),
        );
        assert_ne!(next, number);
        assert_eq!(
            threaded(
                &db.intake
                    .accept(chat("42:5", "42", None, "and more"))
                    .await
                    .expect("5")
            ),
            next
        );
    }
}

store_test! {
    #[tokio::test]
    async fn migrations_can_run_again(db: TestStore) {
        db.store.migrate().await.expect("second run is a no-op");
        if db.backend() == Backend::Postgres {
            assert!(db.url.contains("helpdesk_test_intake_migrations_can_run_again"));
        }
    }
}

fn prepared(db: &support::TestStore, raws: Vec<Vec<u8>>) -> Vec<helpdesk::intake::Prepared> {
    raws.into_iter()
        .map(|raw| db.intake.prepare_email(raw))
        .collect()
}

store_test! {
    #[tokio::test]
    async fn a_batch_commits_together_and_reports_each_message_in_order(db: TestStore) {
        let batch = prepared(
            &db,
            vec![
                first("b1@x", "ada@example.org", "Batch parent"),
                reply("b2@x", "b1@x", "<b1@x>", "Re: Batch parent"),
                b"garbage without headers".to_vec(),
                first("b1@x", "ada@example.org", "Batch parent"),
                first("b3@x", "grace@example.net", "Other"),
            ],
        );
        let outcomes: Vec<Outcome> = db
            .intake
            .accept_batch(batch)
            .await
            .into_iter()
            .map(|outcome| outcome.expect("taken in"))
            .collect();
        assert_eq!(created(&outcomes[0]), 1001, "{outcomes:?}");
        assert_eq!(
            threaded(&outcomes[1]),
            1001,
            "a reply to a message of the same batch"
        );
        assert!(
            matches!(outcomes[2], Outcome::Rejected { .. }),
            "{outcomes:?}"
        );
        assert_eq!(outcomes[3], Outcome::Duplicate);
        assert_eq!(created(&outcomes[4]), 1002);
        let totals = store::tickets::totals(&db.store).await.expect("totals");
        assert_eq!((totals.tickets, totals.messages), (2, 3));
    }
}

store_test! {
    #[tokio::test]
    async fn when_the_database_refuses_a_batch_every_message_is_still_kept_raw(db: TestStore) {
        // Break intake on purpose: without the outbox no message can be taken in.
        let drop = "DROP TABLE outbox";
        match &db.store {
            store::Store::Sqlite { writer, .. } => {
                sqlx::query(drop).execute(writer).await.expect("dropped");
            }
            store::Store::Postgres { pool } => {
                sqlx::query(drop).execute(pool).await.expect("dropped");
            }
        }
        let batch = prepared(
            &db,
            vec![
                first("f1@x", "ada@example.org", "One"),
                first("f2@x", "grace@example.net", "Two"),
            ],
        );
        for outcome in db.intake.accept_batch(batch).await {
            match outcome.expect("kept") {
                Outcome::Rejected { reason } => {
                    assert!(reason.starts_with("intake failed:"), "{reason}");
                    assert!(reason.contains("outbox"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
        let counts = store::raw::counts(&db.store).await.expect("counts");
        assert_eq!((counts.kept, counts.failed), (2, 2));
        assert_eq!(
            store::tickets::totals(&db.store)
                .await
                .expect("totals")
                .tickets,
            0
        );
    }
}

store_test! {
    #[tokio::test]
    async fn nul_characters_and_overlong_ids_are_stored_on_every_backend(db: TestStore) {
        let long_id = format!("{}@example.org", "x".repeat(5000));
        let hostile = mail(
            &[
                "From: Null \u{0}Byte <nul@example.org>",
                "Subject: has a \u{0} in it",
                &format!("Message-ID: <{long_id}>"),
            ],
            "body with \u{0} inside",
        );
        let number = created(
            &db.intake
                .accept_email(hostile.clone())
                .await
                .expect("taken in"),
        );
        let ticket = store::tickets::detail(&db.store, number)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(ticket.summary.subject, "has a  in it");
        assert!(!ticket.messages[0].body_text.contains('\0'));
        let external_id = ticket.messages[0].external_id.clone().expect("id");
        assert!(
            external_id.starts_with("long-") && external_id.len() < 100,
            "{external_id}"
        );

        // The same message again is recognised; a reply naming the long id threads.
        assert_eq!(
            db.intake.accept_email(hostile).await.expect("again"),
            Outcome::Duplicate
        );
        let answer = reply(
            "long-reply@x",
            &long_id,
            &format!("<{long_id}>"),
            "Re: hostile",
        );
        assert_eq!(
            threaded(&db.intake.accept_email(answer).await.expect("reply")),
            number
        );
    }
}

/// Limits under which [`big_mail`] is too large and [`first`] is not.
const SMALL: Limits = Limits {
    max_attachment_bytes: 1024,
    max_message_bytes: 4096,
};

/// A mail of about 64 KiB from Grace with an attachment.
fn big_mail(id: &str) -> Vec<u8> {
    let scan = "QUJD".repeat(16 << 10);
    let mut raw = format!(
        "From: Grace Hopper <grace@example.net>\r\nTo: support@helpdesk.example\r\n\
         Subject: Scans of the contract\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nThe scans are attached.\r\n\
         --b\r\nContent-Type: image/png; name=scan.png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    );
    for line in scan.as_bytes().chunks(76) {
        raw.push_str(std::str::from_utf8(line).expect("ascii"));
        raw.push_str("\r\n");
    }
    raw.push_str("--b--\r\n");
    raw.into_bytes()
}

/// Ticket `number` holds one message from Grace that notes the mail's size instead of its
/// text, and the mail's raw row holds its header section only, with the same note.
async fn assert_kept_as_headers_and_a_note(db: &support::TestStore, number: i64, raw: &[u8]) {
    let ticket = store::tickets::detail(&db.store, number)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(ticket.summary.subject, "Scans of the contract");
    assert_eq!(ticket.summary.customer, "Grace Hopper");
    let message = &ticket.messages[0];
    let note = &message.body_text;
    assert!(
        note.contains("too large")
            && note.contains(&format!("({} bytes)", raw.len()))
            && note.contains("intake.max_message_bytes"),
        "{note}"
    );
    assert!(!note.contains("The scans are attached"), "{note}");
    assert!(message.attachments.is_empty());

    let id = ticket.messages[0]
        .external_id
        .clone()
        .expect("the Message-ID");
    let row = store::raw::find(&db.store, ChannelKind::Email, &id)
        .await
        .expect("read")
        .expect("kept raw");
    let headers_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end")
        + 4;
    assert_eq!(
        row.content,
        &raw[..headers_end],
        "the headers, not the body"
    );
    assert_eq!(row.size, headers_end as i64);
    assert_eq!(row.body_omitted.as_deref(), Some(note.as_str()));
    assert_eq!(row.intake_error, None);
}

store_test! {
    #[tokio::test]
    async fn a_mail_over_the_size_limit_becomes_a_ticket_of_its_headers_and_a_note(db: TestStore) {
        let small = db.intake_with(SMALL);
        let raw = big_mail("big@x");
        let number = created(&small.accept_email(raw.clone()).await.expect("taken in"));
        assert_kept_as_headers_and_a_note(&db, number, &raw).await;
        // Arriving again it is a duplicate, as any mail.
        assert_eq!(
            small.accept_email(raw).await.expect("again"),
            Outcome::Duplicate
        );
        // Headers that name no sender cannot make a ticket: kept raw with the note as error.
        let mut nameless = mail(&["Subject: who?", "Message-ID: <nameless@x>"], "");
        nameless.extend(std::iter::repeat_n(b'x', 8192));
        let outcome = small.accept_email(nameless).await.expect("kept");
        assert!(
            matches!(&outcome, Outcome::Rejected { reason }
                if reason.contains("too large") && reason.contains("no sender")),
            "{outcome:?}"
        );
    }
}

/// Runs `helpdesk ingest`'s reading and intake over `files` with `intake`.
async fn ingest_files(intake: &Intake, files: Vec<std::path::PathBuf>) -> ingest::Summary {
    let (messages, reader) = ingest::spawn_reader(files, intake.limits().max_message_bytes);
    let summary = ingest::run(intake, messages, 1, 8, |_| {}).await;
    assert!(reader.await.expect("reader").is_empty(), "files readable");
    summary
}

store_test! {
    #[tokio::test]
    async fn ingest_reads_only_the_headers_of_an_eml_file_or_mbox_message_over_the_limit(db: TestStore) {
        let small = db.intake_with(SMALL);
        let dir = tempfile::tempdir().expect("dir");
        let raw = big_mail("big-eml@x");
        let eml = dir.path().join("big.eml");
        std::fs::write(&eml, &raw).expect("write");
        let summary = ingest_files(&small, vec![eml]).await;
        assert_eq!(
            (summary.messages, summary.new_tickets),
            (1, 1),
            "{summary:?}"
        );
        assert_kept_as_headers_and_a_note(&db, 1001, &raw).await;

        // In an mbox, between two messages that arrive whole.
        let big = big_mail("big-mbox@x");
        let mut mbox = Vec::new();
        for message in [
            first("before@x", "ada@example.org", "Before"),
            big.clone(),
            first("after@x", "bob@example.org", "After"),
        ] {
            mbox.extend_from_slice(b"From someone Tue Nov 24 10:00:00 2026\r\n");
            mbox.extend_from_slice(&message);
            mbox.extend_from_slice(b"\r\n");
        }
        let path = dir.path().join("mail.mbox");
        std::fs::write(&path, &mbox).expect("write");
        let summary = ingest_files(&small, vec![path]).await;
        assert_eq!(
            (summary.messages, summary.new_tickets),
            (3, 3),
            "{summary:?}"
        );
        assert_kept_as_headers_and_a_note(&db, 1003, &big).await;
        for (number, subject) in [(1002, "Before"), (1004, "After")] {
            let ticket = store::tickets::detail(&db.store, number)
                .await
                .expect("read")
                .expect("exists");
            assert_eq!(ticket.summary.subject, subject);
            assert_eq!(
                ticket.messages[0].body_text.trim(),
                "Hello, my printer is on fire."
            );
        }
    }
}

/// The ticket each message of the channel ended on, by external id.
async fn ticket_of_each_message(store: &store::Store) -> std::collections::HashMap<String, i64> {
    let sql = "SELECT m.external_id, t.number FROM messages m JOIN tickets t ON t.id = m.ticket_id
               WHERE m.external_id IS NOT NULL";
    let rows: Vec<(String, i64)> = match store {
        store::Store::Sqlite { pool, .. } => sqlx::query_as(sql).fetch_all(pool).await,
        store::Store::Postgres { pool } => sqlx::query_as(sql).fetch_all(pool).await,
    }
    .expect("messages");
    rows.into_iter().collect()
}

/// Tickets that go on: not merged into another.
async fn unmerged_tickets(store: &store::Store) -> i64 {
    let sql = "SELECT COUNT(*) FROM tickets WHERE merged_into_ticket_id IS NULL";
    match store {
        store::Store::Sqlite { pool, .. } => sqlx::query_scalar(sql).fetch_one(pool).await,
        store::Store::Postgres { pool } => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .expect("count")
}

store_test! {
    #[tokio::test]
    async fn two_replies_taken_in_before_the_mail_they_answer_share_its_ticket(db: TestStore) {
        let first_reply = reply("s2@x", "s1@x", "<s1@x>", "Re: Scanner");
        let second_reply = reply("s3@x", "s1@x", "<s1@x>", "Re: Scanner");
        let number = created(&db.intake.accept_email(first_reply).await.expect("s2"));
        assert_eq!(
            threaded(&db.intake.accept_email(second_reply).await.expect("s3")),
            number,
            "{:?}: a reply to the same missing mail",
            db.backend()
        );
        let parent = first("s1@x", "ada@example.org", "Scanner");
        assert_eq!(
            threaded(&db.intake.accept_email(parent).await.expect("s1")),
            number
        );
        assert_eq!(
            store::tickets::totals(&db.store)
                .await
                .expect("totals")
                .tickets,
            1
        );
    }
}

store_test! {
    #[tokio::test]
    async fn a_mail_that_ties_two_tickets_of_one_conversation_together_makes_them_one(db: TestStore) {
        // A long conversation whose newest mail names only the ten before it (as mail clients
        // cut References), taken in before those ten: it cannot know its ticket yet.
        let ids: Vec<String> = (0..13).map(|i| format!("long{i}@x")).collect();
        let mail_at = |i: usize| {
            if i == 0 {
                return first(&ids[0], "ada@example.org", "Long story");
            }
            let references: Vec<String> = ids[i.saturating_sub(10)..i]
                .iter()
                .map(|id| format!("<{id}>"))
                .collect();
            reply(
                &ids[i],
                &ids[i - 1],
                &references.join(" "),
                "Re: Long story",
            )
        };
        let number = created(&db.intake.accept_email(mail_at(0)).await.expect("0"));
        let apart = created(&db.intake.accept_email(mail_at(12)).await.expect("12"));
        assert_ne!(apart, number);
        for i in 1..12 {
            assert_eq!(
                threaded(&db.intake.accept_email(mail_at(i)).await.expect("middle")),
                number,
                "{:?}: mail {i}",
                db.backend()
            );
        }
        let tickets = ticket_of_each_message(&db.store).await;
        assert!(
            ids.iter().all(|id| tickets.get(id) == Some(&number)),
            "{:?}: {tickets:?}",
            db.backend()
        );
        assert_eq!(unmerged_tickets(&db.store).await, 1);
        let merged = store::tickets::detail(&db.store, apart)
            .await
            .expect("read")
            .expect("kept");
        assert_eq!(merged.summary.status, "closed");
        assert!(
            merged
                .history
                .iter()
                .any(|e| e.kind == "merged"
                    && e.new_value.as_deref() == Some(&*format!("#{number}"))),
            "{:?}",
            merged.history
        );
    }
}

store_test! {
    #[tokio::test]
    async fn a_reply_taken_in_by_one_intake_before_its_parent_by_another_shares_its_ticket(db: TestStore) {
        let other = db.intake_with(support::LIMITS);
        // The reply comes by one intake (a mailbox), its parent later by another (a file).
        let number = created(
            &other
                .accept_email(reply("x2@x", "x1@x", "<x1@x>", "Re: Fax"))
                .await
                .expect("reply"),
        );
        let batch = prepared(
            &db,
            vec![
                first("x1@x", "ada@example.org", "Fax"),
                first("x9@x", "grace@example.net", "Other"),
            ],
        );
        let outcomes: Vec<Outcome> = db
            .intake
            .accept_batch(batch)
            .await
            .into_iter()
            .map(|outcome| outcome.expect("taken in"))
            .collect();
        assert_eq!(threaded(&outcomes[0]), number, "{:?}", db.backend());
        created(&outcomes[1]);
        let tickets = ticket_of_each_message(&db.store).await;
        assert_eq!(tickets["x1@x"], tickets["x2@x"]);
        assert_eq!(unmerged_tickets(&db.store).await, 2);
    }
}

store_test! {
    #[tokio::test]
    async fn in_a_batch_the_mail_a_reply_answers_opens_the_ticket_whatever_the_order(db: TestStore) {
        let batch = prepared(
            &db,
            vec![
                reply("bo3@x", "bo2@x", "<bo1@x> <bo2@x>", "Re: Re: Order"),
                reply("bo2@x", "bo1@x", "<bo1@x>", "Re: Order"),
                first("bo1@x", "ada@example.org", "Order"),
            ],
        );
        let outcomes: Vec<Outcome> = db
            .intake
            .accept_batch(batch)
            .await
            .into_iter()
            .map(|outcome| outcome.expect("taken in"))
            .collect();
        let number = created(&outcomes[2]);
        assert_eq!(threaded(&outcomes[1]), number);
        assert_eq!(threaded(&outcomes[0]), number);
        let ticket = store::tickets::summary(&db.store, number)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(ticket.subject, "Order", "{:?}", db.backend());
    }
}

/// A generated support inbox taken in as `helpdesk ingest` does (batches in flight at once),
/// in the order given.
async fn ingest_corpus(db: &support::TestStore, mails: Vec<Vec<u8>>, batch_size: usize) {
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    let feeder = tokio::spawn(async move {
        for (index, raw) in mails.into_iter().enumerate() {
            let message = helpdesk::ingest::SourceMessage {
                origin: format!("mail {index}"),
                mail: raw.into(),
            };
            if sender.send(message).await.is_err() {
                break;
            }
        }
    });
    let summary = helpdesk::ingest::run(&db.intake, receiver, 8, batch_size, |_| {}).await;
    feeder.await.expect("feeder");
    assert_eq!(
        (summary.failed, summary.rejected),
        (0, 0),
        "{:?} {:?}",
        summary.failures,
        summary.rejected_reasons
    );
}

#[tokio::test]
async fn a_generated_inbox_gives_one_ticket_per_conversation_in_any_order_and_timing() {
    use helpdesk::corpus::{self, CorpusSpec};
    let generated = corpus::generate(&CorpusSpec {
        messages: 1200,
        attachment_ratio: 0.0,
        ..CorpusSpec::default()
    });
    let conversations = generated.iter().filter(|mail| mail.starts_thread).count() as i64;
    let thread_of: Vec<(String, usize)> = generated
        .iter()
        .map(|mail| {
            let parsed = helpdesk_email::parse_message(&mail.raw).expect("parses");
            (parsed.external_id, mail.thread)
        })
        .collect();
    // Each run on a fresh database: in arrival order, and shuffled (every reply may come
    // before what it answers), in batches as SQLite's default and one by one as PostgreSQL's.
    for run in 0..4u64 {
        for db in stores(&format!("inbox_{run}")).await {
            let mut mails: Vec<Vec<u8>> = generated.iter().map(|mail| mail.raw.clone()).collect();
            if run > 0 {
                fastrand::Rng::with_seed(run).shuffle(&mut mails);
            }
            let batch_size = if run % 2 == 0 { 64 } else { 1 };
            ingest_corpus(&db, mails, batch_size).await;

            let tickets = ticket_of_each_message(&db.store).await;
            let mut ticket_of_thread = std::collections::HashMap::new();
            for (id, thread) in &thread_of {
                let number = tickets[id];
                let first_seen = *ticket_of_thread.entry(*thread).or_insert(number);
                assert_eq!(
                    first_seen,
                    number,
                    "{:?}, run {run}: conversation {thread} is on two tickets",
                    db.backend()
                );
            }
            assert_eq!(
                unmerged_tickets(&db.store).await,
                conversations,
                "{:?}, run {run}",
                db.backend()
            );
        }
    }
}

/// A mail that names `number` by its subject tag and nothing else.
fn tagged(id: &str, from: &str, number: i64) -> Vec<u8> {
    mail(
        &[
            &format!("From: {from}"),
            "To: support@helpdesk.example",
            &format!("Subject: Re: [#{number}] Printer"),
            &format!("Message-ID: <{id}>"),
        ],
        "Please send the invoice to my new address instead.",
    )
}

store_test! {
    #[tokio::test]
    async fn a_stranger_naming_a_ticket_by_its_tag_gets_a_new_linked_ticket(db: TestStore) {
        let number = created(
            &db.intake
                .accept_email(first("own1@x", "Ada Lovelace <ada@example.org>", "Printer"))
                .await
                .expect("first"),
        );
        // Under the customer's name, from another address.
        let stranger = tagged("evil1@x", "Ada Lovelace <mallory@evil.example>", number);
        let apart = created(&db.intake.accept_email(stranger).await.expect("stranger"));
        assert_ne!(apart, number, "{:?}", db.backend());

        let named = store::tickets::detail(&db.store, number)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(named.messages.len(), 1, "nothing joined the named ticket");
        assert_eq!(named.linked_from, vec![apart]);
        let back = named.history.last().expect("history");
        assert_eq!(back.kind, "linked");
        assert_eq!(back.text, format!("#{apart} opened apart from this ticket"));
        assert!(
            back.reason
                .as_deref()
                .is_some_and(|r| r.contains("mallory@evil.example")),
            "{back:?}"
        );

        let new = store::tickets::detail(&db.store, apart)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(new.linked_to, Some(number));
        assert!(
            new.history
                .iter()
                .any(|e| e.kind == "linked" && e.text == format!("Opened apart from #{number}")),
            "{:?}",
            new.history
        );
        let message = &new.messages[0];
        assert_eq!(message.author, "Ada Lovelace");
        assert_eq!(
            message.author_address.as_deref(),
            Some("mallory@evil.example")
        );
        // Not the customer of the named ticket, whatever the name says.
        assert_eq!(store::customers::count(&db.store).await.expect("count"), 2);
    }
}

store_test! {
    #[tokio::test]
    async fn the_customer_a_cc_participant_and_an_agent_may_name_the_ticket_by_its_tag(db: TestStore) {
        let opening = mail(
            &[
                "From: Ada Lovelace <ada@example.org>",
                "To: support@helpdesk.example",
                "Cc: Grace Hopper <Grace@Navy.example>",
                "Subject: Printer",
                "Message-ID: <k1@x>",
            ],
            "The printer is on fire.",
        );
        let number = created(&db.intake.accept_email(opening).await.expect("first"));
        support::plain_agent(&db.store, "alan@helpdesk.example", "Alan").await;
        for (id, from) in [
            ("k2@x", "Ada Lovelace <ADA@example.org>"),
            ("k3@x", "Grace Hopper <grace@navy.example>"),
            ("k4@x", "Alan <alan@helpdesk.example>"),
        ] {
            assert_eq!(
                threaded(
                    &db.intake
                        .accept_email(tagged(id, from, number))
                        .await
                        .expect("tagged")
                ),
                number,
                "{:?}: {from}",
                db.backend()
            );
        }
        let ticket = store::tickets::detail(&db.store, number)
            .await
            .expect("read")
            .expect("exists");
        let addresses: Vec<Option<&str>> = ticket
            .messages
            .iter()
            .map(|m| m.author_address.as_deref())
            .collect();
        assert_eq!(
            addresses,
            vec![
                Some("ada@example.org"),
                Some("ada@example.org"),
                Some("grace@navy.example"),
                Some("alan@helpdesk.example"),
            ]
        );
        assert!(ticket.linked_from.is_empty());
    }
}

store_test! {
    #[tokio::test]
    async fn a_forwarded_conversation_joins_by_its_headers_from_any_address(db: TestStore) {
        let number = created(
            &db.intake
                .accept_email(first("f1@x", "ada@example.org", "Printer"))
                .await
                .expect("first"),
        );
        let forwarded = mail(
            &[
                "From: Barbara Liskov <barbara@elsewhere.example>",
                &format!("Subject: Re: [#{number}] Printer"),
                "Message-ID: <f2@x>",
                "In-Reply-To: <f1@x>",
            ],
            "Ada asked me to answer: it is the fuser.",
        );
        assert_eq!(
            threaded(&db.intake.accept_email(forwarded).await.expect("forwarded")),
            number,
            "{:?}",
            db.backend()
        );
        // And once on the ticket by its headers, the same address may use the tag alone.
        assert_eq!(
            threaded(
                &db.intake
                    .accept_email(tagged("f3@x", "barbara@elsewhere.example", number))
                    .await
                    .expect("tagged")
            ),
            number
        );
    }
}

store_test! {
    #[tokio::test]
    async fn with_unknown_sender_tag_join_a_stranger_joins_the_named_ticket(db: TestStore) {
        let intake = db
            .intake
            .clone()
            .with_unknown_sender_tag(helpdesk::intake::UnknownSenderTag::Join);
        let number = created(
            &intake
                .accept_email(first("j1@x", "ada@example.org", "Printer"))
                .await
                .expect("first"),
        );
        assert_eq!(
            threaded(
                &intake
                    .accept_email(tagged("j2@x", "Ada <mallory@evil.example>", number))
                    .await
                    .expect("stranger")
            ),
            number,
            "{:?}",
            db.backend()
        );
        let ticket = store::tickets::detail(&db.store, number)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(
            ticket.messages[1].author_address.as_deref(),
            Some("mallory@evil.example")
        );
    }
}
