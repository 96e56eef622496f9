//! The Discord channel end to end: the real serenity client against the fake Discord of
//! `testkit` (REST and gateway), the chat desk, intake and the job workers, on every backend.

use crate::support;
use std::sync::Arc;
use std::time::Duration;

use crate::support::TestStore;
use helpdesk::channels::{self, ChatDesk};
use helpdesk::config::Settings;
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::jobs::{self, deliver::Deliverers};
use helpdesk::store::{self, Store};
use helpdesk_testkit::discord::{AGENTS_CHANNEL_ID, Failure, FakeDiscord, Sent, Upload, User};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod canned;
mod conversation;
mod identities;
mod notices;
mod recovery;
mod surveys;

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
        let discord = channels::discord::client(&settings).expect("discord client");
        let deliverers = Deliverers::default().with_attachments(db.blobs()).with(
            ChannelKind::Discord,
            Arc::new(channels::discord::DiscordDelivery::new(
                discord.clone(),
                db.store.clone(),
            )),
        );
        let desk = ChatDesk::new(db.intake.clone(), deliverers.clone(), "support@example.org");
        let (stop, stopped) = watch::channel(false);
        let mut bot_stop = stopped.clone();
        let bot = channels::discord::start(discord, desk, db.store.clone(), async move {
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
    let mut detail = store::tickets::detail(store, number.into())
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
