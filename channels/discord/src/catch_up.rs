//! Catching up on DMs: what a new session cannot replay (DMs sent while the bot was away) is
//! fetched after the last message handled in each DM channel, kept in the cursor as
//! `dm:<channel>`.

use helpdesk_channel::{ChatEvent, Cursor, Sink};
use serenity::all::{ChannelId, GetMessages, HttpError, Message, MessageId};
use tokio::sync::watch;

use crate::{Discord, RETRY_PAUSE};

/// Messages per history request: Discord's maximum.
const HISTORY_PAGE: u8 = 100;

/// Tries at fetching one DM channel's history before it waits for the next READY.
const HISTORY_TRIES: u32 = 3;
/// The cursor names of DM channels: `dm:<channel id>`.
const DM_CURSOR_PREFIX: &str = "dm:";

impl Discord {
    /// Handles a message, live or fetched. In a DM, one at or below the channel's cursor was
    /// handled before and is skipped; once handled, the cursor moves to it.
    pub(crate) async fn take_message<S: Sink<ChatEvent>, C: Cursor>(
        &self,
        message: &Message,
        sink: &S,
        cursors: &C,
        stopped: &watch::Receiver<bool>,
    ) {
        let is_dm = message.guild_id.is_none();
        let channel = message.channel_id.get();
        let id = message.id.get();
        if is_dm
            && self
                .known()
                .dm_cursors
                .get(&channel)
                .is_some_and(|last| id <= *last)
        {
            return;
        }
        if let Some(chat_event) = self.event_of_message(message).await
            && !self.hand_over(chat_event, sink, stopped).await
        {
            return;
        }
        if !is_dm {
            return;
        }
        self.known().dm_cursors.insert(channel, id);
        if let Err(error) = cursors
            .set_position(&format!("{DM_CURSOR_PREFIX}{channel}"), &id.to_string())
            .await
        {
            // The message is stored; a later catch-up finds it known to intake.
            tracing::warn!(%error, channel, "Discord DM cursor not saved");
        }
    }

    /// Fetches and handles, oldest first, what was written in each known DM channel after its
    /// cursor: DMs sent while the bot was away, which no gateway session replays.
    pub(crate) async fn catch_up<S: Sink<ChatEvent>, C: Cursor>(
        &self,
        sink: &S,
        cursors: &C,
        stopped: &watch::Receiver<bool>,
    ) {
        let stored = match cursors.positions(DM_CURSOR_PREFIX).await {
            Ok(stored) => stored
                .into_iter()
                .filter_map(|(name, value)| {
                    let channel = name.strip_prefix(DM_CURSOR_PREFIX)?.parse::<u64>().ok()?;
                    Some((channel, value.parse::<u64>().ok()?))
                })
                .collect::<Vec<_>>(),
            Err(error) => {
                tracing::warn!(%error, "Discord DM cursors unreadable; no catch-up");
                self.health.failed(&error.to_string());
                return;
            }
        };
        let channels: Vec<(u64, u64)> = {
            let mut known = self.known();
            for (channel, last) in stored {
                let kept = known.dm_cursors.entry(channel).or_insert(last);
                *kept = (*kept).max(last);
            }
            let mut channels: Vec<(u64, u64)> = known
                .dm_cursors
                .iter()
                .map(|(channel, last)| (*channel, *last))
                .collect();
            channels.sort_unstable();
            channels
        };
        let mut caught_up = 0usize;
        for (channel, mut after) in channels {
            loop {
                if *stopped.borrow() {
                    return;
                }
                let Some(mut page) = self.history_after(channel, after).await else {
                    break;
                };
                let full = page.len() >= usize::from(HISTORY_PAGE);
                page.sort_by_key(|message| message.id);
                for message in &page {
                    self.take_message(message, sink, cursors, stopped).await;
                    after = after.max(message.id.get());
                }
                caught_up += page.len();
                if !full {
                    break;
                }
            }
        }
        if caught_up > 0 {
            tracing::info!(messages = caught_up, "Discord DMs caught up");
        }
    }

    /// One page of a channel's messages after `after` (Discord returns them newest first);
    /// `None` when the channel cannot be read (it is gone, or Discord keeps failing).
    pub(crate) async fn history_after(&self, channel: u64, after: u64) -> Option<Vec<Message>> {
        for attempt in 1..=HISTORY_TRIES {
            let request = GetMessages::new()
                .after(MessageId::new(after.max(1)))
                .limit(HISTORY_PAGE);
            match ChannelId::new(channel).messages(&self.http, request).await {
                Ok(page) => return Some(page),
                Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(response)))
                    if response.status_code.is_client_error() =>
                {
                    tracing::warn!(channel, error = %response.error.message, "Discord DM history refused");
                    return None;
                }
                Err(error) => {
                    tracing::warn!(channel, attempt, %error, "Discord DM history not fetched");
                    self.health.failed(&error.to_string());
                    if attempt < HISTORY_TRIES {
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
        }
        None
    }
}
