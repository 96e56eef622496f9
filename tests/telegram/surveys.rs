//! A resolved Telegram ticket asks its customer with five inline keyboard buttons; a press
//! (a callback query) records the rating once and answers it, a second press changes it.

use super::*;
use chrono::Utc;
use helpdesk::domain::Status;
use helpdesk::ops::{ChangedBy, TicketChange};

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rating_button_records_the_rating_and_a_second_press_changes_it(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        let sam = agent(&db.store, "sam@example.org", "Sam", 555).await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");

        fake.customer_writes(&ada, "/start");
        sent_to(&fake, ada.id, "Write your question").await;
        fake.customer_writes(&ada, "My printer is on fire");
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());
        helpdesk::ops::apply(
            &db.store,
            number.into(),
            ChangedBy { agent_id: sam, now: Utc::now() },
            &TicketChange {
                status: Some(Status::Resolved),
                ..TicketChange::default()
            },
        )
        .await
        .expect("resolved");

        let survey = sent_to(&fake, ada.id, "How satisfied are you").await;
        let keyboard = survey.reply_markup.clone().expect("an inline keyboard");
        let buttons = keyboard["inline_keyboard"][0]
            .as_array()
            .cloned()
            .expect("a row of buttons");
        assert_eq!(buttons.len(), 5, "{keyboard}");
        let data = |rating: usize| {
            buttons[rating - 1]["callback_data"]
                .as_str()
                .expect("callback data")
                .to_owned()
        };
        let ticket_id = store::views::ticket_facts(&db.store, number.into())
            .await
            .expect("read")
            .expect("ticket")
            .id
            .0;
        let rating = || async {
            store::surveys::of_ticket(&db.store, ticket_id.into())
                .await
                .expect("read")
                .expect("the survey")
                .rating
        };
        assert_eq!(rating().await, None);

        let press = fake
            .press_button(&ada, ada.id, survey.message_id, &data(4))
            .expect("the button is under the survey");
        let answer = fake
            .wait_for_callback_answer(&press, WAIT)
            .await
            .expect("the press is answered");
        assert_eq!(
            answer.text.as_deref(),
            Some("Thank you! Your rating 4 of 5 is recorded.")
        );
        assert_eq!(rating().await, Some(4));

        let again = fake
            .press_button(&ada, ada.id, survey.message_id, &data(2))
            .expect("the button is under the survey");
        let answer = fake
            .wait_for_callback_answer(&again, WAIT)
            .await
            .expect("the press is answered");
        assert_eq!(
            answer.text.as_deref(),
            Some("Thank you! Your rating is now 2 of 5 (it was 4).")
        );
        assert_eq!(rating().await, Some(2));

        let detail = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("ticket");
        let rated = detail
            .history
            .iter()
            .filter(|event| event.kind == "rated")
            .count();
        assert_eq!(rated, 2, "one event per press: {:#?}", detail.history);
        // The survey asked nothing to answer: the ticket stays resolved.
        assert_eq!(detail.summary.status, "resolved");
        running.stop().await;
    }
}
