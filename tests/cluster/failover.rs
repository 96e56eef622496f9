//! Two `helpdesk serve` processes on one PostgreSQL with a Dovecot mailbox, the fake Telegram
//! and the fake Discord: each consumer runs once, and when the Telegram poller's holder is
//! killed (SIGKILL) while customers write, the other instance takes over and nothing is lost,
//! doubled or answered twice.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support;
use crate::support::cli::{Env, Serve};
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::store::{self, Store, leases};
use helpdesk_testkit::discord::{AGENTS_CHANNEL_ID, FakeDiscord};
use helpdesk_testkit::dovecot::Dovecot;
use helpdesk_testkit::telegram::{FakeTelegram, User};

const TELEGRAM_TOKEN: &str = "123456:TEST-token";
const DISCORD_TOKEN: &str = "MTIz.discord-test-token";
const AGENTS_CHAT: i64 = -1_001_234_567_890;
/// The longest a consumer may be without a holder after the holder died.
const TAKEOVER: Duration = Duration::from_secs(15);

fn settings(
    telegram: &FakeTelegram,
    discord: &FakeDiscord,
    imap_port: u16,
) -> Vec<(&'static str, String)> {
    let mut settings = super::mail_settings(imap_port, None);
    settings.extend(super::telegram_settings(
        telegram,
        TELEGRAM_TOKEN,
        AGENTS_CHAT,
    ));
    settings.extend([
        ("HELPDESK_DISCORD__ENABLED", "true".into()),
        ("HELPDESK_DISCORD__TOKEN", DISCORD_TOKEN.into()),
        ("HELPDESK_DISCORD__API_URL", discord.url()),
        (
            "HELPDESK_DISCORD__AGENTS_CHANNEL_ID",
            AGENTS_CHANNEL_ID.to_string(),
        ),
    ]);
    settings
}

/// The instance (of `serves`) holding each lease, by process id.
pub(super) async fn holders(store: &Store) -> Vec<(String, u32)> {
    leases::holders(store)
        .await
        .expect("holders")
        .into_iter()
        .map(|holder| {
            let pid = holder
                .instance_id
                .rsplit('-')
                .nth(1)
                .and_then(|pid| pid.parse().ok())
                .unwrap_or_default();
            (holder.name, pid)
        })
        .collect()
}

/// Inbound messages per channel, and how many distinct source messages they are.
pub(super) async fn inbound(store: &Store, channel: ChannelKind) -> (i64, i64) {
    let Store::Postgres { pool } = store else {
        unreachable!("a PostgreSQL store");
    };
    sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT external_id) FROM messages
         WHERE channel = $1 AND direction = 'inbound' AND kind = 'public'",
    )
    .bind(channel.as_str())
    .fetch_one(pool)
    .await
    .expect("count")
}

fn mail(n: usize) -> Vec<u8> {
    support::mail(
        &[
            &format!("From: customer{n}@example.org"),
            &format!("Subject: Mail {n}"),
            &format!("Message-ID: <failover-{n}@example.org>"),
        ],
        &format!("mail number {n}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_consumer_runs_on_one_instance_and_moves_when_its_holder_is_killed() {
    let Some(server) = support::postgres_url() else {
        eprintln!("SKIPPED: DATABASE_URL is not set; a cluster needs PostgreSQL");
        return;
    };
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let env = <Env as support::Fixture>::postgres(&server, "helpdesk_test_cluster_failover").await;
    env.ok(&["migrate"]);
    let store = Store::connect(&env.database_url, 4).await.expect("store");
    let telegram_id = "555".to_owned();
    store::agents::create_agent(
        &store,
        &store::agents::NewAgent {
            email: "sam@example.org",
            name: "Sam",
            role: helpdesk::domain::Role::Agent,
            password_hash: None,
            department_ids: &[],
            identities: &[(ChannelKind::Telegram, telegram_id.as_str())],
            max_open_tickets: None,
        },
        chrono::Utc::now(),
    )
    .await
    .expect("agent");
    let telegram = FakeTelegram::start(TELEGRAM_TOKEN).await;
    let discord = FakeDiscord::start(DISCORD_TOKEN).await;
    let settings = settings(&telegram, &discord, dovecot.port());
    let first = Serve::start_with(&env, &settings, Stdio::inherit()).await;
    let second = Serve::start_with(&env, &settings, Stdio::inherit()).await;
    let pids = [first.pid(), second.pid()];

    // Every consumer finds one holder, one of the two.
    let deadline = Instant::now() + Duration::from_secs(30);
    let held = loop {
        let held = holders(&store).await;
        if held.len() == 3 {
            break held;
        }
        assert!(Instant::now() < deadline, "consumers held: {held:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let names: Vec<&str> = held.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["discord", "email:default", "telegram"]);
    assert!(held.iter().all(|(_, pid)| pids.contains(pid)), "{held:?}");

    // A customer opens a ticket by Telegram; the agent claims it from the group.
    let ada = User::new(42, "Ada");
    let sam = User::new(555, "Sam");
    telegram.customer_writes(&ada, "telegram 0");
    let post = telegram
        .wait_for_sent(Duration::from_secs(20), |sent| {
            sent.chat_id == AGENTS_CHAT
                && sent
                    .text
                    .as_deref()
                    .is_some_and(|text| text.contains("New ticket #"))
        })
        .await
        .expect("the agents see the new ticket");
    let discord_customer = helpdesk_testkit::discord::User::new(7_001, "Dee");

    // Customers keep writing on every channel; the Telegram poller's holder is killed midway,
    // right after an agent answered.
    let telegram_pid = held
        .iter()
        .find(|(name, _)| name == "telegram")
        .map(|(_, pid)| *pid)
        .expect("a holder");
    let (mut killed, survivor) = if first.pid() == telegram_pid {
        (Some(first), second)
    } else {
        (Some(second), first)
    };
    let mut agent_messages = Vec::new();
    let mut killed_at = None;
    let mut taken_over = None;
    let rounds = 40;
    for n in 1..=rounds {
        telegram.customer_writes(&ada, &format!("telegram {n}"));
        if n % 2 == 0 {
            dovecot.append(&mail(n)).await;
            discord.customer_writes(&discord_customer, &format!("discord {n}"));
        }
        if n % 10 == 9 {
            agent_messages.push((
                telegram.group_message(
                    AGENTS_CHAT,
                    &sam,
                    Some(post.message_id),
                    &format!("Answer {n}"),
                ),
                format!("Answer {n}"),
            ));
        }
        if n == 10 {
            assert_eq!(
                telegram.get_updates_conflicts(),
                0,
                "one poller while both ran"
            );
            assert_eq!(
                discord.identifies(),
                1,
                "one gateway session while both ran"
            );
            drop(killed.take());
            killed_at = Some(Instant::now());
        }
        if let Some(at) = killed_at
            && taken_over.is_none()
            && holders(&store)
                .await
                .iter()
                .any(|(name, pid)| name == "telegram" && *pid == survivor.pid())
        {
            taken_over = Some(at.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let killed_at = killed_at.expect("killed");
    while taken_over.is_none() {
        assert!(
            killed_at.elapsed() < TAKEOVER,
            "not taken over within {TAKEOVER:?}"
        );
        if holders(&store)
            .await
            .iter()
            .any(|(name, pid)| name == "telegram" && *pid == survivor.pid())
        {
            taken_over = Some(killed_at.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken_over = taken_over.expect("measured");
    eprintln!("telegram taken over {taken_over:?} after its holder was killed");
    assert!(taken_over < TAKEOVER, "taken over after {taken_over:?}");

    // Every message became exactly one ticket message.
    let expected = [
        (ChannelKind::Telegram, rounds as i64 + 1),
        (ChannelKind::Email, rounds as i64 / 2),
        (ChannelKind::Discord, rounds as i64 / 2),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    for (channel, count) in expected {
        loop {
            let (messages, distinct) = inbound(&store, channel).await;
            assert_eq!(messages, distinct, "{channel:?}: a message taken in twice");
            if messages == count {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{channel:?}: {messages} of {count} messages taken in"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Each agent's answer reached the customer once.
    let deadline = Instant::now() + Duration::from_secs(30);
    for (_, text) in &agent_messages {
        loop {
            let sent = telegram
                .sent()
                .into_iter()
                .filter(|sent| sent.chat_id == ada.id && sent.text.as_deref() == Some(text))
                .count();
            if sent == 1 {
                break;
            }
            assert!(
                sent == 0 && Instant::now() < deadline,
                "{text:?} sent {sent} times"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The survivor runs every consumer now; still one poller.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let held = holders(&store).await;
        if held.len() == 3 && held.iter().all(|(_, pid)| *pid == survivor.pid()) {
            break;
        }
        assert!(Instant::now() < deadline, "after the kill: {held:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", survivor.base))
        .await
        .expect("readyz")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        ready["consumers"].as_array().map(Vec::len),
        Some(3),
        "{ready}"
    );
    let conflicts = telegram.get_updates_conflicts();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        telegram.get_updates_conflicts(),
        conflicts,
        "one poller after the takeover"
    );
}
