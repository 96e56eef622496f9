//! The job queue (apalis on the same database as the tickets) and its workers.
//!
//! A job is a type implementing [`Job`]: its queue, its number of attempts, its payload (the
//! type itself, as JSON) and what running it does. Adding a job is one file and one line in
//! [`REGISTRY`]. Enqueueing comes with the trait ([`Job::enqueue`], [`Job::add_to`]); the SQL
//! on the job tables is `store::jobs`.
//!
//! Intake records follow-up work in the outbox inside its transaction; the relay ([`relay`])
//! turns outbox entries into jobs and marks them done in one transaction of its own, so every
//! ticket gets its jobs exactly once. Jobs are idempotent all the same: a job run twice (after
//! a crash between its work and its acknowledgement) changes nothing the second time.

pub mod assign;
pub mod chat_answer;
pub mod deliver;
mod error;
pub mod notices;
pub mod notify;
pub mod relay;
mod settings;
pub mod sla;
pub mod survey;
pub mod webhooks;
mod worker;

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use self::error::JobError;
pub use self::relay::relay_outbox;
pub use self::settings::{JobSettings, default_business_hours};
pub use self::worker::{run, run_only};
use crate::store::jobs::{About, NewJob};
pub use crate::store::jobs::{JobQuery, JobRow, STATES};
use crate::store::{Result, Store, Tx};

/// A kind of queued work. The value is the payload: it is stored as JSON when enqueued and
/// read back when a worker takes the job.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static {
    /// The queue the job goes to; one queue per job type.
    const QUEUE: &'static str;
    /// How many times the queue runs the job before it marks it failed. Jobs that schedule
    /// their own retries (as jobs of their own, with their own waits) take 1.
    const MAX_ATTEMPTS: usize = 5;

    /// Does the work; an error makes the queue try again, up to [`Job::MAX_ATTEMPTS`].
    fn run(self, context: &JobContext) -> impl Future<Output = Result<(), JobError>> + Send;

    /// What the job is about, for logs and the jobs page's ticket column.
    fn about(&self) -> Option<About>;

    /// Adds the job to `batch`, due at `due`; the idempotency `key` makes a second job with
    /// the same key in the same queue a no-op.
    fn add_to(&self, batch: &mut JobBatch, key: &str, due: DateTime<Utc>) -> Result<()> {
        batch.jobs.push(NewJob {
            queue: Self::QUEUE,
            args: serde_json::to_vec(self)?,
            idempotency_key: key.to_owned(),
            due,
            max_attempts: Self::MAX_ATTEMPTS,
        });
        Ok(())
    }

    /// Puts the job in the queue inside `tx`, due at `due` (see [`Job::add_to`]).
    fn enqueue(
        &self,
        tx: &mut Tx,
        key: &str,
        due: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send {
        let mut batch = JobBatch::default();
        let added = self.add_to(&mut batch, key, due);
        async move {
            added?;
            batch.push(tx).await
        }
    }
}

/// Every job, one line each: [`run`] starts a worker for each, the jobs page lists its queue.
const REGISTRY: &[Registered] = &[
    Registered::of::<assign::AssignTicket>(),
    Registered::of::<deliver::DeliverMessage>(),
    Registered::of::<chat_answer::ChatAnswer>(),
    Registered::of::<notify::NotifyAgents>(),
    Registered::of::<sla::SlaCheck>(),
    Registered::of::<webhooks::DeliverWebhook>(),
    Registered::of::<survey::SendSurvey>(),
    Registered::of::<notices::NotifyPeople>(),
];

/// A job type as the registry keeps it.
struct Registered {
    queue: &'static str,
    spawn: fn(worker::Start) -> worker::Worker,
    about: fn(&[u8]) -> Option<About>,
}

impl Registered {
    const fn of<J: Job>() -> Registered {
        Registered {
            queue: J::QUEUE,
            spawn: worker::spawn::<J>,
            about: about_payload::<J>,
        }
    }
}

/// What a stored payload of job type `J` is about.
fn about_payload<J: Job>(payload: &[u8]) -> Option<About> {
    serde_json::from_slice::<J>(payload).ok()?.about()
}

/// The queues, for the jobs page's filter.
pub const QUEUES: [&str; REGISTRY.len()] = {
    let mut queues = [""; REGISTRY.len()];
    let mut i = 0;
    while i < REGISTRY.len() {
        queues[i] = REGISTRY[i].queue;
        i += 1;
    }
    queues
};

/// What the jobs share while they run.
#[derive(Clone)]
pub struct JobContext {
    pub store: Store,
    pub settings: JobSettings,
    pub deliverers: deliver::Deliverers,
    pub webhook_client: reqwest::Client,
    running: worker::RunningJobs,
}

/// Jobs gathered to go into the queue together: on PostgreSQL one statement per queue.
#[derive(Default)]
pub struct JobBatch {
    jobs: Vec<NewJob>,
}

impl JobBatch {
    /// Puts the gathered jobs in the queue inside `tx`; a job whose idempotency key its queue
    /// already knows is left out.
    pub async fn push(self, tx: &mut Tx) -> Result<()> {
        crate::store::jobs::insert(tx, self.jobs).await
    }
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
    crate::store::jobs::query(store, filter, about).await
}

/// What a job in `queue` with `payload` is about, by the registered job of that queue.
fn about(queue: &str, payload: &[u8]) -> Option<About> {
    REGISTRY
        .iter()
        .find(|job| job.queue == queue)
        .and_then(|job| (job.about)(payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TicketId;

    #[test]
    fn a_job_points_at_its_ticket_by_its_queue() {
        let payload = serde_json::to_vec(&deliver::DeliverMessage { message_id: 9 }).expect("json");
        assert_eq!(
            about(deliver::DeliverMessage::QUEUE, &payload),
            Some(About::Message(9))
        );
        let payload = serde_json::to_vec(&assign::AssignTicket {
            ticket_id: TicketId(4),
        })
        .expect("json");
        assert_eq!(
            about(assign::AssignTicket::QUEUE, &payload),
            Some(About::Ticket(TicketId(4)))
        );
        assert_eq!(about("elsewhere", &payload), None);
    }

    #[test]
    fn every_queue_is_registered_once() {
        let mut queues = QUEUES.to_vec();
        queues.sort_unstable();
        queues.dedup();
        assert_eq!(queues.len(), REGISTRY.len());
        assert!(QUEUES.contains(&"helpdesk.assign"));
    }
}
