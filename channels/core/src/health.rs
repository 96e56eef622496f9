//! How a channel's connection is doing, one shape for every channel.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

/// A point-in-time copy of a connection's state, for the admin page and /metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthState {
    /// The connection is up (a session logged in, a poll answered, the gateway ready).
    pub connected: bool,
    /// The last time the source answered as it should: a poll, a READY or RESUMED, a round of
    /// mail taken in. (While IMAP idles this is renewed only when IDLE is re-issued, so judge
    /// liveness by `connected` and `consecutive_failures`, not by its age.)
    pub last_success_at: Option<DateTime<Utc>>,
    /// When the last item was stored.
    pub last_event_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Failures since the last success; 0 when healthy.
    pub consecutive_failures: u32,
    /// Items waiting at the source: mail not yet taken in, updates Telegram holds for us.
    pub backlog: u64,
    /// The session waits for the server to announce news (IMAP IDLE).
    pub idling: bool,
    /// Sessions resumed after a dropped connection (Discord).
    pub resumes: u32,
}

/// The shared, cheaply cloned health of one connection: the channel writes it, the application
/// reads it.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<Mutex<HealthState>>);

impl Health {
    pub fn get(&self) -> HealthState {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Changes the state in place; returns what `change` returns.
    pub fn update<R>(&self, change: impl FnOnce(&mut HealthState) -> R) -> R {
        // A panic elsewhere cannot leave these plain values half-written in a harmful way.
        change(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The source answered: connected, and the failures are over.
    pub fn succeeded(&self) {
        self.update(|state| {
            state.connected = true;
            state.last_success_at = Some(Utc::now());
            state.consecutive_failures = 0;
        });
    }

    /// Something failed: not connected until the next success. Returns the failures in a row,
    /// this one included (for a backoff).
    pub fn failed(&self, error: &str) -> u32 {
        self.update(|state| {
            state.connected = false;
            state.idling = false;
            state.consecutive_failures = state.consecutive_failures.saturating_add(1);
            state.last_error = Some(error.to_owned());
            state.last_error_at = Some(Utc::now());
            state.consecutive_failures
        })
    }

    /// Items were stored just now.
    pub fn stored(&self) {
        self.update(|state| state.last_event_at = Some(Utc::now()));
    }

    /// The connection stopped.
    pub fn disconnected(&self) {
        self.update(|state| {
            state.connected = false;
            state.idling = false;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_clears_connected_and_a_success_restores_it() {
        let health = Health::default();
        health.succeeded();
        health.update(|state| state.idling = true);
        assert!(health.get().connected);
        assert_eq!(health.failed("timeout"), 1);
        assert_eq!(health.failed("timeout again"), 2);
        let state = health.get();
        assert!(!state.connected && !state.idling);
        assert_eq!(state.last_error.as_deref(), Some("timeout again"));
        assert!(state.last_error_at.is_some());
        health.succeeded();
        let state = health.get();
        assert!(state.connected);
        assert_eq!(state.consecutive_failures, 0);
        assert_eq!(
            state.last_error.as_deref(),
            Some("timeout again"),
            "the last error stays on record"
        );
    }
}
