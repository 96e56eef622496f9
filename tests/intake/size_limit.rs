//! Mail over the size limit becomes a ticket of its headers and a note, also from files.

use super::*;
use helpdesk::domain::TicketNumber;

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
    let ticket = store::tickets::detail(&db.store, number.into())
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
    async fn ingest_reads_only_the_headers_of_an_eml_file_or_mbox_message_over_the_limit(
        db: TestStore,
    ) {
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
            let ticket = store::tickets::detail(&db.store, TicketNumber(number))
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
