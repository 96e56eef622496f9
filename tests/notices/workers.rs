//! The whole way: a `/note` in the agents' Telegram group names an agent, the relay queues the
//! notice job, and the running workers send it as a direct message and as a mail.

use super::*;
use helpdesk::channels::ChatDesk;
use helpdesk_testkit::telegram::User;
use tokio::sync::watch;

store_test! {
    #[tokio::test]
    async fn a_note_written_in_chat_tells_the_named_agent_in_chat_and_by_mail(db: TestStore) {
        let places = Places::start().await;
        let support = department(&db.store, "Support").await;
        let kim = person(&db.store, "kim@helpdesk.example", "Kim", Role::Agent, &[support], Some(501)).await;
        let sam = person(&db.store, "sam@helpdesk.example", "Sam", Role::Agent, &[support], Some(502)).await;
        store::notices::choose(&db.store, sam, &[(NoticeEvent::Mentioned, Some(NoticeWay::Both))])
            .await
            .expect("chosen");
        let number = ticket(&db, "workers-1@example.org", support, kim).await;

        let telegram = helpdesk::channels::telegram::client(&places.settings).expect("client");
        let desk = ChatDesk::new(db.intake.clone(), places.deliverers.clone(), "support@helpdesk.example");
        let (stop, stopped) = watch::channel(false);
        let mut bot_stop = stopped.clone();
        let bot = helpdesk::channels::telegram::start(telegram, desk, db.store.clone(), async move {
            let _ = bot_stop.wait_for(|stop| *stop).await;
        });
        let workers = tokio::spawn(helpdesk::jobs::run(
            db.store.clone(),
            helpdesk::jobs::JobSettings::from_settings(&places.settings),
            places.deliverers.clone(),
            db.intake.committed(),
            stopped,
        ));

        places.telegram.group_message(
            AGENTS_CHAT,
            &User::new(501, "Kim"),
            None,
            &format!("/note #{number} @sam she wants a call back"),
        );
        let dm = places
            .telegram
            .wait_for_sent(WAIT, |sent| {
                sent.chat_id == 502
                    && sent.text.as_deref().is_some_and(|text| text.contains("mentioned you"))
            })
            .await
            .unwrap_or_else(|| panic!("no message to Sam; sent: {:#?}", places.telegram.sent()));
        let text = dm.text.unwrap_or_default();
        assert!(text.starts_with(&format!("Kim mentioned you on ticket #{number}")), "{text}");
        assert!(text.contains("she wants a call back"), "{text}");
        assert!(text.contains(&format!("{PUBLIC_URL}/tickets/{number}")), "{text}");

        let deadline = tokio::time::Instant::now() + WAIT;
        while places.mails("sam@helpdesk.example").is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "no mail to Sam");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mails = places.mails("sam@helpdesk.example");
        assert_eq!(mails.len(), 1, "{mails:?}");
        assert!(mails[0].contains(&format!("{PUBLIC_URL}/tickets/{number}")), "{}", mails[0]);
        assert!(!mails[0].to_lowercase().contains("\r\nin-reply-to:"), "{}", mails[0]);

        // The note is on the ticket, and Kim, who wrote it, got no notice.
        let detail = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("ticket");
        assert!(detail.messages.iter().any(|m| m.kind == "internal" && m.body_text.contains("call back")));
        // (The relay may have given the ticket to either of them: that notice is another one.)
        assert!(
            places.chat(501).iter().all(|text| !text.contains("mentioned")),
            "{:?}",
            places.chat(501)
        );
        assert!(
            places
                .mails("kim@helpdesk.example")
                .iter()
                .all(|mail| !mail.contains("mentioned")),
        );

        // Sam changes his choice from chat.
        places.telegram.group_message(AGENTS_CHAT, &User::new(502, "Sam"), None, "/notify mentioned none");
        let answer = places
            .telegram
            .wait_for_sent(WAIT, |sent| {
                sent.chat_id == AGENTS_CHAT
                    && sent.text.as_deref().is_some_and(|text| text.starts_with("Saved. You are told:"))
            })
            .await
            .unwrap_or_else(|| panic!("no answer to /notify; sent: {:#?}", places.telegram.sent()));
        assert!(
            answer.text.unwrap_or_default().contains("Someone mentions you (@name) in a note: none"),
        );
        let chosen = store::notices::chosen(&db.store, sam).await.expect("read");
        assert_eq!(chosen, [(NoticeEvent::Mentioned, NoticeWay::None)]);

        stop.send(true).ok();
        bot.await.expect("bot stops");
        workers.await.expect("workers stop").expect("workers end cleanly");
    }
}
