//! `/canned NAME` from the agents' group: the agent's own canned response before a shared one
//! of the same name, filled in for the customer and with its actions; a customer's `/canned`
//! is just text on their ticket.

use super::*;
use helpdesk::domain::canned::CannedDraft;
use helpdesk::domain::{Priority, Status};

/// Saves a canned response: shared when `owner` is `None`.
async fn canned(
    store: &Store,
    owner: Option<i64>,
    name: &str,
    body: &str,
    status: Option<Status>,
    priority: Option<Priority>,
    tags: &str,
) {
    let draft = CannedDraft::new(name, body, status, priority, tags).expect("a valid draft");
    store::canned::create(store, owner, &draft, chrono::Utc::now())
        .await
        .expect("saved");
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn canned_responses_from_the_group_reply_and_act_and_customers_cannot_run_them(
        db: TestStore,
    ) {
        let fake = FakeTelegram::start(TOKEN).await;
        let sam_id = agent(&db.store, "sam@example.org", "Sam", 555).await;
        agent(&db.store, "kim@example.org", "Kim Lee", 556).await;
        canned(
            &db.store,
            None,
            "Thanks",
            "Thank you, {{customer_name}}. Kind regards, {{agent_name}}",
            Some(Status::Pending),
            None,
            "shared",
        )
        .await;
        canned(
            &db.store,
            Some(sam_id),
            "thanks",
            "Hi {{customer_name}}, {{agent_name}} is on #{{ticket_number}}.",
            None,
            Some(Priority::Urgent),
            "chat vip",
        )
        .await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");
        let sam = User::new(555, "Sam");
        let kim = User::new(556, "Kim Lee");
        let stranger = User::new(999, "Mallory");

        fake.customer_writes(&ada, "Where is my parcel?");
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());
        let post = sent_to(&fake, AGENTS_CHAT, &format!("New ticket #{number}")).await;

        // A customer's /canned is only words on their ticket.
        fake.customer_writes(&ada, "/canned thanks");
        sent_to(&fake, AGENTS_CHAT, "/canned thanks").await;
        let detail = ticket(&db.store, number).await;
        assert_eq!(detail.summary.priority, "normal");
        assert!(
            detail.messages.iter().all(|m| m.direction == "inbound"),
            "{detail:#?}"
        );

        // Someone in the group who is not an agent is refused.
        fake.group_message(AGENTS_CHAT, &stranger, Some(post.message_id), "/canned thanks");
        sent_to(&fake, AGENTS_CHAT, "only the support team's agents").await;

        // Sam's own "thanks" comes before the shared "Thanks", whatever the case typed.
        fake.group_message(AGENTS_CHAT, &sam, Some(post.message_id), "/canned THANKS");
        sent_to(&fake, ada.id, &format!("Hi Ada, Sam is on #{number}.")).await;
        sent_to(&fake, AGENTS_CHAT, "Canned response \"thanks\" is on its way").await;
        let detail = until_ticket(&db.store, number, "the actions are applied", |t| {
            t.summary.priority == "urgent"
        })
        .await;
        assert_eq!(detail.summary.status, "open");
        assert_eq!(
            views_tags(&db.store, number).await,
            ["chat", "vip"],
            "the canned tags are added"
        );

        // Kim has none of that name: the shared one, with its status.
        fake.group_message(AGENTS_CHAT, &kim, None, &format!("/canned #{number} thanks"));
        sent_to(&fake, ada.id, "Thank you, Ada. Kind regards, Kim Lee").await;
        until_ticket(&db.store, number, "the shared one's status", |t| {
            t.summary.status == "pending"
        })
        .await;
        assert_eq!(views_tags(&db.store, number).await, ["chat", "shared", "vip"]);

        // An unknown name is explained, and nothing is sent.
        fake.group_message(AGENTS_CHAT, &sam, Some(post.message_id), "/canned nope");
        sent_to(&fake, AGENTS_CHAT, "No canned response is called \"nope\"").await;
        let outbound = ticket(&db.store, number)
            .await
            .messages
            .iter()
            .filter(|m| m.direction == "outbound")
            .count();
        assert_eq!(outbound, 2);

        // The group's command menu offers it.
        let menus = fake.registered_commands();
        assert!(
            menus.iter().any(|menu| menu.to_string().contains("canned")),
            "{menus:?}"
        );
        running.stop().await;
    }
}

/// The tags of ticket `number`.
async fn views_tags(store: &Store, number: i64) -> Vec<String> {
    let facts = store::views::ticket_facts(store, number.into())
        .await
        .expect("read")
        .expect("exists");
    store::views::tags(store, facts.id).await.expect("tags")
}
