//! Duplicates and concurrency: one message taken in twice or at once, and batches that commit
//! or fail together.

use super::*;

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

store_test! {
    #[tokio::test]
    async fn a_batch_commits_together_and_reports_each_message_in_order(db: TestStore) {
        let outcomes = take_in_batch(
            &db,
            vec![
                first("b1@x", "ada@example.org", "Batch parent"),
                reply("b2@x", "b1@x", "<b1@x>", "Re: Batch parent"),
                b"garbage without headers".to_vec(),
                first("b1@x", "ada@example.org", "Batch parent"),
                first("b3@x", "grace@example.net", "Other"),
            ],
        )
        .await;
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
    async fn a_batch_writes_each_messages_files_and_follow_up_work_after_its_messages(
        db: TestStore,
    ) {
        let file = |id: &str, from: &str, name: &str| {
            support::mail_with_file(
                &[
                    &format!("From: {from}"),
                    &format!("Message-ID: <{id}>"),
                    "Subject: The log",
                ],
                name,
                "the same bytes",
            )
        };
        let outcomes = take_in_batch(
            &db,
            vec![
                file("f1@x", "ada@example.org", "ada.log"),
                reply("f2@x", "f1@x", "<f1@x>", "Re: The log"),
                file("f3@x", "grace@example.net", "grace.log"),
            ],
        )
        .await;
        let (ada, grace) = (created(&outcomes[0]), created(&outcomes[2]));
        assert_eq!(threaded(&outcomes[1]), ada, "{outcomes:?}");

        for (number, name) in [(ada, "ada.log"), (grace, "grace.log")] {
            let ticket = store::tickets::detail(&db.store, number.into())
                .await
                .expect("read")
                .expect("exists");
            let names: Vec<&str> = ticket.messages[0]
                .attachments
                .iter()
                .map(|attachment| attachment.filename.as_str())
                .collect();
            assert_eq!(names, [name], "#{number}: each file on its own message");
            assert!(ticket.messages[0].attachments[0].sha256.is_some());
        }
        let (blobs, _) = store::attachments::blob_totals(&db.store)
            .await
            .expect("totals");
        assert_eq!(blobs, 1, "one content for the two files");

        let message_id = |outcome: &Outcome| match outcome {
            Outcome::Created { message_id, .. } | Outcome::Threaded { message_id, .. } => {
                Some(*message_id)
            }
            _ => None,
        };
        let pending: Vec<(String, Option<i64>)> = store::outbox::pending(&db.store, 10)
            .await
            .expect("outbox")
            .into_iter()
            .map(|entry| (entry.kind, entry.message_id))
            .collect();
        assert_eq!(
            pending,
            [
                ("ticket_created".to_owned(), message_id(&outcomes[0])),
                ("customer_replied".to_owned(), message_id(&outcomes[1])),
                ("ticket_created".to_owned(), message_id(&outcomes[2])),
            ],
            "one entry per message, in the batch's order"
        );
    }
}

store_test! {
    #[tokio::test]
    async fn a_ticket_takes_a_batchs_messages_in_the_batchs_order(db: TestStore) {
        // A batch is written in waves: a message waits for an earlier one it shares a thread
        // key with (here: Ada, new again as far as the batch knows). A later message of the
        // same ticket that shares no key with it must wait too, or the ticket's messages would
        // go in out of the batch's order.
        let number = created(&take_in_batch(&db, vec![first("p1@x", "ada@example.org", "Fire")]).await[0]);
        let p2 = reply("p2@x", "p1@x", "<p1@x>", "Re: Fire");
        assert_eq!(threaded(&take_in_batch(&db, vec![p2]).await[0]), number);
        let other_sender = |id: &str, parent: &str| {
            mail(
                &[
                    "From: Lin Shu <lin@example.net>",
                    "Subject: Re: Fire",
                    &format!("Message-ID: <{id}>"),
                    &format!("In-Reply-To: <{parent}>"),
                    &format!("References: <{parent}>"),
                ],
                "Same here.\r\n",
            )
        };
        let outcomes = take_in_batch(
            &db,
            vec![
                first("x@x", "ada@example.org", "Something else"),
                reply("a@x", "p1@x", "<p1@x>", "Re: Fire"),
                other_sender("c@x", "p2@x"),
            ],
        )
        .await;
        created(&outcomes[0]);
        assert_eq!(threaded(&outcomes[1]), number, "{outcomes:?}");
        assert_eq!(threaded(&outcomes[2]), number, "{outcomes:?}");
        let ticket = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        let order: Vec<&str> = ticket
            .messages
            .iter()
            .filter_map(|message| message.external_id.as_deref())
            .collect();
        assert_eq!(order, ["p1@x", "p2@x", "a@x", "c@x"]);
    }
}
