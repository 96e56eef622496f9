//! A customer's DM becomes a ticket with a thread; agents answer, command and send files.

use super::*;

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dm_becomes_a_ticket_with_a_thread_and_the_agents_answer_reaches_the_customer(
        db: TestStore,
    ) {
        let fake = FakeDiscord::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");
        let sam = User::new(555, "Sam");

        let first = fake.customer_writes(&ada, "My printer is on fire");
        let dm = fake.dm_channel_of(&ada);
        let greeting = sent_to(&fake, dm, "Your ticket number is #").await;
        assert_eq!(
            greeting.reply_to,
            Some(first),
            "the greeting answers the DM"
        );
        let number = ticket_number_in(&greeting.content);
        let post = sent_to(&fake, AGENTS_CHANNEL_ID, &format!("New ticket #{number}")).await;
        let thread = thread_of(&fake, number).await;
        assert_eq!(thread, post.message_id, "the thread starts from the post");

        // A second DM continues the ticket; the agents see it in the thread.
        fake.customer_writes(&ada, "It smells of toner");
        sent_to(&fake, thread, "It smells of toner").await;

        fake.agent_writes_in_thread(&sam, thread, "Please unplug it first.");
        sent_to(&fake, dm, "Please unplug it first.").await;
        let detail = until_ticket(&db.store, number, "the reply is delivered", |t| {
            t.messages
                .iter()
                .any(|m| m.delivery_status.as_deref() == Some("sent"))
        })
        .await;
        assert_eq!(detail.summary.channel, "discord");
        let texts: Vec<(&str, &str)> = detail
            .messages
            .iter()
            .map(|m| (m.direction.as_str(), m.body_text.as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                ("inbound", "My printer is on fire"),
                ("inbound", "It smells of toner"),
                ("outbound", "Please unplug it first."),
            ]
        );
        assert_eq!(detail.messages[2].author, "Sam");
        // The greeting went through the delivery queue and is on record with the ticket.
        let everything = store::tickets::detail(&db.store, number.into())
            .await
            .expect("ticket query")
            .expect("ticket");
        let greeting = everything
            .messages
            .iter()
            .find(|m| m.body_text.contains("Your ticket number is"))
            .expect("the greeting is on the ticket");
        assert_eq!(
            (greeting.kind.as_str(), greeting.direction.as_str()),
            ("system", "outbound")
        );
        assert_eq!(greeting.delivery_status.as_deref(), Some("sent"));

        // Replying to the post in the channel works as well as writing in the thread.
        fake.guild_message(
            AGENTS_CHANNEL_ID,
            &sam,
            Some(post.message_id),
            "Any smoke?",
            &[],
        );
        sent_to(&fake, dm, "Any smoke?").await;

        // The agents' commands are registered for the guild only, not offered in DMs.
        let commands = fake.registered_commands();
        assert_eq!(commands.len(), 1, "{commands:?}");
        assert_ne!(commands[0].0, "global");
        let names: Vec<&str> = commands[0]
            .1
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|command| command["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "claim", "assign", "note", "status", "priority", "tag", "untag", "canned",
                "close", "reopen", "help"
            ]
        );

        // The gateway's health is on record for the admin page and /metrics.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let health = store::health::list(&db.store).await.expect("health");
            if health
                .iter()
                .any(|h| h.channel == "discord" && h.connected && h.last_success_at.is_some())
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no Discord health: {health:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        while fake.heartbeats() == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the client keeps no heartbeat"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        running.stop().await;
        let health = store::health::list(&db.store).await.expect("health");
        assert!(
            health
                .iter()
                .any(|h| h.channel == "discord" && !h.connected),
            "a stopped gateway says so: {health:?}"
        );
    }
}

/// What the bot answered to interaction `id`.
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

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn text_and_slash_commands_change_the_ticket_and_strangers_cannot_act(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
        agent(&db.store, "kim@example.org", "Kim Lee", 556).await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");
        let sam = User::new(555, "Sam");
        let stranger = User::new(999, "Mallory");
        let (number, thread) = open_ticket(&fake, &ada, "Cannot log in").await;

        // A customer cannot run the agents' commands: the slash command is refused on the
        // spot, only to them, and typed as text it is just words on the ticket.
        let attempt = fake.slash_command(&ada, None, "close", &[]);
        let refusal = answer_to(&fake, attempt).await;
        assert!(refusal.ephemeral && refusal.content.contains("for the support team"));
        fake.customer_writes(&ada, "/close");
        sent_to(&fake, thread, "/close").await;
        assert_eq!(ticket(&db.store, number).await.summary.status, "new");

        // Someone in the guild who is not an agent is told so, and changes nothing.
        let attempt = fake.agent_writes_in_thread(&stranger, thread, "/close");
        let refusal = sent_to(&fake, thread, "only the support team's agents").await;
        assert_eq!(refusal.reply_to, Some(attempt));
        let attempt = fake.agent_runs_slash_command(&stranger, thread, "claim", &[]);
        assert!(
            answer_to(&fake, attempt)
                .await
                .content
                .contains("only the support team's agents")
        );
        fake.agent_writes_in_thread(&stranger, thread, "Hi Ada, give me your password");

        // Slash commands in the ticket's thread act on its ticket and are answered in place.
        let claim = fake.agent_runs_slash_command(&sam, thread, "claim", &[]);
        assert!(
            answer_to(&fake, claim)
                .await
                .content
                .contains("is yours, Sam")
        );
        assert_eq!(
            ticket(&db.store, number).await.summary.assignee.as_deref(),
            Some("Sam")
        );
        fake.agent_writes_in_thread(&sam, thread, "/note she called, VIP");
        sent_to(&fake, thread, "Note added").await;
        let priority =
            fake.agent_runs_slash_command(&sam, thread, "priority", &[("priority", json!("high"))]);
        assert!(
            answer_to(&fake, priority)
                .await
                .content
                .contains("high priority")
        );
        let tag = fake.agent_runs_slash_command(&sam, thread, "tag", &[("tags", json!("VIP refund"))]);
        assert!(
            answer_to(&fake, tag)
                .await
                .content
                .contains("now has tags: refund, vip")
        );
        fake.agent_writes_in_thread(&sam, thread, "/untag refund");
        sent_to(&fake, thread, "now has tags: vip.").await;
        // A customer's /tag is refused on the spot and tags nothing.
        let attempt = fake.slash_command(&ada, None, "tag", &[("tags", json!("hacked"))]);
        let refusal = answer_to(&fake, attempt).await;
        assert!(
            refusal.ephemeral && refusal.content.contains("for the support team"),
            "{refusal:?}"
        );
        let id = ticket(&db.store, number).await.summary.id;
        let tags = store::views::tags(&db.store, id).await.expect("tags");
        assert_eq!(tags, ["vip"], "a customer does not tag tickets");
        let assign =
            fake.agent_runs_slash_command(&sam, thread, "assign", &[("agent", json!("@kim"))]);
        assert!(
            answer_to(&fake, assign)
                .await
                .content
                .contains("assigned to Kim Lee")
        );
        // From the channel itself a command names its ticket.
        let status = fake.agent_runs_slash_command(
            &sam,
            AGENTS_CHANNEL_ID,
            "status",
            &[("status", json!("resolved")), ("ticket", json!(number))],
        );
        assert!(
            answer_to(&fake, status)
                .await
                .content
                .contains("is now resolved")
        );
        fake.agent_writes_in_thread(&sam, thread, "/reopen");
        sent_to(&fake, thread, "is now open").await;
        let close = fake.agent_runs_slash_command(&sam, thread, "close", &[]);
        assert!(
            answer_to(&fake, close)
                .await
                .content
                .contains("is now closed")
        );
        let help = fake.agent_runs_slash_command(&sam, thread, "help", &[]);
        assert!(
            answer_to(&fake, help)
                .await
                .content
                .contains("/assign @name")
        );

        // News about the ticket went into its one thread, never a thread of its own.
        sent_to(
            &fake,
            thread,
            &format!("Ticket #{number} assigned to Kim Lee"),
        )
        .await;
        let threads = fake
            .threads()
            .into_iter()
            .filter(|t| t.name.starts_with(&format!("#{number} ")))
            .count();
        assert_eq!(threads, 1, "{:?}", fake.threads());

        let detail = ticket(&db.store, number).await;
        assert_eq!(detail.summary.status, "closed");
        assert_eq!(detail.summary.priority, "high");
        assert_eq!(detail.summary.assignee.as_deref(), Some("Kim Lee"));
        let note = detail
            .messages
            .iter()
            .find(|m| m.body_text == "she called, VIP")
            .expect("the note is on the ticket");
        assert_eq!(note.kind, "internal");
        assert!(note.delivery_status.is_none(), "a note is never delivered");
        let dm = fake.dm_channel_of(&ada);
        assert!(
            !fake.sent().iter().any(|s| s.channel_id == dm
                && (s.content.contains("VIP") || s.content.contains("password"))),
            "neither the note nor the stranger's words reach the customer"
        );

        // The ticket is closed: the customer's next DM opens a new one, with its own thread.
        fake.customer_writes(&ada, "Still cannot log in");
        let again = sent_to(&fake, dm, &format!("#{}", number + 1)).await;
        assert!(again.content.contains("Your ticket number"));
        assert_ne!(thread_of(&fake, number + 1).await, thread);
        running.stop().await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_go_both_ways_and_edits_and_deletions_are_kept(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        let sam = agent(&db.store, "sam@example.org", "Sam", 555).await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");
        let dm = fake.dm_channel_of(&ada);

        let pdf: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        fake.customer_sends_files(
            &ada,
            "The invoice is wrong",
            &[Upload {
                file_name: "invoice 2024.pdf".into(),
                content_type: "application/pdf".into(),
                content: pdf.clone(),
            }],
        );
        let greeting = sent_to(&fake, dm, "Your ticket number is #").await;
        let number = ticket_number_in(&greeting.content);
        let big = vec![7u8; (support::LIMITS.max_attachment_bytes + 1) as usize];
        fake.customer_sends_files(
            &ada,
            "",
            &[Upload {
                file_name: "huge.bin".into(),
                content_type: "application/octet-stream".into(),
                content: big,
            }],
        );
        let typo = fake.customer_writes(&ada, "Amount: 100 EUR");
        fake.customer_edits(typo, "Amount: 1000 EUR");
        let regret = fake.customer_writes(&ada, "This is all my fault");
        fake.customer_deletes(regret);

        let detail =
            until_ticket(&db.store, number, "six messages", |t| t.messages.len() == 6).await;
        let first = &detail.messages[0];
        assert_eq!(first.body_text, "The invoice is wrong");
        assert_eq!(first.attachments.len(), 1);
        let invoice = &first.attachments[0];
        assert_eq!(invoice.filename, "invoice 2024.pdf");
        assert_eq!(invoice.content_type, "application/pdf");
        let stored = db
            .blobs()
            .get(invoice.sha256.as_deref().expect("content kept"))
            .await
            .expect("blob readable");
        assert_eq!(stored, pdf, "the file arrives byte for byte");
        assert!(detail.messages[1].attachments.is_empty());
        assert!(
            detail.messages[1].body_text.contains("huge.bin not kept"),
            "an oversized file is noted: {:?}",
            detail.messages[1].body_text
        );
        let texts: Vec<&str> = detail.messages[2..]
            .iter()
            .map(|m| m.body_text.as_str())
            .collect();
        assert_eq!(
            texts,
            [
                "Amount: 100 EUR",
                "(edited message)\nAmount: 1000 EUR",
                "This is all my fault",
                "(the customer deleted a message: This is all my fault)",
            ]
        );

        // An agent's reply with a file reaches the customer with the file.
        let report = b"line one\nline two\n".to_vec();
        let sha256 = db.blobs().put(&report).await.expect("blob stored");
        helpdesk::ops::send_reply_with_files(
            &db.store,
            &store::outbound::NewReply {
                number: number.into(),
                agent_id: sam,
                text: "Here is the corrected invoice.",
                kind: helpdesk::domain::MessageKind::Public,
                external_id: None,
                channels_here: &[ChannelKind::Discord],
                now: chrono::Utc::now(),
            },
            &[helpdesk::ops::AttachedFile {
                filename: "corrected.txt".into(),
                content_type: "text/plain".into(),
                size: report.len() as i64,
                sha256,
            }],
        )
        .await
        .expect("reply stored");
        let sent = sent_to(&fake, dm, "Here is the corrected invoice.").await;
        assert_eq!(sent.files, [("corrected.txt".to_owned(), report)]);

        // A file an agent puts in the ticket's thread goes to the customer with the answer.
        let thread = thread_of(&fake, number).await;
        let form = b"%PDF-1.4 signed form".to_vec();
        fake.guild_message(
            thread,
            &User::new(555, "Sam"),
            None,
            "The signed form",
            &[Upload {
                file_name: "form.pdf".into(),
                content_type: "application/pdf".into(),
                content: form.clone(),
            }],
        );
        let sent = sent_to(&fake, dm, "The signed form").await;
        assert_eq!(sent.files, [("form.pdf".to_owned(), form)]);
        // Only a file: the answer names it.
        let png = b"\x89PNG not really".to_vec();
        fake.guild_message(
            thread,
            &User::new(555, "Sam"),
            None,
            "",
            &[Upload {
                file_name: "screenshot.png".into(),
                content_type: "image/png".into(),
                content: png.clone(),
            }],
        );
        let sent = sent_to(&fake, dm, "Attached: screenshot.png").await;
        assert_eq!(sent.files, [("screenshot.png".to_owned(), png)]);
        let detail = until_ticket(&db.store, number, "the agents' files are kept", |t| {
            t.messages
                .iter()
                .filter(|m| m.direction == "outbound" && !m.attachments.is_empty())
                .count()
                == 3
        })
        .await;
        let reply = detail
            .messages
            .iter()
            .find(|m| m.body_text == "The signed form")
            .expect("the reply is on the ticket");
        assert_eq!(reply.attachments[0].filename, "form.pdf");
        running.stop().await;
    }
}
