//! The limit on password tries: per address and per client IP, counted in the database before
//! the password is checked, so tries sent in parallel (to one instance or several) cannot all
//! pass the check before any failure is recorded.

use chrono::{DateTime, Duration, Utc};

use crate::store::sessions::{self, Tries, TryScope};
use crate::store::{Result, Store};

/// Wrong passwords allowed per address within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: i64 = 5;
/// Wrong passwords allowed per client IP within [`FAILURE_WINDOW`], whatever the addresses: a
/// few people behind one office router may mistype, one client may not spray many addresses.
pub const MAX_FAILURES_PER_IP: i64 = 20;
pub const FAILURE_WINDOW: Duration = Duration::minutes(15);

/// A try refused before any password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Which limit was reached.
    pub scope: TryScope,
    /// Seconds until the window of that count ends (at least 1).
    pub retry_after: i64,
}

impl Refused {
    fn new(scope: TryScope, tries: Tries, now: DateTime<Utc>) -> Refused {
        let ends = tries.window_started_at + FAILURE_WINDOW;
        Refused {
            scope,
            retry_after: (ends - now).num_seconds().max(1),
        }
    }

    /// The wait in whole minutes, rounded up, for people.
    pub fn minutes(&self) -> i64 {
        (self.retry_after + 59) / 60
    }
}

/// A counted try that may check the password once; say how it went.
#[derive(Debug)]
#[must_use = "a try is either a success or a failure"]
pub struct Allowed {
    email: String,
    ip: Option<(String, Tries)>,
}

/// Counts a try for `email` (and `ip`, when the try comes from a client that may spray many
/// addresses) before the password is checked. A try the IP limit refuses is not counted against
/// the address; one the address limit refuses is taken back from the IP, so the IP count is of
/// passwords really checked.
pub async fn count(
    store: &Store,
    email: &str,
    ip: Option<&str>,
    now: DateTime<Utc>,
) -> Result<std::result::Result<Allowed, Refused>> {
    let email = email.trim().to_lowercase();
    let ip = match ip {
        Some(ip) => {
            let tries = sessions::count_try(store, TryScope::Ip, ip, now, FAILURE_WINDOW).await?;
            if tries.count > MAX_FAILURES_PER_IP {
                return Ok(Err(Refused::new(TryScope::Ip, tries, now)));
            }
            Some((ip.to_owned(), tries))
        }
        None => None,
    };
    let tries = sessions::count_try(store, TryScope::Email, &email, now, FAILURE_WINDOW).await?;
    if tries.count > MAX_FAILURES {
        if let Some((ip, ip_tries)) = &ip {
            sessions::take_back_try(store, TryScope::Ip, ip, *ip_tries).await?;
        }
        return Ok(Err(Refused::new(TryScope::Email, tries, now)));
    }
    Ok(Ok(Allowed { email, ip }))
}

impl Allowed {
    /// The password was right. The address's count starts over: its owner proved the password,
    /// and would otherwise be locked out after a few later slips. The try is taken back from
    /// the IP, so many people signing in behind one router do not add up.
    pub async fn succeeded(self, store: &Store) -> Result<()> {
        sessions::clear_tries(store, TryScope::Email, &self.email).await?;
        if let Some((ip, tries)) = &self.ip {
            sessions::take_back_try(store, TryScope::Ip, ip, *tries).await?;
        }
        Ok(())
    }

    /// The password was wrong: the try stays counted. Counts of windows long past go.
    pub async fn failed(self, store: &Store, now: DateTime<Utc>) -> Result<()> {
        sessions::forget_old_tries(store, now - FAILURE_WINDOW).await
    }
}
