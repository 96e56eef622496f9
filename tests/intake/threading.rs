//! Threading: replies find their ticket by headers or subject tag, in any order of arrival,
//! across intakes and batches.

use super::*;

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
    async fn a_mail_that_ties_two_tickets_of_one_conversation_together_makes_them_one(
        db: TestStore,
    ) {
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
        let merged = store::tickets::detail(&db.store, apart.into())
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
    async fn a_reply_taken_in_by_one_intake_before_its_parent_by_another_shares_its_ticket(
        db: TestStore,
    ) {
        let other = db.intake_with(support::LIMITS);
        // The reply comes by one intake (a mailbox), its parent later by another (a file).
        let number = created(
            &other
                .accept_email(reply("x2@x", "x1@x", "<x1@x>", "Re: Fax"))
                .await
                .expect("reply"),
        );
        let outcomes = take_in_batch(
            &db,
            vec![
                first("x1@x", "ada@example.org", "Fax"),
                first("x9@x", "grace@example.net", "Other"),
            ],
        )
        .await;
        assert_eq!(threaded(&outcomes[0]), number, "{:?}", db.backend());
        created(&outcomes[1]);
        let tickets = ticket_of_each_message(&db.store).await;
        assert_eq!(tickets["x1@x"], tickets["x2@x"]);
        assert_eq!(unmerged_tickets(&db.store).await, 2);
    }
}

store_test! {
    #[tokio::test]
    async fn in_a_batch_the_mail_a_reply_answers_opens_the_ticket_whatever_the_order(
        db: TestStore,
    ) {
        let outcomes = take_in_batch(
            &db,
            vec![
                reply("bo3@x", "bo2@x", "<bo1@x> <bo2@x>", "Re: Re: Order"),
                reply("bo2@x", "bo1@x", "<bo1@x>", "Re: Order"),
                first("bo1@x", "ada@example.org", "Order"),
            ],
        )
        .await;
        let number = created(&outcomes[2]);
        assert_eq!(threaded(&outcomes[1]), number);
        assert_eq!(threaded(&outcomes[0]), number);
        let ticket = store::tickets::summary(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(ticket.subject, "Order", "{:?}", db.backend());
    }
}

/// A generated support inbox taken in as `helpdesk ingest` does (8 batches in flight at once,
/// its default on PostgreSQL), in the order given.
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
    // before what it answers), in large batches (SQLite's default is 256), one by one, and in
    // batches of 16 (PostgreSQL's default).
    for run in 0..5u64 {
        for db in stores(&format!("inbox_{run}")).await {
            let mut mails: Vec<Vec<u8>> = generated.iter().map(|mail| mail.raw.clone()).collect();
            if run > 0 {
                fastrand::Rng::with_seed(run).shuffle(&mut mails);
            }
            let batch_size = match run {
                4 => 16,
                even if even % 2 == 0 => 64,
                _ => 1,
            };
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
            if let store::Store::Postgres { pool } = &db.store {
                // A bulk import has PostgreSQL gather its statistics as the tables grow
                // (`Store::refresh_statistics`): plans made on the empty tables would scan them.
                let analyzed: bool = sqlx::query_scalar(
                    "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables
                     WHERE relid = 'tickets'::regclass",
                )
                .fetch_one(pool)
                .await
                .expect("statistics");
                assert!(analyzed, "run {run}: tickets never analysed");
            }
        }
    }
}
