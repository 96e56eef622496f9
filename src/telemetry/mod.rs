//! What this process tells operators besides its logs: the figures it measures itself
//! (`metrics`: request, intake, delivery and job durations, each labelled with this instance)
//! and, when an OTLP endpoint is set, its traces (`otlp`).
//!
//! The figures read from the database (tickets, queues, channel health) are not here: they are
//! the same on every instance and are read when /metrics is scraped (`web::metrics`).

pub mod metrics;
pub mod otlp;

use std::sync::LazyLock;

pub use metrics::metrics;

/// This process's instance id: the `instance_id` label of its figures, the
/// `service.instance.id` of its traces, and the id `serve` registers in the instances table.
pub fn instance_id() -> &'static str {
    static ID: LazyLock<String> = LazyLock::new(|| {
        crate::store::instances::Instance::this_process(&[], chrono::Utc::now()).id
    });
    &ID
}
