//! Chat messages continue their conversation until it is closed.

use super::*;

fn chat(id: &str, conversation: &str, reply_to: Option<&str>, text: &str) -> InboundMessage {
    InboundMessage {
        channel: ChannelKind::Telegram,
        external_id: id.to_owned(),
        sender: Identity {
            channel: ChannelKind::Telegram,
            address: "424242".to_owned(),
            display_name: Some("@ada".to_owned()),
            handle: None,
        },
        subject: None,
        text: text.to_owned(),
        html: None,
        attachments: Vec::new(),
        thread: ThreadHints {
            conversation: Some(conversation.to_owned()),
            reply_to: reply_to.map(str::to_owned),
            ..ThreadHints::default()
        },
        automation: AutomationMarks::default(),
        sent_at: None,
        raw: format!("{{\"message_id\":\"{id}\"}}").into_bytes(),
    }
}

store_test! {
    #[tokio::test]
    async fn chat_messages_continue_their_conversation_until_it_is_closed(db: TestStore) {
        let number = created(
            &db.intake
                .accept(chat(
                    "42:1",
                    "42",
                    None,
                    "My order never arrived\nit was #77",
                ))
                .await
                .expect("1"),
        );
        let ticket = store::tickets::summary(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(ticket.subject, "My order never arrived");
        assert_eq!(ticket.channel, "telegram");
        assert_eq!(
            threaded(
                &db.intake
                    .accept(chat("42:2", "42", None, "Hello?"))
                    .await
                    .expect("2")
            ),
            number
        );
        assert_eq!(
            threaded(
                &db.intake
                    .accept(chat("42:3", "42", Some("42:1"), "See above"))
                    .await
                    .expect("3")
            ),
            number
        );
        // The same message id in another channel is another message.
        let email_with_same_id = first("42:1", "ada@example.org", "Not a duplicate");
        created(
            &db.intake
                .accept_email(email_with_same_id)
                .await
                .expect("email"),
        );

        let mut tx = db.store.begin_write().await.expect("tx");
        store::tickets::change_status(
            &mut tx,
            number.into(),
            Status::Closed,
            Actor::System,
            None,
            Utc::now(),
        )
        .await
        .expect("close");
        tx.commit().await.expect("commit");
        let next = created(
            &db.intake
                .accept(chat("42:4", "42", None, "Another question"))
                .await
                .expect("4"),
        );
        assert_ne!(next, number);
        assert_eq!(
            threaded(
                &db.intake
                    .accept(chat("42:5", "42", None, "and more"))
                    .await
                    .expect("5")
            ),
            next
        );
    }
}
