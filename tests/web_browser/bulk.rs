//! Bulk actions in the browser: three tickets ticked on the list close in one action, and the
//! list shows them closed; "select all on this page" ticks every row.

use super::*;

/// The XPath of the list row whose box is labelled for ticket `number`.
fn row(number: i64) -> String {
    format!("//tr[td/input[@aria-label='Select #{number}']]")
}

store_test! {
    #[tokio::test]
    async fn three_tickets_ticked_on_the_list_close_together(db: TestStore) {
        let Some(chromedriver) = require_chromedriver() else {
            return;
        };
        let session = Session::start(&chromedriver, db).await;
        let client = &session.client;
        let app = &session.app;
        let mut numbers = Vec::new();
        for i in 0..3 {
            numbers.push(
                app.ticket(
                    &format!("browser-bulk-{i}@example.org"),
                    &format!("Outage report {i}"),
                    "Nothing works.",
                )
                .await,
            );
        }
        let other = app
            .ticket("browser-bulk-9@example.org", "Unrelated", "Hello")
            .await;

        session.open("/tickets?sort=created_asc&status=any", "Tickets").await;
        wait_on_page(client, "//output[@id='bulk-count' and .='0 selected']").await;
        for number in &numbers {
            click(client, &format!("input[aria-label='Select #{number}']")).await;
        }
        wait_on_page(client, "//output[@id='bulk-count' and .='3 selected']").await;
        screenshot(client, "bulk-selected").await;
        click(client, "#bulk-form button[value=close]").await;

        wait_on_page(
            client,
            "//p[@id='bulk-notice' and contains(., '3 tickets closed.')]",
        )
        .await;
        for number in &numbers {
            wait_on_page(
                client,
                &format!("{}//span[contains(@class, 'status-closed')]", row(*number)),
            )
            .await;
        }
        wait_on_page(
            client,
            &format!("{}//span[contains(@class, 'status-new')]", row(other)),
        )
        .await;
        screenshot(client, "bulk-closed").await;
        for number in &numbers {
            assert_eq!(
                app.detail(*number).await.summary.status.to_string(),
                "closed"
            );
        }

        // "Select all on this page" ticks every row.
        click(client, "#select-page").await;
        wait_on_page(client, "//output[@id='bulk-count' and .='4 selected']").await;

        session.finish().await;
    }
}
