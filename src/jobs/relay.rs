//! The outbox relay: intake records follow-up work in the outbox inside its transaction; the
//! relay turns outbox entries into jobs (and assigns new tickets at once) and marks them done
//! in one transaction of its own, so every ticket gets its jobs exactly once. Beside it runs
//! the periodic sweep: tickets waiting for an agent are offered again, quiet ones closed.

use chrono::Utc;

use super::assign::{self, AssignTicket};
use super::notify::{self, NotifyAgents};
use super::{Job, JobBatch, JobSettings, sla};
use crate::store::outbox::{self, RelayEntry};
use crate::store::{Result, Store, Tx};

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
    let round = relay_in_tx(store, settings, &rules, PendingEntries::First(limit)).await;
    let error = match round {
        Ok(handled) => return Ok(handled),
        Err(error) => error,
    };
    tracing::warn!(%error, "outbox relay round failed; relaying its entries one at a time");
    let pending = outbox::pending(store, limit).await?;
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
    entry: &outbox::PendingEvent,
) -> Result<()> {
    let relayed = relay_in_tx(store, settings, rules, PendingEntries::Only(entry.id)).await;
    let Err(error) = relayed else {
        return Ok(());
    };
    tracing::warn!(ticket_id = %entry.ticket_id, %error, "relaying failed; an assignment job retries it");
    relay_in_tx(
        store,
        settings,
        &[],
        PendingEntries::OnlyWithoutAssigning(entry.id),
    )
    .await
    .map(|_| ())
}

/// [`relay_entries`] in a transaction of its own. One that fails is rolled back before this
/// returns: a transaction merely dropped ends when its connection is next used, and until then
/// its entries stay locked, so the retry one at a time (which skips locked entries, as another
/// instance's are) would pass them by.
async fn relay_in_tx(
    store: &Store,
    settings: &JobSettings,
    rules: &[crate::domain::rules::Rule],
    entries: PendingEntries,
) -> Result<usize> {
    let mut tx = store.begin_write().await?;
    match relay_entries(&mut tx, settings, rules, entries).await {
        Ok(handled) => {
            tx.commit().await?;
            Ok(handled)
        }
        Err(error) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rolling back a failed outbox relay");
            }
            Err(error)
        }
    }
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

/// Turns the chosen pending entries into jobs and assignments inside `tx` and marks them
/// done. Returns how many entries it took.
async fn relay_entries(
    tx: &mut Tx,
    settings: &JobSettings,
    rules: &[crate::domain::rules::Rule],
    entries: PendingEntries,
) -> Result<usize> {
    let (only, limit) = match entries {
        PendingEntries::First(limit) => (None, limit),
        PendingEntries::Only(id) | PendingEntries::OnlyWithoutAssigning(id) => (Some(id), 1),
    };
    let pending = outbox::take_pending(tx, limit, only).await?;
    let now = Utc::now();
    let mut jobs = JobBatch::default();
    let mut to_assign = Vec::new();
    for RelayEntry {
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
        // The customer wrote: a next response starts, a pending ticket's clock runs again.
        if kind == "customer_replied" || kind == "ticket_reopened" {
            sla::touch_for_entry(&mut jobs, *id, *ticket_id, now)?;
        }
        // Without agents' places configured the announcement would go nowhere: no job.
        if let (Some(event), false) = (
            notify::Event::of_outbox(kind),
            settings.agents_places.is_empty(),
        ) {
            let job = NotifyAgents {
                ticket_id: *ticket_id,
                event,
                message_id: *message_id,
            };
            job.add_to(&mut jobs, &format!("notify:{id}"), Utc::now())?;
        }
        if crate::domain::notice::NoticeEvent::of_outbox(kind).is_some() {
            let job = super::notices::NotifyPeople {
                outbox_id: *id,
                ticket_id: *ticket_id,
            };
            job.add_to(&mut jobs, &format!("notices:{id}"), now)?;
        }
        if kind == "ticket_created" || kind == "ticket_reopened" {
            if let PendingEntries::OnlyWithoutAssigning(_) = entries {
                let job = AssignTicket {
                    ticket_id: *ticket_id,
                };
                job.add_to(&mut jobs, &format!("outbox:{id}"), now)?;
            } else {
                to_assign.push(*ticket_id);
            }
        }
    }
    jobs.push(tx).await?;
    let assigned = assign::assign_in(tx, &to_assign, rules, &settings.routing(), now).await?;
    for (ticket_id, assigned) in assigned {
        tracing::debug!(%ticket_id, ?assigned, "assigned on arrival");
    }
    let ids: Vec<i64> = pending.iter().map(|entry| entry.id).collect();
    outbox::mark_processed(tx, &ids, now).await?;
    Ok(pending.len())
}

/// The periodic work: tickets waiting for an agent are offered again, quiet resolved tickets
/// close.
pub(super) async fn sweep_once(store: &Store, settings: &JobSettings) {
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
            AssignTicket { ticket_id }
                .enqueue(&mut tx, &key, Utc::now())
                .await?;
            tx.commit().await
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, %ticket_id, "offering a waiting ticket");
        }
    }
}
