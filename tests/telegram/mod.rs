//! The Telegram channel end to end: the real teloxide client against the fake Bot API of
//! `testkit`, the chat desk, intake and the job workers, on every backend.


use crate::support;
use std::sync::Arc;
use std::time::Duration;

use helpdesk::chat::{self, ChatDesk};
use helpdesk::config::Settings;
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::jobs::{self, deliver::Deliverers};
use helpdesk::store::{self, Store};
use helpdesk_testkit::telegram::{Failure, FakeTelegram, Sent, Upload, User};
use crate::support::{TestStore, stores};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const TOKEN: &str = "123456:TEST-token";
const AGENTS_CHAT: i64 = -1_001_234_567_890;
const WAIT: Duration = Duration::from_secs(20);

fn settings(fake: &FakeTelegram) -> Settings {
    settings_with(fake, &[])
}

fn settings_with(fake: &FakeTelegram, more: &[(&str, String)]) -> Settings {
    let mut env: Vec<(String, String)> = [
        ("HELPDESK_TELEGRAM__ENABLED", "true".to_owned()),
        ("HELPDESK_TELEGRAM__TOKEN", TOKEN.to_owned()),
        ("HELPDESK_TELEGRAM__API_URL", fake.url()),
        ("HELPDESK_TELEGRAM__AGENTS_CHAT_ID", AGENTS_CHAT.to_string()),
        (
            "HELPDESK_INTAKE__MAX_ATTACHMENT_BYTES",
            support::LIMITS.max_attachment_bytes.to_string(),
        ),
    ]
    .map(|(key, value)| (key.to_owned(), value))
    .into();
    env.extend(
        more.iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone())),
    );
    Settings::load_from(None, env).expect("settings")
}

const WEBHOOK_SECRET: &str = "webhook-Secret_42";

/// The bot and the job workers running against one store.
struct Running {
    stop: watch::Sender<bool>,
    bot: JoinHandle<()>,
    jobs: JoinHandle<Result<(), apalis::prelude::BoxDynError>>,
}

impl Running {
    async fn start(db: &TestStore, fake: &FakeTelegram) -> Running {
        Running::launch(db, settings(fake), None)
    }

    /// The bot in webhook mode, on a listener of its own at a free local port; returns the
    /// webhook's URL too.
    async fn start_webhook(db: &TestStore, fake: &FakeTelegram) -> (Running, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free local port");
        let url = format!(
            "http://{}/telegram/webhook",
            listener.local_addr().expect("address")
        );
        let settings = settings_with(
            fake,
            &[
                ("HELPDESK_TELEGRAM__MODE", "webhook".to_owned()),
                ("HELPDESK_TELEGRAM__WEBHOOK_URL", url.clone()),
                (
                    "HELPDESK_TELEGRAM__WEBHOOK_SECRET",
                    WEBHOOK_SECRET.to_owned(),
                ),
            ],
        );
        let running = Running::launch(db, settings, Some(listener));
        // Updates flow once the webhook is set.
        let deadline = tokio::time::Instant::now() + WAIT;
        while fake.webhook_url() != url {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the webhook is set; calls: {:?}",
                fake.calls()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (running, url)
    }

    fn launch(
        db: &TestStore,
        settings: Settings,
        webhook: Option<tokio::net::TcpListener>,
    ) -> Running {
        let telegram = chat::telegram::client(&settings).expect("telegram client");
        let deliverers =
            Deliverers::default().with(ChannelKind::Telegram, Arc::new(telegram.clone()));
        let desk = ChatDesk::new(db.intake.clone(), deliverers.clone(), "support@example.org");
        let (stop, stopped) = watch::channel(false);
        let mut bot_stop = stopped.clone();
        let bot_stopped = async move {
            let _ = bot_stop.wait_for(|stop| *stop).await;
        };
        let bot = match webhook {
            Some(listener) => chat::telegram::start_webhook(
                telegram,
                desk,
                db.store.clone(),
                listener,
                bot_stopped,
            ),
            None => chat::telegram::start(telegram, desk, db.store.clone(), bot_stopped),
        };
        let jobs = tokio::spawn(jobs::run(
            db.store.clone(),
            jobs::JobSettings::from_settings(&settings),
            deliverers,
            db.intake.committed(),
            stopped,
        ));
        Running { stop, bot, jobs }
    }

    async fn stop(self) {
        self.stop.send(true).ok();
        self.bot.await.expect("bot stops");
        self.jobs
            .await
            .expect("workers stop")
            .expect("workers end cleanly");
    }
}

async fn agent(store: &Store, email: &str, name: &str, telegram_id: i64) -> i64 {
    let telegram_id = telegram_id.to_string();
    store::agents::create_agent(
        store,
        &store::agents::NewAgent {
            email,
            name,
            role: helpdesk::domain::Role::Agent,
            password_hash: None,
            department_ids: &[],
            identities: &[(ChannelKind::Telegram, telegram_id.as_str())],
            max_open_tickets: None,
        },
        chrono::Utc::now(),
    )
    .await
    .expect("agent")
}

async fn sent_to(fake: &FakeTelegram, chat: i64, contains: &str) -> Sent {
    fake.wait_for_sent(WAIT, |sent| {
        sent.chat_id == chat
            && sent
                .text
                .as_deref()
                .is_some_and(|text| text.contains(contains))
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "nothing containing {contains:?} sent to {chat}; sent: {:#?}; calls: {:?}",
            fake.sent(),
            fake.calls()
        )
    })
}

/// Ticket `number` with the messages people wrote (greetings, kept as automatic messages of
/// the ticket, left out).
async fn ticket(store: &Store, number: i64) -> store::tickets::TicketDetail {
    let mut detail = store::tickets::detail(store, number)
        .await
        .expect("ticket query")
        .unwrap_or_else(|| panic!("ticket #{number} exists"));
    detail.messages.retain(|message| message.kind != "system");
    detail
}

/// Waits until `check` holds for ticket `number`.
async fn until_ticket(
    store: &Store,
    number: i64,
    what: &str,
    check: impl Fn(&store::tickets::TicketDetail) -> bool,
) -> store::tickets::TicketDetail {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let detail = ticket(store, number).await;
        if check(&detail) {
            return detail;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ticket #{number}: {what}; it is {detail:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ticket_number_in(text: &str) -> i64 {
    let start = text.find('#').expect("a ticket number") + 1;
    text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("digits")
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn customer_message_becomes_a_ticket_and_the_agents_reply_reaches_the_customer(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
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
            history.contains(&"assignee") && history.contains(&"priority"),
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
            .expect("blob readable");
        assert_eq!(stored, pdf, "the file arrives byte for byte");
        let photo = &detail.messages[1].attachments[0];
        assert_eq!(photo.content_type, "image/jpeg");
        assert_eq!(
            db.blobs()
                .get(photo.sha256.as_deref().expect("photo kept"))
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
    async fn a_restart_loses_and_repeats_nothing(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
        let ada = User::new(42, "Ada");
        let sam = User::new(555, "Sam");

        let running = Running::start(&db, &fake).await;
        fake.customer_writes(&ada, "First");
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());
        let post = sent_to(&fake, AGENTS_CHAT, &format!("New ticket #{number}")).await;
        fake.group_message(AGENTS_CHAT, &sam, Some(post.message_id), "Answer one");
        sent_to(&fake, ada.id, "Answer one").await;
        running.stop().await;

        // While the helpdesk is down, people keep writing.
        fake.customer_writes(&ada, "Second");
        fake.group_message(AGENTS_CHAT, &sam, Some(post.message_id), "Answer two");
        let before = fake.get_updates_offsets().len();

        let running = Running::start(&db, &fake).await;
        sent_to(&fake, ada.id, "Answer two").await;
        let detail = until_ticket(&db.store, number, "four messages, all sent", |t| {
            t.messages.len() == 4
                && t.messages.iter().all(|m| {
                    m.direction == "inbound" || m.delivery_status.as_deref() == Some("sent")
                })
        })
        .await;
        let texts: Vec<&str> = detail
            .messages
            .iter()
            .map(|m| m.body_text.as_str())
            .collect();
        assert_eq!(texts, ["First", "Answer one", "Second", "Answer two"]);
        // The restarted poller asked from the stored offset, not from the start.
        let offsets = fake.get_updates_offsets();
        assert!(offsets[before] > 0, "the offset was kept: {offsets:?}");
        running.stop().await;
        let health = store::health::list(&db.store).await.expect("health");
        assert!(
            health
                .iter()
                .any(|h| h.channel == "telegram" && !h.connected),
            "a stopped poller says so: {health:?}"
        );

        let answers = |text: &str| {
            fake.sent()
                .iter()
                .filter(|s| s.chat_id == ada.id && s.text.as_deref() == Some(text))
                .count()
        };
        assert_eq!(answers("Answer one"), 1, "nothing is sent twice");
        assert_eq!(answers("Answer two"), 1);
        let greetings = fake
            .sent()
            .iter()
            .filter(|s| {
                s.text
                    .as_deref()
                    .is_some_and(|t| t.contains("Your ticket number"))
            })
            .count();
        assert_eq!(greetings, 1);
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limits_and_outages_go_back_to_the_delivery_queue(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        let sam = agent(&db.store, "sam@example.org", "Sam", 555).await;
        let settings = settings(&fake);
        let telegram = chat::telegram::client(&settings).expect("client");
        let deliverers = Deliverers::default().with(ChannelKind::Telegram, Arc::new(telegram));
        let desk = ChatDesk::new(db.intake.clone(), deliverers.clone(), "support@example.org");
        let ada = User::new(42, "Ada");
        let message = helpdesk::helpdesk_channel::InboundMessage {
            channel: ChannelKind::Telegram,
            external_id: "42:900".into(),
            sender: helpdesk::helpdesk_channel::Identity {
                channel: ChannelKind::Telegram,
                address: ada.id.to_string(),
                display_name: Some("Ada".into()),
            },
            subject: None,
            text: "Hello".into(),
            html: None,
            attachments: Vec::new(),
            thread: helpdesk::helpdesk_channel::ThreadHints {
                conversation: Some(ada.id.to_string()),
                ..Default::default()
            },
            automation: Default::default(),
            sent_at: None,
            raw: b"{}".to_vec(),
        };
        desk.handle(helpdesk::helpdesk_channel::ChatEvent::Customer(message))
            .await
            .expect("taken in");
        let number = 1001;
        let stored = jobs::deliver::send_reply(
            &db.store,
            &store::outbound::NewReply {
                number,
                agent_id: sam,
                text: "On it",
                kind: helpdesk::domain::MessageKind::Public,
                external_id: None,
                channels_here: &[ChannelKind::Telegram],
                now: chrono::Utc::now(),
            },
        )
        .await
        .expect("reply stored");

        fake.fail_next("sendMessage", Failure::TooManyRequests { retry_after: 3 });
        fake.fail_next("sendMessage", Failure::BadGateway);
        let now = chrono::Utc::now();
        for _ in 0..2 {
            let outcome =
                jobs::deliver::deliver_message(&db.store, &deliverers, stored.message_id, now)
                    .await
                    .expect("attempt recorded");
            assert!(
                matches!(outcome, jobs::deliver::DeliveryOutcome::RetryAt(_)),
                "a rate limit or outage is retried later: {outcome:?}"
            );
        }
        let outcome =
            jobs::deliver::deliver_message(&db.store, &deliverers, stored.message_id, now)
                .await
                .expect("attempt recorded");
        assert!(
            matches!(outcome, jobs::deliver::DeliveryOutcome::Sent { .. }),
            "{outcome:?}"
        );
        assert_eq!(
            fake.sent()
                .iter()
                .filter(|s| s.text.as_deref() == Some("On it"))
                .count(),
            1
        );

        // A customer who blocked the bot: no use retrying.
        let stored = jobs::deliver::send_reply(
            &db.store,
            &store::outbound::NewReply {
                number,
                agent_id: sam,
                text: "Hello?",
                kind: helpdesk::domain::MessageKind::Public,
                external_id: None,
                channels_here: &[ChannelKind::Telegram],
                now,
            },
        )
        .await
        .expect("reply stored");
        fake.fail_next("sendMessage", Failure::Blocked);
        let outcome =
            jobs::deliver::deliver_message(&db.store, &deliverers, stored.message_id, now)
                .await
                .expect("attempt recorded");
        assert!(
            matches!(outcome, jobs::deliver::DeliveryOutcome::Failed(_)),
            "{outcome:?}"
        );
    }
}

/// Runs `sql` on the store's writing connection.
async fn execute(store: &Store, sql: &'static str) {
    match store {
        Store::Sqlite { writer, .. } => {
            sqlx::query(sql).execute(writer).await.expect(sql);
        }
        Store::Postgres { pool } => {
            sqlx::query(sql).execute(pool).await.expect(sql);
        }
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn by_webhook_a_customer_message_becomes_a_ticket_and_the_reply_reaches_the_customer(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
        let (running, _) = Running::start_webhook(&db, &fake).await;
        assert_eq!(
            fake.webhook_secret().as_deref(),
            Some(WEBHOOK_SECRET),
            "Telegram is told the secret"
        );
        assert_eq!(
            fake.webhook_max_connections(),
            Some(1),
            "one update at a time, in order"
        );
        let ada = User::new(42, "Ada");
        let sam = User::new(555, "Sam");

        fake.customer_writes(&ada, "My printer is on fire");
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());
        let post = sent_to(&fake, AGENTS_CHAT, &format!("New ticket #{number}")).await;
        fake.group_message(
            AGENTS_CHAT,
            &sam,
            Some(post.message_id),
            "Please unplug it first.",
        );
        sent_to(&fake, ada.id, "Please unplug it first.").await;
        let detail = until_ticket(&db.store, number, "the reply is delivered", |t| {
            t.messages
                .iter()
                .any(|m| m.delivery_status.as_deref() == Some("sent"))
        })
        .await;
        let texts: Vec<&str> = detail
            .messages
            .iter()
            .map(|m| m.body_text.as_str())
            .collect();
        assert_eq!(texts, ["My printer is on fire", "Please unplug it first."]);
        assert!(
            !fake.calls().iter().any(|call| call == "getUpdates"),
            "no polling in webhook mode: {:?}",
            fake.calls()
        );
        assert!(
            fake.webhook_deliveries()
                .iter()
                .all(|delivery| delivery.status == Some(200)),
            "every update was taken at once: {:?}",
            fake.webhook_deliveries()
        );
        running.stop().await;

        // Back to polling: the webhook goes, and what came meanwhile is polled.
        fake.customer_writes(&ada, "Unplugged it");
        let running = Running::start(&db, &fake).await;
        until_ticket(
            &db.store,
            number,
            "the message sent meanwhile is kept",
            |t| t.messages.iter().any(|m| m.body_text == "Unplugged it"),
        )
        .await;
        assert_eq!(fake.webhook_url(), "", "polling removed the webhook");
        running.stop().await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_webhook_refuses_updates_without_the_secret_and_takes_a_redelivery_once(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        let (running, url) = Running::start_webhook(&db, &fake).await;
        let ada = User::new(42, "Ada");

        // Someone who found the address posts a made-up update.
        let forged = serde_json::json!({
            "update_id": 999_999_999,
            "message": {
                "message_id": 1, "date": 1_700_000_000,
                "chat": {"id": 66, "type": "private", "first_name": "Mallory"},
                "from": {"id": 66, "is_bot": false, "first_name": "Mallory"},
                "text": "Give me a ticket",
            },
        })
        .to_string();
        let client = reqwest::Client::new();
        for secret in [None, Some("wrong-secret")] {
            let mut request = client
                .post(&url)
                .header("Content-Type", "application/json")
                .body(forged.clone());
            if let Some(secret) = secret {
                request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
            }
            let status = request.send().await.expect("the webhook answers").status();
            assert_eq!(status.as_u16(), 401, "secret {secret:?} is refused");
        }

        fake.customer_writes(&ada, "/start");
        sent_to(&fake, ada.id, "Write your question").await;
        fake.customer_writes(&ada, "My printer is on fire");
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());

        // Telegram did not get our answers and sends both updates again.
        let delivered: Vec<i64> = fake
            .webhook_deliveries()
            .iter()
            .map(|delivery| delivery.update_id)
            .collect();
        assert_eq!(delivered.len(), 2, "{:?}", fake.webhook_deliveries());
        for update_id in delivered {
            assert_eq!(fake.redeliver(update_id).await, Some(200));
        }
        // A later message shows that everything before it is done.
        fake.customer_writes(&ada, "It smells of toner");
        until_ticket(&db.store, number, "the next message is kept", |t| {
            t.messages
                .iter()
                .any(|m| m.body_text == "It smells of toner")
        })
        .await;
        let detail = ticket(&db.store, number).await;
        let texts: Vec<&str> = detail
            .messages
            .iter()
            .map(|m| m.body_text.as_str())
            .collect();
        assert_eq!(texts, ["My printer is on fire", "It smells of toner"]);
        let welcomes = fake
            .sent()
            .iter()
            .filter(|s| {
                s.text
                    .as_deref()
                    .is_some_and(|t| t.contains("Write your question"))
            })
            .count();
        assert_eq!(welcomes, 1, "the redelivered /start is not answered again");
        let totals = store::tickets::totals(&db.store).await.expect("totals");
        assert_eq!(totals.tickets, 1, "the forged update opened nothing");
        running.stop().await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_update_the_store_refuses_is_refused_to_telegram_and_taken_on_its_retry(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        let (running, _) = Running::start_webhook(&db, &fake).await;
        let ada = User::new(42, "Ada");

        // The database refuses new messages for a while (not even their raw form is kept).
        let (refuse, allow) = match db.backend() {
            store::Backend::Sqlite => (
                vec![
                    "CREATE TRIGGER refuse_messages BEFORE INSERT ON raw_messages \
                     BEGIN SELECT RAISE(ABORT, 'refused for the test'); END",
                ],
                vec!["DROP TRIGGER refuse_messages"],
            ),
            store::Backend::Postgres => (
                vec![
                    "CREATE FUNCTION refuse_messages() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$",
                    "CREATE TRIGGER refuse_messages BEFORE INSERT ON raw_messages \
                     FOR EACH ROW EXECUTE FUNCTION refuse_messages()",
                ],
                vec![
                    "DROP TRIGGER refuse_messages ON raw_messages",
                    "DROP FUNCTION refuse_messages()",
                ],
            ),
        };
        for sql in refuse {
            execute(&db.store, sql).await;
        }
        fake.customer_writes(&ada, "My printer is on fire");
        let deadline = tokio::time::Instant::now() + WAIT;
        while fake
            .webhook_deliveries()
            .iter()
            .filter(|delivery| delivery.status == Some(500))
            .count()
            < 2
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the update is refused and posted again: {:?}",
                fake.webhook_deliveries()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(fake.unconfirmed_updates(), 1, "Telegram keeps the update");
        for sql in allow {
            execute(&db.store, sql).await;
        }
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());
        let detail = ticket(&db.store, number).await;
        assert_eq!(detail.messages.len(), 1, "kept once: {detail:#?}");
        assert_eq!(detail.messages[0].body_text, "My printer is on fire");
        assert_eq!(fake.unconfirmed_updates(), 0);
        running.stop().await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answer_in_the_agents_group_that_fails_is_sent_again(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
        let running = Running::start(&db, &fake).await;
        let sam = User::new(555, "Sam");

        // Telegram has trouble the first time the bot answers.
        fake.fail_next("sendMessage", Failure::BadGateway);
        let asked = fake.group_message(AGENTS_CHAT, &sam, None, "/help");
        let answer = sent_to(&fake, AGENTS_CHAT, "/claim - take the ticket yourself").await;
        assert_eq!(
            answer.reply_to,
            Some(asked),
            "the answer replies to the command"
        );
        let attempts = fake
            .calls()
            .iter()
            .filter(|call| *call == "sendMessage")
            .count();
        assert_eq!(attempts, 2, "refused once, then sent: {:?}", fake.calls());
        running.stop().await;
        let answers = fake
            .sent()
            .iter()
            .filter(|s| s.chat_id == AGENTS_CHAT)
            .count();
        assert_eq!(answers, 1, "answered once: {:#?}", fake.sent());
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
    async fn each_group_post_quotes_the_message_it_announces_live_and_after_a_restart(db: TestStore) {
        let fake = FakeTelegram::start(TOKEN).await;
        let ada = User::new(42, "Ada");
        let running = Running::start(&db, &fake).await;
        fake.customer_writes(&ada, "First");
        let greeting = sent_to(&fake, ada.id, "Your ticket number is #").await;
        let number = ticket_number_in(greeting.text.as_deref().unwrap_or_default());
        sent_to(&fake, AGENTS_CHAT, &format!("New ticket #{number}")).await;

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
