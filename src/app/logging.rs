//! Where logs go and how much of them: set up once at start, before any command runs. When
//! `serve` has `[telemetry] otlp_endpoint`, the same spans also go out as traces.

use std::io::IsTerminal;

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, Settings};
use crate::telemetry::otlp::Traces;

/// What logging keeps running until the process ends: the traces pipeline, if any.
#[must_use = "traces still batched are sent by `finish`"]
pub struct Logging {
    traces: Option<Traces>,
}

impl Logging {
    /// Sends the traces still batched; call it after the command, while `runtime` still runs.
    pub fn finish(self) {
        if let Some(traces) = self.traces {
            traces.shutdown();
        }
    }
}

/// Installs the global log subscriber: `serving` takes `log.level` from the settings, one-shot
/// commands stay at warnings; `RUST_LOG` overrides both. Traces are exported only by `serve`,
/// with requests run on `runtime`.
pub fn init(settings: &Settings, serving: bool, runtime: &tokio::runtime::Handle) -> Logging {
    // One-shot commands report through their own output; their logs stay at warnings unless
    // RUST_LOG asks for more.
    let level = match std::env::var("RUST_LOG") {
        Ok(level) => level,
        Err(_) if serving => settings.log.level.clone(),
        Err(_) => "warn,helpdesk::intake=error".to_owned(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal; a log file or journal gets plain text.
    let format = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        // A log that cannot be written (a full disk under a redirected stderr) is dropped: by
        // default the failure is reported with eprintln!, which panics the writing task.
        .log_internal_errors(false);
    let format = match settings.log.format {
        // Each line carries the fields of the spans it happened in (a request's request_id).
        LogFormat::Json => format.json().boxed(),
        LogFormat::Text => format.boxed(),
    };
    let endpoint = settings.telemetry.otlp_endpoint.trim();
    let mut problem = None;
    let traces = if serving && !endpoint.is_empty() {
        // The HTTP client is made inside the runtime it will run on.
        let _entered = runtime.enter();
        match Traces::start(endpoint, runtime.clone()) {
            Ok(traces) => Some(traces),
            Err(error) => {
                problem = Some(error);
                None
            }
        }
    } else {
        None
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(format)
        .with(traces.as_ref().map(Traces::layer))
        .init();
    match (&traces, problem) {
        (Some(_), _) => tracing::info!(
            endpoint = crate::telemetry::otlp::traces_url(endpoint),
            "traces are exported over OTLP"
        ),
        (None, Some(error)) => tracing::error!(%error, "traces are not exported"),
        (None, None) => {}
    }
    Logging { traces }
}
