//! Where logs go and how much of them: set up once at start, before any command runs.

use std::io::IsTerminal;

use crate::config::{LogFormat, Settings};

/// Installs the global log subscriber: `serving` takes `log.level` from the settings, one-shot
/// commands stay at warnings; `RUST_LOG` overrides both.
pub fn init(settings: &Settings, serving: bool) {
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        // A log that cannot be written (a full disk under a redirected stderr) is dropped: by
        // default the failure is reported with eprintln!, which panics the writing task.
        .log_internal_errors(false);
    match settings.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
