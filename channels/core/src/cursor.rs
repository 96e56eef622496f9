//! Where a channel stands in its source, kept by the application.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

/// Named text positions of one channel: the next Telegram update ("updates"), a mailbox's
/// UIDVALIDITY and last UID ("imap:INBOX"), the last message handled in each Discord DM
/// ("dm:<channel>"). The channel reads and writes its own format; the application only keeps
/// the text, so a position survives restarts and is shared by every instance.
pub trait Cursor: Send + Sync {
    type Error: std::error::Error + Send + Sync + 'static;

    /// The position stored under `name`, or `None` if there is none yet.
    fn position(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send;

    /// Stores `value` under `name`. Called only after what it passes was stored.
    fn set_position(
        &self,
        name: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Every position whose name starts with `prefix`, as (name, value), by name.
    fn positions(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, Self::Error>> + Send;
}

impl<C: Cursor> Cursor for Arc<C> {
    type Error = C::Error;

    fn position(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send {
        (**self).position(name)
    }

    fn set_position(
        &self,
        name: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).set_position(name, value)
    }

    fn positions(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, Self::Error>> + Send {
        (**self).positions(prefix)
    }
}

/// Positions kept in memory only: for tests, and for a run that may start over.
#[derive(Debug, Clone, Default)]
pub struct MemoryCursor(Arc<Mutex<BTreeMap<String, String>>>);

impl MemoryCursor {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Cursor for MemoryCursor {
    type Error = Infallible;

    async fn position(&self, name: &str) -> Result<Option<String>, Infallible> {
        Ok(self.map().get(name).cloned())
    }

    async fn set_position(&self, name: &str, value: &str) -> Result<(), Infallible> {
        self.map().insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    async fn positions(&self, prefix: &str) -> Result<Vec<(String, String)>, Infallible> {
        Ok(self
            .map()
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect())
    }
}
