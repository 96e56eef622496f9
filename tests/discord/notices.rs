//! The agents' notices quote the DM they announce, live and after a restart.

use super::*;

/// What the "wrote again" notices in `thread` quote, sorted, once there are `count` of them.
async fn notices_quoting(fake: &FakeDiscord, thread: u64, count: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut quoted: Vec<String> = fake
            .sent()
            .iter()
            .filter(|sent| {
                sent.channel_id == thread && sent.content.contains("the customer wrote again")
            })
            .map(|sent| {
                let (_, quote) = sent.content.split_once("\n\n").unwrap_or_default();
                quote.to_owned()
            })
            .collect();
        if quoted.len() >= count {
            quoted.sort();
            return quoted;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} notices in the thread; sent: {:#?}",
            fake.sent()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_notice_quotes_the_dm_it_announces_live_and_after_a_restart(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        let ada = User::new(42, "Ada");
        let running = Running::start(&db, &fake).await;
        let (number, thread) = open_ticket(&fake, &ada, "First").await;

        for text in ["Live one", "Live two", "Live three"] {
            fake.customer_writes(&ada, text);
        }
        assert_eq!(
            notices_quoting(&fake, thread, 3).await,
            ["Live one", "Live three", "Live two"]
        );
        running.stop().await;

        // Caught up from the DM's history at the next start, all in one go.
        for text in ["Away one", "Away two", "Away three"] {
            fake.customer_writes(&ada, text);
        }
        let running = Running::start(&db, &fake).await;
        assert_eq!(
            notices_quoting(&fake, thread, 6).await,
            [
                "Away one",
                "Away three",
                "Away two",
                "Live one",
                "Live three",
                "Live two"
            ]
        );
        let detail = until_ticket(&db.store, number, "seven messages", |t| {
            t.messages.len() == 7
        })
        .await;
        assert_eq!(detail.messages[6].body_text, "Away three");
        running.stop().await;
    }
}
