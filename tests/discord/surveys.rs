//! A resolved Discord ticket asks its customer with five message buttons; a press (a
//! MESSAGE_COMPONENT interaction) records the rating once and is answered, a second press
//! changes it.

use super::*;
use chrono::Utc;
use helpdesk::domain::Status;
use helpdesk::ops::{ChangedBy, TicketChange};

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rating_button_records_the_rating_and_a_second_press_changes_it(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        let sam = agent(&db.store, "sam@example.org", "Sam", 555).await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");

        fake.customer_writes(&ada, "My printer is on fire");
        let dm = fake.dm_channel_of(&ada);
        let greeting = sent_to(&fake, dm, "Your ticket number is #").await;
        let number = ticket_number_in(&greeting.content);
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

        let survey = sent_to(&fake, dm, "How satisfied are you").await;
        assert_eq!(survey.components.len(), 1, "one action row: {survey:#?}");
        let buttons = survey.components[0]["components"]
            .as_array()
            .cloned()
            .expect("buttons");
        assert_eq!(buttons.len(), 5, "{buttons:?}");
        let custom_id = |rating: usize| {
            buttons[rating - 1]["custom_id"]
                .as_str()
                .expect("custom id")
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

        let press = fake
            .customer_presses_button(&ada, survey.message_id, &custom_id(5))
            .expect("the button is under the survey");
        let answer = fake
            .wait_for_interaction_answer(press, WAIT)
            .await
            .expect("the press is answered");
        assert_eq!(answer.content, "Thank you! Your rating 5 of 5 is recorded.");
        assert!(answer.ephemeral, "only the customer sees the answer");
        assert_eq!(rating().await, Some(5));

        let again = fake
            .customer_presses_button(&ada, survey.message_id, &custom_id(3))
            .expect("the button is under the survey");
        let answer = fake
            .wait_for_interaction_answer(again, WAIT)
            .await
            .expect("the press is answered");
        assert_eq!(
            answer.content,
            "Thank you! Your rating is now 3 of 5 (it was 5)."
        );
        assert_eq!(rating().await, Some(3));

        // Someone else cannot rate: the button is not under a message of their DM.
        let bob = User::new(43, "Bob");
        fake.customer_writes(&bob, "Hello");
        assert!(
            fake.customer_presses_button(&bob, survey.message_id, &custom_id(1))
                .is_none()
        );
        assert_eq!(rating().await, Some(3));
        let detail = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("ticket");
        assert_eq!(
            detail.history.iter().filter(|event| event.kind == "rated").count(),
            2
        );
        running.stop().await;
    }
}
