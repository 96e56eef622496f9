//! New mail opens a ticket: what is kept of it, its attachments, unreadable mail and odd
//! characters, and a customer's reply reopening a resolved ticket.

use super::*;
use helpdesk::domain::TicketNumber;

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

        let ticket = store::tickets::detail(&db.store, TicketNumber(1001))
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

        let ticket = store::tickets::detail(&db.store, a.into())
            .await
            .expect("read")
            .expect("exists");
        let attachment = &ticket.messages[0].attachments[0];
        assert_eq!(attachment.filename, "log.txt");
        assert_eq!(attachment.size, 6000);
        let sha = attachment.sha256.clone().expect("content kept");
        assert_eq!(db.blobs().get(&sha).await.expect("on disk").len(), 6000);

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
        let ticket = store::tickets::detail(&db.store, c.into())
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
    async fn a_customer_reply_reopens_a_resolved_ticket_and_a_closed_one_gets_a_follow_up(
        db: TestStore,
    ) {
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
                number.into(),
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
                    number: number.into(),
                    message_id,
                    reopened: true
                },
                ref other => panic!("{other:?}"),
            }
        );
        let ticket = store::tickets::detail(&db.store, number.into())
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
            number.into(),
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
            number.into(),
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
        let ticket = store::tickets::detail(&db.store, follow_up.into())
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
        let ticket = store::tickets::detail(&db.store, number.into())
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

store_test! {
    #[tokio::test]
    async fn migrations_can_run_again(db: TestStore) {
        db.store.migrate().await.expect("second run is a no-op");
        if db.backend() == Backend::Postgres {
            assert!(db.url.contains(&support::database_name(module_path!())));
        }
    }
}
