//! A Telegram customer is known by id, name and @username.

use super::*;
use crate::support::WebApp;

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_customer_is_shown_and_found_by_their_username(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        let running = Running::start(&db, &fake).await;
        let mut ada = User::new(4242, "Ada");
        ada.username = Some("ada_old".to_owned());
        fake.customer_writes(&ada, "My printer is on fire");
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());
        // A username changes; the one last seen is kept.
        ada.username = Some("ada_l".to_owned());
        fake.customer_writes(&ada, "It smells of toner");
        sent_to(&fake, AGENTS_CHAT, "It smells of toner").await;
        running.stop().await;

        // The pool the stopped bot and workers shared: a BEGIN they left in flight must not
        // leave a connection inside a transaction (vendor/README.md).
        let app = WebApp::new(db).await;
        crate::web::customers::chat_customer_is_shown_and_found(
            &app, number, "telegram", "ada_l", "4242",
        )
        .await;
        let old = app.get("/customers?q=ada_old", Some(&app.admin().await)).await;
        assert!(old.body.contains("No customer matches"), "{}", old.body);
    }
}
