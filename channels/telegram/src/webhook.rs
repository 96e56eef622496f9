//! Webhook mode: Telegram posts each update to us; the cursor tells a redelivered update from
//! a new one, and an update that could not be stored is refused so that Telegram sends it again.

use std::sync::atomic::Ordering;
use std::time::Duration;

use helpdesk_channel::{ChatEvent, Choose, Cursor, Sink};
use teloxide::payloads::SetWebhookSetters;
use teloxide::prelude::Requester;
use teloxide::types::Update;

use crate::{CURSOR_NAME, Telegram, TelegramError, stored_offset};

/// How often webhook mode asks Telegram how its deliveries to us go (getWebhookInfo).
const WEBHOOK_CHECK: Duration = Duration::from_secs(30);
/// The header in which Telegram sends the webhook's secret token.
pub const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// Where Telegram posts updates in webhook mode.
#[derive(Clone)]
pub struct WebhookSettings {
    /// The public HTTPS address Telegram posts to.
    pub url: String,
    /// Sent back by Telegram in [`SECRET_HEADER`] with every update.
    pub secret: String,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Whether a secret token is one Telegram accepts: 1-256 characters of `A-Za-z0-9_-`.
pub fn valid_secret(secret: &str) -> bool {
    (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// Compares in time that does not depend on where the texts differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |differs, (a, b)| differs | (a ^ b))
            == 0
}

/// What became of an update posted to the webhook; the HTTP side answers accordingly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Stored (or nothing to store): answer 2xx.
    Handled,
    /// Handled before, under the cursor: answer 2xx so Telegram stops sending it.
    AlreadyHandled,
    /// The secret header is missing or wrong: not from Telegram.
    Unauthorized,
    /// Not an update.
    Malformed(String),
    /// Not stored (yet): answer 5xx so Telegram sends it again later.
    NotStored(String),
}

impl Telegram {
    /// Asks Telegram to post updates to our webhook. Updates it holds (from polling, or from
    /// while we were away) follow there. One connection at a time: Telegram then posts updates
    /// in order and holds back the later ones while one is refused, so the cursor (the highest
    /// handled update + 1) never passes an update still to come.
    pub(crate) async fn set_webhook(&self) -> Result<(), TelegramError> {
        let Some(webhook) = &self.settings.webhook else {
            return Ok(());
        };
        let url = url::Url::parse(&webhook.url)
            .map_err(|_| TelegramError::WebhookUrl(webhook.url.clone()))?;
        self.bot
            .set_webhook(url)
            .secret_token(webhook.secret.clone())
            .max_connections(1)
            .await?;
        tracing::info!(url = webhook.url, "Telegram webhook set");
        Ok(())
    }

    /// Webhook mode: sets the webhook, then watches Telegram's view of its deliveries
    /// (getWebhookInfo) for the health report until `shutdown` completes. Updates arrive
    /// through [`Telegram::receive`]. The webhook stays set when we stop, so Telegram keeps
    /// what comes in meanwhile and posts it once we are back.
    pub async fn run_webhook(self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        if !self.prepare_until(&mut shutdown).await {
            return;
        }
        let mut last_error_seen = None;
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(WEBHOOK_CHECK) => {}
            }
            let info = match self.bot.get_webhook_info().await {
                Ok(info) => info,
                Err(error) => {
                    tracing::warn!(%error, "Telegram getWebhookInfo failed");
                    self.health.failed(&error.to_string());
                    continue;
                }
            };
            self.health
                .update(|state| state.backlog = u64::from(info.pending_update_count));
            let ours = self
                .settings
                .webhook
                .as_ref()
                .map(|webhook| webhook.url.as_str());
            if info.url.as_ref().map(url::Url::as_str) != ours {
                // Someone removed or moved it (a polling instance, a manual deleteWebhook).
                tracing::warn!(url = ?info.url, "Telegram webhook is not ours; setting it again");
                self.health.failed("the webhook was removed or changed");
                if let Err(error) = self.set_webhook().await {
                    self.health.failed(&error.to_string());
                }
                continue;
            }
            if let (Some(at), Some(message)) = (info.last_error_date, &info.last_error_message)
                && last_error_seen != Some(at)
            {
                last_error_seen = Some(at);
                // Telegram could not reach us, or we refused an update: it tries again.
                tracing::warn!(message, "Telegram reports a failed webhook delivery");
                self.health
                    .failed(&format!("Telegram could not deliver an update: {message}"));
                continue;
            }
            self.health.succeeded();
        }
    }

    /// Takes one update Telegram posted to the webhook: checks the secret header, skips an
    /// update the cursor says was handled, hands it to `sink` and moves the cursor on. An update
    /// that could not be stored is [`Received::NotStored`]: refuse it, Telegram sends it again.
    pub async fn receive<C: Cursor, S: Sink<ChatEvent> + Choose>(
        &self,
        cursor: &C,
        sink: &S,
        secret_header: Option<&[u8]>,
        body: &[u8],
    ) -> Received {
        let Some(webhook) = &self.settings.webhook else {
            return Received::Unauthorized;
        };
        if !secret_header.is_some_and(|given| same_secret(given, webhook.secret.as_bytes())) {
            return Received::Unauthorized;
        }
        let update: Update = match serde_json::from_slice(body) {
            Ok(update) => update,
            Err(error) => return Received::Malformed(error.to_string()),
        };
        if !self.prepared.load(Ordering::SeqCst) {
            // The bot's own id is not known yet; Telegram sends it again shortly.
            return Received::NotStored("the bot is not ready yet".to_owned());
        }
        let _one_at_a_time = self.receiving.lock().await;
        let offset = match stored_offset(cursor).await {
            Ok(offset) => offset,
            Err(error) => return Received::NotStored(format!("cursor unreadable: {error}")),
        };
        let id = i64::from(update.id.0);
        if id < offset {
            return Received::AlreadyHandled;
        }
        let events: Vec<ChatEvent> = if self.take_choice(&update, sink).await {
            Vec::new()
        } else {
            self.event_of(&update).await.into_iter().collect()
        };
        if let Err(error) = sink.accept(events).await {
            tracing::warn!(%error, "Telegram webhook update not stored; Telegram will send it again");
            self.health.failed(&error.to_string());
            return Received::NotStored(error.to_string());
        }
        if let Err(error) = cursor
            .set_position(CURSOR_NAME, &(id + 1).to_string())
            .await
        {
            // Stored all the same: refusing it now would have it handled twice.
            tracing::warn!(%error, "Telegram offset not saved");
        }
        self.health.succeeded();
        self.health.stored();
        Received::Handled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_follow_telegrams_rule_and_compare_exactly() {
        assert!(valid_secret("abc_DEF-123"));
        assert!(!valid_secret(""));
        assert!(!valid_secret("with space"));
        assert!(!valid_secret(&"x".repeat(257)));
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cret", b"s3creT"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
    }
}
