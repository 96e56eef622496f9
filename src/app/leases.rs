//! Runs a consumer that must run on one instance at a time (a mailbox's IMAP intake, the
//! Telegram poller or webhook, the Discord gateway) only while this instance holds its lease
//! (`store::leases`): instances without it try again every few seconds, the holder checks its
//! lease every second and stops the consumer at once when the lease is lost. The consumer
//! continues from its stored cursor wherever it starts.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::{Backend, Store, leases};

/// How often an instance without the lease tries to take it.
pub const RETRY_EVERY: Duration = Duration::from_secs(2);
/// How often the holder checks that it still holds the lease.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a new holder waits before it starts the consumer: an old holder whose connection
/// ended (and with it the lock) stops its consumer within one check and its timeout, so the
/// two never run at once.
const SETTLE: Duration =
    Duration::from_secs(CHECK_EVERY.as_secs() + leases::CHECK_WITHIN.as_secs());

/// What a consumer is told to stop by; the consumer's own graceful shutdown.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How holding a lease ended.
enum Ended {
    /// `serve` is stopping: the consumer finished its work.
    Stopped,
    /// The lease is gone: the consumer was stopped at once.
    Lost(crate::store::StoreError),
    /// The consumer ended by itself.
    Finished,
}

/// Runs the consumer `start` makes under lease `name` until `stop` turns true. `start` spawns
/// the consumer with the shutdown it must obey and is called again after each takeover.
pub async fn run_leased(
    store: Store,
    instance_id: String,
    name: String,
    mut start: impl FnMut(Shutdown) -> JoinHandle<()> + Send,
    mut stop: watch::Receiver<bool>,
) {
    let mut waiting_logged = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let mut held = match leases::take(&store, &name, &instance_id).await {
            Ok(Some(held)) => held,
            Ok(None) => {
                if !waiting_logged {
                    tracing::info!(consumer = name, "held by another instance; standing by");
                    waiting_logged = true;
                }
                if pause(&mut stop, RETRY_EVERY).await {
                    return;
                }
                continue;
            }
            Err(error) => {
                tracing::warn!(consumer = name, %error, "cannot take the lease; trying again");
                if pause(&mut stop, RETRY_EVERY).await {
                    return;
                }
                continue;
            }
        };
        waiting_logged = false;
        if store.backend() == Backend::Postgres {
            if pause(&mut stop, SETTLE).await {
                release(held).await;
                return;
            }
            if let Err(error) = held.check().await {
                tracing::warn!(consumer = name, %error, "lease lost before starting");
                continue;
            }
        }
        tracing::info!(consumer = name, "lease taken; consumer started");
        let shutdown = {
            let mut stop = stop.clone();
            Box::pin(async move {
                let _ = stop.wait_for(|stop| *stop).await;
            })
        };
        let task = start(shutdown);
        match hold(&mut held, task, &mut stop).await {
            Ended::Stopped => {
                release(held).await;
                return;
            }
            Ended::Lost(error) => {
                tracing::warn!(consumer = name, %error, "lease lost; consumer stopped");
                drop(held);
                if pause(&mut stop, RETRY_EVERY).await {
                    return;
                }
            }
            Ended::Finished => {
                // Left to another instance (or, on SQLite, stopped as it always did).
                tracing::warn!(consumer = name, "consumer ended; lease given up");
                release(held).await;
                return;
            }
        }
    }
}

/// Watches the lease while the consumer runs.
async fn hold(
    held: &mut leases::Held,
    mut task: JoinHandle<()>,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let mut every = tokio::time::interval(CHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // The `Ref` the wait gives must not live across the await below.
            _ = async { stop.wait_for(|stop| *stop).await.is_ok() } => {
                if let Err(error) = task.await {
                    tracing::error!(consumer = held.name(), %error, "consumer panicked");
                }
                return Ended::Stopped;
            }
            ended = &mut task => {
                if let Err(error) = ended {
                    tracing::error!(consumer = held.name(), %error, "consumer panicked");
                }
                return Ended::Finished;
            }
            _ = every.tick() => {
                if let Err(error) = held.check().await {
                    // Another instance may take over within seconds: not one more step here.
                    task.abort();
                    let _ = task.await;
                    return Ended::Lost(error);
                }
            }
        }
    }
}

async fn release(held: leases::Held) {
    let name = held.name().to_owned();
    if let Err(error) = held.release().await {
        tracing::warn!(consumer = name, %error, "lease not released; its connection ends it");
    }
}

/// Waits `duration` unless `stop` turns true first; true when it did.
async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        _ = stop.wait_for(|stop| *stop) => true,
        () = tokio::time::sleep(duration) => false,
    }
}
