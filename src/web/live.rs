//! Live updates: the database keeps a feed of ticket changes (`ticket_changes`, written by
//! triggers, so every writer is covered); one task per process reads it and fans it out to the
//! browsers over SSE. The feed is read on a short poll, and at once when a write of this
//! process wakes the reader. On PostgreSQL a reader that found changes by itself announces
//! them with one NOTIFY, so the readers of the other instances read at once too (a NOTIFY per
//! change, from the trigger, would serialise every writing transaction on the notification
//! queue's lock).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::{Notify, broadcast, watch};

use super::AppState;
use super::auth::Viewer;
use super::error::WebResult;
use crate::store::views::{self, TicketChange};
use crate::store::{Store, StoreError, on_writer};

/// The NOTIFY channel readers announce new changes on.
pub const NOTIFY_CHANNEL: &str = "helpdesk_ticket_changes";
/// How often the feed is read without a wake-up.
const POLL: Duration = Duration::from_millis(250);
/// How many changes the feed keeps; older ones are deleted.
const FEED_KEEP: i64 = 10_000;

/// The fan-out of ticket changes to the open pages of this process.
#[derive(Clone, Debug)]
pub struct Hub {
    sender: broadcast::Sender<TicketChange>,
    wake: Arc<Notify>,
    closed: watch::Sender<bool>,
}

impl Hub {
    /// Starts reading the change feed of `store`.
    pub fn start(store: Store) -> Hub {
        let (sender, _) = broadcast::channel(1024);
        let (closed, _) = watch::channel(false);
        let hub = Hub {
            sender,
            wake: Arc::new(Notify::new()),
            closed,
        };
        tokio::spawn(read_feed(store, hub.clone()));
        hub
    }

    /// Reads the feed now (after a write of this process).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn subscribe(&self) -> broadcast::Receiver<TicketChange> {
        self.sender.subscribe()
    }

    /// Ends the event streams and the reader, so a graceful shutdown does not wait for
    /// browsers that keep their event stream open.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    async fn closed(&self) {
        let mut closed = self.closed.subscribe();
        let _ = closed.wait_for(|closed| *closed).await;
    }
}

async fn listen(store: &Store) -> Option<sqlx::postgres::PgListener> {
    let Store::Postgres { pool } = store else {
        return None;
    };
    let listener = async {
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    };
    match listener.await {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::warn!(%error, "live updates: LISTEN failed; polling instead");
            None
        }
    }
}

fn pool_closed(error: &StoreError) -> bool {
    matches!(error, StoreError::Database(sqlx::Error::PoolClosed))
}

async fn read_feed(store: Store, hub: Hub) {
    let mut last = loop {
        match views::last_change_id(&store).await {
            Ok(id) => break id,
            Err(error) if pool_closed(&error) => return,
            Err(error) => {
                tracing::warn!(%error, "live updates: cannot read the change feed");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = hub.closed() => return,
                }
            }
        }
    };
    let mut listener = listen(&store).await;
    let mut reads: u64 = 0;
    loop {
        let notified = async {
            match listener.as_mut() {
                Some(listener) => {
                    if let Err(error) = listener.recv().await {
                        // The listener reconnects on the next call; a missed NOTIFY is
                        // made up by the next read of the feed.
                        tracing::debug!(%error, "live updates: LISTEN connection lost");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        let announced_elsewhere = tokio::select! {
            _ = hub.wake.notified() => false,
            _ = notified => true,
            _ = tokio::time::sleep(POLL) => false,
            _ = hub.closed() => return,
        };
        match views::changes_after(&store, last, 500).await {
            Ok(changes) => {
                let found = !changes.is_empty();
                for change in changes {
                    last = change.id;
                    // No receivers is fine: nobody has a page open.
                    let _ = hub.sender.send(change);
                }
                if found
                    && !announced_elsewhere
                    && let Err(error) = announce(&store, last).await
                {
                    tracing::debug!(%error, "live updates: cannot announce changes");
                }
            }
            Err(error) if pool_closed(&error) => return,
            Err(error) => tracing::warn!(%error, "live updates: cannot read the change feed"),
        }
        reads += 1;
        if reads.is_multiple_of(240)
            && let Err(error) = prune(&store, last).await
        {
            tracing::debug!(%error, "live updates: cannot prune the change feed");
        }
    }
}

/// Tells the readers of the other instances (PostgreSQL) to read the feed now. Its own
/// transaction, not flushed to disk at commit: a lost announcement only delays the others to
/// their next poll, and the notification queue's lock is held for a moment only.
async fn announce(store: &Store, last: i64) -> Result<(), StoreError> {
    let Store::Postgres { pool } = store else {
        return Ok(());
    };
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NOTIFY_CHANNEL)
        .bind(last.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn prune(store: &Store, last: i64) -> Result<(), StoreError> {
    on_writer!(store, conn => sqlx::query("DELETE FROM ticket_changes WHERE id < $1")
        .bind(last - FEED_KEEP)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    Ok(())
}

/// The change as the browser gets it.
#[derive(serde::Serialize)]
struct ChangeMessage {
    number: i64,
    kind: String,
}

/// The server-sent events of the signed-in person: `ticket` for every change to a ticket they
/// may see, `assigned` when a ticket is assigned to them.
pub async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
) -> WebResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let departments = if viewer.is_admin() {
        None
    } else {
        Some(views::agent_department_ids(&state.store, viewer.id()).await?)
    };
    let me = viewer.id();
    let receiver = state.live.subscribe();
    let hub = state.live.clone();
    let changes = stream::unfold(receiver, move |mut receiver| {
        let departments = departments.clone();
        async move {
            loop {
                match receiver.recv().await {
                    Ok(change) => {
                        let mine = change.assignee_id == Some(me);
                        let visible = departments.as_ref().is_none_or(|departments| {
                            mine || change.previous_assignee_id == Some(me)
                                || change
                                    .department_id
                                    .is_some_and(|department| departments.contains(&department))
                        });
                        if !visible {
                            continue;
                        }
                        let mut events = vec![ticket_event(&change)];
                        if mine && change.previous_assignee_id != Some(me) {
                            let newly_assigned = change.kind == "updated"
                                || (change.kind == "created" && change.assignee_id.is_some());
                            if newly_assigned {
                                events.push(
                                    Event::default()
                                        .event("assigned")
                                        .data(format!("{{\"number\":{}}}", change.number)),
                                );
                            }
                        }
                        return Some((events, receiver));
                    }
                    // Too slow a reader missed changes: the page reloads its data.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return Some((vec![Event::default().event("resync").data("{}")], receiver));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    let events = changes
        .flat_map(|events| stream::iter(events.into_iter().map(Ok)))
        .take_until(async move { hub.closed().await });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

fn ticket_event(change: &TicketChange) -> Event {
    let message = ChangeMessage {
        number: change.number,
        kind: change.kind.clone(),
    };
    Event::default()
        .event("ticket")
        .data(serde_json::to_string(&message).unwrap_or_default())
}
