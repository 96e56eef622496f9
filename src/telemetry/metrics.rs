//! The figures this process measures as it works, as Prometheus histograms: HTTP requests by
//! route and status, messages taken in and replies delivered by channel, jobs run and waited
//! by queue. Every one carries `instance_id` (see [`super::instance_id`]), so a fleet's
//! instances can be told apart and summed.
//!
//! One set per process, recorded where the work happens (deep in intake, delivery and the job
//! workers): the process is what Prometheus scrapes, and a handle passed through every
//! constructor would only thread the same value everywhere. The registry itself is built for
//! each scrape (`web::metrics`), so these sit beside the figures read from the database.

use std::sync::LazyLock;
use std::time::Duration;

use helpdesk_channel::ChannelKind;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The label naming the instance. Not `instance`: Prometheus sets that one to the scraped
/// address and would rename ours to `exported_instance`.
pub const INSTANCE_LABEL: &str = "instance_id";

/// Answers of pages and the API: most take milliseconds, a report or an export seconds.
const QUICK: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Work that talks to another server (SMTP, Telegram, Discord, webhooks): up to its timeouts.
const REMOTE: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Seconds a job waited after it was due. The queue keeps due times in whole seconds, so the
/// first bucket means "taken within the second it became due".
const WAITS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route's template (`/tickets/{number}`), never the raw path: one series per route.
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    queue: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn histograms<L: Clone + std::hash::Hash + Eq>(buckets: fn() -> Histogram) -> Histograms<L> {
    Family::new_with_constructor(buckets)
}

/// This process's histograms.
#[derive(Debug)]
pub struct Metrics {
    requests: Histograms<RequestLabels>,
    intake: Histograms<ChannelLabels>,
    delivery: Histograms<ChannelLabels>,
    job_runs: Histograms<JobLabels>,
    job_waits: Histograms<QueueLabels>,
}

/// The process's figures.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
        requests: histograms(|| Histogram::new(QUICK.iter().copied())),
        intake: histograms(|| Histogram::new(QUICK.iter().copied())),
        delivery: histograms(|| Histogram::new(REMOTE.iter().copied())),
        job_runs: histograms(|| Histogram::new(REMOTE.iter().copied())),
        job_waits: histograms(|| Histogram::new(WAITS.iter().copied())),
    });
    &METRICS
}

impl Metrics {
    /// One HTTP request answered: `route` is the matched route's template.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .observe(took.as_secs_f64());
    }

    /// One message handed to intake until it was committed (`taken`, `duplicate`), kept raw
    /// (`rejected`) or refused for an outage (`error`).
    pub fn intake(&self, channel: ChannelKind, outcome: &'static str, took: Duration) {
        self.intake
            .get_or_create(&ChannelLabels {
                channel: channel.as_str(),
                outcome,
            })
            .observe(took.as_secs_f64());
    }

    /// One delivery attempt of a reply on its channel: `sent`, `temporary` or `permanent`
    /// failure.
    pub fn delivery(&self, channel: ChannelKind, outcome: &'static str, took: Duration) {
        self.delivery
            .get_or_create(&ChannelLabels {
                channel: channel.as_str(),
                outcome,
            })
            .observe(took.as_secs_f64());
    }

    /// One run of a job: `ok` or `error` (the queue tries again, up to its attempts).
    pub fn job_run(&self, queue: &'static str, outcome: &'static str, took: Duration) {
        self.job_runs
            .get_or_create(&JobLabels { queue, outcome })
            .observe(took.as_secs_f64());
    }

    /// How long a job waited from due to started.
    pub fn job_wait(&self, queue: &'static str, seconds: f64) {
        self.job_waits
            .get_or_create(&QueueLabels { queue })
            .observe(seconds.max(0.0));
    }

    /// Adds the histograms to a scrape's registry, labelled with this instance.
    pub fn register(&self, registry: &mut Registry) {
        let here = registry.sub_registry_with_label((
            INSTANCE_LABEL.into(),
            super::instance_id().to_owned().into(),
        ));
        here.register(
            "helpdesk_http_request_duration_seconds",
            "Seconds to answer HTTP requests (until the answer's head), by route template, \
             method and status",
            self.requests.clone(),
        );
        here.register(
            "helpdesk_intake_duration_seconds",
            "Seconds from a message handed to intake until it was committed, by channel and \
             outcome",
            self.intake.clone(),
        );
        here.register(
            "helpdesk_delivery_duration_seconds",
            "Seconds a delivery attempt of a reply took on its channel, by channel and outcome",
            self.delivery.clone(),
        );
        here.register(
            "helpdesk_job_run_duration_seconds",
            "Seconds jobs ran, by queue and outcome",
            self.job_runs.clone(),
        );
        here.register(
            "helpdesk_job_wait_duration_seconds",
            "Seconds jobs waited from due to started, by queue (due times are whole seconds)",
            self.job_waits.clone(),
        );
    }
}
