//! Why a job run failed. The queue keeps the text as the job's last result, where the jobs
//! page shows it; a failed run is retried up to the job's number of attempts.

use helpdesk_channel::ChannelKind;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Reading or writing the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An agents' place could not be told for now; the queue runs the job again.
    #[error("notifying {channel} {place}: {error}")]
    Notify {
        channel: ChannelKind,
        place: String,
        error: String,
    },
    /// A webhook delivery failed for good: its job fails with it, so the jobs page shows it
    /// and an admin can retry it.
    #[error("{0}")]
    WebhookFailed(String),
}
