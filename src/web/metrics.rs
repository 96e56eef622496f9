//! /metrics in the Prometheus text format, and /readyz.
//!
//! Every figure is read from the database when scraped, so any instance reports the same numbers
//! and nothing is lost on a restart: messages in and out per channel, tickets by status, jobs by
//! queue and state with how long finished jobs waited and ran, delivery and webhook failures,
//! and the health each channel connection last reported.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::domain::Status;
use crate::store::{Result, Store, jobs, on_pool};

/// A connection that failed this many times in a row makes the instance not ready.
const UNREADY_AFTER_FAILURES: i64 = 3;
/// Finished jobs of this recent past count for the wait and run figures.
const JOB_WINDOW_SECONDS: i64 = 3600;

/// Whether a message of this direction and delivery state counts for a family.
type MessageTest = dyn Fn(&str, Option<&str>) -> bool;

/// A metric family being written: its HELP and TYPE once, then samples.
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(key, value)| format!("{key}=\"{}\"", escape(value)))
            .collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        let _ = writeln!(self.text, "{name}{labels} {value}");
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn render(store: &Store) -> Result<String> {
    let mut out = Exposition {
        text: String::new(),
    };
    out.family(
        "helpdesk_database_up",
        "gauge",
        "1 when the database answered this scrape.",
    );
    out.sample("helpdesk_database_up", &[], 1.0);

    // Messages per channel and direction, and what became of replies.
    let messages: Vec<(String, String, Option<String>, i64)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT channel, direction, delivery_status, COUNT(*) FROM messages
         WHERE kind <> 'internal' GROUP BY channel, direction, delivery_status",
    )
    .fetch_all(pool)
    .await)?;
    let sum = |want: &MessageTest| {
        let mut by_channel: BTreeMap<String, i64> = BTreeMap::new();
        for (channel, direction, delivery, count) in &messages {
            if want(direction, delivery.as_deref()) {
                *by_channel.entry(channel.clone()).or_default() += count;
            }
        }
        by_channel
    };
    let families: [(&str, &str, &MessageTest); 4] = [
        (
            "helpdesk_messages_received_total",
            "Messages taken in from customers, per channel.",
            &|direction, _| direction == "inbound",
        ),
        (
            "helpdesk_messages_sent_total",
            "Replies delivered to customers, per channel.",
            &|direction, delivery| direction == "outbound" && delivery == Some("sent"),
        ),
        (
            "helpdesk_delivery_failures_total",
            "Replies that could not be delivered after every attempt, per channel.",
            &|direction, delivery| direction == "outbound" && delivery == Some("failed"),
        ),
        (
            "helpdesk_deliveries_pending",
            "Replies waiting for delivery, per channel.",
            &|direction, delivery| direction == "outbound" && delivery == Some("pending"),
        ),
    ];
    for (name, help, want) in families {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        out.family(name, kind, help);
        for (channel, count) in sum(want) {
            out.sample(name, &[("channel", &channel)], count as f64);
        }
    }

    let rejected: Vec<(String, i64)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT channel, COUNT(*) FROM raw_messages WHERE intake_error IS NOT NULL GROUP BY channel",
    )
    .fetch_all(pool)
    .await)?;
    out.family(
        "helpdesk_intake_rejected_total",
        "counter",
        "Messages kept raw because they could not become part of a ticket, per channel.",
    );
    for (channel, count) in rejected {
        out.sample(
            "helpdesk_intake_rejected_total",
            &[("channel", &channel)],
            count as f64,
        );
    }

    let tickets: Vec<(String, i64)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT status, COUNT(*) FROM tickets GROUP BY status",
    )
    .fetch_all(pool)
    .await)?;
    out.family("helpdesk_tickets", "gauge", "Tickets by status.");
    for status in Status::ALL {
        let count = tickets
            .iter()
            .find(|(name, _)| name == status.as_str())
            .map_or(0, |(_, count)| *count);
        out.sample(
            "helpdesk_tickets",
            &[("status", status.as_str())],
            count as f64,
        );
    }

    out.family(
        "helpdesk_jobs",
        "gauge",
        "Jobs in the queue by queue and state.",
    );
    for (queue, state, count) in jobs::counts_by_queue(store).await? {
        out.sample(
            "helpdesk_jobs",
            &[("queue", &queue), ("state", &state)],
            count as f64,
        );
    }

    // How long finished jobs waited after they were due, and ran; whole seconds, as the queue
    // keeps them. Jobs are stored due one second early (see store::jobs::NewJob).
    let mut timing: BTreeMap<String, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for (queue, run_at, lock_at, done_at) in jobs::finished(store, JOB_WINDOW_SECONDS).await? {
        let entry = timing.entry(queue).or_default();
        if let Some(lock_at) = lock_at {
            entry.0.push((lock_at - run_at - 1).max(0));
            if let Some(done_at) = done_at {
                entry.1.push((done_at - lock_at).max(0));
            }
        }
    }
    out.family(
        "helpdesk_job_wait_seconds",
        "gauge",
        "Seconds from due to picked up, of jobs finished in the last hour: mean and max.",
    );
    for (queue, (waits, _)) in &timing {
        if let Some(max) = waits.iter().max() {
            let mean = waits.iter().sum::<i64>() as f64 / waits.len() as f64;
            out.sample(
                "helpdesk_job_wait_seconds",
                &[("queue", queue), ("stat", "mean")],
                mean,
            );
            out.sample(
                "helpdesk_job_wait_seconds",
                &[("queue", queue), ("stat", "max")],
                *max as f64,
            );
        }
    }
    out.family(
        "helpdesk_job_run_seconds",
        "gauge",
        "Seconds jobs finished in the last hour ran: mean and max.",
    );
    for (queue, (_, runs)) in &timing {
        if let Some(max) = runs.iter().max() {
            let mean = runs.iter().sum::<i64>() as f64 / runs.len() as f64;
            out.sample(
                "helpdesk_job_run_seconds",
                &[("queue", queue), ("stat", "mean")],
                mean,
            );
            out.sample(
                "helpdesk_job_run_seconds",
                &[("queue", queue), ("stat", "max")],
                *max as f64,
            );
        }
    }

    out.family(
        "helpdesk_webhook_deliveries",
        "gauge",
        "Webhook deliveries by status (failed: every attempt failed).",
    );
    for (status, count) in crate::store::webhooks::delivery_counts(store).await? {
        out.sample(
            "helpdesk_webhook_deliveries",
            &[("status", &status)],
            count as f64,
        );
    }

    let health = crate::store::health::list(store).await?;
    out.family(
        "helpdesk_channel_connected",
        "gauge",
        "1 when the channel connection last reported itself connected.",
    );
    for connection in &health {
        out.sample(
            "helpdesk_channel_connected",
            &[("channel", &connection.channel), ("name", &connection.name)],
            if connection.connected { 1.0 } else { 0.0 },
        );
    }
    out.family(
        "helpdesk_channel_consecutive_failures",
        "gauge",
        "Failed attempts of the connection since its last success.",
    );
    for connection in &health {
        out.sample(
            "helpdesk_channel_consecutive_failures",
            &[("channel", &connection.channel), ("name", &connection.name)],
            connection.consecutive_failures as f64,
        );
    }
    out.family(
        "helpdesk_channel_backlog",
        "gauge",
        "Messages waiting at the source to be taken in, or here to be delivered.",
    );
    for connection in &health {
        out.sample(
            "helpdesk_channel_backlog",
            &[("channel", &connection.channel), ("name", &connection.name)],
            connection.backlog as f64,
        );
    }
    out.family(
        "helpdesk_consumer_held",
        "gauge",
        "1 for the instance holding the consumer's lease (one instance runs each consumer).",
    );
    for holder in crate::store::leases::holders(store).await? {
        out.sample(
            "helpdesk_consumer_held",
            &[
                ("consumer", &holder.name),
                ("instance", &holder.instance_id),
            ],
            1.0,
        );
    }
    Ok(out.text)
}

/// Prometheus text format. When the database does not answer within
/// [`crate::store::HEALTH_TIMEOUT`], only `helpdesk_database_up 0`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let scrape = async {
        state.store.ping().await?;
        render(&state.store).await
    };
    let text = match scrape.await {
        Ok(text) => text,
        Err(error) => {
            tracing::warn!(%error, "metrics: database unreachable");
            "# HELP helpdesk_database_up 1 when the database answered this scrape.\n\
             # TYPE helpdesk_database_up gauge\nhelpdesk_database_up 0\n"
                .to_owned()
        }
    };
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

/// Ready when the database answers within [`crate::store::HEALTH_TIMEOUT`], can write
/// ([`Store::check_writes`]) and no connection of an enabled channel has failed
/// [`UNREADY_AFTER_FAILURES`] times in a row; otherwise 503 with the reasons.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut reasons = Vec::new();
    let mut consumers = Vec::new();
    if let Err(error) = state.store.ping().await {
        reasons.push(format!("database: {error}"));
    } else {
        if let Err(error) = state.store.check_writes().await {
            reasons.push(format!("database cannot write: {error}"));
        }
        let config = &state.config;
        match crate::store::health::list(&state.store).await {
            Ok(health) => {
                for connection in health {
                    let enabled = match connection.channel.as_str() {
                        "email" => config.email_enabled,
                        "telegram" => config.telegram_enabled,
                        "discord" => config.discord_enabled,
                        _ => false,
                    };
                    if enabled
                        && !connection.connected
                        && connection.consecutive_failures >= UNREADY_AFTER_FAILURES
                    {
                        reasons.push(format!(
                            "{} {}: {} failures in a row{}",
                            connection.channel,
                            connection.name,
                            connection.consecutive_failures,
                            connection
                                .last_error
                                .map(|error| format!(", last: {error}"))
                                .unwrap_or_default()
                        ));
                    }
                }
            }
            Err(error) => reasons.push(format!("database: {error}")),
        }
        match crate::store::leases::holders(&state.store).await {
            Ok(holders) => consumers = holders,
            Err(error) => reasons.push(format!("database: {error}")),
        }
    }
    // Which instance runs each consumer: `name`, `instance_id`, `taken_at`.
    if reasons.is_empty() {
        Json(json!({ "status": "ready", "consumers": consumers })).into_response()
    } else {
        tracing::warn!(?reasons, "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reasons": reasons, "consumers": consumers })),
        )
            .into_response()
    }
}
