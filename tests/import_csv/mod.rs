//! `helpdesk import csv` on every backend: good rows become tickets with their history, bad rows
//! are reported by line and leave nothing behind, and a second import of the file changes
//! nothing.

use crate::support;
use chrono::Utc;
use helpdesk::domain::AssignmentStrategy;
use helpdesk::domain::TicketNumber;
use helpdesk::import_csv;
use helpdesk::store;

const FILE: &str = "\
number,subject,customer_email,customer_name,status,priority,department,assignee,created_at,body,tags
5001,Printer on fire,ada@example.org,Ada Lovelace,open,urgent,Technical,sam@helpdesk.example,2024-03-01T09:30:00Z,\"It smokes.
Please come.\",hardware;fire
,No number given,bob@example.org,,,,,,2024-03-02 10:00,Hello there,
5002,Bad status,carl@example.org,,lost,,,,,text,
5003,Unknown department,dora@example.org,,,,Sales,,,text,
5004,,erin@example.org,,,,,,,no subject,
5001,Number taken,fay@example.org,,,,,,,text,
5005,Resolved long ago,ada@example.org,,resolved,low,,,2023-12-24,Thanks!,
";

store_test! {
    #[tokio::test]
    async fn good_rows_become_tickets_and_bad_rows_are_reported_by_line(db: TestStore) {
        let s = &db.store;
        store::agents::create_department(
            s,
            "Technical",
            AssignmentStrategy::RoundRobin,
            Utc::now(),
        )
        .await
        .expect("department");
        support::plain_agent(s, "sam@helpdesk.example", "Sam").await;

        let report = import_csv::import(s, FILE, Utc::now())
            .await
            .expect("imported");
        assert_eq!(report.rows, 7);
        assert_eq!(report.imported.len(), 3, "{report:?}");
        assert_eq!(report.imported[0], 5001);
        assert_eq!(report.imported[2], 5005);
        let skipped: Vec<(u64, &str)> = report
            .skipped
            .iter()
            .map(|row| (row.line, row.reason.as_str()))
            .collect();
        assert_eq!(skipped.len(), 4, "{skipped:?}");
        // The first row spans lines 2 and 3, so the rows after it start one line later.
        assert_eq!(skipped[0].0, 5);
        assert!(skipped[0].1.contains("unknown status"), "{skipped:?}");
        assert_eq!(skipped[1].0, 6);
        assert!(skipped[1].1.contains("no department named \"Sales\""));
        assert_eq!(skipped[2].0, 7);
        assert!(skipped[2].1.contains("subject is empty"));
        assert_eq!(skipped[3].0, 8);
        assert!(skipped[3].1.contains("#5001 exists already"));
        // Nothing of a skipped row was stored: not even its customer.
        let customers =
            store::customer_views::list(s, store::views::Visibility::All, Some("fay@"), 0, 10)
                .await
                .expect("customers");
        assert!(customers.is_empty());

        let fire = store::tickets::detail(s, TicketNumber(5001))
            .await
            .expect("read")
            .expect("ticket");
        assert_eq!(fire.summary.status, "open");
        assert_eq!(fire.summary.priority, "urgent");
        assert_eq!(fire.summary.department.as_deref(), Some("Technical"));
        assert_eq!(fire.summary.assignee.as_deref(), Some("Sam"));
        assert_eq!(fire.summary.customer, "Ada Lovelace");
        assert_eq!(
            fire.summary.created_at.to_rfc3339(),
            "2024-03-01T09:30:00+00:00"
        );
        assert_eq!(fire.messages[0].body_text, "It smokes.\nPlease come.");
        let kinds: Vec<&str> = fire.history.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "created",
                "imported",
                "priority",
                "department",
                "assignee",
                "status"
            ]
        );
        assert!(
            fire.history[1]
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("CSV line 2"))
        );
        let facts = store::views::ticket_facts(s, 5001.into())
            .await
            .expect("read")
            .expect("facts");
        assert_eq!(
            store::views::tags(s, facts.id).await.expect("tags"),
            ["fire", "hardware"]
        );
        // The row without a number took the next free one; new tickets never take imported ones.
        assert!(report.imported[1] != 5001 && report.imported[1] != 5005);
        let raw = support::mail(
            &[
                "From: new@example.org",
                "Subject: After import",
                "Message-ID: <after@x>",
            ],
            "hi",
        );
        let after = db.intake.accept_email(raw).await.expect("taken in");
        let number = after.ticket_number().expect("ticket");
        assert!(number > TicketNumber(5005), "{number}");

        // Feeding the file again imports nothing twice.
        let again = import_csv::import(s, FILE, Utc::now())
            .await
            .expect("imported");
        assert!(again.imported.is_empty(), "{again:?}");
        assert_eq!(again.already_imported, 3);
        assert_eq!(store::tickets::totals(s).await.expect("totals").tickets, 4);

        // A header that cannot be read stops before anything is stored.
        let wrong = import_csv::import(s, "subject,email,body\nx,y,z\n", Utc::now()).await;
        assert!(wrong.is_err_and(|e| e.to_string().contains("unknown column \"email\"")));
    }
}
