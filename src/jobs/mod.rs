//! The job queue (apalis on the same database as the tickets) and its workers.
//!
//! Intake records follow-up work in the outbox inside its transaction; the relay turns outbox
//! entries into apalis jobs and marks them done in one transaction of its own, so every ticket
//! gets its jobs exactly once. Jobs are idempotent all the same: a job run twice (after a crash
//! between its work and its acknowledgement) changes nothing the second time.

pub mod assign;
pub mod deliver;
pub mod notify;
pub mod sla;
pub mod webhooks;

use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use chrono::{DateTime, NaiveTime, Offset, Utc, Weekday};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use tokio::sync::{Notify, watch};

use crate::domain::rules::BusinessHours;
use crate::domain::sla::SlaTargets;
use crate::store::{Result, Store, StoreError, Tx, on_tx};

/// The queue assignment jobs go to.
pub const ASSIGN_QUEUE: &str = "helpdesk.assign";
/// How many attempts a job gets before it is marked failed.
const MAX_ATTEMPTS: usize = 5;
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

/// Assign a ticket: rules first, then the department's strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignTicket {
    pub ticket_id: i64,
}

/// Runs the job queue's own migrations (its tables live beside ours).
pub async fn migrate(store: &Store) -> Result<()> {
    match store {
        Store::Sqlite { writer, .. } => SqliteStorage::<()>::migrations().run(writer).await?,
        Store::Postgres { pool } => PostgresStorage::<()>::migrations().run(pool).await?,
    }
    Ok(())
}

fn encode<T: Serialize>(job: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(job).map_err(|error| StoreError::Invalid(error.to_string()))
}

/// Puts a job in `queue` inside `tx`, due at `due`; the idempotency key makes a second push of
/// the same key a no-op.
pub(crate) async fn push<T: Serialize>(
    tx: &mut Tx,
    queue: &'static str,
    job: &T,
    idempotency_key: &str,
    due: chrono::DateTime<Utc>,
) -> Result<()> {
    push_with_attempts(tx, queue, job, idempotency_key, due, MAX_ATTEMPTS).await
}

/// [`push`] with its own number of attempts, for jobs that schedule their own retries.
pub(crate) async fn push_with_attempts<T: Serialize>(
    tx: &mut Tx,
    queue: &'static str,
    job: &T,
    idempotency_key: &str,
    due: chrono::DateTime<Utc>,
    max_attempts: usize,
) -> Result<()> {
    let mut batch = JobBatch::default();
    batch.add_with_attempts(queue, job, idempotency_key, due, max_attempts)?;
    batch.push(tx).await
}

/// Jobs gathered to go into the queue together: on PostgreSQL one statement per queue.
#[derive(Default)]
pub(crate) struct JobBatch {
    jobs: Vec<BatchedJob>,
}

struct BatchedJob {
    queue: &'static str,
    args: Vec<u8>,
    idempotency_key: String,
    /// Seconds since the epoch.
    due: i64,
    max_attempts: usize,
}

impl JobBatch {
    pub(crate) fn add<T: Serialize>(
        &mut self,
        queue: &'static str,
        job: &T,
        idempotency_key: &str,
        due: chrono::DateTime<Utc>,
    ) -> Result<()> {
        self.add_with_attempts(queue, job, idempotency_key, due, MAX_ATTEMPTS)
    }

    fn add_with_attempts<T: Serialize>(
        &mut self,
        queue: &'static str,
        job: &T,
        idempotency_key: &str,
        due: chrono::DateTime<Utc>,
        max_attempts: usize,
    ) -> Result<()> {
        self.jobs.push(BatchedJob {
            queue,
            args: encode(job)?,
            idempotency_key: idempotency_key.to_owned(),
            // The queue compares whole seconds with `run_at < now()`: a job due this very
            // second would wait for the next one.
            due: (due.timestamp() - 1).max(0),
            max_attempts,
        });
        Ok(())
    }

    /// Puts the gathered jobs in the queue inside `tx`; a job whose idempotency key its queue
    /// already knows is left out.
    pub(crate) async fn push(self, tx: &mut Tx) -> Result<()> {
        if self.jobs.is_empty() {
            return Ok(());
        }
        match tx {
            Tx::Sqlite { transaction, .. } => {
                for job in self.jobs {
                    let task = TaskBuilder::new(job.args)
                        .run_at_timestamp(u64::try_from(job.due).unwrap_or_default())
                        .max_attempts(job.max_attempts)
                        .idempotency_key(job.idempotency_key)
                        .build();
                    apalis_sqlite::queries::push_tasks(&mut **transaction, job.queue, &[task])
                        .await?;
                }
            }
            Tx::Postgres { transaction } => {
                let mut by_queue: std::collections::BTreeMap<&str, Vec<BatchedJob>> =
                    std::collections::BTreeMap::new();
                for job in self.jobs {
                    by_queue.entry(job.queue).or_default().push(job);
                }
                for (queue, jobs) in by_queue {
                    // The same row apalis's own push writes, in one statement for many jobs,
                    // and without failing (and so aborting our transaction) on a known key.
                    let mut args = Vec::with_capacity(jobs.len());
                    let mut attempts = Vec::with_capacity(jobs.len());
                    let mut due = Vec::with_capacity(jobs.len());
                    let mut keys = Vec::with_capacity(jobs.len());
                    for job in jobs {
                        args.push(job.args);
                        attempts.push(i32::try_from(job.max_attempts).unwrap_or(i32::MAX));
                        due.push(job.due);
                        keys.push(job.idempotency_key);
                    }
                    sqlx::query(
                        "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts,
                                run_at, priority, metadata, idempotency_key)
                         SELECT apalis.generate_ulid(), $1, j.job, 'Pending', 0, j.max_attempts,
                                to_timestamp(j.due), 0, ''::hstore, j.idempotency_key
                         FROM unnest($2::bytea[], $3::integer[], $4::bigint[], $5::text[])
                              AS j(job, max_attempts, due, idempotency_key)
                         ON CONFLICT (job_type, idempotency_key) DO NOTHING",
                    )
                    .bind(queue)
                    .bind(args)
                    .bind(attempts)
                    .bind(due)
                    .bind(keys)
                    .execute(&mut **transaction)
                    .await?;
                }
            }
        }
        Ok(())
    }
}

/// Puts an assignment job in the queue inside `tx`.
pub async fn enqueue_assign(tx: &mut Tx, job: AssignTicket, idempotency_key: &str) -> Result<()> {
    push(tx, ASSIGN_QUEUE, &job, idempotency_key, Utc::now()).await
}

/// Turns pending outbox entries into work, one round of up to `limit` entries in one
/// transaction: new tickets get their SLA timers, notifications become jobs, and new or
/// reopened tickets are assigned at once; the entries are marked done in the same
/// transaction, so every ticket gets its jobs exactly once. One commit per round is what
/// keeps assignment within a second of intake at hundreds of tickets a second.
///
/// If the round fails (a ticket the assignment cannot handle, or on PostgreSQL a deadlock
/// with another instance's round), its entries are taken one at a time, and an entry whose
/// assignment fails again becomes an assignment job, retried with backoff: one bad ticket
/// never holds the others back. Returns how many entries were handled. Several instances may
/// relay at once: on PostgreSQL each takes entries the others have not locked, and assignment
/// locks the ticket and its department.
pub async fn relay_outbox(store: &Store, settings: &JobSettings, limit: i64) -> Result<usize> {
    let rules = crate::store::rules::list(store).await?;
    let round = async {
        let mut tx = store.begin_write().await?;
        let handled =
            relay_entries(&mut tx, settings, &rules, PendingEntries::First(limit)).await?;
        tx.commit().await?;
        Ok::<_, StoreError>(handled)
    }
    .await;
    let error = match round {
        Ok(handled) => return Ok(handled),
        Err(error) => error,
    };
    tracing::warn!(%error, "outbox relay round failed; relaying its entries one at a time");
    let pending = crate::store::outbox::pending(store, limit).await?;
    for entry in &pending {
        relay_alone(store, settings, &rules, entry).await?;
    }
    Ok(pending.len())
}

/// Relays one outbox entry in its own transaction; if its assignment fails, an assignment
/// job with retries takes over.
async fn relay_alone(
    store: &Store,
    settings: &JobSettings,
    rules: &[crate::domain::rules::Rule],
    entry: &crate::store::outbox::PendingEvent,
) -> Result<()> {
    let relayed = async {
        let mut tx = store.begin_write().await?;
        relay_entries(&mut tx, settings, rules, PendingEntries::Only(entry.id)).await?;
        tx.commit().await
    }
    .await;
    let Err(error) = relayed else {
        return Ok(());
    };
    tracing::warn!(ticket_id = entry.ticket_id, %error, "relaying failed; an assignment job retries it");
    let mut tx = store.begin_write().await?;
    relay_entries(
        &mut tx,
        settings,
        &[],
        PendingEntries::OnlyWithoutAssigning(entry.id),
    )
    .await?;
    tx.commit().await
}

/// Which pending outbox entries a relay transaction takes.
#[derive(Clone, Copy)]
enum PendingEntries {
    /// The oldest, up to this many.
    First(i64),
    /// This one entry.
    Only(i64),
    /// This one entry, with its assignment left to an assignment job.
    OnlyWithoutAssigning(i64),
}

/// A pending outbox entry with its ticket's creation time.
#[derive(sqlx::FromRow)]
struct OutboxEntry {
    id: i64,
    kind: String,
    ticket_id: i64,
    /// The message that caused it, if a message did.
    message_id: Option<i64>,
    created_at: chrono::DateTime<Utc>,
}

/// Turns the chosen pending entries into jobs and assignments inside `tx` and marks them
/// done. Returns how many entries it took.
async fn relay_entries(
    tx: &mut Tx,
    settings: &JobSettings,
    rules: &[crate::domain::rules::Rule],
    entries: PendingEntries,
) -> Result<usize> {
    let skip_locked = match tx {
        Tx::Sqlite { .. } => "",
        Tx::Postgres { .. } => "FOR UPDATE OF o SKIP LOCKED",
    };
    let (only, limit) = match entries {
        PendingEntries::First(limit) => (None, limit),
        PendingEntries::Only(id) | PendingEntries::OnlyWithoutAssigning(id) => (Some(id), 1),
    };
    let sql = format!(
        "SELECT o.id, o.kind, o.ticket_id, o.message_id, t.created_at
         FROM outbox o JOIN tickets t ON t.id = o.ticket_id
         WHERE o.processed_at IS NULL AND (CAST($2 AS BIGINT) IS NULL OR o.id = $2)
         ORDER BY o.id LIMIT $1 {skip_locked}"
    );
    let pending: Vec<OutboxEntry> = on_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .bind(only)
            .fetch_all(&mut *conn)
            .await)?;
    let now = Utc::now();
    let mut jobs = JobBatch::default();
    let mut to_assign = Vec::new();
    for OutboxEntry {
        id,
        kind,
        ticket_id,
        message_id,
        created_at,
    } in &pending
    {
        if kind == "ticket_created" {
            sla::schedule_new(&mut jobs, *ticket_id, *created_at, &settings.sla)?;
        }
        if let Some(event) = notify::Event::of_outbox(kind) {
            let job = notify::NotifyAgents {
                ticket_id: *ticket_id,
                event,
                message_id: *message_id,
            };
            notify::add(&mut jobs, job, &format!("notify:{id}"))?;
        }
        if kind == "ticket_created" || kind == "ticket_reopened" {
            if let PendingEntries::OnlyWithoutAssigning(_) = entries {
                jobs.add(
                    ASSIGN_QUEUE,
                    &AssignTicket {
                        ticket_id: *ticket_id,
                    },
                    &format!("outbox:{id}"),
                    now,
                )?;
            } else {
                to_assign.push(*ticket_id);
            }
        }
    }
    jobs.push(tx).await?;
    for ticket_id in to_assign {
        let assigned =
            assign::assign_in(tx, ticket_id, rules, &settings.routing(), Utc::now()).await?;
        tracing::debug!(ticket_id, ?assigned, "assigned on arrival");
    }
    let ids: Vec<i64> = pending.iter().map(|entry| entry.id).collect();
    mark_relayed(tx, &ids, now).await?;
    Ok(pending.len())
}

async fn mark_relayed(tx: &mut Tx, outbox_ids: &[i64], now: chrono::DateTime<Utc>) -> Result<()> {
    if outbox_ids.is_empty() {
        return Ok(());
    }
    match tx {
        Tx::Sqlite { transaction, .. } => {
            let ids = serde_json::to_string(outbox_ids)
                .map_err(|error| StoreError::Invalid(error.to_string()))?;
            sqlx::query(
                "UPDATE outbox SET processed_at = $1 WHERE id IN (SELECT value FROM json_each($2))",
            )
            .bind(now)
            .bind(ids)
            .execute(&mut **transaction)
            .await?;
        }
        Tx::Postgres { transaction } => {
            sqlx::query("UPDATE outbox SET processed_at = $1 WHERE id = ANY($2)")
                .bind(now)
                .bind(outbox_ids)
                .execute(&mut **transaction)
                .await?;
        }
    }
    Ok(())
}

/// Monday to Friday, 09:00–17:00 UTC, until business hours are a setting.
pub fn default_business_hours() -> BusinessHours {
    BusinessHours {
        days: vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ],
        start: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
        end: NaiveTime::from_hms_opt(17, 0, 0).unwrap_or_default(),
        offset: chrono::FixedOffset::east_opt(0).unwrap_or_else(|| Utc.fix()),
    }
}

/// What the workers need from the settings.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub hours: BusinessHours,
    /// Where agents are told about new, assigned and escalated tickets.
    pub agents_places: Vec<helpdesk_channel::Identity>,
    pub sla: SlaTargets,
    /// Resolved tickets close after this long without news; `None` = never.
    pub auto_close_after: Option<chrono::Duration>,
    /// Retries and timeout of webhook deliveries.
    pub webhooks: crate::config::WebhookSettings,
    /// Where tickets no rule routes go (`workflow.default_department`).
    pub default_department: Option<String>,
}

impl JobSettings {
    pub fn from_settings(settings: &crate::config::Settings) -> JobSettings {
        let mut agents_places = Vec::new();
        if settings.telegram.enabled && settings.telegram.agents_chat_id != 0 {
            agents_places.push(helpdesk_channel::Identity {
                channel: helpdesk_channel::ChannelKind::Telegram,
                address: settings.telegram.agents_chat_id.to_string(),
                display_name: None,
            });
        }
        if settings.discord.enabled && settings.discord.agents_channel_id != 0 {
            agents_places.push(helpdesk_channel::Identity {
                channel: helpdesk_channel::ChannelKind::Discord,
                address: settings.discord.agents_channel_id.to_string(),
                display_name: None,
            });
        }
        JobSettings {
            agents_places,
            // Validated when the settings were loaded.
            hours: settings
                .workflow
                .business_hours()
                .unwrap_or_else(|_| default_business_hours()),
            sla: settings.sla.targets(),
            auto_close_after: (settings.workflow.auto_close_days > 0)
                .then(|| chrono::Duration::days(i64::from(settings.workflow.auto_close_days))),
            webhooks: settings.webhooks,
            default_department: settings.workflow.default_department().map(str::to_owned),
        }
    }

    /// What assignment needs of these settings.
    pub fn routing(&self) -> assign::Routing<'_> {
        assign::Routing {
            hours: &self.hours,
            default_department: self.default_department.as_deref(),
        }
    }
}

#[derive(Clone)]
struct JobContext {
    store: Store,
    settings: JobSettings,
    deliverers: deliver::Deliverers,
    running: RunningJobs,
    webhook_client: reqwest::Client,
}

/// How many job handlers are running right now, so shutdown can wait for them before it
/// stops the workers.
///
/// A stopping apalis worker no longer drives the fetch it may have started, and on SQLite that
/// fetch's transaction then keeps the write lock: a handler still running would wait for the
/// lock until it times out and its job ran twice. So the workers are told to stop only once no
/// handler is running.
#[derive(Clone, Default)]
struct RunningJobs(Arc<(std::sync::atomic::AtomicUsize, Notify)>);

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

async fn run_assign(
    job: AssignTicket,
    context: Data<JobContext>,
) -> std::result::Result<(), BoxDynError> {
    let _running = context.running.start();
    let outcome = assign::assign_ticket(
        &context.store,
        job.ticket_id,
        &context.settings.routing(),
        Utc::now(),
    )
    .await?;
    tracing::debug!(ticket_id = job.ticket_id, ?outcome, "assignment ran");
    Ok(())
}

async fn run_deliver(
    job: deliver::DeliverMessage,
    context: Data<JobContext>,
) -> std::result::Result<(), BoxDynError> {
    let _running = context.running.start();
    let outcome = deliver::deliver_message(
        &context.store,
        &context.deliverers,
        job.message_id,
        Utc::now(),
    )
    .await?;
    tracing::debug!(message_id = job.message_id, ?outcome, "delivery ran");
    Ok(())
}

async fn run_chat_answer(
    job: deliver::ChatAnswer,
    context: Data<JobContext>,
) -> std::result::Result<(), BoxDynError> {
    let _running = context.running.start();
    let outcome =
        deliver::deliver_chat_answer(&context.store, &context.deliverers, &job, Utc::now()).await?;
    tracing::debug!(place = job.place, ?outcome, "chat answer ran");
    Ok(())
}

async fn run_notify(
    job: notify::NotifyAgents,
    context: Data<JobContext>,
) -> std::result::Result<(), BoxDynError> {
    let _running = context.running.start();
    notify::notify(
        &context.store,
        &context.deliverers,
        &context.settings.agents_places,
        job,
    )
    .await?;
    Ok(())
}

async fn run_sla(
    job: sla::SlaCheck,
    context: Data<JobContext>,
) -> std::result::Result<(), BoxDynError> {
    let _running = context.running.start();
    let outcome = sla::check(&context.store, &context.settings.sla, job, Utc::now()).await?;
    if let sla::SlaOutcome::Escalated { from, to } = &outcome {
        tracing::info!(ticket_id = job.ticket_id, target = ?job.target, %from, %to, "ticket escalated");
    }
    Ok(())
}

async fn run_webhook(
    job: webhooks::DeliverWebhook,
    context: Data<JobContext>,
) -> std::result::Result<(), BoxDynError> {
    let _running = context.running.start();
    let outcome = webhooks::attempt(
        &context.store,
        &context.webhook_client,
        &context.settings.webhooks,
        job,
    )
    .await?;
    tracing::debug!(
        delivery = job.delivery_id,
        attempt = job.attempt,
        ?outcome,
        "webhook attempt"
    );
    match outcome {
        // The job fails with the delivery, so the job queue shows it and an admin can retry.
        webhooks::Attempted::Failed(why) => Err(why.into()),
        _ => Ok(()),
    }
}

/// Completes when `shutdown` turns true (or its sender is gone: the process is ending).
async fn stop_signal(
    mut shutdown: watch::Receiver<bool>,
) -> std::result::Result<(), std::io::Error> {
    let _ = shutdown.wait_for(|stop| *stop).await;
    Ok(())
}

/// Starts an apalis worker on `queue` of whichever backend the store is, and starts a new one
/// whenever it stops before shutdown: apalis ends a worker on a database error, such as
/// SQLite's "database is locked" when a poll meets intake's write lock.
macro_rules! spawn_worker {
    ($store:expr, $job:ty, $queue:expr, $name:expr, $handler:expr, $context:expr, $shutdown:expr) => {{
        let store: Store = $store.clone();
        let context = $context;
        let name: String = $name;
        let shutdown: watch::Receiver<bool> = $shutdown;
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
                        let backend = SqliteStorage::<$job>::new(writer)
                            .with_config(apalis_sqlite::Config::default().queue($queue));
                        let backend = PollWith::new(backend, EveryPollInterval::new());
                        WorkerBuilder::new(worker_name.clone())
                            .backend(backend)
                            .data(context.clone())
                            .build($handler)
                            .run_until(stop)
                            .await
                    }
                    Store::Postgres { pool } => {
                        let backend = PostgresStorage::<$job>::new(pool)
                            .with_config(apalis_postgres::Config::default().queue($queue));
                        let backend = PollWith::new(backend, EveryPollInterval::new());
                        WorkerBuilder::new(worker_name.clone())
                            .backend(backend)
                            .data(context.clone())
                            .build($handler)
                            .run_until(stop)
                            .await
                    }
                };
                if *shutdown.borrow() {
                    return result;
                }
                tracing::warn!(worker = %worker_name, ?result, "job worker stopped; starting a new one");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(())
        })
    }};
}

/// Runs the relay, the assignment, delivery and SLA workers, the waiting-ticket sweep and
/// auto-close until `shutdown` turns true; running jobs finish first, queued ones stay for the
/// next start.
pub async fn run(
    store: Store,
    settings: JobSettings,
    deliverers: deliver::Deliverers,
    wake: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
) -> std::result::Result<(), BoxDynError> {
    let running = RunningJobs::default();
    let context = JobContext {
        store: store.clone(),
        settings: settings.clone(),
        deliverers,
        running: running.clone(),
        webhook_client: webhooks::client(),
    };
    // The workers stop on their own signal, sent once no handler runs (see RunningJobs).
    let (stop_workers, workers_stopping) = watch::channel(false);
    let relay = {
        let store = store.clone();
        let mut shutdown = shutdown.clone();
        async move {
            let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
            loop {
                if *shutdown.borrow() {
                    break;
                }
                match relay_outbox(&store, &settings, RELAY_BATCH).await {
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
                    _ = sweep.tick() => sweep_once(&store, &settings).await,
                }
            }
        }
    };
    // Worker names are unique per process: a restarted process, or a second instance on the
    // same database, must not collide with registrations that have not yet expired.
    let instance = format!("{}-{:08x}", std::process::id(), fastrand::u32(..));
    let workers = [
        spawn_worker!(
            &store,
            AssignTicket,
            ASSIGN_QUEUE,
            format!("helpdesk-assign-{instance}"),
            run_assign,
            context.clone(),
            workers_stopping.clone()
        ),
        spawn_worker!(
            &store,
            deliver::DeliverMessage,
            deliver::DELIVER_QUEUE,
            format!("helpdesk-deliver-{instance}"),
            run_deliver,
            context.clone(),
            workers_stopping.clone()
        ),
        spawn_worker!(
            &store,
            deliver::ChatAnswer,
            deliver::CHAT_ANSWER_QUEUE,
            format!("helpdesk-chat-answer-{instance}"),
            run_chat_answer,
            context.clone(),
            workers_stopping.clone()
        ),
        spawn_worker!(
            &store,
            sla::SlaCheck,
            sla::SLA_QUEUE,
            format!("helpdesk-sla-{instance}"),
            run_sla,
            context.clone(),
            workers_stopping.clone()
        ),
        spawn_worker!(
            &store,
            notify::NotifyAgents,
            notify::NOTIFY_QUEUE,
            format!("helpdesk-notify-{instance}"),
            run_notify,
            context.clone(),
            workers_stopping.clone()
        ),
        spawn_worker!(
            &store,
            webhooks::DeliverWebhook,
            webhooks::WEBHOOK_QUEUE,
            format!("helpdesk-webhook-{instance}"),
            run_webhook,
            context,
            workers_stopping.clone()
        ),
    ];
    let webhook_relay = tokio::spawn(webhooks::relay_loop(store.clone(), shutdown.clone()));
    let relay = tokio::spawn(relay);
    let _ = stop_signal(shutdown).await;
    let mut workers = workers;
    let finish = async {
        relay.await?;
        webhook_relay.await?;
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

/// The periodic work: tickets waiting for an agent are offered again, quiet resolved tickets
/// close.
async fn sweep_once(store: &Store, settings: &JobSettings) {
    offer_waiting(store).await;
    if let Some(quiet) = settings.auto_close_after {
        match sla::close_quiet(store, quiet, Utc::now()).await {
            Ok(closed) if !closed.is_empty() => {
                tracing::info!(count = closed.len(), "quiet resolved tickets closed");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "closing quiet tickets"),
        }
    }
}

/// Offers tickets waiting for an agent to the assignment again.
async fn offer_waiting(store: &Store) {
    let waiting = match assign::waiting(store, 100).await {
        Ok(waiting) => waiting,
        Err(error) => {
            tracing::warn!(%error, "listing tickets waiting for an agent");
            return;
        }
    };
    for ticket_id in waiting {
        let result = async {
            let mut tx = store.begin_write().await?;
            let key = format!("waiting:{ticket_id}:{}", Utc::now().timestamp() / 30);
            enqueue_assign(&mut tx, AssignTicket { ticket_id }, &key).await?;
            tx.commit().await
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, ticket_id, "offering a waiting ticket");
        }
    }
}

impl From<apalis_sqlite::Error> for StoreError {
    fn from(error: apalis_sqlite::Error) -> Self {
        StoreError::Invalid(format!("job queue: {error}"))
    }
}

/// The queues, for the jobs page's filter.
pub const QUEUES: [&str; 6] = [
    ASSIGN_QUEUE,
    deliver::DELIVER_QUEUE,
    deliver::CHAT_ANSWER_QUEUE,
    notify::NOTIFY_QUEUE,
    sla::SLA_QUEUE,
    webhooks::WEBHOOK_QUEUE,
];

/// The states a job can be in.
pub const STATES: [&str; 5] = ["Pending", "Running", "Done", "Failed", "Killed"];

/// A job as `helpdesk jobs list`, the jobs page and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRow {
    pub id: String,
    pub queue: String,
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    /// The last attempt's result as the queue keeps it (JSON).
    pub last_result: Option<String>,
    /// The last attempt's error, when it failed.
    pub last_error: Option<String>,
    /// The number of the ticket the job is about.
    pub ticket: Option<i64>,
    /// When the job was queued (from its id, a ULID).
    pub created_at: Option<DateTime<Utc>>,
    /// When it is (or was last) due.
    pub run_at: Option<DateTime<Utc>>,
    /// When a worker last took it.
    pub started_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
}

/// Which jobs to list: newest first, optionally of one queue and one state, older than the job
/// `before` (the last of the previous page).
#[derive(Debug, Clone, Copy)]
pub struct JobQuery<'a> {
    pub queue: Option<&'a str>,
    pub status: Option<&'a str>,
    pub before: Option<&'a str>,
    pub limit: i64,
}

#[derive(sqlx::FromRow)]
struct StoredJob {
    id: String,
    queue: String,
    status: String,
    attempts: i64,
    max_attempts: i64,
    last_result: Option<String>,
    /// Seconds since the epoch.
    run_at: Option<i64>,
    lock_at: Option<i64>,
    done_at: Option<i64>,
    job: Vec<u8>,
}

/// The queue's jobs, newest first, optionally only those with `status` (Pending, Running,
/// Done, Failed, Killed).
pub async fn list(store: &Store, status: Option<&str>, limit: i64) -> Result<Vec<JobRow>> {
    query(
        store,
        &JobQuery {
            queue: None,
            status,
            before: None,
            limit,
        },
    )
    .await
}

/// The jobs `filter` asks for, each with the ticket it is about.
pub async fn query(store: &Store, filter: &JobQuery<'_>) -> Result<Vec<JobRow>> {
    // Ids are ULIDs: their order is the order the jobs were queued in.
    let stored: Vec<StoredJob> = match store {
        Store::Sqlite { pool, .. } => {
            sqlx::query_as(
                "SELECT id, job_type AS queue, status, attempts, max_attempts, last_result,
                        run_at, lock_at, done_at, job
                 FROM Jobs
                 WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR job_type = $2)
                   AND ($3 IS NULL OR id < $3)
                 ORDER BY id DESC LIMIT $4",
            )
            .bind(filter.status)
            .bind(filter.queue)
            .bind(filter.before)
            .bind(filter.limit)
            .fetch_all(pool)
            .await?
        }
        Store::Postgres { pool } => {
            sqlx::query_as(
                "SELECT id, job_type AS queue, status, attempts::BIGINT AS attempts,
                        max_attempts::BIGINT AS max_attempts, last_result::TEXT AS last_result,
                        EXTRACT(EPOCH FROM run_at)::BIGINT AS run_at,
                        EXTRACT(EPOCH FROM lock_at)::BIGINT AS lock_at,
                        EXTRACT(EPOCH FROM done_at)::BIGINT AS done_at, job
                 FROM apalis.jobs
                 WHERE ($1::TEXT IS NULL OR status = $1) AND ($2::TEXT IS NULL OR job_type = $2)
                   AND ($3::TEXT IS NULL OR id COLLATE \"C\" < $3)
                 ORDER BY id COLLATE \"C\" DESC LIMIT $4",
            )
            .bind(filter.status)
            .bind(filter.queue)
            .bind(filter.before)
            .bind(filter.limit)
            .fetch_all(pool)
            .await?
        }
    };
    let about: Vec<Option<About>> = stored
        .iter()
        .map(|job| About::of(&job.queue, &job.job))
        .collect();
    let numbers = ticket_numbers(store, &about).await?;
    let at = |seconds: Option<i64>| seconds.and_then(|s| DateTime::from_timestamp(s, 0));
    Ok(stored
        .into_iter()
        .zip(about)
        .map(|(job, about)| JobRow {
            created_at: ulid_time(&job.id),
            last_error: job.last_result.as_deref().and_then(error_of),
            ticket: about.and_then(|about| numbers.get(&about).copied()),
            run_at: at(job.run_at),
            started_at: at(job.lock_at),
            done_at: at(job.done_at),
            id: job.id,
            queue: job.queue,
            status: job.status,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            last_result: job.last_result,
        })
        .collect())
}

/// What a job's payload points at, by the job types of each queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum About {
    Ticket(i64),
    Number(i64),
    Message(i64),
    WebhookDelivery(i64),
}

impl About {
    fn of(queue: &str, payload: &[u8]) -> Option<About> {
        fn read<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Option<T> {
            serde_json::from_slice(payload).ok()
        }
        match queue {
            ASSIGN_QUEUE => read::<AssignTicket>(payload).map(|job| About::Ticket(job.ticket_id)),
            notify::NOTIFY_QUEUE => {
                read::<notify::NotifyAgents>(payload).map(|job| About::Ticket(job.ticket_id))
            }
            sla::SLA_QUEUE => {
                read::<sla::SlaCheck>(payload).map(|job| About::Ticket(job.ticket_id))
            }
            deliver::DELIVER_QUEUE => {
                read::<deliver::DeliverMessage>(payload).map(|job| About::Message(job.message_id))
            }
            deliver::CHAT_ANSWER_QUEUE => read::<deliver::ChatAnswer>(payload)
                .and_then(|job| job.ticket_number)
                .map(About::Number),
            webhooks::WEBHOOK_QUEUE => read::<webhooks::DeliverWebhook>(payload)
                .map(|job| About::WebhookDelivery(job.delivery_id)),
            _ => None,
        }
    }
}

/// The ticket numbers the jobs point at, looked up together per kind of pointer.
async fn ticket_numbers(
    store: &Store,
    about: &[Option<About>],
) -> Result<std::collections::HashMap<About, i64>> {
    let mut numbers = std::collections::HashMap::new();
    let (mut tickets, mut messages, mut deliveries) = (Vec::new(), Vec::new(), Vec::new());
    for pointer in about.iter().flatten() {
        match *pointer {
            About::Ticket(id) => tickets.push(id),
            About::Message(id) => messages.push(id),
            About::WebhookDelivery(id) => deliveries.push(id),
            About::Number(number) => {
                numbers.insert(*pointer, number);
            }
        }
    }
    let found = numbers_of(
        store,
        "SELECT t.id, t.number FROM tickets t WHERE t.id",
        tickets,
    )
    .await?;
    numbers.extend(found.into_iter().map(|(id, n)| (About::Ticket(id), n)));
    let found = numbers_of(
        store,
        "SELECT m.id, t.number FROM messages m JOIN tickets t ON t.id = m.ticket_id WHERE m.id",
        messages,
    )
    .await?;
    numbers.extend(found.into_iter().map(|(id, n)| (About::Message(id), n)));
    let found = numbers_of(
        store,
        "SELECT w.id, t.number FROM webhook_deliveries w JOIN tickets t ON t.id = w.ticket_id
         WHERE w.id",
        deliveries,
    )
    .await?;
    numbers.extend(
        found
            .into_iter()
            .map(|(id, n)| (About::WebhookDelivery(id), n)),
    );
    Ok(numbers)
}

/// Runs `select` (ending in the id column to match) for `ids`: (id, ticket number) pairs.
async fn numbers_of(store: &Store, select: &str, mut ids: Vec<i64>) -> Result<Vec<(i64, i64)>> {
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found = match store {
        Store::Sqlite { pool, .. } => {
            let ids = serde_json::to_string(&ids)
                .map_err(|error| StoreError::Invalid(error.to_string()))?;
            let sql = format!("{select} IN (SELECT value FROM json_each($1))");
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(ids)
                .fetch_all(pool)
                .await?
        }
        Store::Postgres { pool } => {
            let sql = format!("{select} = ANY($1)");
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(ids)
                .fetch_all(pool)
                .await?
        }
    };
    Ok(found)
}

/// The error in a job's stored result (`{"Err": "…"}`, or a plain string); `None` when the
/// last attempt succeeded.
fn error_of(result: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(result) {
        Ok(serde_json::Value::Object(map)) => match map.get("Err") {
            Some(serde_json::Value::String(error)) => Some(error.clone()),
            Some(other) => Some(other.to_string()),
            None => None,
        },
        Ok(serde_json::Value::String(error)) => Some(error),
        Ok(serde_json::Value::Null) => None,
        Ok(other) => Some(other.to_string()),
        Err(_) => Some(result.to_owned()).filter(|text| !text.trim().is_empty()),
    }
}

/// The time a ULID was made: its first ten characters are milliseconds since the epoch in
/// Crockford's base 32.
fn ulid_time(id: &str) -> Option<DateTime<Utc>> {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    if id.len() != 26 {
        return None;
    }
    let mut millis: i64 = 0;
    for byte in id.bytes().take(10) {
        let digit = DIGITS
            .iter()
            .position(|d| *d == byte.to_ascii_uppercase())?;
        millis = millis
            .checked_mul(32)?
            .checked_add(i64::try_from(digit).ok()?)?;
    }
    DateTime::from_timestamp_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ulid_tells_when_it_was_made() {
        // 01HF7YAT3V is 1700000000123 ms (2023-11-14 22:13:20.123 UTC) in base 32.
        let at = ulid_time("01HF7YAT3VTSV4RRFFQ69G5FAV").expect("a ULID");
        assert_eq!(at.timestamp_millis(), 1_700_000_000_123);
        assert_eq!(ulid_time("not-a-ulid"), None);
    }

    #[test]
    fn the_last_error_is_read_from_the_stored_result() {
        assert_eq!(
            error_of(r#"{"Err":"smtp down"}"#).as_deref(),
            Some("smtp down")
        );
        assert_eq!(error_of(r#"{"Ok":null}"#), None);
        assert_eq!(error_of(r#""smtp down""#).as_deref(), Some("smtp down"));
        assert_eq!(error_of("plain words").as_deref(), Some("plain words"));
    }

    #[test]
    fn a_job_points_at_its_ticket_by_its_queue() {
        let payload = serde_json::to_vec(&deliver::DeliverMessage { message_id: 9 }).expect("json");
        assert_eq!(
            About::of(deliver::DELIVER_QUEUE, &payload),
            Some(About::Message(9))
        );
        let payload = serde_json::to_vec(&AssignTicket { ticket_id: 4 }).expect("json");
        assert_eq!(About::of(ASSIGN_QUEUE, &payload), Some(About::Ticket(4)));
        assert_eq!(About::of("elsewhere", &payload), None);
    }
}
