//! Live updates: the database keeps a feed of ticket changes (`ticket_changes`, written by
//! triggers, so every writer is covered); one task per process reads it and fans it out to the
//! browsers over SSE. The feed is read on a short poll, and at once when a write of this
//! process wakes the reader. On PostgreSQL a reader that found changes by itself announces
//! them with one NOTIFY, so the readers of the other instances read at once too (a NOTIFY per
//! change, from the trigger, would serialise every writing transaction on the notification
//! queue's lock). On PostgreSQL changes can commit out of id order; the reader asks again for
//! ids it skipped until they come or can no longer come (see [`FeedCursor`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::{Notify, broadcast, watch};

use super::AppState;
use super::auth::Viewer;
use super::error::{WebError, WebResult};
use super::presence::Presence;
use crate::domain::TicketNumber;
use crate::store::views::{self, TicketChange};
use crate::store::{Store, StoreError};

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
    presence: Presence,
}

impl Hub {
    /// Starts reading the change feed of `store`.
    pub fn start(store: Store) -> Hub {
        let (sender, _) = broadcast::channel(1024);
        let (closed, _) = watch::channel(false);
        let presence = Presence::start(&store, closed.subscribe());
        let hub = Hub {
            sender,
            wake: Arc::new(Notify::new()),
            closed,
            presence,
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

    /// Who has which ticket open (see [`super::presence`]).
    pub fn presence(&self) -> &Presence {
        &self.presence
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

/// How many changes one read of the feed takes at most.
const READ_LIMIT: i64 = 500;
/// How many missing ids the reader watches at most (a huge rolled-back batch is not watched
/// id by id; its ids never come anyway).
const MAX_GAPS: usize = 10_000;

/// Where the reader is in the feed. On SQLite ids commit in order (one writer at a time), so
/// the newest id read is enough. On PostgreSQL a change's id comes from a sequence when its
/// row is inserted, but transactions commit in any order: a change with a smaller id can
/// become visible after a larger one was read. Such missing ids (gaps) are asked for again on
/// every read until the row shows up, or until every transaction that was running when the
/// gap was seen has ended: then the id was rolled back and never comes.
#[derive(Debug, Default)]
struct FeedCursor {
    last: i64,
    /// Missing ids below `last`, each with the xmax of the snapshot that first missed it (the
    /// transaction ids that could still write it are all below that).
    gaps: std::collections::BTreeMap<i64, u64>,
}

impl FeedCursor {
    fn new(last: i64) -> FeedCursor {
        FeedCursor {
            last,
            gaps: Default::default(),
        }
    }

    /// The changes not passed on yet, oldest id first.
    async fn read(&mut self, store: &Store) -> Result<Vec<TicketChange>, StoreError> {
        let Store::Postgres { pool } = store else {
            let changes = views::changes_after(store, self.last, READ_LIMIT).await?;
            if let Some(change) = changes.last() {
                self.last = change.id;
            }
            return Ok(changes);
        };
        let gaps: Vec<i64> = self.gaps.keys().copied().collect();
        let Some((horizon, changes)) =
            views::changes_with_horizon(pool, self.last, &gaps, READ_LIMIT).await?
        else {
            return Ok(Vec::new());
        };
        let (xmin, xmax) = (horizon.xmin, horizon.xmax);
        Ok(self.absorb(changes, xmin, xmax))
    }

    /// Takes in what one snapshot (horizon `xmin`..`xmax`) read: new ids move the cursor on
    /// and leave gaps for the ids skipped; a gap no running transaction can fill any more is
    /// given up.
    fn absorb(&mut self, changes: Vec<TicketChange>, xmin: u64, xmax: u64) -> Vec<TicketChange> {
        let complete = (changes.len() as i64) < READ_LIMIT;
        let highest = changes.last().map_or(self.last, |change| change.id);
        for change in &changes {
            if change.id > self.last {
                for missing in self.last + 1..change.id {
                    if self.gaps.len() >= MAX_GAPS {
                        break;
                    }
                    self.gaps.insert(missing, xmax);
                }
                self.last = change.id;
            } else {
                self.gaps.remove(&change.id);
            }
        }
        // Every transaction below `xmin` has ended, so its rows were visible to this read;
        // a gap first missed by a snapshot whose xmax is at most `xmin` stays a gap.
        self.gaps.retain(|id, missed_below| {
            let truncated_away = !complete && *id > highest;
            *missed_below > xmin || truncated_away
        });
        changes
    }
}

async fn read_feed(store: Store, hub: Hub) {
    let last = loop {
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
    let mut cursor = FeedCursor::new(last);
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
        match cursor.read(&store).await {
            Ok(changes) => {
                let found = !changes.is_empty();
                for change in changes {
                    // No receivers is fine: nobody has a page open.
                    let _ = hub.sender.send(change);
                }
                if found
                    && !announced_elsewhere
                    && let Err(error) = announce(&store, cursor.last).await
                {
                    tracing::debug!(%error, "live updates: cannot announce changes");
                }
            }
            Err(error) if pool_closed(&error) => return,
            Err(error) => tracing::warn!(%error, "live updates: cannot read the change feed"),
        }
        reads += 1;
        // Pruning stays below the oldest gap, so a late change is not deleted unread.
        let keep_from = cursor
            .gaps
            .keys()
            .next()
            .copied()
            .unwrap_or(cursor.last)
            .min(cursor.last);
        if reads.is_multiple_of(240)
            && let Err(error) = prune(&store, keep_from).await
        {
            tracing::debug!(%error, "live updates: cannot prune the change feed");
        }
    }
}

/// Tells the readers of the other instances (PostgreSQL) to read the feed now. Its own
/// transaction, not flushed to disk at commit: a lost announcement only delays the others to
/// their next poll, and the notification queue's lock is held for a moment only.
async fn announce(store: &Store, last: i64) -> Result<(), StoreError> {
    views::notify(store, NOTIFY_CHANNEL, &last.to_string()).await
}

async fn prune(store: &Store, last: i64) -> Result<(), StoreError> {
    views::forget_changes_before(store, last - FEED_KEEP).await
}

/// The change as the browser gets it.
#[derive(serde::Serialize)]
struct ChangeMessage {
    number: TicketNumber,
    kind: String,
}

/// Which page the event stream belongs to.
#[derive(Debug, Default, serde::Deserialize)]
pub struct EventsQuery {
    /// The ticket page's number: its agent is present there while the stream is open.
    ticket: Option<TicketNumber>,
}

/// The server-sent events of the signed-in person: `ticket` for every change to a ticket they
/// may see, `assigned` when a ticket is assigned to them, and on a ticket page `presence`: who
/// else has it open and who is writing.
pub async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<EventsQuery>,
) -> WebResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Presence only on a ticket the viewer may see; on another the stream carries the rest.
    let here = match query.ticket {
        Some(number) => match super::tickets::visible_ticket(&state, &viewer, number).await {
            Ok(_) => Some(
                state
                    .live
                    .presence()
                    .join(number, viewer.id(), &viewer.agent.name),
            ),
            Err(WebError::NotFound(_)) => None,
            Err(error) => return Err(error),
        },
        None => None,
    };
    let presence_events = match here {
        Some(here) => state.live.presence().events(here).boxed(),
        None => stream::pending::<Event>().boxed(),
    };
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
    let store = state.store.clone();
    let token = viewer.token.clone();
    let changes = changes.flat_map(stream::iter);
    let events = stream::select(changes, presence_events)
        .map(Ok)
        .take_until(async move {
            tokio::select! {
                () = hub.closed() => {}
                () = session_ended(&store, &token) => {}
            }
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// How often an open event stream checks that its session is still live.
const SESSION_CHECK: Duration = Duration::from_secs(15);

/// Completes once the session behind `token` has ended (signed out elsewhere, a new password,
/// the person disabled), so its event stream stops too.
async fn session_ended(store: &Store, token: &str) {
    loop {
        tokio::time::sleep(SESSION_CHECK).await;
        match crate::store::sessions::find(store, token, chrono::Utc::now()).await {
            Ok(None) => return,
            Ok(Some(_)) => {}
            Err(error) => tracing::debug!(%error, "checking an event stream's session"),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{TicketId, TicketNumber};

    fn change(id: i64) -> TicketChange {
        TicketChange {
            id,
            ticket_id: TicketId(id),
            number: TicketNumber(id),
            kind: "updated".into(),
            assignee_id: None,
            previous_assignee_id: None,
            department_id: None,
        }
    }

    fn ids(changes: &[TicketChange]) -> Vec<i64> {
        changes.iter().map(|change| change.id).collect()
    }

    #[test]
    fn skipped_ids_are_watched_until_they_come_or_cannot_come() {
        let mut cursor = FeedCursor::new(10);
        // 11 and 12 are still being written by transactions below xmax 100.
        let read = cursor.absorb(vec![change(13)], 90, 100);
        assert_eq!(ids(&read), [13]);
        assert_eq!(cursor.last, 13);
        assert_eq!(cursor.gaps.keys().copied().collect::<Vec<_>>(), [11, 12]);
        // 12 commits late; 11's transaction is still running (xmin 95 < 100).
        let read = cursor.absorb(vec![change(12), change(14)], 95, 104);
        assert_eq!(ids(&read), [12, 14]);
        assert_eq!(cursor.gaps.keys().copied().collect::<Vec<_>>(), [11]);
        // Everything that ran when 11 went missing has ended without it: rolled back.
        let read = cursor.absorb(Vec::new(), 100, 104);
        assert!(read.is_empty());
        assert!(cursor.gaps.is_empty());
        assert_eq!(cursor.last, 14);
    }
}
