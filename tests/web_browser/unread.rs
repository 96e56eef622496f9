//! The unread marker in the browser: it appears in the open list when a customer writes and is
//! gone once the ticket was opened.

use super::*;

store_test! {
    #[tokio::test]
    async fn the_unread_marker_appears_live_and_clears_after_opening(db: TestStore) {
        let Some(chromedriver) = require_chromedriver() else {
            return;
        };
        let session = Session::start(&chromedriver, db).await;
        let client = &session.client;
        let app = &session.app;
        session.open("/tickets", "Tickets").await;

        let number = app
            .ticket("unread-browser@example.org", "Scanner jammed", "Paper stuck.")
            .await;
        let marked = format!(
            "//tr[contains(@class, 'unread')][.//a[.='#{number}']]\
             //span[contains(@class, 'unread-mark') and contains(., 'new')]"
        );
        wait_on_page(client, &marked).await;
        screenshot(client, "tickets-unread").await;

        click(client, &format!("a[href='/tickets/{number}']")).await;
        wait_on_page(client, &format!("//h1[contains(., '#{number}')]")).await;
        wait_on_page(client, "//span[@id='waiting' and .='Waiting for us']").await;
        session.open("/tickets", "Tickets").await;
        wait_on_page(client, &format!("//tr[.//a[.='#{number}']]")).await;
        assert!(
            client.find(Locator::XPath(&marked)).await.is_err(),
            "read once opened"
        );
        session.finish().await;
    }
}
