//! Who else has a ticket open, and who is writing a reply on it (collision warnings).
//!
//! A ticket page's event stream names its ticket (`/events?ticket=N`): while it is open, its
//! agent is "here". The reply box posts `/tickets/N/typing` now and then while someone types,
//! which marks them "writing" for [`TYPING`]. Presence is kept in memory per instance, like
//! the open event streams it follows.
//!
//! Across instances (PostgreSQL) presence travels the way ticket changes already wake the
//! other instances: LISTEN/NOTIFY. Ticket changes need a table because they must not be lost;
//! presence is only a hint that is refreshed every [`HEARTBEAT`], so a NOTIFY that carries it
//! is enough, and a table would only add writes on every keystroke burst. An instance that
//! stops without saying so is forgotten by the others after [`REMOTE_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::Event;
use futures_util::stream::{self, Stream};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use super::AppState;
use super::auth::Posted;
use super::error::WebResult;
use crate::domain::TicketNumber;
use crate::store::Store;

/// The NOTIFY channel instances exchange presence on.
pub const NOTIFY_CHANNEL: &str = "helpdesk_presence";
/// How long one "typing" post marks its agent as writing.
pub const TYPING: Duration = Duration::from_secs(10);
/// How often an instance repeats its presence to the others.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long presence heard from another instance holds without being repeated.
const REMOTE_TTL: Duration = Duration::from_secs(40);
/// How often expired typing marks and silent instances are swept.
const SWEEP: Duration = Duration::from_secs(1);

/// Someone on a ticket, as the page shows them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Person {
    pub agent_id: i64,
    pub name: String,
    /// Writing a reply or note right now.
    pub typing: bool,
}

/// An agent's presence on a ticket here: the open pages, and until when they type.
#[derive(Debug)]
struct Local {
    name: String,
    pages: usize,
    typing_until: Option<Instant>,
}

/// An agent's presence on a ticket as another instance announced it.
#[derive(Debug)]
struct Remote {
    name: String,
    typing_until: Option<Instant>,
    heard_until: Instant,
}

/// What instances tell each other, one agent on one ticket at a time.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Announcement {
    origin: u64,
    number: TicketNumber,
    agent: i64,
    name: String,
    /// False: the agent left the ticket on that instance.
    here: bool,
    typing: bool,
}

#[derive(Debug, Default)]
struct Board {
    local: HashMap<(TicketNumber, i64), Local>,
    remote: HashMap<(u64, TicketNumber, i64), Remote>,
}

impl Board {
    fn people(&self, number: TicketNumber, now: Instant) -> Vec<Person> {
        let mut people: Vec<Person> = Vec::new();
        let writing = |until: Option<Instant>| until.is_some_and(|until| until > now);
        let local = self
            .local
            .iter()
            .filter(|((n, _), _)| *n == number)
            .map(|((_, agent), entry)| (*agent, &entry.name, writing(entry.typing_until)));
        let remote = self
            .remote
            .iter()
            .filter(|((_, n, _), _)| *n == number)
            .map(|((_, _, agent), entry)| (*agent, &entry.name, writing(entry.typing_until)));
        for (agent_id, name, typing) in local.chain(remote) {
            match people.iter_mut().find(|person| person.agent_id == agent_id) {
                Some(person) => person.typing |= typing,
                None => people.push(Person {
                    agent_id,
                    name: name.clone(),
                    typing,
                }),
            }
        }
        people.sort_by(|a, b| a.name.cmp(&b.name).then(a.agent_id.cmp(&b.agent_id)));
        people
    }
}

/// The presence of this instance and what the others announced.
#[derive(Debug, Clone)]
pub struct Presence {
    origin: u64,
    board: Arc<Mutex<Board>>,
    /// Ticket numbers whose presence changed.
    changed: broadcast::Sender<TicketNumber>,
    /// Local changes to announce to the other instances (PostgreSQL only).
    outbox: Option<mpsc::UnboundedSender<Announcement>>,
}

impl Presence {
    /// Starts the sweeper and, on PostgreSQL, the exchange with the other instances; both end
    /// when `closed` turns true.
    pub(super) fn start(store: &Store, closed: watch::Receiver<bool>) -> Presence {
        let (changed, _) = broadcast::channel(256);
        let outbox = match store {
            Store::Postgres { .. } => {
                let (sender, receiver) = mpsc::unbounded_channel();
                Some((sender, receiver))
            }
            Store::Sqlite { .. } => None,
        };
        let presence = Presence {
            origin: instance_origin(),
            board: Arc::default(),
            changed,
            outbox: outbox.as_ref().map(|(sender, _)| sender.clone()),
        };
        tokio::spawn(sweep(presence.clone(), closed.clone()));
        if let Some((_, receiver)) = outbox {
            tokio::spawn(exchange(store.clone(), presence.clone(), receiver, closed));
        }
        presence
    }

    fn board(&self) -> MutexGuard<'_, Board> {
        // A panic while holding the lock leaves a map that is still consistent enough to show.
        self.board
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Who is on ticket `number`, besides `except`.
    pub fn people(&self, number: TicketNumber, except: i64) -> Vec<Person> {
        let mut people = self.board().people(number, Instant::now());
        people.retain(|person| person.agent_id != except);
        people
    }

    /// Notes an open page of `agent` on ticket `number`; it is gone when the guard drops.
    pub fn join(&self, number: TicketNumber, agent: i64, name: &str) -> Here {
        let announcement = {
            let mut board = self.board();
            let entry = board.local.entry((number, agent)).or_insert_with(|| Local {
                name: name.to_owned(),
                pages: 0,
                typing_until: None,
            });
            entry.pages += 1;
            self.announcement(number, agent, entry)
        };
        self.spread(number, announcement);
        Here {
            presence: self.clone(),
            number,
            agent,
        }
    }

    /// Marks `agent` as writing on ticket `number` for [`TYPING`].
    pub fn typing(&self, number: TicketNumber, agent: i64, name: &str) {
        let announcement = {
            let mut board = self.board();
            let entry = board.local.entry((number, agent)).or_insert_with(|| Local {
                name: name.to_owned(),
                pages: 0,
                typing_until: None,
            });
            entry.typing_until = Some(Instant::now() + TYPING);
            self.announcement(number, agent, entry)
        };
        self.spread(number, announcement);
    }

    fn leave(&self, number: TicketNumber, agent: i64) {
        let announcement = {
            let mut board = self.board();
            let Some(entry) = board.local.get_mut(&(number, agent)) else {
                return;
            };
            entry.pages = entry.pages.saturating_sub(1);
            // The last page closed: writing there ended with it.
            if entry.pages == 0 {
                let entry = board.local.remove(&(number, agent));
                entry.map(|entry| Announcement {
                    origin: self.origin,
                    number,
                    agent,
                    name: entry.name,
                    here: false,
                    typing: false,
                })
            } else {
                None
            }
        };
        if let Some(announcement) = announcement {
            self.spread(number, announcement);
        }
    }

    fn announcement(&self, number: TicketNumber, agent: i64, entry: &Local) -> Announcement {
        Announcement {
            origin: self.origin,
            number,
            agent,
            name: entry.name.clone(),
            here: true,
            typing: entry
                .typing_until
                .is_some_and(|until| until > Instant::now()),
        }
    }

    /// Tells this instance's pages, and the other instances, that `number` changed.
    fn spread(&self, number: TicketNumber, announcement: Announcement) {
        // No receivers is fine: nobody has that ticket open here.
        let _ = self.changed.send(number);
        if let Some(outbox) = &self.outbox {
            let _ = outbox.send(announcement);
        }
    }

    /// Takes in what another instance announced.
    fn heard(&self, announcement: Announcement) {
        if announcement.origin == self.origin {
            return;
        }
        let key = (announcement.origin, announcement.number, announcement.agent);
        {
            let mut board = self.board();
            if announcement.here {
                let now = Instant::now();
                board.remote.insert(
                    key,
                    Remote {
                        name: announcement.name,
                        typing_until: announcement.typing.then_some(now + TYPING),
                        heard_until: now + REMOTE_TTL,
                    },
                );
            } else {
                board.remote.remove(&key);
            }
        }
        let _ = self.changed.send(announcement.number);
    }

    /// The `presence` events for one open ticket page: who is there now, then after every
    /// change on that ticket.
    pub(super) fn events(&self, here: Here) -> impl Stream<Item = Event> + Send + use<> {
        let receiver = self.changed.subscribe();
        stream::unfold(
            (here, receiver, true),
            |(here, mut receiver, first)| async move {
                if !first {
                    loop {
                        match receiver.recv().await {
                            Ok(number) if number == here.number => break,
                            Ok(_) => {}
                            Err(broadcast::error::RecvError::Lagged(_)) => break,
                            Err(broadcast::error::RecvError::Closed) => return None,
                        }
                    }
                }
                let people = here.presence.people(here.number, here.agent);
                let data = serde_json::json!({ "number": here.number, "people": people });
                let event = Event::default().event("presence").data(data.to_string());
                Some((event, (here, receiver, false)))
            },
        )
    }
}

/// An open ticket page; dropping it (the event stream ended) leaves the ticket.
#[derive(Debug)]
pub struct Here {
    presence: Presence,
    number: TicketNumber,
    agent: i64,
}

impl Drop for Here {
    fn drop(&mut self) {
        self.presence.leave(self.number, self.agent);
    }
}

/// A random id for this instance's announcements, so it ignores its own.
fn instance_origin() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Unique enough between the few instances of one database.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64);
        return nanos ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(bytes)
}

async fn closed_signal(mut closed: watch::Receiver<bool>) {
    let _ = closed.wait_for(|closed| *closed).await;
}

/// Ends typing marks that ran out and forgets instances that went silent.
async fn sweep(presence: Presence, closed: watch::Receiver<bool>) {
    let closed = closed_signal(closed);
    tokio::pin!(closed);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SWEEP) => {}
            _ = &mut closed => return,
        }
        let now = Instant::now();
        let mut changed = Vec::new();
        let mut announcements = Vec::new();
        {
            let mut board = presence.board();
            board.local.retain(|(number, agent), entry| {
                if entry.typing_until.is_none_or(|until| until > now) {
                    return true;
                }
                entry.typing_until = None;
                changed.push(*number);
                announcements.push(Announcement {
                    origin: presence.origin,
                    number: *number,
                    agent: *agent,
                    name: entry.name.clone(),
                    here: entry.pages > 0,
                    typing: false,
                });
                entry.pages > 0
            });
            board.remote.retain(|(_, number, _), entry| {
                if entry.heard_until <= now {
                    changed.push(*number);
                    return false;
                }
                if entry.typing_until.is_some_and(|until| until <= now) {
                    entry.typing_until = None;
                    changed.push(*number);
                }
                true
            });
        }
        for announcement in announcements {
            if let Some(outbox) = &presence.outbox {
                let _ = outbox.send(announcement);
            }
        }
        changed.sort_unstable();
        changed.dedup();
        for number in changed {
            let _ = presence.changed.send(number);
        }
    }
}

/// PostgreSQL: sends this instance's announcements, repeats them every [`HEARTBEAT`], and
/// takes in those of the others.
async fn exchange(
    store: Store,
    presence: Presence,
    mut outbox: mpsc::UnboundedReceiver<Announcement>,
    closed: watch::Receiver<bool>,
) {
    let Store::Postgres { pool } = &store else {
        return;
    };
    let closed = closed_signal(closed);
    tokio::pin!(closed);
    let mut listener = match sqlx::postgres::PgListener::connect_with(pool).await {
        Ok(mut listener) => match listener.listen(NOTIFY_CHANNEL).await {
            Ok(()) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "presence: LISTEN failed; other instances' agents are not shown");
                None
            }
        },
        Err(error) => {
            tracing::warn!(%error, "presence: LISTEN failed; other instances' agents are not shown");
            None
        }
    };
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    loop {
        let heard = async {
            match listener.as_mut() {
                Some(listener) => listener.recv().await.map(Some),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut closed => return,
            Some(announcement) = outbox.recv() => {
                if let Err(error) = announce(&store, &announcement).await {
                    tracing::debug!(%error, "presence: cannot announce");
                }
            }
            _ = heartbeat.tick() => {
                let all: Vec<Announcement> = {
                    let board = presence.board();
                    board
                        .local
                        .iter()
                        .map(|((number, agent), entry)| presence.announcement(*number, *agent, entry))
                        .collect()
                };
                for announcement in all {
                    if let Err(error) = announce(&store, &announcement).await {
                        tracing::debug!(%error, "presence: cannot announce");
                        break;
                    }
                }
            }
            notification = heard => match notification {
                Ok(Some(notification)) => {
                    match serde_json::from_str::<Announcement>(notification.payload()) {
                        Ok(announcement) => presence.heard(announcement),
                        Err(error) => tracing::debug!(%error, "presence: unreadable announcement"),
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    // The listener reconnects on the next call; the heartbeats make up for
                    // what was missed.
                    tracing::debug!(%error, "presence: LISTEN connection lost");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
        }
    }
}

async fn announce(
    store: &Store,
    announcement: &Announcement,
) -> Result<(), crate::store::StoreError> {
    let payload = serde_json::to_string(announcement)?;
    crate::store::views::notify(store, NOTIFY_CHANNEL, &payload).await
}

#[derive(serde::Deserialize)]
pub struct TypingForm {}

/// `POST /tickets/{number}/typing`: the reply box of that ticket is being written in.
pub async fn typing(
    State(state): State<AppState>,
    Path(number): Path<TicketNumber>,
    posted: Posted<TypingForm>,
) -> WebResult<StatusCode> {
    let viewer = posted.viewer;
    super::tickets::visible_ticket(&state, &viewer, number).await?;
    state
        .live
        .presence()
        .typing(number, viewer.id(), &viewer.agent.name);
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_typing_make_presence_and_leaving_ends_it() {
        let presence = Presence {
            origin: 1,
            board: Arc::default(),
            changed: broadcast::channel(16).0,
            outbox: None,
        };
        let kim = presence.join(TicketNumber(7), 2, "Kim");
        let kim_again = presence.join(TicketNumber(7), 2, "Kim");
        let _abe = presence.join(TicketNumber(7), 3, "Abe");
        presence.typing(TicketNumber(7), 2, "Kim");
        let seen_by_abe = presence.people(TicketNumber(7), 3);
        assert_eq!(
            seen_by_abe,
            [Person {
                agent_id: 2,
                name: "Kim".into(),
                typing: true
            }]
        );
        assert!(presence.people(TicketNumber(8), 3).is_empty());
        drop(kim);
        // One of Kim's pages is still open.
        assert_eq!(presence.people(TicketNumber(7), 3).len(), 1);
        drop(kim_again);
        assert!(presence.people(TicketNumber(7), 3).is_empty());
        presence.heard(Announcement {
            origin: 9,
            number: TicketNumber(7),
            agent: 4,
            name: "Zoe".into(),
            here: true,
            typing: false,
        });
        let names: Vec<String> = presence
            .people(TicketNumber(7), 3)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["Zoe"]);
        presence.heard(Announcement {
            origin: 9,
            number: TicketNumber(7),
            agent: 4,
            name: "Zoe".into(),
            here: false,
            typing: false,
        });
        assert!(presence.people(TicketNumber(7), 3).is_empty());
    }
}
