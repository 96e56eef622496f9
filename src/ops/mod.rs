//! What a person does to a ticket: reply or note, change its fields (of one ticket, or of
//! many at once in `bulk`), merge it. One layer that the web pages, the JSON API, chat
//! commands and the command line all call, so each rule is written once. The store below only
//! reads and writes; the job queue only runs queued work (a reply enqueues its delivery here,
//! and `jobs` never calls back into this layer).

pub mod bulk;
pub mod canned;
pub mod change;
pub mod mentions;
pub mod merge;
pub mod reply;

pub use bulk::{BulkError, BulkOutcome};
pub use change::{ChangedBy, TicketChange, apply, apply_in};
pub use merge::merge;
pub use reply::{
    AttachedFile, keep_files, reply_kind, send_reply, send_reply_as_seen, send_reply_with_files,
};
