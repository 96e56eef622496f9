//! One change to many tickets at once (the list's bulk actions): all of them in one
//! transaction, each ticket's changes one group of its history, or none of them at all.

use crate::domain::TicketNumber;
use crate::store::views::{self, Visibility};
use crate::store::{Store, StoreError};

use super::change::{ChangedBy, TicketChange, apply_in};

/// The most tickets one action changes: a page of the list is 50, and a larger action holds
/// the writer for longer than a person waits.
pub const MAX_TICKETS: usize = 500;

/// Why a bulk change was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    #[error("choose at least one ticket")]
    NoTickets,
    #[error("at most {MAX_TICKETS} tickets can be changed at once; {0} were chosen")]
    TooMany(usize),
    #[error("choose something to change: assignee, status, priority or tags")]
    NothingToChange,
    /// Unknown, or outside the person's departments (the same answer, so numbers cannot be
    /// probed).
    #[error("there is no ticket #{0} you can see; nothing was changed")]
    NotVisible(TicketNumber),
    /// One ticket refused the change (the workflow, a disabled assignee, an unknown
    /// department), so none was changed.
    #[error("ticket #{number}: {reason}; nothing was changed")]
    Refused {
        number: TicketNumber,
        reason: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which tickets an action changed, and which had its values already.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkOutcome {
    pub changed: Vec<TicketNumber>,
    pub unchanged: Vec<TicketNumber>,
}

/// Applies `change` to every ticket of `numbers` that `visibility` may see, in one
/// transaction; one unknown or invisible number, or one refusal, leaves every ticket as it
/// was. Tickets are changed in the order of their numbers (so two actions on the same tickets
/// wait for each other instead of deadlocking).
pub async fn apply(
    store: &Store,
    numbers: &[TicketNumber],
    visibility: Visibility,
    by: ChangedBy,
    change: &TicketChange,
) -> Result<BulkOutcome, BulkError> {
    let mut numbers = numbers.to_vec();
    numbers.sort();
    numbers.dedup();
    if numbers.is_empty() {
        return Err(BulkError::NoTickets);
    }
    if numbers.len() > MAX_TICKETS {
        return Err(BulkError::TooMany(numbers.len()));
    }
    if is_empty(change) {
        return Err(BulkError::NothingToChange);
    }
    let mut tx = store.begin_write().await?;
    let mut outcome = BulkOutcome::default();
    for &number in &numbers {
        let applied = match views::visible_in(&mut tx, number, visibility).await {
            Ok(true) => apply_in(&mut tx, number, by, change)
                .await
                .map_err(|error| refused(number, error)),
            Ok(false) => Err(BulkError::NotVisible(number)),
            Err(error) => Err(error.into()),
        };
        match applied {
            Ok(true) => outcome.changed.push(number),
            Ok(false) => outcome.unchanged.push(number),
            Err(error) => {
                // The refusal is the answer; a failed rollback only means the database
                // dropped the transaction already.
                if let Err(rollback) = tx.rollback().await {
                    tracing::debug!(error = %rollback, "rollback after a refused bulk change");
                }
                return Err(error);
            }
        }
    }
    if outcome.changed.is_empty() {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(outcome)
}

/// Whether `change` changes no field (a reason alone changes nothing).
fn is_empty(change: &TicketChange) -> bool {
    let TicketChange {
        status,
        priority,
        department,
        assignee,
        tags,
        reason: _,
    } = change;
    status.is_none()
        && priority.is_none()
        && department.is_none()
        && assignee.is_none()
        && tags.is_none()
}

/// A ticket's refusal, named by its number once.
fn refused(number: TicketNumber, error: StoreError) -> BulkError {
    match error {
        StoreError::Conflict(reason) | StoreError::NotFound(reason) => {
            let prefix = format!("ticket #{number}: ");
            BulkError::Refused {
                number,
                reason: reason
                    .strip_prefix(&prefix)
                    .map(str::to_owned)
                    .unwrap_or(reason),
            }
        }
        other => BulkError::Store(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;

    #[test]
    fn a_reason_alone_is_no_change() {
        assert!(is_empty(&TicketChange {
            reason: Some("tidying".into()),
            ..Default::default()
        }));
        assert!(!is_empty(&TicketChange {
            status: Some(Status::Closed),
            ..Default::default()
        }));
    }

    #[test]
    fn a_refusal_names_its_ticket_once() {
        let error = refused(
            TicketNumber(1042),
            StoreError::Conflict("ticket #1042: a ticket cannot go from closed to open".into()),
        );
        assert_eq!(
            error.to_string(),
            "ticket #1042: a ticket cannot go from closed to open; nothing was changed"
        );
        let error = refused(
            TicketNumber(7),
            StoreError::NotFound("no such department #3".into()),
        );
        assert_eq!(
            error.to_string(),
            "ticket #7: no such department #3; nothing was changed"
        );
    }
}
