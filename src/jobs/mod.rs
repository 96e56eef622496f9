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
use chrono::{NaiveTime, Offset, Utc, Weekday};
use futures_util::StreamExt;
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

/// Outbox entries per relay round (64 measured no better on PostgreSQL: the wait there is the
/// queue's throughput, not the round's length).
const RELAY_BATCH: i64 = 500;
/// How many tickets the relay assigns at once on PostgreSQL.
const ASSIGNMENTS_AT_ONCE: usize = 4;
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
    queue: &str,
    job: &T,
    idempotency_key: &str,
    due: chrono::DateTime<Utc>,
) -> Result<()> {
    push_with_attempts(tx, queue, job, idempotency_key, due, MAX_ATTEMPTS).await
}

/// [`push`] with its own number of attempts, for jobs that schedule their own retries.
pub(crate) async fn push_with_attempts<T: Serialize>(
    tx: &mut Tx,
    queue: &str,
    job: &T,
    idempotency_key: &str,
    due: chrono::DateTime<Utc>,
    max_attempts: usize,
) -> Result<()> {
    let args = encode(job)?;
    // The queue compares whole seconds with `run_at < now()`: a job due this very second would
    // wait for the next one.
    let due = u64::try_from(due.timestamp() - 1).unwrap_or_default();
    let queue_error = |error: String| StoreError::Invalid(format!("job queue: {error}"));
    let task = TaskBuilder::new(args)
        .run_at_timestamp(due)
        .max_attempts(max_attempts)
        .idempotency_key(idempotency_key)
        .build();
    match tx {
        Tx::Sqlite { transaction } => {
            apalis_sqlite::queries::push_tasks(&mut **transaction, queue, &[task])
                .await
                .map_err(|error| queue_error(error.to_string()))
        }
        Tx::Postgres { transaction } => {
            // Unlike its SQLite twin, the PostgreSQL push fails on a known idempotency key,
            // and a failed statement would abort our transaction: push under a savepoint.
            let mut savepoint = sqlx::Connection::begin(&mut **transaction).await?;
            match apalis_postgres::queries::push_tasks(&mut *savepoint, queue, vec![task]).await {
                Ok(()) => savepoint.commit().await?,
                Err(apalis_postgres::Error::Database(error))
                    if crate::store::is_unique_violation(&error) =>
                {
                    savepoint.rollback().await?;
                }
                Err(error) => return Err(queue_error(error.to_string())),
            }
            Ok(())
        }
    }
}

/// Puts an assignment job in the queue inside `tx`.
pub async fn enqueue_assign(tx: &mut Tx, job: AssignTicket, idempotency_key: &str) -> Result<()> {
    push(tx, ASSIGN_QUEUE, &job, idempotency_key, Utc::now()).await
}

/// Turns pending outbox entries into work: new tickets get their SLA timers and notifications
/// become jobs, in one transaction; then each new or reopened ticket is assigned in its own
/// transaction, which also marks its entry done. A process that dies in between leaves the
/// entry pending, so the next relay (of any instance) assigns it; the timers and
/// notifications it queues again are known by their keys. An assignment that fails becomes a
/// job, retried with backoff. Returns how many entries it handled. Several instances may run
/// it at once: on PostgreSQL each takes rows the others have not locked, and assignment locks
/// the ticket.
pub async fn relay_outbox(store: &Store, settings: &JobSettings, limit: i64) -> Result<usize> {
    let relayed = relay_batch(store, &settings.sla, limit).await?;
    if relayed.to_assign.is_empty() {
        return Ok(relayed.handled);
    }
    let rules = crate::store::rules::list(store).await?;
    // On PostgreSQL several assignments run at once: their commits share disk flushes, and
    // the department's row lock keeps round-robin and least-open choices in turn. SQLite has
    // one writer, so there they run one after the other.
    let at_once = match store.backend() {
        crate::store::Backend::Postgres => ASSIGNMENTS_AT_ONCE,
        crate::store::Backend::Sqlite => 1,
    };
    let rules = &rules;
    let mut assignments = futures_util::stream::iter(relayed.to_assign)
        .map(|(outbox_id, ticket_id)| assign_relayed(store, settings, rules, outbox_id, ticket_id))
        .buffer_unordered(at_once);
    while let Some(result) = assignments.next().await {
        result?;
    }
    Ok(relayed.handled)
}

/// Assigns one ticket its outbox entry announced, in one transaction that also marks the entry
/// done; if that fails, an assignment job with retries takes over.
async fn assign_relayed(
    store: &Store,
    settings: &JobSettings,
    rules: &[crate::domain::rules::Rule],
    outbox_id: i64,
    ticket_id: i64,
) -> Result<()> {
    let assigned = async {
        let mut tx = store.begin_write().await?;
        let assigned =
            assign::assign_in(&mut tx, ticket_id, rules, &settings.hours, Utc::now()).await?;
        mark_relayed(&mut tx, outbox_id).await?;
        tx.commit().await?;
        Ok::<_, StoreError>(assigned)
    }
    .await;
    match assigned {
        Ok(assigned) => tracing::debug!(ticket_id, ?assigned, "assigned on arrival"),
        Err(error) => {
            tracing::warn!(ticket_id, %error, "assignment on arrival failed; a job retries it");
            let mut tx = store.begin_write().await?;
            enqueue_assign(
                &mut tx,
                AssignTicket { ticket_id },
                &format!("outbox:{outbox_id}"),
            )
            .await?;
            mark_relayed(&mut tx, outbox_id).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

async fn mark_relayed(tx: &mut Tx, outbox_id: i64) -> Result<()> {
    on_tx!(tx, conn => sqlx::query("UPDATE outbox SET processed_at = $1 WHERE id = $2")
        .bind(Utc::now())
        .bind(outbox_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// What one relay batch did.
struct Relayed {
    handled: usize,
    /// Outbox entries of new and reopened tickets, to be assigned now: (entry, ticket).
    to_assign: Vec<(i64, i64)>,
}

async fn relay_batch(store: &Store, targets: &SlaTargets, limit: i64) -> Result<Relayed> {
    let mut tx = store.begin_write().await?;
    let skip_locked = match &tx {
        Tx::Sqlite { .. } => "",
        Tx::Postgres { .. } => "FOR UPDATE OF o SKIP LOCKED",
    };
    let sql = format!(
        "SELECT o.id, o.kind, o.ticket_id, t.created_at
         FROM outbox o JOIN tickets t ON t.id = o.ticket_id
         WHERE o.processed_at IS NULL
         ORDER BY o.id LIMIT $1 {skip_locked}"
    );
    let pending: Vec<(i64, String, i64, chrono::DateTime<Utc>)> = on_tx!(&mut tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&mut *conn)
            .await)?;
    let mut to_assign = Vec::new();
    for (id, kind, ticket_id, created_at) in &pending {
        let assign = kind == "ticket_created" || kind == "ticket_reopened";
        if assign {
            to_assign.push((*id, *ticket_id));
        }
        if kind == "ticket_created" {
            sla::schedule_new(&mut tx, *ticket_id, *created_at, targets).await?;
        }
        if let Some(event) = notify::Event::of_outbox(kind) {
            let job = notify::NotifyAgents {
                ticket_id: *ticket_id,
                event,
            };
            notify::enqueue(&mut tx, job, &format!("notify:{id}")).await?;
        }
        if !assign {
            mark_relayed(&mut tx, *id).await?;
        }
    }
    tx.commit().await?;
    Ok(Relayed {
        handled: pending.len(),
        to_assign,
    })
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
        &context.settings.hours,
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
                    Store::Sqlite { pool, .. } => {
                        let backend = SqliteStorage::<$job>::new(pool)
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
    let finish = async {
        relay.await?;
        webhook_relay.await?;
        running.idle().await;
        stop_workers.send_replace(true);
        for worker in workers {
            worker.await??;
        }
        Ok::<(), BoxDynError>(())
    };
    match tokio::time::timeout(SHUTDOWN_GRACE, finish).await {
        Ok(result) => result,
        Err(_) => {
            // What still runs is abandoned; apalis returns its jobs to the queue once their
            // worker's heartbeat has expired, and the jobs are idempotent.
            tracing::warn!(
                "job workers still busy {SHUTDOWN_GRACE:?} after shutdown; leaving them"
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

/// A row of `helpdesk jobs list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub queue: String,
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub last_result: Option<String>,
}

/// The queue's jobs, newest first, optionally only those with `status` (Pending, Running,
/// Done, Failed, Killed).
pub async fn list(store: &Store, status: Option<&str>, limit: i64) -> Result<Vec<JobRow>> {
    let rows = match store {
        Store::Sqlite { pool, .. } => {
            sqlx::query_as(
                "SELECT id, job_type AS queue, status, attempts, max_attempts, last_result
             FROM Jobs WHERE ($1 IS NULL OR status = $1) ORDER BY run_at DESC, id DESC LIMIT $2",
            )
            .bind(status)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }
        Store::Postgres { pool } => {
            sqlx::query_as(
                "SELECT id, job_type AS queue, status, attempts::BIGINT AS attempts,
                    max_attempts::BIGINT AS max_attempts, last_result::TEXT AS last_result
             FROM apalis.jobs WHERE ($1::TEXT IS NULL OR status = $1)
             ORDER BY run_at DESC, id DESC LIMIT $2",
            )
            .bind(status)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }
    };
    Ok(rows)
}
