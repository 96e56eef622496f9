//! Where a channel hands what it received.

use std::future::Future;
use std::sync::Arc;

/// Takes the items of one batch (mail, chat events) in the order they arrived, and returns only
/// once they are stored for good. An error leaves them unacknowledged: the channel hands them
/// over again later, and does not move its [`Cursor`](crate::Cursor) past them before.
pub trait Sink<T>: Send + Sync {
    type Error: std::error::Error + Send + Sync + 'static;

    fn accept(&self, items: Vec<T>) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

impl<T, S: Sink<T>> Sink<T> for Arc<S> {
    type Error = S::Error;

    fn accept(&self, items: Vec<T>) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).accept(items)
    }
}
