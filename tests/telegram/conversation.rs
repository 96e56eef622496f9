//! A customer's message becomes a ticket; agents answer, command and send files; the group's
//! posts quote what they announce.

use super::*;

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn customer_message_becomes_a_ticket_and_the_agents_reply_reaches_the_customer(
        db: TestStore,
    ) {
        let fake = FakeTelegram::start(TOKEN).await;
        let sam_id = agent(&db.store, "sam@example.org", "Sam", 555).await;
        // A signature is for mail: it never follows a reply in chat.
        let signature = "Sam Sample, Printer Support, +49 30 1234";
        let set = store::mailboxes::set_agent_signature(&db.store, sam_id, signature).await;
        assert!(matches!(set, Ok(true)), "{set:?}");
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");

        fake.customer_writes(&ada, "/start");
        sent_to(&fake, ada.id, "Write your question").await;
        fake.customer_writes(&ada, "My printer is on fire");
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());
        let post = sent_to(&fake, AGENTS_CHAT, &format!("New ticket #{number}")).await;
        assert!(
            post.text
                .as_deref()
                .is_some_and(|text| text.contains("My printer is on fire")),
            "the agents see what the customer wrote: {post:?}"
        );

        // A second message continues the ticket and is shown to the agents.
        fake.customer_writes(&ada, "It smells of toner");
        sent_to(&fake, AGENTS_CHAT, "It smells of toner").await;

        let sam = User::new(555, "Sam");
        fake.group_message(
            AGENTS_CHAT,
            &sam,
            Some(post.message_id),
            "Please unplug it first.",
        );
        let answer = sent_to(&fake, ada.id, "Please unplug it first.").await;
        assert_eq!(answer.method, "sendMessage");
        assert_eq!(answer.text.as_deref(), Some("Please unplug it first."));

        let detail = until_ticket(&db.store, number, "the reply is delivered", |t| {
            t.messages
                .iter()
                .any(|m| m.delivery_status.as_deref() == Some("sent"))
        })
        .await;
        assert_eq!(detail.summary.channel, "telegram");
        assert_eq!(detail.summary.status, "open");
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

        // A reply with files from the web or the API: the text, then each file as a document.
        let report = b"toner: empty\nfuser: 212 C\n".to_vec();
        let sha256 = db.blobs().put(&report).await.expect("blob stored");
        helpdesk::ops::send_reply_with_files(
            &db.store,
            &store::outbound::NewReply {
                number: number.into(),
                agent_id: sam_id,
                text: "The service report is attached.",
                kind: helpdesk::domain::MessageKind::Public,
                external_id: None,
                channels_here: &[ChannelKind::Telegram],
                now: chrono::Utc::now(),
            },
            &[helpdesk::ops::AttachedFile {
                filename: "service report.txt".into(),
                content_type: "text/plain".into(),
                size: report.len() as i64,
                sha256,
            }],
        )
        .await
        .expect("reply stored");
        let text = sent_to(&fake, ada.id, "The service report is attached.").await;
        assert_eq!(text.text.as_deref(), Some("The service report is attached."));
        let document = fake
            .wait_for_sent(WAIT, |sent| {
                sent.chat_id == ada.id && sent.method == "sendDocument"
            })
            .await
            .unwrap_or_else(|| panic!("no document sent: {:?}", fake.calls()));
        assert_eq!(
            document.file,
            Some(("service report.txt".to_owned(), report))
        );
        assert_eq!(document.text.as_deref(), Some("service report.txt"));
        assert!(
            !fake.sent().iter().any(|sent| sent.chat_id == ada.id
                && sent.text.as_deref().is_some_and(|t| t.contains("Printer Support"))),
            "the signature stays out of chat: {:#?}",
            fake.sent()
        );

        // The poller's health is on record for the admin page and /metrics.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let health = store::health::list(&db.store).await.expect("health");
            if health
                .iter()
                .any(|h| h.channel == "telegram" && h.connected && h.last_success_at.is_some())
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no Telegram health: {health:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // The commands are registered: customers' menu and the agents' group menu.
        let menus = fake.registered_commands();
        assert!(
            menus.iter().any(|menu| menu.to_string().contains("claim")
                && menu.to_string().contains(&AGENTS_CHAT.to_string())),
            "agents' commands registered for their group: {menus:?}"
        );
        running.stop().await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn agents_commands_change_the_ticket_and_strangers_cannot_act(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
        agent(&db.store, "kim@example.org", "Kim Lee", 556).await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");
        let sam = User::new(555, "Sam");
        let stranger = User::new(999, "Mallory");

        fake.customer_writes(&ada, "Cannot log in");
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());
        let post = sent_to(&fake, AGENTS_CHAT, &format!("New ticket #{number}")).await;

        // A customer's slash command is just text on their ticket.
        fake.customer_writes(&ada, "/close");
        sent_to(&fake, AGENTS_CHAT, "/close").await;
        assert_eq!(ticket(&db.store, number).await.summary.status, "new");

        // Someone in the group who is not an agent is told so, and changes nothing.
        let attempt = fake.group_message(AGENTS_CHAT, &stranger, Some(post.message_id), "/close");
        let refusal = sent_to(&fake, AGENTS_CHAT, "only the support team's agents").await;
        assert_eq!(refusal.reply_to, Some(attempt));
        fake.group_message(
            AGENTS_CHAT,
            &stranger,
            Some(post.message_id),
            "Hi Ada, give me your password",
        );

        let claim = fake.group_message(
            AGENTS_CHAT,
            &sam,
            Some(post.message_id),
            "/claim@helpdesk_test_bot",
        );
        let claimed = sent_to(&fake, AGENTS_CHAT, "is yours, Sam").await;
        assert_eq!(claimed.reply_to, Some(claim));
        let detail = ticket(&db.store, number).await;
        assert_eq!(detail.summary.assignee.as_deref(), Some("Sam"));

        fake.group_message(
            AGENTS_CHAT,
            &sam,
            Some(post.message_id),
            "/note she called, VIP",
        );
        sent_to(&fake, AGENTS_CHAT, "Note added").await;
        fake.group_message(AGENTS_CHAT, &sam, Some(post.message_id), "/priority high");
        sent_to(&fake, AGENTS_CHAT, "high priority").await;
        fake.group_message(AGENTS_CHAT, &sam, Some(post.message_id), "/tag VIP, billing");
        sent_to(&fake, AGENTS_CHAT, "now has tags: billing, vip").await;
        fake.group_message(AGENTS_CHAT, &sam, Some(post.message_id), "/untag billing");
        sent_to(&fake, AGENTS_CHAT, "now has tags: vip.").await;
        // A customer's /tag is text on their ticket, like any other.
        fake.customer_writes(&ada, "/tag hacked");
        sent_to(&fake, AGENTS_CHAT, "/tag hacked").await;
        let tagged = ticket(&db.store, number).await;
        assert!(
            tagged.messages.iter().any(|m| m.body_text == "/tag hacked"),
            "the customer's words are on the ticket"
        );
        let tags = store::views::tags(&db.store, tagged.summary.id)
            .await
            .expect("tags");
        assert_eq!(tags, ["vip"], "a customer does not tag tickets");
        fake.group_message(AGENTS_CHAT, &sam, Some(post.message_id), "/assign @kim");
        sent_to(&fake, AGENTS_CHAT, "assigned to Kim Lee").await;
        // Commands work by ticket number too, and on the bot's own answers.
        fake.group_message(
            AGENTS_CHAT,
            &sam,
            None,
            &format!("/status #{number} resolved"),
        );
        let resolved = sent_to(&fake, AGENTS_CHAT, "is now resolved").await;
        // The same change again is no change, and says so.
        fake.group_message(
            AGENTS_CHAT,
            &sam,
            None,
            &format!("/status #{number} resolved"),
        );
        sent_to(&fake, AGENTS_CHAT, "is already resolved").await;
        fake.group_message(AGENTS_CHAT, &sam, Some(resolved.message_id), "/reopen");
        sent_to(&fake, AGENTS_CHAT, "is now open").await;
        fake.group_message(AGENTS_CHAT, &sam, Some(post.message_id), "/close");
        sent_to(&fake, AGENTS_CHAT, "is now closed").await;
        fake.group_message(AGENTS_CHAT, &sam, Some(post.message_id), "/reopen");
        sent_to(&fake, AGENTS_CHAT, "a closed ticket stays closed").await;
        fake.group_message(AGENTS_CHAT, &sam, None, "/help");
        sent_to(&fake, AGENTS_CHAT, "/assign @name").await;

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
        assert!(
            !fake.sent().iter().any(|s| s.chat_id == ada.id
                && s.text
                    .as_deref()
                    .is_some_and(|t| t.contains("VIP") || t.contains("password"))),
            "neither the note nor the stranger's words reach the customer"
        );
        let history: Vec<&str> = detail.history.iter().map(|e| e.kind.as_str()).collect();
        assert!(
            history.contains(&"assignee")
                && history.contains(&"priority")
                && history.contains(&"tags"),
            "{history:?}"
        );

        // The ticket is closed: the customer's next message opens a new one.
        fake.customer_writes(&ada, "Still cannot log in");
        let again = sent_to(&fake, ada.id, &format!("#{}", number + 1)).await;
        assert!(
            again
                .text
                .as_deref()
                .is_some_and(|t| t.contains("Your ticket number"))
        );
        running.stop().await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_edits_and_oversized_files_are_kept(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");

        let pdf: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        fake.customer_sends_document(
            &ada,
            &Upload {
                file_name: "invoice 2024.pdf".into(),
                mime_type: "application/pdf".into(),
                content: pdf.clone(),
            },
            Some("The invoice is wrong"),
        );
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());
        let jpeg = b"\xff\xd8\xff\xe0 not really a jpeg but bytes all the same".to_vec();
        fake.customer_sends_photo(&ada, &jpeg, None);
        let big = vec![7u8; (support::LIMITS.max_attachment_bytes + 1) as usize];
        fake.customer_sends_document(
            &ada,
            &Upload {
                file_name: "huge.bin".into(),
                mime_type: "application/octet-stream".into(),
                content: big,
            },
            None,
        );
        let typo = fake.customer_writes(&ada, "Amount: 100 EUR");
        fake.customer_edits(&ada, typo, "Amount: 1000 EUR");

        let detail = until_ticket(&db.store, number, "five messages", |t| {
            t.messages.len() == 5
        })
        .await;
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
        let photo = &detail.messages[1].attachments[0];
        assert_eq!(photo.content_type, "image/jpeg");
        assert_eq!(
            db.blobs()
                .get(photo.sha256.as_deref().expect("photo kept"))
                .await
                .expect("blob"),
            jpeg,
            "the largest size of the photo is kept"
        );
        assert!(detail.messages[2].attachments.is_empty());
        assert!(
            detail.messages[2].body_text.contains("huge.bin not kept"),
            "an oversized file is noted: {:?}",
            detail.messages[2].body_text
        );
        assert_eq!(detail.messages[3].body_text, "Amount: 100 EUR");
        assert_eq!(
            detail.messages[4].body_text,
            "(edited message)\nAmount: 1000 EUR"
        );
        running.stop().await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_of_untold_size_is_fetched_only_up_to_the_limit(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");
        fake.customer_writes(&ada, "Two logs follow");
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());

        let small = b"a small log\n".to_vec();
        fake.customer_sends_document_of_untold_size(
            &ada,
            &Upload {
                file_name: "small.log".into(),
                mime_type: "text/plain".into(),
                content: small.clone(),
            },
        );
        fake.customer_sends_document_of_untold_size(
            &ada,
            &Upload {
                file_name: "huge.log".into(),
                mime_type: "text/plain".into(),
                content: vec![b'x'; (support::LIMITS.max_attachment_bytes + 1) as usize],
            },
        );
        let detail = until_ticket(&db.store, number, "three messages", |t| {
            t.messages.len() == 3
        })
        .await;
        let kept = &detail.messages[1].attachments[0];
        assert_eq!(kept.filename, "small.log");
        assert_eq!(
            db.blobs()
                .get(kept.sha256.as_deref().expect("content kept"))
                .await
                .expect("blob"),
            small
        );
        assert!(detail.messages[2].attachments.is_empty());
        assert!(
            detail.messages[2].body_text.contains("huge.log not kept"),
            "{:?}",
            detail.messages[2].body_text
        );
        // Too large is no fault of the connection.
        let health = store::health::list(&db.store).await.expect("health");
        assert!(
            health
                .iter()
                .filter(|h| h.channel == "telegram")
                .all(|h| h.last_error.is_none()),
            "{health:?}"
        );
        running.stop().await;
    }
}

/// What the "wrote again" posts in the agents' group quote, sorted, once there are `count`.
async fn notices_quoting(fake: &FakeTelegram, count: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut quoted: Vec<String> = fake
            .sent()
            .iter()
            .filter_map(|sent| {
                let text = sent.text.as_deref()?;
                (sent.chat_id == AGENTS_CHAT && text.contains("the customer wrote again"))
                    .then(|| text.split_once("\n\n").unwrap_or_default().1.to_owned())
            })
            .collect();
        if quoted.len() >= count {
            quoted.sort();
            return quoted;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} notices in the group; sent: {:#?}",
            fake.sent()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_group_post_quotes_the_message_it_announces_live_and_after_a_restart(
        db: TestStore,
    ) {
        let fake = FakeTelegram::start(TOKEN).await;
        let ada = User::new(42, "Ada");
        let running = Running::start(&db, &fake).await;
        fake.customer_writes(&ada, "First");
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());
        let post = sent_to(&fake, AGENTS_CHAT, &format!("New ticket #{number}")).await;
        assert!(
            post.text.as_deref().is_some_and(|text| text.contains("\nfrom Ada via telegram")),
            "{post:?}"
        );
        // A mail's post names the address too: agents see who a stranger is.
        let mail = support::mail(
            &[
                "From: Pia Pedersen <Pia@Customer.example>",
                "Subject: Invoice 7",
                "Message-ID: <pia-1@customer.example>",
            ],
            "Where is my invoice?",
        );
        db.intake.accept_email(mail).await.expect("taken in");
        sent_to(
            &fake,
            AGENTS_CHAT,
            "Invoice 7\nfrom Pia Pedersen <pia@customer.example> via email",
        )
        .await;

        for text in ["Live one", "Live two", "Live three"] {
            fake.customer_writes(&ada, text);
        }
        assert_eq!(
            notices_quoting(&fake, 3).await,
            ["Live one", "Live three", "Live two"]
        );
        running.stop().await;

        // Waiting updates, fetched in one go at the next start.
        for text in ["Away one", "Away two", "Away three"] {
            fake.customer_writes(&ada, text);
        }
        let running = Running::start(&db, &fake).await;
        assert_eq!(
            notices_quoting(&fake, 6).await,
            [
                "Away one",
                "Away three",
                "Away two",
                "Live one",
                "Live three",
                "Live two"
            ]
        );
        running.stop().await;
    }
}
