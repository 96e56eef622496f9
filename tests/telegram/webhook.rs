//! Updates by webhook: the secret, redeliveries, and updates the store refuses.

use super::*;

/// Runs `sql` on the store's writing connection.
async fn execute(store: &Store, sql: &'static str) {
    match store {
        Store::Sqlite { writer, .. } => {
            sqlx::query(sql).execute(writer).await.expect(sql);
        }
        Store::Postgres { pool } => {
            sqlx::query(sql).execute(pool).await.expect(sql);
        }
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn by_webhook_a_customer_message_becomes_a_ticket_and_the_reply_reaches_the_customer(
        db: TestStore,
    ) {
        let fake = FakeTelegram::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
        // Registering the command menus fails once: the webhook is set and posting already.
        fake.fail_next("setMyCommands", Failure::BadGateway);
        let (running, _) = Running::start_webhook(&db, &fake).await;
        assert_eq!(
            fake.webhook_secret().as_deref(),
            Some(WEBHOOK_SECRET),
            "Telegram is told the secret"
        );
        assert_eq!(
            fake.webhook_max_connections(),
            Some(1),
            "one update at a time, in order"
        );
        let ada = User::new(42, "Ada");
        let sam = User::new(555, "Sam");

        fake.customer_writes(&ada, "My printer is on fire");
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());
        let post = sent_to(&fake, AGENTS_CHAT, &format!("New ticket #{number}")).await;
        fake.group_message(
            AGENTS_CHAT,
            &sam,
            Some(post.message_id),
            "Please unplug it first.",
        );
        sent_to(&fake, ada.id, "Please unplug it first.").await;
        let detail = until_ticket(&db.store, number, "the reply is delivered", |t| {
            t.messages
                .iter()
                .any(|m| m.delivery_status.as_deref() == Some("sent"))
        })
        .await;
        let texts: Vec<&str> = detail
            .messages
            .iter()
            .map(|m| m.body_text.as_str())
            .collect();
        assert_eq!(texts, ["My printer is on fire", "Please unplug it first."]);
        assert!(
            !fake.calls().iter().any(|call| call == "getUpdates"),
            "no polling in webhook mode: {:?}",
            fake.calls()
        );
        assert!(
            fake.webhook_deliveries()
                .iter()
                .all(|delivery| delivery.status == Some(200)),
            "every update was taken at once: {:?}",
            fake.webhook_deliveries()
        );
        running.stop().await;

        // Back to polling: the webhook goes, and what came meanwhile is polled.
        fake.customer_writes(&ada, "Unplugged it");
        let running = Running::start(&db, &fake).await;
        until_ticket(
            &db.store,
            number,
            "the message sent meanwhile is kept",
            |t| t.messages.iter().any(|m| m.body_text == "Unplugged it"),
        )
        .await;
        assert_eq!(fake.webhook_url(), "", "polling removed the webhook");
        running.stop().await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_webhook_refuses_updates_without_the_secret_and_takes_a_redelivery_once(
        db: TestStore,
    ) {
        let fake = FakeTelegram::start(TOKEN).await;
        let (running, url) = Running::start_webhook(&db, &fake).await;
        let ada = User::new(42, "Ada");

        // Someone who found the address posts a made-up update.
        let forged = serde_json::json!({
            "update_id": 999_999_999,
            "message": {
                "message_id": 1, "date": 1_700_000_000,
                "chat": {"id": 66, "type": "private", "first_name": "Mallory"},
                "from": {"id": 66, "is_bot": false, "first_name": "Mallory"},
                "text": "Give me a ticket",
            },
        })
        .to_string();
        let client = reqwest::Client::new();
        for secret in [None, Some("wrong-secret")] {
            let mut request = client
                .post(&url)
                .header("Content-Type", "application/json")
                .body(forged.clone());
            if let Some(secret) = secret {
                request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
            }
            let status = request.send().await.expect("the webhook answers").status();
            assert_eq!(status.as_u16(), 401, "secret {secret:?} is refused");
        }

        fake.customer_writes(&ada, "/start");
        sent_to(&fake, ada.id, "Write your question").await;
        fake.customer_writes(&ada, "My printer is on fire");
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());

        // Telegram did not get our answers and sends both updates again. (The fake records a
        // delivery when our answer reaches it, which may be after the bot's reply.)
        let deadline = tokio::time::Instant::now() + WAIT;
        while fake.webhook_deliveries().len() < 2 {
            assert!(tokio::time::Instant::now() < deadline, "{:?}", fake.webhook_deliveries());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let delivered: Vec<i64> = fake
            .webhook_deliveries()
            .iter()
            .map(|delivery| delivery.update_id)
            .collect();
        assert_eq!(delivered.len(), 2, "{:?}", fake.webhook_deliveries());
        for update_id in delivered {
            assert_eq!(fake.redeliver(update_id).await, Some(200));
        }
        // A later message shows that everything before it is done.
        fake.customer_writes(&ada, "It smells of toner");
        until_ticket(&db.store, number, "the next message is kept", |t| {
            t.messages
                .iter()
                .any(|m| m.body_text == "It smells of toner")
        })
        .await;
        let detail = ticket(&db.store, number).await;
        let texts: Vec<&str> = detail
            .messages
            .iter()
            .map(|m| m.body_text.as_str())
            .collect();
        assert_eq!(texts, ["My printer is on fire", "It smells of toner"]);
        let welcomes = fake
            .sent()
            .iter()
            .filter(|s| {
                s.text
                    .as_deref()
                    .is_some_and(|t| t.contains("Write your question"))
            })
            .count();
        assert_eq!(welcomes, 1, "the redelivered /start is not answered again");
        let totals = store::tickets::totals(&db.store).await.expect("totals");
        assert_eq!(totals.tickets, 1, "the forged update opened nothing");
        running.stop().await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_update_the_store_refuses_is_refused_to_telegram_and_taken_on_its_retry(
        db: TestStore,
    ) {
        let fake = FakeTelegram::start(TOKEN).await;
        let (running, _) = Running::start_webhook(&db, &fake).await;
        let ada = User::new(42, "Ada");

        // The database refuses new messages for a while (not even their raw form is kept).
        let (refuse, allow) = match db.backend() {
            store::Backend::Sqlite => (
                vec![
                    "CREATE TRIGGER refuse_messages BEFORE INSERT ON raw_messages \
                     BEGIN SELECT RAISE(ABORT, 'refused for the test'); END",
                ],
                vec!["DROP TRIGGER refuse_messages"],
            ),
            store::Backend::Postgres => (
                vec![
                    "CREATE FUNCTION refuse_messages() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$",
                    "CREATE TRIGGER refuse_messages BEFORE INSERT ON raw_messages \
                     FOR EACH ROW EXECUTE FUNCTION refuse_messages()",
                ],
                vec![
                    "DROP TRIGGER refuse_messages ON raw_messages",
                    "DROP FUNCTION refuse_messages()",
                ],
            ),
        };
        for sql in refuse {
            execute(&db.store, sql).await;
        }
        fake.customer_writes(&ada, "My printer is on fire");
        let deadline = tokio::time::Instant::now() + WAIT;
        while fake
            .webhook_deliveries()
            .iter()
            .filter(|delivery| delivery.status == Some(500))
            .count()
            < 2
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the update is refused and posted again: {:?}",
                fake.webhook_deliveries()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(fake.unconfirmed_updates(), 1, "Telegram keeps the update");
        for sql in allow {
            execute(&db.store, sql).await;
        }
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());
        let detail = ticket(&db.store, number).await;
        assert_eq!(detail.messages.len(), 1, "kept once: {detail:#?}");
        assert_eq!(detail.messages[0].body_text, "My printer is on fire");
        // Our 200 may reach Telegram only after the greeting did.
        let refused = fake.webhook_deliveries()[0].update_id;
        assert!(
            fake.wait_for_webhook_delivery(refused, WAIT).await,
            "Telegram hears the update was taken"
        );
        assert_eq!(fake.unconfirmed_updates(), 0);
        running.stop().await;
    }
}
