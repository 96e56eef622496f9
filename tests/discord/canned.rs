//! `/canned` on Discord: a slash command whose name is completed while the agent types (the
//! names they may use, from the helpdesk), sending the canned response with its actions; a
//! customer can neither run it nor get names.

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

async fn answer_to(fake: &FakeDiscord, interaction: u64) -> Sent {
    fake.wait_for_sent(WAIT, |sent| sent.interaction == Some(interaction))
        .await
        .unwrap_or_else(|| {
            panic!(
                "interaction {interaction} not answered; sent: {:#?}",
                fake.sent()
            )
        })
}

async fn choices(fake: &FakeDiscord, interaction: u64) -> Vec<String> {
    fake.wait_for_choices(interaction, WAIT)
        .await
        .unwrap_or_else(|| {
            panic!(
                "autocomplete {interaction} not answered; calls: {:?}",
                fake.calls()
            )
        })
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn canned_slash_command_completes_names_and_sends_with_its_actions(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        let sam_id = agent(&db.store, "sam@example.org", "Sam", 555).await;
        canned(
            &db.store,
            None,
            "Thanks",
            "Thank you, {{customer_name}}.",
            Some(Status::Pending),
            None,
            "",
        )
        .await;
        canned(
            &db.store,
            Some(sam_id),
            "refund-done",
            "Hello {{customer_name}}, the refund for #{{ticket_number}} is done. {{agent_name}}",
            Some(Status::Resolved),
            Some(Priority::High),
            "refund",
        )
        .await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");
        let sam = User::new(555, "Sam");
        let stranger = User::new(999, "Mallory");
        let (number, thread) = open_ticket(&fake, &ada, "I want my money back").await;

        // Registered with a name that Discord completes.
        let registered = fake.registered_commands();
        let command = registered
            .iter()
            .flat_map(|(_, set)| set.as_array().cloned().unwrap_or_default())
            .find(|command| command["name"] == "canned")
            .unwrap_or_else(|| panic!("canned registered: {registered:?}"));
        assert_eq!(command["options"][0]["name"], "name");
        assert_eq!(command["options"][0]["autocomplete"], true, "{command}");

        // Typing offers the names the agent may use that contain what is typed, own first.
        let typing = fake.agent_types_argument(&sam, thread, "canned", "name", "");
        assert_eq!(choices(&fake, typing).await, ["refund-done", "Thanks"]);
        let typing = fake.agent_types_argument(&sam, thread, "canned", "name", "TH");
        assert_eq!(choices(&fake, typing).await, ["Thanks"]);
        // Not an agent: nothing offered.
        let typing = fake.agent_types_argument(&stranger, thread, "canned", "name", "");
        assert_eq!(choices(&fake, typing).await, Vec::<String>::new());

        // A customer cannot run it: refused on the spot; typed, it is words on the ticket.
        let attempt = fake.slash_command(&ada, None, "canned", &[("name", json!("Thanks"))]);
        let refusal = answer_to(&fake, attempt).await;
        assert!(refusal.ephemeral && refusal.content.contains("for the support team"));
        fake.customer_writes(&ada, "/canned Thanks");
        sent_to(&fake, thread, "/canned Thanks").await;
        let detail = ticket(&db.store, number).await;
        assert_eq!(detail.summary.status, "new");
        assert!(detail.messages.iter().all(|m| m.direction == "inbound"));

        // The agent's command sends it, filled in, and applies its actions.
        let sent = fake.agent_runs_slash_command(
            &sam,
            thread,
            "canned",
            &[("name", json!("refund-done"))],
        );
        let answer = answer_to(&fake, sent).await;
        assert!(
            answer.content.contains("is on its way") && answer.content.contains("status resolved"),
            "{answer:?}"
        );
        let dm = fake.dm_channel_of(&ada);
        sent_to(
            &fake,
            dm,
            &format!("Hello Ada, the refund for #{number} is done. Sam"),
        )
        .await;
        let detail = until_ticket(&db.store, number, "resolved by the canned response", |t| {
            t.summary.status == "resolved"
        })
        .await;
        assert_eq!(detail.summary.priority, "high");
        running.stop().await;
    }
}
