//! Long polling: each batch of updates goes to the sink, and only then does the offset move on.

use std::future::Future;

use helpdesk_channel::{ChatEvent, Choose, Cursor, Sink};
use teloxide::RequestError;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::prelude::Requester;
use teloxide::types::Update;

use crate::{CURSOR_NAME, RETRY_PAUSE, Telegram, stored_offset};

impl Telegram {
    /// Polls until `shutdown` completes. Each batch goes to `sink`; only then does the offset
    /// move on, in the cursor first and with Telegram at the next poll. Buttons pressed under
    /// the bot's messages go to the sink's [`Choose`] as they come.
    pub async fn run<C: Cursor, S: Sink<ChatEvent> + Choose>(
        self,
        cursor: C,
        sink: S,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        tokio::pin!(shutdown);
        if !self.prepare_until(&mut shutdown).await {
            return;
        }
        let mut offset = loop {
            match stored_offset(&cursor).await {
                Ok(offset) => break offset,
                Err(error) => {
                    tracing::warn!(%error, "Telegram cursor unreadable; trying again");
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(RETRY_PAUSE) => {}
                    }
                }
            }
        };
        loop {
            let polled = tokio::select! {
                () = &mut shutdown => return,
                polled = self.poll(offset) => polled,
            };
            let updates = match polled {
                Ok(updates) => updates,
                Err(error) => {
                    let pause = match &error {
                        RequestError::RetryAfter(seconds) => seconds.duration(),
                        _ => RETRY_PAUSE,
                    };
                    tracing::warn!(%error, "Telegram getUpdates failed");
                    self.health.failed(&error.to_string());
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                    continue;
                }
            };
            self.health.succeeded();
            let Some(next) = updates
                .iter()
                .map(|update| i64::from(update.id.0) + 1)
                .max()
            else {
                continue;
            };
            let mut events = Vec::with_capacity(updates.len());
            for update in &updates {
                if self.take_choice(update, &sink).await {
                    continue;
                }
                if let Some(event) = self.event_of(update).await {
                    events.push(event);
                }
            }
            // The batch is handed over until it is stored: nothing is confirmed before that.
            loop {
                match sink.accept(events.clone()).await {
                    Ok(()) => break,
                    Err(error) => {
                        tracing::warn!(%error, "Telegram updates not stored; trying again");
                        self.health.failed(&error.to_string());
                        tokio::select! {
                            () = &mut shutdown => return,
                            () = tokio::time::sleep(RETRY_PAUSE) => {}
                        }
                    }
                }
            }
            if let Err(error) = cursor.set_position(CURSOR_NAME, &next.to_string()).await {
                // Telegram will send the batch again; intake knows it by then.
                tracing::warn!(%error, "Telegram offset not saved");
            }
            offset = next;
            self.health.stored();
        }
    }

    pub(crate) async fn poll(&self, offset: i64) -> Result<Vec<Update>, RequestError> {
        let mut request = self.bot.get_updates().timeout(self.settings.poll_seconds);
        if offset > 0 {
            request = request.offset(i32::try_from(offset).unwrap_or(i32::MAX));
        }
        request.await
    }
}
