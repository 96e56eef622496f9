//! Telegram in webhook mode on two `serve` processes behind one address: a forwarder stands in
//! for the reverse proxy (it passes each connection to the first instance that accepts it), so
//! only the lease holder, which listens, takes updates. Killing the holder while a customer
//! writes moves the listener to the other instance; every update becomes one ticket message.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use crate::support;
use crate::support::cli::{Env, Serve};
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::store::Store;
use helpdesk_testkit::telegram::{FakeTelegram, User};

use super::failover::{holders, inbound};

const TOKEN: &str = "123456:TEST-token";
const AGENTS_CHAT: i64 = -1_001_234_567_890;
const SECRET: &str = "cluster-webhook-secret";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

/// Passes each connection to the first of `backends` that accepts it, as a proxy skipping
/// instances that refuse connections; refused by all, the connection is closed.
async fn forward(listener: TcpListener, backends: Vec<u16>) {
    while let Ok((mut client, _)) = listener.accept().await {
        let backends = backends.clone();
        tokio::spawn(async move {
            for port in backends {
                if let Ok(mut backend) = TcpStream::connect(("127.0.0.1", port)).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
                    return;
                }
            }
        });
    }
}

fn settings(telegram: &FakeTelegram, url: &str, listen: u16) -> Vec<(&'static str, String)> {
    let mut settings = super::telegram_settings(telegram, TOKEN, AGENTS_CHAT);
    settings.extend([
        ("HELPDESK_TELEGRAM__MODE", "webhook".into()),
        ("HELPDESK_TELEGRAM__WEBHOOK_URL", url.into()),
        ("HELPDESK_TELEGRAM__WEBHOOK_SECRET", SECRET.into()),
        (
            "HELPDESK_TELEGRAM__WEBHOOK_LISTEN",
            format!("127.0.0.1:{listen}"),
        ),
    ]);
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_listener_moves_to_the_other_instance_when_its_holder_is_killed() {
    let Some(server) = support::postgres_url() else {
        eprintln!("SKIPPED: DATABASE_URL is not set; a cluster needs PostgreSQL");
        return;
    };
    let env = <Env as support::Fixture>::postgres(&server, "helpdesk_test_cluster_webhook").await;
    env.ok(&["migrate"]);
    let store = Store::connect(&env.database_url, 2).await.expect("store");
    let telegram = FakeTelegram::start(TOKEN).await;
    let proxy = TcpListener::bind("127.0.0.1:0").await.expect("proxy port");
    let url = format!(
        "http://{}/telegram/webhook",
        proxy.local_addr().expect("address")
    );
    let ports = [free_port(), free_port()];
    tokio::spawn(forward(proxy, ports.to_vec()));
    let first =
        Serve::start_with(&env, &settings(&telegram, &url, ports[0]), Stdio::inherit()).await;
    let second =
        Serve::start_with(&env, &settings(&telegram, &url, ports[1]), Stdio::inherit()).await;

    // One holder, which listens; the other instance's port refuses connections.
    let deadline = Instant::now() + Duration::from_secs(30);
    let holder = loop {
        let held = holders(&store).await;
        if let [(name, pid)] = held.as_slice()
            && telegram.webhook_url() == url
        {
            assert_eq!(name, "telegram");
            break *pid;
        }
        assert!(Instant::now() < deadline, "consumers held: {held:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (killed, survivor, idle_port) = if first.pid() == holder {
        (first, second, ports[1])
    } else {
        (second, first, ports[0])
    };
    assert!(
        TcpStream::connect(("127.0.0.1", idle_port)).await.is_err(),
        "only the holder listens"
    );

    // A customer keeps writing; the holder is killed midway.
    let ada = User::new(42, "Ada");
    let rounds: i64 = 20;
    let mut killed = Some(killed);
    let mut killed_at = None;
    for n in 1..=rounds {
        telegram.customer_writes(&ada, &format!("webhook {n}"));
        if n == 8 {
            drop(killed.take());
            killed_at = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let killed_at = killed_at.expect("killed");

    // Telegram retries what no instance took; the survivor listens and takes all of it once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (messages, distinct) = inbound(&store, ChannelKind::Telegram).await;
        assert_eq!(messages, distinct, "an update taken in twice");
        if messages == rounds {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{messages} of {rounds} updates taken in"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let held = holders(&store).await;
    assert_eq!(held, [("telegram".to_owned(), survivor.pid())]);
    eprintln!(
        "all {rounds} updates taken in {:?} after the holder was killed",
        killed_at.elapsed()
    );
    let refused = telegram
        .webhook_deliveries()
        .iter()
        .filter(|delivery| delivery.status != Some(200))
        .count();
    eprintln!("{refused} deliveries refused or cut off while no instance listened");
}
