//! One search document per ticket: words anywhere in the ticket, prefixes, numbers, addresses
//! by any part, ranking by relevance and its pages, departments, and the index following
//! every write.

use helpdesk::domain::AssignmentStrategy;
use helpdesk::intake::Outcome;
use helpdesk::store::Store;
use helpdesk::store::views::{self, Cursor, ListQuery, Sort, Visibility};

use crate::support::{TestStore, mail, plain_agent};

/// Takes in a mail and answers its ticket's number.
async fn mail_in(db: &TestStore, id: &str, from: &str, subject: &str, body: &str) -> i64 {
    let raw = mail(
        &[
            &format!("From: {from}"),
            &format!("Subject: {subject}"),
            &format!("Message-ID: <{id}>"),
        ],
        body,
    );
    match db.intake.accept_email(raw).await.expect("intake") {
        Outcome::Created { number, .. } | Outcome::Threaded { number, .. } => number.get(),
        other => panic!("not a ticket: {other:?}"),
    }
}

/// Runs one statement of test setup.
async fn execute(store: &Store, sql: &str) {
    match store {
        Store::Sqlite { writer, .. } => sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(writer)
            .await
            .map(|done| done.rows_affected()),
        Store::Postgres { pool } => sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()),
    }
    .expect(sql);
}

fn search(text: &str) -> ListQuery {
    ListQuery {
        search: Some(text.to_owned()),
        ..ListQuery::default()
    }
}

async fn found(store: &Store, query: ListQuery) -> Vec<i64> {
    views::list_tickets(store, &query)
        .await
        .expect("search")
        .tickets
        .iter()
        .map(|ticket| ticket.number.get())
        .collect()
}

/// Every page of `query` read forwards with `limit`, then back from the last with `before`.
async fn all_pages(store: &Store, query: ListQuery, limit: i64) -> Vec<i64> {
    let mut numbers = Vec::new();
    let mut pages = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = views::list_tickets(
            store,
            &ListQuery {
                after,
                limit,
                ..query.clone()
            },
        )
        .await
        .expect("page");
        numbers.extend(page.tickets.iter().map(|ticket| ticket.number.get()));
        pages.push(page.clone());
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    // Back from the last page: each previous page is the one read before it.
    for at in (1..pages.len()).rev() {
        let before = views::list_tickets(
            store,
            &ListQuery {
                before: pages[at].previous,
                limit,
                ..query.clone()
            },
        )
        .await
        .expect("page before");
        let read: Vec<i64> = pages[at - 1]
            .tickets
            .iter()
            .map(|t| t.number.get())
            .collect();
        let again: Vec<i64> = before.tickets.iter().map(|t| t.number.get()).collect();
        assert_eq!(again, read, "page {at} back");
    }
    numbers
}

store_test! {
    #[tokio::test]
    async fn words_anywhere_in_a_ticket_prefixes_and_numbers(db: TestStore) {
        let s = &db.store;
        let jam = mail_in(&db, "w1@x", "ada@example.org", "Printer jam", "The tray is stuck").await;
        let refund =
            mail_in(&db, "w2@x", "bob@example.org", "Invoice question", "Please send the refund")
                .await;
        let floor =
            mail_in(&db, "w3@x", "cy@example.org", "Hello", "Printing fails on the third floor")
                .await;

        // Two words: in the subject and a message of the same ticket, any case.
        assert_eq!(found(s, search("invoice REFUND")).await, vec![refund]);
        assert_eq!(found(s, search("printer tray")).await, vec![jam]);
        assert!(found(s, search("printer refund")).await.is_empty());
        // Whole words unless asked for a prefix.
        assert_eq!(found(s, search("printer")).await, vec![jam]);
        assert!(found(s, search("print")).await.is_empty());
        assert_eq!(found(s, search("print*")).await, vec![floor, jam]);
        assert_eq!(found(s, search("pri* jam")).await, vec![jam]);
        // A number is exactly that ticket.
        assert_eq!(found(s, search(&format!("#{refund}"))).await, vec![refund]);
        // Quotes and FTS syntax in the text are words, not syntax.
        assert!(found(s, search("\"printer OR refund")).await.is_empty());
    }
}

store_test! {
    #[tokio::test]
    async fn customers_are_found_by_any_part_of_their_address(db: TestStore) {
        let s = &db.store;
        let ada = mail_in(&db, "a1@x", "ada.lovelace@analytical.example", "Engine", "notes").await;
        let bob = mail_in(&db, "b1@x", "bob@builder.example", "Wall", "bricks").await;

        assert_eq!(found(s, search("lovelace@anal")).await, vec![ada]);
        assert_eq!(found(s, search("ANALYTICAL.EXAMPLE")).await, vec![ada]);
        assert_eq!(found(s, search("ada.lovelace@analytical.example")).await, vec![ada]);
        assert_eq!(found(s, search("builder")).await, vec![bob]);
        assert_eq!(found(s, search(".example")).await, vec![bob, ada]);
        // Fewer than three characters are not looked for inside addresses.
        assert!(found(s, search("bo")).await.is_empty());
    }
}

store_test! {
    #[tokio::test]
    async fn relevance_ranks_and_pages_by_score(db: TestStore) {
        let s = &db.store;
        let mut tickets = Vec::new();
        // Older tickets say "backup" more often: relevance turns the newest-first order round.
        for (k, times) in [5, 4, 3, 2, 1].into_iter().enumerate() {
            let body = vec!["backup"; times].join(" and ");
            let number = mail_in(
                &db,
                &format!("r{k}@x"),
                "ada@example.org",
                &format!("Nightly run {k}"),
                &format!("{body} with some more words about the weather"),
            )
            .await;
            tickets.push(number);
        }
        let titled = mail_in(&db, "r9@x", "bob@example.org", "Backup failed", "see logs").await;
        mail_in(&db, "r10@x", "bob@example.org", "Other", "nothing here").await;

        let newest_first = found(s, search("backup")).await;
        let mut expected: Vec<i64> = tickets.iter().rev().copied().collect();
        expected.insert(0, titled);
        assert_eq!(newest_first, expected);

        let ranked = ListQuery {
            sort: Sort::Relevance,
            ..search("backup")
        };
        let best = found(s, ranked.clone()).await;
        assert_eq!(best.len(), 6);
        // More mentions of the word rank higher among the same kind of ticket.
        assert_eq!(best.iter().filter(|n| tickets.contains(n)).copied().collect::<Vec<_>>(), tickets);
        // Pages of two by score, forwards and back, are the whole ranking.
        assert_eq!(all_pages(s, ranked.clone(), 2).await, best);
        assert_eq!(all_pages(s, search("backup"), 2).await, newest_first);
        // The ticket a number names comes first; a search without words lists as usual.
        let numbered = found(
            s,
            ListQuery {
                sort: Sort::Relevance,
                ..search(&titled.to_string())
            },
        )
        .await;
        assert_eq!(numbered.first(), Some(&titled));
        let plain = found(
            s,
            ListQuery {
                sort: Sort::Relevance,
                ..ListQuery::default()
            },
        )
        .await;
        assert_eq!(plain, found(s, ListQuery::default()).await);
    }
}

store_test! {
    #[tokio::test]
    async fn agents_find_only_their_departments_tickets(db: TestStore) {
        let s = &db.store;
        let now = chrono::Utc::now();
        let ours =
            helpdesk::store::agents::create_department(s, "Ours", AssignmentStrategy::RoundRobin, now)
                .await
                .expect("department");
        let theirs = helpdesk::store::agents::create_department(
            s,
            "Theirs",
            AssignmentStrategy::RoundRobin,
            now,
        )
        .await
        .expect("department");
        let agent = plain_agent(s, "olga@helpdesk.example", "Olga").await;
        execute(
            s,
            &format!(
                "INSERT INTO agent_departments (agent_id, department_id) VALUES ({agent}, {})",
                ours.id
            ),
        )
        .await;
        let mine = mail_in(&db, "d1@x", "ada@example.org", "Outage", "the lights").await;
        let other = mail_in(&db, "d2@x", "ada@example.org", "Outage", "the water").await;
        for (number, department) in [(mine, ours.id), (other, theirs.id)] {
            execute(
                s,
                &format!("UPDATE tickets SET department_id = {department} WHERE number = {number}"),
            )
            .await;
        }
        let as_agent = |query: ListQuery| ListQuery {
            visibility: Visibility::Agent(agent),
            ..query
        };
        assert_eq!(found(s, search("outage")).await, vec![other, mine]);
        assert_eq!(found(s, as_agent(search("outage"))).await, vec![mine]);
        assert_eq!(found(s, as_agent(search("ada@example.org"))).await, vec![mine]);
        assert_eq!(found(s, as_agent(search(&format!("#{other}")))).await, Vec::<i64>::new());
        let ranked = ListQuery {
            sort: Sort::Relevance,
            ..as_agent(search("outage"))
        };
        assert_eq!(found(s, ranked).await, vec![mine]);
        // Many of another department's tickets newer than the agent's match too: the range
        // read in the list's order grows until it holds the agent's page.
        for k in 0..300 {
            execute(
                s,
                &format!(
                    "INSERT INTO tickets (number, subject, status, priority, department_id,
                                          customer_id, channel, created_at, updated_at)
                     SELECT 90000 + {k}, 'Outage elsewhere', 'new', 'normal', {}, customer_id,
                            'email', updated_at, updated_at
                     FROM tickets WHERE number = {other}",
                    theirs.id
                ),
            )
            .await;
        }
        assert_eq!(found(s, as_agent(search("outage"))).await, vec![mine]);
        assert_eq!(found(s, search("outage")).await.len(), 50);
    }
}

store_test! {
    #[tokio::test]
    async fn new_edited_moved_and_deleted_messages_are_found_as_they_are(db: TestStore) {
        let s = &db.store;
        let number = mail_in(&db, "e1@x", "ada@example.org", "Fruit", "apple").await;
        let other = mail_in(&db, "e2@x", "bob@example.org", "Veg", "carrot").await;
        // A reply joins the ticket and is found at once.
        let raw = mail(
            &[
                "From: ada@example.org",
                "Subject: Re: Fruit",
                "Message-ID: <e3@x>",
                "In-Reply-To: <e1@x>",
            ],
            "kiwi",
        );
        db.intake.accept_email(raw).await.expect("reply");
        assert_eq!(found(s, search("kiwi")).await, vec![number]);
        assert_eq!(found(s, search("apple kiwi")).await, vec![number]);

        // Edited: the new words, not the old.
        execute(s, "UPDATE messages SET body_text = 'mango' WHERE body_text LIKE '%kiwi%'").await;
        assert_eq!(found(s, search("mango")).await, vec![number]);
        assert!(found(s, search("kiwi")).await.is_empty());
        execute(s, &format!("UPDATE tickets SET subject = 'Papaya' WHERE number = {number}")).await;
        assert_eq!(found(s, search("papaya mango")).await, vec![number]);
        assert!(found(s, search("fruit")).await.is_empty());

        // Any change of the ticket keeps exactly one document.
        for status in ["open", "pending", "open"] {
            execute(
                s,
                &format!(
                    "UPDATE tickets SET status = '{status}', updated_at = updated_at
                     WHERE number = {number}"
                ),
            )
            .await;
        }
        assert_eq!(found(s, search("papaya")).await, vec![number]);

        // Moved to another ticket (as a merge does): found on that ticket only.
        execute(
            s,
            &format!(
                "UPDATE messages SET ticket_id = (SELECT id FROM tickets WHERE number = {other})
                 WHERE body_text = 'mango'"
            ),
        )
        .await;
        assert_eq!(found(s, search("mango")).await, vec![other]);
        assert_eq!(found(s, search("carrot mango")).await, vec![other]);
        // Deleted: gone.
        execute(s, "DELETE FROM messages WHERE body_text = 'mango'").await;
        assert!(found(s, search("mango")).await.is_empty());
        assert_eq!(found(s, search("carrot")).await, vec![other]);
    }
}
