//! Webhook delivery: ticket events posted, signed, to the URLs admins registered.
//!
//! The relay reads the `webhook_outbox` the database fills in the transaction of each change,
//! and in one transaction per event stores a delivery per subscribed webhook (its payload fixed
//! then) and queues its first attempt. Each attempt is a job of its own: a failure queues the
//! next one after an exponential backoff, up to `webhooks.max_attempts`; the last failure marks
//! the delivery failed and its job Failed, where the job queue shows it (and an admin may retry
//! it).
//!
//! Every request carries `X-Helpdesk-Event`, `X-Helpdesk-Delivery`, `X-Helpdesk-Timestamp`
//! (Unix seconds) and `X-Helpdesk-Signature: sha256=<hex>`, the HMAC-SHA256 with the webhook's
//! secret of `<timestamp>.<body>`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::watch;

use super::{Job, JobContext, JobError};
use crate::config::WebhookSettings;
use crate::store::jobs::About;
use crate::store::webhooks::{self, AttemptResult, OutboxRow};
use crate::store::{Result, Store};
/// How often the relay looks for new events.
const RELAY_INTERVAL: Duration = Duration::from_millis(250);
/// Longest wait between two attempts.
const LONGEST_RETRY: chrono::Duration = chrono::Duration::hours(1);

/// One attempt at one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverWebhook {
    pub delivery_id: i64,
    /// 1 for the first attempt.
    pub attempt: i64,
}

impl Job for DeliverWebhook {
    const QUEUE: &'static str = "helpdesk.webhook";
    /// One run per attempt: the retries are jobs of their own, with their backoff.
    const MAX_ATTEMPTS: usize = 1;

    async fn run(self, context: &JobContext) -> Result<(), JobError> {
        let outcome = attempt(
            &context.store,
            &context.webhook_client,
            &context.settings.webhooks,
            self,
        )
        .await?;
        tracing::debug!(
            delivery = self.delivery_id,
            attempt = self.attempt,
            ?outcome,
            "webhook attempt"
        );
        match outcome {
            // The job fails with the delivery, so the job queue shows it and an admin can retry.
            Attempted::Failed(why) => Err(JobError::WebhookFailed(why)),
            _ => Ok(()),
        }
    }

    fn about(&self) -> Option<About> {
        Some(About::WebhookDelivery(self.delivery_id))
    }
}

/// The HMAC-SHA256 of `<timestamp>.<body>` under `secret`.
fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// `sha256=<hex>` of the HMAC-SHA256 of `<timestamp>.<body>` under `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body)
        .map(|mac| hex::encode(mac.finalize().into_bytes()))
        .unwrap_or_default();
    format!("sha256={digest}")
}

/// Whether `header` is a valid signature of `body` sent at `timestamp` (compared in constant
/// time); for receivers written in Rust, and for the tests.
pub fn verify(secret: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(expected) = header
        .strip_prefix("sha256=")
        .and_then(|hex_part| hex::decode(hex_part).ok())
    else {
        return false;
    };
    mac(secret, timestamp, body).is_some_and(|mac| mac.verify_slice(&expected).is_ok())
}

/// The wait before attempt `failed + 1`: the first retry after `first`, then twice as long each
/// time, at most an hour.
pub fn backoff(settings: &WebhookSettings, failed: i64) -> chrono::Duration {
    let first =
        chrono::Duration::seconds(i64::try_from(settings.first_retry_seconds).unwrap_or(30));
    let doublings = u32::try_from(failed.saturating_sub(1)).unwrap_or(0).min(20);
    (first * 2i32.saturating_pow(doublings)).min(LONGEST_RETRY)
}

async fn enqueue(tx: &mut crate::store::Tx, job: DeliverWebhook, due: DateTime<Utc>) -> Result<()> {
    job.enqueue(
        tx,
        &format!("webhook:{}:{}", job.delivery_id, job.attempt),
        due,
    )
    .await
}

/// The event an outbox row announces and its payload, or `None` when it announces nothing
/// (a reply or note shows as `message.added` instead; a row whose ticket is gone).
async fn describe(store: &Store, row: &OutboxRow) -> Result<Option<(String, serde_json::Value)>> {
    let Some(number) = crate::store::tickets::number_of(store, row.ticket_id).await? else {
        return Ok(None);
    };
    let Some(ticket) = crate::store::tickets::summary(store, number).await? else {
        return Ok(None);
    };
    let mut payload = serde_json::json!({
        "event_id": row.id,
        "ticket": ticket,
    });
    let event = match row.source.as_str() {
        "ticket" => {
            payload["occurred_at"] = serde_json::json!(ticket.created_at);
            "ticket.created"
        }
        "event" => {
            let Some(event) = webhooks::event(store, row.source_id).await? else {
                return Ok(None);
            };
            let name = match event.kind.as_str() {
                // The survey's message shows as `message.added`.
                "replied" | "note" | "survey_sent" => return Ok(None),
                "rated" | "rating_comment" => "ticket.rated",
                "status" => "ticket.status_changed",
                "assignee" if event.new_value.is_some() => "ticket.assigned",
                _ => "ticket.updated",
            };
            payload["occurred_at"] = serde_json::json!(event.at);
            payload["change"] = serde_json::json!({
                "field": event.kind,
                "old": event.old_value,
                "new": event.new_value,
                "reason": event.reason,
                "actor": event.actor,
            });
            name
        }
        "message" => {
            let Some(message) = webhooks::message(store, row.source_id).await? else {
                return Ok(None);
            };
            payload["occurred_at"] = serde_json::json!(message.created_at);
            payload["message"] = serde_json::json!(message);
            "message.added"
        }
        _ => return Ok(None),
    };
    payload["event"] = serde_json::json!(event);
    Ok(Some((event.to_owned(), payload)))
}

/// Relays up to `limit` outbox rows; returns how many it handled.
pub async fn relay(store: &Store, limit: i64) -> Result<usize> {
    let rows = webhooks::pending(store, limit).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let hooks: Vec<_> = webhooks::list(store)
        .await?
        .into_iter()
        .filter(|hook| hook.active)
        .collect();
    for row in &rows {
        let described = describe(store, row).await?;
        let mut tx = store.begin_write().await?;
        if !webhooks::take(&mut tx, row.id).await? {
            tx.rollback().await?;
            continue;
        }
        if let Some((event, payload)) = described {
            let body = serde_json::to_string(&payload)?;
            let now = Utc::now();
            for hook in hooks.iter().filter(|hook| hook.wants(&event)) {
                let delivery_id =
                    webhooks::insert_delivery(&mut tx, hook.id, &event, row.ticket_id, &body, now)
                        .await?;
                enqueue(
                    &mut tx,
                    DeliverWebhook {
                        delivery_id,
                        attempt: 1,
                    },
                    now,
                )
                .await?;
            }
        }
        tx.commit().await?;
    }
    Ok(rows.len())
}

/// Relays outbox rows until `shutdown` turns true.
pub async fn relay_loop(store: Store, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        match relay(&store, 200).await {
            Ok(handled) if handled > 0 => continue,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "webhook relay"),
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(RELAY_INTERVAL) => {}
        }
    }
}

/// What one attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempted {
    Delivered,
    RetryAt(DateTime<Utc>),
    Failed(String),
    /// Delivered, failed or attempted already, or the webhook is gone.
    NothingToDo,
}

/// Makes one attempt at a delivery.
pub async fn attempt(
    store: &Store,
    client: &reqwest::Client,
    settings: &WebhookSettings,
    job: DeliverWebhook,
) -> Result<Attempted> {
    let Some(delivery) = webhooks::delivery(store, job.delivery_id).await? else {
        return Ok(Attempted::NothingToDo);
    };
    // An admin's retry of the last, failed attempt sends it once more.
    let retried_after_failure = delivery.status == "failed" && job.attempt == delivery.attempts;
    if !retried_after_failure && (delivery.status != "pending" || delivery.attempts >= job.attempt)
    {
        return Ok(Attempted::NothingToDo);
    }
    let Some(hook) = webhooks::find(store, delivery.webhook_id).await? else {
        return Ok(Attempted::NothingToDo);
    };
    let timestamp = Utc::now().timestamp();
    let body = delivery.payload.into_bytes();
    let sent = client
        .post(&hook.url)
        .timeout(Duration::from_secs(settings.timeout_seconds))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            reqwest::header::USER_AGENT,
            concat!("helpdesk/", env!("CARGO_PKG_VERSION")),
        )
        .header("X-Helpdesk-Event", &delivery.event)
        .header("X-Helpdesk-Delivery", delivery.id.to_string())
        .header("X-Helpdesk-Timestamp", timestamp.to_string())
        .header(
            "X-Helpdesk-Signature",
            signature(&hook.secret, timestamp, &body),
        )
        .body(body)
        .send()
        .await;
    let (status_code, error) = match sent {
        Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
        Ok(response) => (
            Some(response.status().as_u16()),
            Some(format!("the receiver answered {}", response.status())),
        ),
        Err(error) => (None, Some(format!("the request failed: {error}"))),
    };
    let now = Utc::now();
    let attempt = job.attempt;
    let mut tx = store.begin_write().await?;
    let outcome = match error {
        None => {
            let status_code = status_code.unwrap_or(200);
            webhooks::record_attempt(
                &mut tx,
                delivery.id,
                attempt,
                &AttemptResult::Delivered { status_code },
                now,
            )
            .await?;
            Attempted::Delivered
        }
        Some(error) if attempt >= i64::from(settings.max_attempts) || retried_after_failure => {
            let why = format!("after {attempt} attempts: {error}");
            webhooks::record_attempt(
                &mut tx,
                delivery.id,
                attempt,
                &AttemptResult::Failed {
                    status_code,
                    error: why.clone(),
                },
                now,
            )
            .await?;
            Attempted::Failed(why)
        }
        Some(error) => {
            webhooks::record_attempt(
                &mut tx,
                delivery.id,
                attempt,
                &AttemptResult::Retry { status_code, error },
                now,
            )
            .await?;
            let at = now + backoff(settings, attempt);
            // The queue runs jobs up to a second before they are due (whole seconds, see
            // `store::jobs::NewJob`): ask for a second later so no retry comes early.
            enqueue(
                &mut tx,
                DeliverWebhook {
                    delivery_id: delivery.id,
                    attempt: attempt + 1,
                },
                at + chrono::Duration::seconds(1),
            )
            .await?;
            Attempted::RetryAt(at)
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// The HTTP client webhook attempts share.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let signed = signature("s3cret", 1_700_000_000, b"{\"a\":1}");
        assert!(signed.starts_with("sha256="));
        assert_eq!(signed.len(), "sha256=".len() + 64);
        assert!(verify("s3cret", 1_700_000_000, b"{\"a\":1}", &signed));
        assert!(!verify("s3cret", 1_700_000_001, b"{\"a\":1}", &signed));
        assert!(!verify("s3cret", 1_700_000_000, b"{\"a\":2}", &signed));
        assert!(!verify("other", 1_700_000_000, b"{\"a\":1}", &signed));
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let settings = WebhookSettings {
            max_attempts: 8,
            first_retry_seconds: 30,
            timeout_seconds: 10,
        };
        assert_eq!(backoff(&settings, 1), chrono::Duration::seconds(30));
        assert_eq!(backoff(&settings, 2), chrono::Duration::seconds(60));
        assert_eq!(backoff(&settings, 4), chrono::Duration::seconds(240));
        assert_eq!(backoff(&settings, 30), chrono::Duration::hours(1));
    }
}
