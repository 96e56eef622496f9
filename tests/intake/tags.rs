//! A ticket named by its subject tag: who may join it, and a stranger's new linked ticket.

use super::*;

/// A mail that names `number` by its subject tag and nothing else.
fn tagged(id: &str, from: &str, number: i64) -> Vec<u8> {
    mail(
        &[
            &format!("From: {from}"),
            "To: support@helpdesk.example",
            &format!("Subject: Re: [#{number}] Printer"),
            &format!("Message-ID: <{id}>"),
        ],
        "Please send the invoice to my new address instead.",
    )
}

store_test! {
    #[tokio::test]
    async fn a_stranger_naming_a_ticket_by_its_tag_gets_a_new_linked_ticket(db: TestStore) {
        let number = created(
            &db.intake
                .accept_email(first("own1@x", "Ada Lovelace <ada@example.org>", "Printer"))
                .await
                .expect("first"),
        );
        // Under the customer's name, from another address.
        let stranger = tagged("evil1@x", "Ada Lovelace <mallory@evil.example>", number);
        let apart = created(&db.intake.accept_email(stranger).await.expect("stranger"));
        assert_ne!(apart, number, "{:?}", db.backend());

        let named = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(named.messages.len(), 1, "nothing joined the named ticket");
        assert_eq!(named.linked_from, vec![apart]);
        let back = named.history.last().expect("history");
        assert_eq!(back.kind, "linked");
        assert_eq!(back.text, format!("#{apart} opened apart from this ticket"));
        assert!(
            back.reason
                .as_deref()
                .is_some_and(|r| r.contains("mallory@evil.example")),
            "{back:?}"
        );

        let new = store::tickets::detail(&db.store, apart.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(new.linked_to, Some(number));
        assert!(
            new.history
                .iter()
                .any(|e| e.kind == "linked" && e.text == format!("Opened apart from #{number}")),
            "{:?}",
            new.history
        );
        let message = &new.messages[0];
        assert_eq!(message.author, "Ada Lovelace");
        assert_eq!(
            message.author_address.as_deref(),
            Some("mallory@evil.example")
        );
        // Not the customer of the named ticket, whatever the name says.
        assert_eq!(store::customers::count(&db.store).await.expect("count"), 2);
    }
}

store_test! {
    #[tokio::test]
    async fn the_customer_a_cc_participant_and_an_agent_may_name_the_ticket_by_its_tag(
        db: TestStore,
    ) {
        let opening = mail(
            &[
                "From: Ada Lovelace <ada@example.org>",
                "To: support@helpdesk.example",
                "Cc: Grace Hopper <Grace@Navy.example>",
                "Subject: Printer",
                "Message-ID: <k1@x>",
            ],
            "The printer is on fire.",
        );
        let number = created(&db.intake.accept_email(opening).await.expect("first"));
        support::plain_agent(&db.store, "alan@helpdesk.example", "Alan").await;
        for (id, from) in [
            ("k2@x", "Ada Lovelace <ADA@example.org>"),
            ("k3@x", "Grace Hopper <grace@navy.example>"),
            ("k4@x", "Alan <alan@helpdesk.example>"),
        ] {
            assert_eq!(
                threaded(
                    &db.intake
                        .accept_email(tagged(id, from, number))
                        .await
                        .expect("tagged")
                ),
                number,
                "{:?}: {from}",
                db.backend()
            );
        }
        let ticket = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        let addresses: Vec<Option<&str>> = ticket
            .messages
            .iter()
            .map(|m| m.author_address.as_deref())
            .collect();
        assert_eq!(
            addresses,
            vec![
                Some("ada@example.org"),
                Some("ada@example.org"),
                Some("grace@navy.example"),
                Some("alan@helpdesk.example"),
            ]
        );
        assert!(ticket.linked_from.is_empty());
    }
}

store_test! {
    #[tokio::test]
    async fn a_forwarded_conversation_joins_by_its_headers_from_any_address(db: TestStore) {
        let number = created(
            &db.intake
                .accept_email(first("f1@x", "ada@example.org", "Printer"))
                .await
                .expect("first"),
        );
        let forwarded = mail(
            &[
                "From: Barbara Liskov <barbara@elsewhere.example>",
                &format!("Subject: Re: [#{number}] Printer"),
                "Message-ID: <f2@x>",
                "In-Reply-To: <f1@x>",
            ],
            "Ada asked me to answer: it is the fuser.",
        );
        assert_eq!(
            threaded(&db.intake.accept_email(forwarded).await.expect("forwarded")),
            number,
            "{:?}",
            db.backend()
        );
        // And once on the ticket by its headers, the same address may use the tag alone.
        assert_eq!(
            threaded(
                &db.intake
                    .accept_email(tagged("f3@x", "barbara@elsewhere.example", number))
                    .await
                    .expect("tagged")
            ),
            number
        );
    }
}

store_test! {
    #[tokio::test]
    async fn with_unknown_sender_tag_join_a_stranger_joins_the_named_ticket(db: TestStore) {
        let intake = db
            .intake
            .clone()
            .with_unknown_sender_tag(helpdesk::intake::UnknownSenderTag::Join);
        let number = created(
            &intake
                .accept_email(first("j1@x", "ada@example.org", "Printer"))
                .await
                .expect("first"),
        );
        assert_eq!(
            threaded(
                &intake
                    .accept_email(tagged("j2@x", "Ada <mallory@evil.example>", number))
                    .await
                    .expect("stranger")
            ),
            number,
            "{:?}",
            db.backend()
        );
        let ticket = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(
            ticket.messages[1].author_address.as_deref(),
            Some("mallory@evil.example")
        );
    }
}
