//! The ticket list's full-text search on a table large enough that common words are walked
//! in the list's order and rare ones collected from the text indexes: both give the page the
//! plain definition gives. Customers' addresses and names find their tickets in both plans.

use helpdesk::domain::Status;
use helpdesk::store::Store;
use helpdesk::store::views::{self, ListQuery};

mod documents;

/// Enough tickets that a word in every sixteenth subject counts as common.
const TICKETS: i64 = 12_000;

fn numbers(page: &views::TicketPage) -> Vec<i64> {
    page.tickets
        .iter()
        .map(|ticket| ticket.number.get())
        .collect()
}

/// The page by definition: subjects holding `word`, newest change first.
async fn expected(store: &Store, word: &str, status: Option<&str>, limit: i64) -> Vec<i64> {
    let sql = "SELECT number FROM tickets
               WHERE LOWER(subject) LIKE '%' || $1 || '%' AND ($2 IS NULL OR status = $2)
               ORDER BY updated_at DESC, id DESC LIMIT $3";
    let rows = match store {
        Store::Sqlite { pool, .. } => {
            sqlx::query_scalar(sql)
                .bind(word)
                .bind(status)
                .bind(limit)
                .fetch_all(pool)
                .await
        }
        Store::Postgres { pool } => {
            sqlx::query_scalar(sql)
                .bind(word)
                .bind(status)
                .bind(limit)
                .fetch_all(pool)
                .await
        }
    };
    rows.expect("expected page")
}

/// The first two pages of a search for `word` are those of its definition.
async fn assert_first_two_pages(store: &Store, word: &str) {
    let search = ListQuery {
        search: Some(word.to_owned()),
        ..ListQuery::default()
    };
    let page = views::list_tickets(store, &search).await.expect("search");
    let both = expected(store, word, None, 100).await;
    assert_eq!(numbers(&page), both[..50].to_vec(), "{word}");
    let next = views::list_tickets(
        store,
        &ListQuery {
            after: page.next,
            ..search
        },
    )
    .await
    .expect("second page");
    assert_eq!(numbers(&next), both[50..].to_vec(), "{word}");
}

store_test! {
    #[tokio::test]
    async fn common_and_rare_words_find_the_same_pages_as_their_definition(db: TestStore) {
        let s = &db.store;
        helpdesk::web::bench::fill(s, TICKETS)
            .await
            .expect("filled");
        let search = |text: &str| ListQuery {
            search: Some(text.to_owned()),
            ..ListQuery::default()
        };

        // Rare enough (one subject in sixteen) to be collected from the indexes.
        assert_first_two_pages(s, "printer").await;
        // In every subject: walked in the list's order, page after page, filtered or not.
        assert_first_two_pages(s, "question").await;
        let closed = views::list_tickets(
            s,
            &ListQuery {
                status: Some(Status::Closed),
                ..search("question")
            },
        )
        .await
        .expect("filtered search");
        assert_eq!(
            numbers(&closed),
            expected(s, "question", Some("closed"), 50).await
        );

        // A common word among few tickets (a tag): the walk finds less than a page, and the
        // search collects instead.
        for number in [1100, 1200, 1300] {
            let sql = "INSERT INTO ticket_tags (ticket_id, tag)
                       SELECT id, 'vip' FROM tickets WHERE number = $1";
            match s {
                Store::Sqlite { writer, .. } => sqlx::query(sql)
                    .bind(number)
                    .execute(writer)
                    .await
                    .map(|done| done.rows_affected()),
                Store::Postgres { pool } => sqlx::query(sql)
                    .bind(number)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected()),
            }
            .expect("tagged");
        }
        let tagged = views::list_tickets(
            s,
            &ListQuery {
                tag: Some("vip".into()),
                ..search("question")
            },
        )
        .await
        .expect("tagged search");
        let mut found = numbers(&tagged);
        found.sort_unstable();
        assert_eq!(found, vec![1100, 1200, 1300]);

        // In every message: the first page is the list's own first page.
        let everywhere = views::list_tickets(s, &search("hello"))
            .await
            .expect("search");
        let plain = views::list_tickets(s, &ListQuery::default())
            .await
            .expect("list");
        assert_eq!(numbers(&everywhere), numbers(&plain));

        // A common word and a rare one together: one ticket, collected.
        let one = views::list_tickets(s, &search("question 4321"))
            .await
            .expect("search");
        assert_eq!(numbers(&one), vec![1000 + 4321]);
        assert!(one.next.is_none());

        // Common words that never meet: nothing, after the walk finds less than a page.
        let none = views::list_tickets(s, &search("printer refund"))
            .await
            .expect("search");
        assert!(none.tickets.is_empty(), "{:?}", numbers(&none));

        // A number is found as ticket #1777 and in the subject "Question 1777" of #2777.
        let by_number = views::list_tickets(s, &search("#1777"))
            .await
            .expect("search");
        assert_eq!(numbers(&by_number), vec![2777, 1777]);

        // Customers by address (any case) and by every word of the name: the filled tickets go
        // to the customers in turn, so customer77@example.org, "Customer 77", has #1076 only.
        for text in ["Customer77@Example.org", "customer 77"] {
            let found = views::list_tickets(s, &search(text)).await.expect("search");
            assert_eq!(numbers(&found), vec![1076], "{text}");
        }
        // A name every customer has: their tickets are walked, the first page is the list's.
        let everyone = views::list_tickets(s, &search("customer"))
            .await
            .expect("search");
        assert_eq!(numbers(&everyone), numbers(&plain));
        assert!(everyone.next.is_some());
        // The customer filter with a search: only that customer's matching tickets.
        let theirs = views::list_tickets(
            s,
            &ListQuery {
                customer_id: Some(77),
                ..search("question")
            },
        )
        .await
        .expect("search");
        assert_eq!(numbers(&theirs), vec![1076]);
    }
}
