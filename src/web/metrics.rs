//! /metrics in the Prometheus text format (through prometheus-client), and /readyz.
//!
//! Two kinds of figures. Those read from the database when scraped are the same on every
//! instance and survive restarts: messages in and out per channel, tickets by status, jobs by
//! queue and state with how long finished jobs waited and ran, delivery and webhook failures,
//! and the health each channel connection last reported. Then this process's own histograms
//! (`crate::telemetry::metrics`), labelled with its `instance_id`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::json;

use super::AppState;
use crate::domain::Status;
use crate::store::{Result, Store, counts, jobs};

/// A connection that failed this many times in a row makes the instance not ready.
const UNREADY_AFTER_FAILURES: i64 = 3;
/// Finished jobs of this recent past count for the wait and run figures.
const JOB_WINDOW_SECONDS: i64 = 3600;

/// Whether a message of this direction and delivery state counts for a family.
type MessageTest = dyn Fn(&str, Option<&str>) -> bool;

/// Seconds finished jobs of one queue waited, and ran.
type WaitsAndRuns = (Vec<i64>, Vec<i64>);

/// A sample's labels, in order.
type Labels = Vec<(&'static str, String)>;

/// The families of one scrape. A family read from the database is one call with its rows,
/// e.g. `scrape.gauges("helpdesk_x", "What x is", rows.map(|r| (vec![("name", r.name)], r.count)))`.
struct Scrape {
    registry: Registry,
}

impl Scrape {
    /// A counter family; `name` ends in `_total`, as exposed.
    fn counters(&mut self, name: &str, help: &str, rows: impl IntoIterator<Item = (Labels, u64)>) {
        let family = Family::<Labels, Counter>::default();
        for (labels, value) in rows {
            family.get_or_create(&labels).inc_by(value);
        }
        // The encoder adds the suffix itself.
        let name = name.strip_suffix("_total").unwrap_or(name);
        self.registry.register(name, help, family);
    }

    /// A gauge family of whole numbers.
    fn gauges(&mut self, name: &str, help: &str, rows: impl IntoIterator<Item = (Labels, i64)>) {
        let family = Family::<Labels, Gauge>::default();
        for (labels, value) in rows {
            family.get_or_create(&labels).set(value);
        }
        self.registry.register(name, help, family);
    }

    /// A gauge family of fractions.
    fn fractions(&mut self, name: &str, help: &str, rows: impl IntoIterator<Item = (Labels, f64)>) {
        let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        for (labels, value) in rows {
            family.get_or_create(&labels).set(value);
        }
        self.registry.register(name, help, family);
    }
}

fn label(key: &'static str, value: impl Into<String>) -> (&'static str, String) {
    (key, value.into())
}

/// The figures read from the database: the same on every instance.
async fn from_database(store: &Store, out: &mut Scrape) -> Result<()> {
    // Messages per channel and direction, and what became of replies.
    let messages = counts::messages(store).await?;
    let sum = |want: &MessageTest| {
        let mut by_channel: BTreeMap<String, i64> = BTreeMap::new();
        for (channel, direction, delivery, count) in &messages {
            if want(direction, delivery.as_deref()) {
                *by_channel.entry(channel.clone()).or_default() += count;
            }
        }
        by_channel
            .into_iter()
            .map(|(channel, count)| (vec![label("channel", channel)], count))
    };
    let counted = |rows: Vec<(Labels, i64)>| {
        rows.into_iter()
            .map(|(labels, count)| (labels, u64::try_from(count).unwrap_or_default()))
    };
    out.counters(
        "helpdesk_messages_received_total",
        "Messages taken in from customers, per channel",
        counted(sum(&|direction, _| direction == "inbound").collect()),
    );
    out.counters(
        "helpdesk_messages_sent_total",
        "Replies delivered to customers, per channel",
        counted(
            sum(&|direction, delivery| direction == "outbound" && delivery == Some("sent"))
                .collect(),
        ),
    );
    out.counters(
        "helpdesk_delivery_failures_total",
        "Replies that could not be delivered after every attempt, per channel",
        counted(
            sum(&|direction, delivery| direction == "outbound" && delivery == Some("failed"))
                .collect(),
        ),
    );
    out.gauges(
        "helpdesk_deliveries_pending",
        "Replies waiting for delivery, per channel",
        sum(&|direction, delivery| direction == "outbound" && delivery == Some("pending")),
    );

    let rejected = counts::rejected_by_channel(store).await?;
    out.counters(
        "helpdesk_intake_rejected_total",
        "Messages kept raw because they could not become part of a ticket, per channel",
        counted(
            rejected
                .into_iter()
                .map(|(channel, count)| (vec![label("channel", channel)], count))
                .collect(),
        ),
    );

    let tickets = counts::tickets_by_status(store).await?;
    out.gauges(
        "helpdesk_tickets",
        "Tickets by status",
        Status::ALL.iter().map(|status| {
            let count = tickets
                .iter()
                .find(|(name, _)| name == status.as_str())
                .map_or(0, |(_, count)| *count);
            (vec![label("status", status.as_str())], count)
        }),
    );

    out.gauges(
        "helpdesk_jobs",
        "Jobs in the queue by queue and state",
        jobs::counts_by_queue(store)
            .await?
            .into_iter()
            .map(|(queue, state, count)| {
                (vec![label("queue", queue), label("state", state)], count)
            }),
    );

    // How long finished jobs waited after they were due, and ran; whole seconds, as the queue
    // keeps them. Jobs are stored due one second early (see store::jobs::NewJob).
    let mut timing: BTreeMap<String, WaitsAndRuns> = BTreeMap::new();
    for (queue, run_at, lock_at, done_at) in jobs::finished(store, JOB_WINDOW_SECONDS).await? {
        let entry = timing.entry(queue).or_default();
        if let Some(lock_at) = lock_at {
            entry.0.push((lock_at - run_at - 1).max(0));
            if let Some(done_at) = done_at {
                entry.1.push((done_at - lock_at).max(0));
            }
        }
    }
    let mean_and_max = |pick: fn(&WaitsAndRuns) -> &Vec<i64>| {
        timing
            .iter()
            .filter_map(|(queue, seconds)| {
                let seconds = pick(seconds);
                let max = *seconds.iter().max()?;
                let mean = seconds.iter().sum::<i64>() as f64 / seconds.len() as f64;
                Some([
                    (vec![label("queue", queue), label("stat", "mean")], mean),
                    (
                        vec![label("queue", queue), label("stat", "max")],
                        max as f64,
                    ),
                ])
            })
            .flatten()
            .collect::<Vec<_>>()
    };
    out.fractions(
        "helpdesk_job_wait_seconds",
        "Seconds from due to picked up, of jobs finished in the last hour: mean and max",
        mean_and_max(|timing| &timing.0),
    );
    out.fractions(
        "helpdesk_job_run_seconds",
        "Seconds jobs finished in the last hour ran: mean and max",
        mean_and_max(|timing| &timing.1),
    );

    out.gauges(
        "helpdesk_webhook_deliveries",
        "Webhook deliveries by status (failed: every attempt failed)",
        crate::store::webhooks::delivery_counts(store)
            .await?
            .into_iter()
            .map(|(status, count)| (vec![label("status", status)], count)),
    );

    let health = crate::store::health::list(store).await?;
    let per_connection = |value: fn(&crate::store::health::ChannelHealth) -> i64| {
        health
            .iter()
            .map(|connection| {
                (
                    vec![
                        label("channel", &connection.channel),
                        label("name", &connection.name),
                    ],
                    value(connection),
                )
            })
            .collect::<Vec<_>>()
    };
    out.gauges(
        "helpdesk_channel_connected",
        "1 when the channel connection last reported itself connected",
        per_connection(|connection| i64::from(connection.connected)),
    );
    out.gauges(
        "helpdesk_channel_consecutive_failures",
        "Failed attempts of the connection since its last success",
        per_connection(|connection| connection.consecutive_failures),
    );
    out.gauges(
        "helpdesk_channel_backlog",
        "Messages waiting at the source to be taken in, or here to be delivered",
        per_connection(|connection| connection.backlog),
    );
    out.gauges(
        "helpdesk_consumer_held",
        "1 for the instance holding the consumer's lease (one instance runs each consumer)",
        crate::store::leases::holders(store)
            .await?
            .into_iter()
            .map(|holder| {
                (
                    vec![
                        label("consumer", &holder.name),
                        label("instance_id", &holder.instance_id),
                    ],
                    1,
                )
            }),
    );
    Ok(())
}

/// Prometheus text format: the figures read from the database, then this process's
/// histograms. When the database has not answered them all within
/// [`crate::store::HEALTH_TIMEOUT`], `helpdesk_database_up 0` and the histograms only.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut scrape = Scrape {
        registry: Registry::default(),
    };
    let mut database = Scrape {
        registry: Registry::default(),
    };
    let read = crate::store::within_health_timeout(async {
        state.store.ping().await?;
        from_database(&state.store, &mut database).await
    });
    let up = match read.await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "metrics: database unreachable");
            false
        }
    };
    scrape.gauges(
        "helpdesk_database_up",
        "1 when the database answered this scrape",
        [(Vec::new(), i64::from(up))],
    );
    let mut own = Registry::default();
    crate::telemetry::metrics().register(&mut own);
    let mut text = String::new();
    let encoded = [
        Some(&scrape.registry),
        up.then_some(&database.registry),
        Some(&own),
    ]
    .into_iter()
    .flatten()
    .try_for_each(|registry| prometheus_text::encode(&mut text, registry));
    if let Err(error) = encoded {
        tracing::error!(%error, "metrics cannot be written");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], text).into_response()
}

/// Ready when the database answers all its checks within [`crate::store::HEALTH_TIMEOUT`]
/// together, can write ([`Store::check_writes`]), the attachment store answers in as long,
/// and no connection of an enabled channel has failed [`UNREADY_AFTER_FAILURES`] times in a
/// row; otherwise 503 with the reasons. The three are asked at once, so the answer comes
/// within that time.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let (database, writes, attachments) = tokio::join!(
        crate::store::within_health_timeout(database_readiness(&state)),
        // Bounded on its own, outside the limit above: cut short, it would forget that a
        // write failed.
        state.store.check_writes(),
        state.config.attachments.check(crate::store::HEALTH_TIMEOUT),
    );
    let (mut reasons, consumers) = match database {
        Ok(found) => found,
        Err(error) => (vec![format!("database: {error}")], Vec::new()),
    };
    if let Err(error) = writes {
        reasons.push(format!("database cannot write: {error}"));
    }
    if let Err(error) = attachments {
        reasons.push(error.to_string());
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

/// The database's part of readiness: its reasons not to be ready (channel connections that
/// keep failing) and which instance holds each consumer.
async fn database_readiness(
    state: &AppState,
) -> Result<(Vec<String>, Vec<crate::store::leases::Holder>)> {
    state.store.ping().await?;
    let config = &state.config;
    let mut reasons = Vec::new();
    for connection in crate::store::health::list(&state.store).await? {
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
    let consumers = crate::store::leases::holders(&state.store).await?;
    Ok((reasons, consumers))
}
