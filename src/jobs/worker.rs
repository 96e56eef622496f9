//! The workers: one apalis worker per registered job (see `REGISTRY` in the module root), the
//! outbox relay and the webhook relay, started together and stopped together.

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::{Job, JobContext, JobSettings, REGISTRY, deliver, relay, webhooks};
use crate::store::Store;

/// How often the worker asks the queue for due jobs; apalis would otherwise back off to a
/// minute when the queue was empty, and new tickets must be assigned within a second.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Wakes a worker every [`POLL_INTERVAL`] to ask for due jobs.
///
/// apalis's own interval strategy replaces its timer without polling the new one when the
/// timer fires in the same wake-up in which a fetch comes back empty; nothing then wakes the
/// worker again and queued jobs wait forever (seen under load). This one drains every tick it
/// is given, so it always returns with its timer armed.
struct EveryPollInterval(tokio::time::Interval);

impl EveryPollInterval {
    fn new() -> EveryPollInterval {
        let mut interval = tokio::time::interval(POLL_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        EveryPollInterval(interval)
    }
}

impl PollStrategy for EveryPollInterval {
    fn poll_drive(
        &mut self,
        cx: &mut std::task::Context<'_>,
        _snapshot: &PollSnapshot,
    ) -> std::task::Poll<Option<()>> {
        let mut ticked = false;
        while self.0.poll_tick(cx).is_ready() {
            ticked = true;
        }
        if ticked {
            std::task::Poll::Ready(Some(()))
        } else {
            std::task::Poll::Pending
        }
    }
}

/// Outbox entries per relay round: one transaction, so a round of new tickets holds the
/// writer (SQLite) or their department's row (PostgreSQL) for about a millisecond each.
const RELAY_BATCH: i64 = 200;
/// How often the relay looks at the outbox when nothing woke it.
const RELAY_INTERVAL: Duration = Duration::from_millis(200);
/// How long shutdown waits for running jobs.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often tickets waiting for an agent are offered again and quiet tickets closed.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// How many job handlers are running right now, so shutdown can wait for them before it
/// stops the workers.
///
/// A stopping apalis worker no longer drives the fetch it may have started, and on SQLite that
/// fetch's transaction then keeps the write lock: a handler still running would wait for the
/// lock until it times out and its job ran twice. So the workers are told to stop only once no
/// handler is running.
#[derive(Clone, Default)]
pub(super) struct RunningJobs(Arc<(std::sync::atomic::AtomicUsize, Notify)>);

/// One running handler; counted until dropped.
struct RunningJob(RunningJobs);

impl RunningJobs {
    fn start(&self) -> RunningJob {
        self.0.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        RunningJob(self.clone())
    }

    /// Completes once no handler runs.
    async fn idle(&self) {
        loop {
            let changed = self.0.1.notified();
            if self.0.0.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            changed.await;
        }
    }
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        (self.0)
            .0
            .0
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        (self.0).0.1.notify_waiters();
    }
}

/// Completes when `shutdown` turns true (or its sender is gone: the process is ending).
async fn stop_signal(
    mut shutdown: watch::Receiver<bool>,
) -> std::result::Result<(), std::io::Error> {
    let _ = shutdown.wait_for(|stop| *stop).await;
    Ok(())
}

/// What a worker is started with.
#[derive(Clone)]
pub(super) struct Start {
    store: Store,
    context: JobContext,
    /// Unique per process, for the worker names.
    instance: String,
    shutdown: watch::Receiver<bool>,
}

/// A running worker; it ends with the error that stopped it after shutdown, if any.
pub(super) type Worker = JoinHandle<std::result::Result<(), BoxDynError>>;

/// When the queue held the job due: whole seconds, stored one second early (see
/// `store::jobs::NewJob`).
struct Due(Option<u64>);

impl<Args: Sync> FromRequest<Task<Args>> for Due {
    type Error = std::convert::Infallible;

    async fn from_request(task: &Task<Args>) -> std::result::Result<Due, Self::Error> {
        Ok(Due(task.run_at().map(|run_at| run_at + 1)))
    }
}

/// Runs one job in its own span, counted as running until it returns; its wait since due and
/// its run time go to the job histograms.
async fn handle<J: Job>(
    job: J,
    context: Data<JobContext>,
    due: Due,
) -> std::result::Result<(), BoxDynError> {
    let _running = context.running.start();
    let metrics = crate::telemetry::metrics();
    if let Some(due) = due.0 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        metrics.job_wait(J::QUEUE, now.as_secs_f64() - due as f64);
    }
    let about = job.about();
    let span = tracing::info_span!("job", otel.name = J::QUEUE, queue = J::QUEUE, about = ?about);
    let started = std::time::Instant::now();
    let result = job.run(&context).instrument(span).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics.job_run(J::QUEUE, outcome, started.elapsed());
    result.map_err(|error| {
        tracing::debug!(queue = J::QUEUE, about = ?about, %error, "job failed");
        error.into()
    })
}

/// Starts an apalis worker on `J`'s queue of whichever backend the store is, and starts a new
/// one whenever it stops before shutdown: apalis ends a worker on a database error, such as
/// SQLite's "database is locked" when a poll meets intake's write lock.
pub(super) fn spawn<J: Job>(start: Start) -> Worker {
    let Start {
        store,
        context,
        instance,
        shutdown,
    } = start;
    let name = format!(
        "helpdesk-{}-{instance}",
        J::QUEUE.trim_start_matches("helpdesk.").replace('_', "-")
    );
    tokio::spawn(async move {
        for attempt in 0u32.. {
            // A new name each time: the stopped worker's registration has not expired.
            let worker_name = format!("{name}-{attempt}");
            let stop = stop_signal(shutdown.clone());
            let result = match &store {
                // On the writer connection: the queue's fetches and acknowledgements are
                // writes, and a second writing connection would meet the writer's lock in
                // SQLite's busy handler, which sleeps (up to 100 ms a time) instead of
                // queueing.
                Store::Sqlite { writer, .. } => {
                    let backend = SqliteStorage::<J>::new(writer)
                        .with_config(apalis_sqlite::Config::default().queue(J::QUEUE));
                    let backend = PollWith::new(backend, EveryPollInterval::new());
                    WorkerBuilder::new(worker_name.clone())
                        .backend(backend)
                        .data(context.clone())
                        .build(handle::<J>)
                        .run_until(stop)
                        .await
                }
                Store::Postgres { pool } => {
                    let backend = PostgresStorage::<J>::new(pool)
                        .with_config(apalis_postgres::Config::default().queue(J::QUEUE));
                    let backend = PollWith::new(backend, EveryPollInterval::new());
                    WorkerBuilder::new(worker_name.clone())
                        .backend(backend)
                        .data(context.clone())
                        .build(handle::<J>)
                        .run_until(stop)
                        .await
                }
            };
            if *shutdown.borrow() {
                return result.map_err(BoxDynError::from);
            }
            tracing::warn!(worker = %worker_name, ?result, "job worker stopped; starting a new one");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(())
    })
}

/// Runs the relay, a worker for every registered job, the waiting-ticket sweep and
/// auto-close until `shutdown` turns true; running jobs finish first, queued ones stay for the
/// next start.
pub async fn run(
    store: Store,
    settings: JobSettings,
    deliverers: deliver::Deliverers,
    wake: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
) -> std::result::Result<(), BoxDynError> {
    let relay = {
        let store = store.clone();
        let settings = settings.clone();
        let mut shutdown = shutdown.clone();
        async move {
            let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
            loop {
                if *shutdown.borrow() {
                    break;
                }
                match relay::relay_outbox(&store, &settings, RELAY_BATCH).await {
                    Ok(moved) if moved > 0 => {
                        tracing::debug!(moved, "outbox relayed");
                        continue;
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "outbox relay"),
                }
                tokio::select! {
                    _ = shutdown.changed() => break,
                    () = wake.notified() => {}
                    _ = tokio::time::sleep(RELAY_INTERVAL) => {}
                    _ = sweep.tick() => relay::sweep_once(&store, &settings).await,
                }
            }
        }
    };
    let relays = vec![
        tokio::spawn(relay),
        tokio::spawn(webhooks::relay_loop(store.clone(), shutdown.clone())),
    ];
    let spawns: Vec<_> = REGISTRY.iter().map(|job| job.spawn).collect();
    supervise(store, settings, deliverers, &spawns, relays, shutdown).await
}

/// Runs only the worker of job type `J` (no relay, no sweep) until `shutdown` turns true: what
/// `helpdesk bench jobs` measures the queue with.
pub async fn run_only<J: Job>(
    store: Store,
    settings: JobSettings,
    deliverers: deliver::Deliverers,
    shutdown: watch::Receiver<bool>,
) -> std::result::Result<(), BoxDynError> {
    supervise(
        store,
        settings,
        deliverers,
        &[spawn::<J>],
        Vec::new(),
        shutdown,
    )
    .await
}

/// Starts the workers `spawns` beside the already running `relays`, and at `shutdown` stops
/// them in order: the relays, then the running handlers, then the workers.
async fn supervise(
    store: Store,
    settings: JobSettings,
    deliverers: deliver::Deliverers,
    spawns: &[fn(Start) -> Worker],
    relays: Vec<JoinHandle<()>>,
    shutdown: watch::Receiver<bool>,
) -> std::result::Result<(), BoxDynError> {
    let running = RunningJobs::default();
    let context = JobContext {
        store: store.clone(),
        settings,
        deliverers,
        running: running.clone(),
        webhook_client: webhooks::client(),
    };
    // The workers stop on their own signal, sent once no handler runs (see RunningJobs).
    let (stop_workers, workers_stopping) = watch::channel(false);
    // Worker names are unique per process: a restarted process, or a second instance on the
    // same database, must not collide with registrations that have not yet expired.
    let start = Start {
        store,
        context,
        instance: format!("{}-{:08x}", std::process::id(), fastrand::u32(..)),
        shutdown: workers_stopping,
    };
    let mut workers: Vec<Worker> = spawns.iter().map(|spawn| spawn(start.clone())).collect();
    drop(start);
    let _ = stop_signal(shutdown).await;
    let finish = async {
        for relay in relays {
            relay.await?;
        }
        running.idle().await;
        stop_workers.send_replace(true);
        for worker in &mut workers {
            worker.await??;
        }
        Ok::<(), BoxDynError>(())
    };
    let finished = tokio::time::timeout(SHUTDOWN_GRACE, finish).await;
    // A worker that has not ended by now is dropped with whatever it was doing: on SQLite a
    // fetch it no longer drives would otherwise keep the writer connection. apalis returns a
    // job it had taken to the queue once the worker's heartbeat has expired, and the jobs are
    // idempotent.
    for worker in &workers {
        worker.abort();
    }
    match finished {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                "job workers still busy {SHUTDOWN_GRACE:?} after shutdown; dropped them"
            );
            Ok(())
        }
    }
}
