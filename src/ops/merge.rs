//! Merging a duplicate ticket into the one that goes on.

use crate::domain::{Status, TicketNumber};
use crate::store::manage::{Change, MergePlan, merge_side, move_into};
use crate::store::tickets::{Actor, find_by_number};
use crate::store::{Result, Store, StoreError};

/// Merges the duplicate `number` into `into`: its messages move over, it closes with a pointer
/// to the ticket that goes on, and both histories say so. Tickets of different customers are
/// merged only when `different_customers_confirmed`; otherwise the refusal says whose
/// messages would move where.
pub async fn merge(
    store: &Store,
    number: TicketNumber,
    into: TicketNumber,
    different_customers_confirmed: bool,
    change: &Change<'_>,
) -> Result<()> {
    if number == into {
        return Err(StoreError::Conflict(
            "a ticket cannot be merged into itself".into(),
        ));
    }
    let mut tx = store.begin_write().await?;
    let duplicate = find_by_number(&mut tx, number)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no ticket #{number}")))?;
    let target = find_by_number(&mut tx, into)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no ticket #{into} to merge into")))?;
    if duplicate.status == Status::Closed {
        return Err(StoreError::Conflict(format!(
            "ticket #{number} is closed already"
        )));
    }
    if target.status == Status::Closed {
        return Err(StoreError::Conflict(format!(
            "ticket #{into} is closed; merge into a ticket that goes on"
        )));
    }
    let plan = MergePlan {
        from: merge_side(&mut tx, number).await?,
        into: merge_side(&mut tx, into).await?,
    };
    if !plan.same_customer() && !different_customers_confirmed {
        return Err(StoreError::Conflict(format!(
            "#{number} and #{into} belong to different customers. {} Confirm the merge to go \
             ahead.",
            plan.sentence()
        )));
    }
    move_into(
        &mut tx,
        &duplicate,
        &target,
        Actor::Agent(change.agent_id),
        change.reason,
        change.now,
    )
    .await?;
    tx.commit().await
}
