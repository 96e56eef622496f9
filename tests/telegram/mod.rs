//! The Telegram channel end to end: the real teloxide client against the fake Bot API of
//! `testkit`, the chat desk, intake and the job workers, on every backend.

use crate::support;
use std::sync::Arc;
use std::time::Duration;

use crate::support::TestStore;
use helpdesk::channels::{self, ChatDesk};
use helpdesk::config::Settings;
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::jobs::{self, deliver::Deliverers};
use helpdesk::store::{self, Store};
use helpdesk_testkit::telegram::{Failure, FakeTelegram, Sent, Upload, User};
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod canned;
mod conversation;
mod identities;
mod recovery;
mod surveys;
mod webhook;

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
        let telegram = channels::telegram::client(&settings).expect("telegram client");
        let deliverers = Deliverers::default()
            .with_attachments(db.blobs())
            .with(ChannelKind::Telegram, Arc::new(telegram.clone()));
        let desk = ChatDesk::new(db.intake.clone(), deliverers.clone(), "support@example.org");
        let (stop, stopped) = watch::channel(false);
        let mut bot_stop = stopped.clone();
        let bot_stopped = async move {
            let _ = bot_stop.wait_for(|stop| *stop).await;
        };
        let bot = match webhook {
            Some(listener) => channels::telegram::start_webhook(
                telegram,
                desk,
                db.store.clone(),
                listener,
                bot_stopped,
            ),
            None => channels::telegram::start(telegram, desk, db.store.clone(), bot_stopped),
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
