//! The Discord channel end to end: the real serenity client against the fake Discord of
//! `testkit` (REST and gateway), the chat desk, intake and the job workers, on every backend.


use crate::support;
use std::sync::Arc;
use std::time::Duration;

use helpdesk::chat::{self, ChatDesk};
use helpdesk::config::Settings;
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::jobs::{self, deliver::Deliverers};
use helpdesk::store::{self, Store};
use helpdesk_testkit::discord::{AGENTS_CHANNEL_ID, Failure, FakeDiscord, Sent, Upload, User};
use serde_json::json;
use crate::support::{TestStore, stores};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const TOKEN: &str = "MTIz.discord-test-token";
const WAIT: Duration = Duration::from_secs(20);

fn settings(fake: &FakeDiscord) -> Settings {
    Settings::load_from(
        None,
        [
            ("HELPDESK_DISCORD__ENABLED", "true".to_owned()),
            ("HELPDESK_DISCORD__TOKEN", TOKEN.to_owned()),
            ("HELPDESK_DISCORD__API_URL", fake.url()),
            (
                "HELPDESK_DISCORD__AGENTS_CHANNEL_ID",
                AGENTS_CHANNEL_ID.to_string(),
            ),
            (
                "HELPDESK_INTAKE__MAX_ATTACHMENT_BYTES",
                support::LIMITS.max_attachment_bytes.to_string(),
            ),
        ]
        .map(|(key, value)| (key.to_owned(), value)),
    )
    .expect("settings")
}

/// The bot and the job workers running against one store.
struct Running {
    stop: watch::Sender<bool>,
    bot: JoinHandle<()>,
    jobs: JoinHandle<Result<(), apalis::prelude::BoxDynError>>,
}

impl Running {
    async fn start(db: &TestStore, fake: &FakeDiscord) -> Running {
        logs();
        let sessions = fake.identifies();
        let settings = settings(fake);
        let discord = chat::discord::client(&settings).expect("discord client");
        let deliverers = Deliverers::default().with_attachments(db.blobs()).with(
            ChannelKind::Discord,
            Arc::new(chat::discord::DiscordDelivery::new(
                discord.clone(),
                db.store.clone(),
            )),
        );
        let desk = ChatDesk::new(db.intake.clone(), deliverers.clone(), "support@example.org");
        let (stop, stopped) = watch::channel(false);
        let mut bot_stop = stopped.clone();
        let bot = chat::discord::start(discord, desk, db.store.clone(), async move {
            let _ = bot_stop.wait_for(|stop| *stop).await;
        });
        let jobs = tokio::spawn(jobs::run(
            db.store.clone(),
            jobs::JobSettings::from_settings(&settings),
            deliverers,
            db.intake.committed(),
            stopped,
        ));
        // Discord keeps nothing for a bot that is not connected: people write once it is.
        assert!(
            fake.wait_for_identify(sessions + 1, WAIT).await,
            "the bot never identified; calls: {:?}",
            fake.calls()
        );
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

/// Logs for a failing test: RUST_LOG=helpdesk=debug,serenity=info cargo test --test discord
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

async fn agent(store: &Store, email: &str, name: &str, discord_id: u64) -> i64 {
    let discord_id = discord_id.to_string();
    store::agents::create_agent(
        store,
        &store::agents::NewAgent {
            email,
            name,
            role: helpdesk::domain::Role::Agent,
            password_hash: None,
            department_ids: &[],
            identities: &[(ChannelKind::Discord, discord_id.as_str())],
            max_open_tickets: None,
        },
        chrono::Utc::now(),
    )
    .await
    .expect("agent")
}

async fn sent_to(fake: &FakeDiscord, channel: u64, contains: &str) -> Sent {
    fake.wait_for_sent(WAIT, |sent| {
        sent.channel_id == channel && sent.content.contains(contains)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "nothing containing {contains:?} sent to {channel}; sent: {:#?}; calls: {:?}",
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

/// The thread the bot started for ticket `number`.
async fn thread_of(fake: &FakeDiscord, number: i64) -> u64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(thread) = fake
            .threads()
            .into_iter()
            .find(|thread| thread.name.starts_with(&format!("#{number} ")))
        {
            assert_eq!(thread.parent_id, AGENTS_CHANNEL_ID);
            return thread.id;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no thread for #{number}: {:?}",
            fake.threads()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A customer's first DM: the greeting's ticket number and the ticket's thread.
async fn open_ticket(fake: &FakeDiscord, customer: &User, text: &str) -> (i64, u64) {
    fake.customer_writes(customer, text);
    let dm = fake.dm_channel_of(customer);
    let greeting = sent_to(fake, dm, "Your ticket number is #").await;
    let number = ticket_number_in(&greeting.content);
    sent_to(fake, AGENTS_CHANNEL_ID, &format!("New ticket #{number}")).await;
    (number, thread_of(fake, number).await)
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dm_becomes_a_ticket_with_a_thread_and_the_agents_answer_reaches_the_customer(db: TestStore) {
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
        let everything = store::tickets::detail(&db.store, number)
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
                "claim", "assign", "note", "status", "priority", "close", "reopen", "help"
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
        let sha256 = db.blobs().put(&report).expect("blob stored");
        jobs::deliver::send_reply_with_files(
            &db.store,
            &store::outbound::NewReply {
                number,
                agent_id: sam,
                text: "Here is the corrected invoice.",
                kind: helpdesk::domain::MessageKind::Public,
                external_id: None,
                channels_here: &[ChannelKind::Discord],
                now: chrono::Utc::now(),
            },
            &[jobs::deliver::AttachedFile {
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

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_gateway_connection_is_resumed_and_nothing_is_missed(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");
        let sam = User::new(555, "Sam");
        let (number, thread) = open_ticket(&fake, &ada, "First").await;
        let dm = fake.dm_channel_of(&ada);

        // The connection drops; what people write meanwhile comes with the resumed session.
        fake.drop_connection();
        fake.customer_writes(&ada, "Written while the bot was cut off");
        fake.agent_writes_in_thread(&sam, thread, "Answered while cut off");
        assert!(
            fake.wait_for_resume(1, WAIT).await,
            "the client resumed; identifies {}, calls {:?}",
            fake.identifies(),
            fake.calls()
        );
        sent_to(&fake, thread, "Written while the bot was cut off").await;
        sent_to(&fake, dm, "Answered while cut off").await;

        // Discord may also ask for a reconnect (op 7): resumed as well.
        fake.request_reconnect();
        assert!(fake.wait_for_resume(2, WAIT).await, "resumed after op 7");
        fake.customer_writes(&ada, "And after the reconnect");
        sent_to(&fake, thread, "And after the reconnect").await;
        assert_eq!(fake.identifies(), 1, "resumed, never identified anew");

        let detail = until_ticket(&db.store, number, "five messages, the reply sent", |t| {
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
        assert_eq!(
            texts,
            [
                "First",
                "Written while the bot was cut off",
                "Answered while cut off",
                "And after the reconnect",
            ]
        );
        running.stop().await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_repeats_nothing(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
        let ada = User::new(42, "Ada");
        let sam = User::new(555, "Sam");
        let dm = fake.dm_channel_of(&ada);

        let running = Running::start(&db, &fake).await;
        let (number, thread) = open_ticket(&fake, &ada, "First").await;
        let first = fake.sent().iter().filter(|s| s.channel_id == dm).count();
        let answer = fake.agent_writes_in_thread(&sam, thread, "Answer one");
        sent_to(&fake, dm, "Answer one").await;
        until_ticket(&db.store, number, "the answer is sent", |t| {
            t.messages
                .iter()
                .any(|m| m.delivery_status.as_deref() == Some("sent"))
        })
        .await;
        running.stop().await;

        let running = Running::start(&db, &fake).await;
        // Discord sends the same messages again: nothing happens twice.
        let customer_first = fake
            .sent()
            .iter()
            .find(|s| s.channel_id == dm)
            .and_then(|greeting| greeting.reply_to)
            .expect("the greeting replied to the first DM");
        fake.dispatch_again(customer_first);
        fake.dispatch_again(answer);
        fake.customer_writes(&ada, "Second");
        sent_to(&fake, thread, "Second").await;
        fake.agent_writes_in_thread(&sam, thread, "Answer two");
        sent_to(&fake, dm, "Answer two").await;
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
        running.stop().await;

        let to_ada: Vec<String> = fake
            .sent()
            .into_iter()
            .filter(|s| s.channel_id == dm)
            .map(|s| s.content)
            .collect();
        assert_eq!(first, 1, "one greeting before the restart");
        assert_eq!(
            to_ada
                .iter()
                .filter(|t| t.contains("Your ticket number"))
                .count(),
            1,
            "{to_ada:?}"
        );
        assert_eq!(to_ada.iter().filter(|t| *t == "Answer one").count(), 1);
        assert_eq!(to_ada.iter().filter(|t| *t == "Answer two").count(), 1);
        assert!(
            store::tickets::detail(&db.store, number + 1)
                .await
                .expect("ticket query")
                .is_none(),
            "no second ticket"
        );
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limits_and_outages_go_back_to_the_delivery_queue(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        let sam = agent(&db.store, "sam@example.org", "Sam", 555).await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");
        let (number, _) = open_ticket(&fake, &ada, "Hello").await;
        running.stop().await;

        let settings = settings(&fake);
        let discord = chat::discord::client(&settings).expect("client");
        let deliverers = Deliverers::default().with(
            ChannelKind::Discord,
            Arc::new(chat::discord::DiscordDelivery::new(
                discord,
                db.store.clone(),
            )),
        );
        let stored = jobs::deliver::send_reply(
            &db.store,
            &store::outbound::NewReply {
                number,
                agent_id: sam,
                text: "On it",
                kind: helpdesk::domain::MessageKind::Public,
                external_id: None,
                channels_here: &[ChannelKind::Discord],
                now: chrono::Utc::now(),
            },
        )
        .await
        .expect("reply stored");
        fake.fail_next(
            "POST /channels/",
            Failure::TooManyRequests { retry_after: 2.5 },
        );
        fake.fail_next("POST /channels/", Failure::BadGateway);
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
            fake.sent().iter().filter(|s| s.content == "On it").count(),
            1
        );

        // A customer who does not accept DMs from the bot: no use retrying.
        let stored = jobs::deliver::send_reply(
            &db.store,
            &store::outbound::NewReply {
                number,
                agent_id: sam,
                text: "Hello?",
                kind: helpdesk::domain::MessageKind::Public,
                external_id: None,
                channels_here: &[ChannelKind::Discord],
                now,
            },
        )
        .await
        .expect("reply stored");
        fake.fail_next("POST /channels/", Failure::CannotMessageUser);
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

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_token_is_reported_and_no_gateway_is_tried(db: TestStore) {
        logs();
        let fake = FakeDiscord::start("another-bots-token").await;
        let settings = settings(&fake);
        let discord = chat::discord::client(&settings).expect("client");
        let desk = ChatDesk::new(
            db.intake.clone(),
            Deliverers::default(),
            "support@example.org",
        );
        let (stop, mut stopped) = watch::channel(false);
        let bot = chat::discord::start(discord, desk, db.store.clone(), async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        let deadline = tokio::time::Instant::now() + WAIT;
        let report = loop {
            let health = store::health::list(&db.store).await.expect("health");
            if let Some(report) = health.into_iter().find(|h| {
                h.channel == "discord"
                    && h.last_error
                        .as_deref()
                        .is_some_and(|error| error.contains("401"))
            }) {
                break report;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the refused token is not reported; calls: {:?}",
                fake.calls()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(!report.connected);
        assert_eq!(fake.identifies(), 0);
        assert!(
            fake.calls().iter().all(|call| call == "GET /users/@me"),
            "nothing else is tried with a refused token: {:?}",
            fake.calls()
        );
        stop.send(true).ok();
        bot.await.expect("bot stops");
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dms_sent_while_the_bot_was_away_join_the_ticket_once_and_in_order(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        let ada = User::new(42, "Ada");
        let dm = fake.dm_channel_of(&ada);

        let running = Running::start(&db, &fake).await;
        let (number, thread) = open_ticket(&fake, &ada, "First").await;
        running.stop().await;

        // While the bot is away Discord keeps no events for it; the messages stay in the DM.
        fake.customer_writes(&ada, "Second");
        fake.customer_writes(&ada, "Third");
        // One more right after the next READY, before the bot may have set up its collector.
        fake.customer_writes_when_ready(&ada, "Fourth");
        let history_calls = |fake: &FakeDiscord| {
            fake.calls()
                .iter()
                .filter(|call| **call == format!("GET /channels/{dm}/messages"))
                .count()
        };
        let asked_before = history_calls(&fake);

        let running = Running::start(&db, &fake).await;
        sent_to(&fake, thread, "Fourth").await;
        fake.customer_writes(&ada, "Fifth");
        let detail = until_ticket(&db.store, number, "five messages", |t| {
            t.messages.len() >= 5
        })
        .await;
        let texts: Vec<&str> = detail
            .messages
            .iter()
            .map(|m| m.body_text.as_str())
            .collect();
        assert_eq!(texts, ["First", "Second", "Third", "Fourth", "Fifth"]);
        assert!(
            history_calls(&fake) > asked_before,
            "the DM's history was asked for: {:?}",
            fake.calls()
        );
        running.stop().await;

        // Another start fetches the same history again and takes nothing twice.
        let running = Running::start(&db, &fake).await;
        fake.customer_writes(&ada, "Sixth");
        sent_to(&fake, thread, "Sixth").await;
        let detail =
            until_ticket(&db.store, number, "six messages", |t| t.messages.len() >= 6).await;
        let texts: Vec<&str> = detail
            .messages
            .iter()
            .map(|m| m.body_text.as_str())
            .collect();
        assert_eq!(
            texts,
            ["First", "Second", "Third", "Fourth", "Fifth", "Sixth"]
        );
        running.stop().await;
        assert!(
            store::tickets::detail(&db.store, number + 1)
                .await
                .expect("ticket query")
                .is_none(),
            "no second ticket"
        );
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_to_agents_that_fail_are_sent_again_and_a_failed_slash_answer_follows(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        agent(&db.store, "sam@example.org", "Sam", 555).await;
        let running = Running::start(&db, &fake).await;
        let ada = User::new(42, "Ada");
        let sam = User::new(555, "Sam");
        let (_, thread) = open_ticket(&fake, &ada, "Cannot log in").await;

        // Discord has trouble the first time the bot answers in the thread.
        fake.fail_next(
            &format!("POST /channels/{thread}/messages"),
            Failure::BadGateway,
        );
        let asked = fake.agent_writes_in_thread(&sam, thread, "/note she called");
        let answer = sent_to(&fake, thread, "Note added").await;
        assert_eq!(
            answer.reply_to,
            Some(asked),
            "the answer replies to the command"
        );

        // A slash command's answer is due at once; when neither the interaction response nor
        // the post in the thread goes through, it follows through the queue.
        fake.fail_next("POST /interactions/", Failure::BadGateway);
        fake.fail_next(
            &format!("POST /channels/{thread}/messages"),
            Failure::BadGateway,
        );
        let claim = fake.agent_runs_slash_command(&sam, thread, "claim", &[]);
        let follow_up = sent_to(&fake, thread, "is yours, Sam").await;
        assert_eq!(follow_up.interaction, None, "a message, not the response");
        assert!(
            !fake.sent().iter().any(|s| s.interaction == Some(claim)),
            "the refused response is not counted as sent"
        );
        running.stop().await;
        let answers = |text: &str| {
            fake.sent()
                .iter()
                .filter(|s| s.channel_id == thread && s.content.contains(text))
                .count()
        };
        assert_eq!(answers("Note added"), 1);
        assert_eq!(answers("is yours, Sam"), 1);
    }
}

/// What the "wrote again" notices in `thread` quote, sorted, once there are `count` of them.
async fn notices_quoting(fake: &FakeDiscord, thread: u64, count: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut quoted: Vec<String> = fake
            .sent()
            .iter()
            .filter(|sent| {
                sent.channel_id == thread && sent.content.contains("the customer wrote again")
            })
            .map(|sent| {
                let (_, quote) = sent.content.split_once("\n\n").unwrap_or_default();
                quote.to_owned()
            })
            .collect();
        if quoted.len() >= count {
            quoted.sort();
            return quoted;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} notices in the thread; sent: {:#?}",
            fake.sent()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_notice_quotes_the_dm_it_announces_live_and_after_a_restart(db: TestStore) {
        let fake = FakeDiscord::start(TOKEN).await;
        let ada = User::new(42, "Ada");
        let running = Running::start(&db, &fake).await;
        let (number, thread) = open_ticket(&fake, &ada, "First").await;

        for text in ["Live one", "Live two", "Live three"] {
            fake.customer_writes(&ada, text);
        }
        assert_eq!(
            notices_quoting(&fake, thread, 3).await,
            ["Live one", "Live three", "Live two"]
        );
        running.stop().await;

        // Caught up from the DM's history at the next start, all in one go.
        for text in ["Away one", "Away two", "Away three"] {
            fake.customer_writes(&ada, text);
        }
        let running = Running::start(&db, &fake).await;
        assert_eq!(
            notices_quoting(&fake, thread, 6).await,
            [
                "Away one",
                "Away three",
                "Away two",
                "Live one",
                "Live three",
                "Live two"
            ]
        );
        let detail = until_ticket(&db.store, number, "seven messages", |t| {
            t.messages.len() == 7
        })
        .await;
        assert_eq!(detail.messages[6].body_text, "Away three");
        running.stop().await;
    }
}
