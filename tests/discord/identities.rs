//! A Discord customer is known by id, display name and username.

use super::*;
use crate::support::WebApp;

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_customer_is_shown_and_found_by_their_username(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        let running = Running::start(&db, &fake).await;
        let mut ada = User::new(4242, "Ada Lovelace");
        ada.username = Some("ada_l".to_owned());
        let (number, _) = open_ticket(&fake, &ada, "My printer is on fire").await;
        running.stop().await;

        let app = WebApp::new(db).await;
        crate::web::customers::chat_customer_is_shown_and_found(
            &app, number, "discord", "ada_l", "4242",
        )
        .await;
        let customer = helpdesk::store::customer_views::of_ticket(&app.db.store, number.into())
            .await
            .expect("read")
            .expect("customer");
        assert_eq!(customer.name.as_deref(), Some("Ada Lovelace"));
    }
}
