//! Assignment of tickets: the admin's rules in order, then the department's strategy.
//! Why each ticket went where it went is written to its history.

mod round;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use self::round::Round;
use super::{Job, JobContext, JobError};
use crate::domain::TicketId;
use crate::domain::rules::{BusinessHours, Rule};
use crate::store::assign::{self, TicketRow};
use crate::store::jobs::About;
use crate::store::{self, Result, Store, Tx};

/// Assign a ticket: rules first, then the department's strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignTicket {
    pub ticket_id: TicketId,
}

impl Job for AssignTicket {
    const QUEUE: &'static str = "helpdesk.assign";

    async fn run(self, context: &JobContext) -> Result<(), JobError> {
        let outcome = assign_ticket(
            &context.store,
            self.ticket_id,
            &context.settings.routing(),
            Utc::now(),
        )
        .await?;
        tracing::debug!(ticket_id = %self.ticket_id, ?outcome, "assignment ran");
        Ok(())
    }

    fn about(&self) -> Option<About> {
        Some(About::Ticket(self.ticket_id))
    }
}

/// What assignment did to a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assigned {
    /// Given to this agent.
    To { agent_id: i64 },
    /// Nobody could take it now; it waits for an agent to become available.
    Waiting { reason: String },
    /// Already assigned, or no longer active: nothing to do (a repeated job lands here).
    Skipped,
}

/// What assignment needs from the settings besides the rules.
#[derive(Debug, Clone, Copy)]
pub struct Routing<'a> {
    /// For rules with a business-hours condition.
    pub hours: &'a BusinessHours,
    /// Where tickets no rule routes go (`workflow.default_department`), by name.
    pub default_department: Option<&'a str>,
}

/// Runs assignment for one ticket in one transaction. Rules run once per ticket; later runs
/// (when an agent became available) only look for an agent. On PostgreSQL the ticket row is
/// locked first, so two instances never assign one ticket twice.
pub async fn assign_ticket(
    store: &Store,
    ticket_id: TicketId,
    routing: &Routing<'_>,
    now: DateTime<Utc>,
) -> Result<Assigned> {
    let rules = store::rules::list(store).await?;
    let mut tx = store.begin_write().await?;
    let mut assigned = assign_in(&mut tx, &[ticket_id], &rules, routing, now).await?;
    tx.commit().await?;
    Ok(assigned
        .pop()
        .map_or(Assigned::Skipped, |(_, outcome)| outcome))
}

/// Assignment of `tickets` inside `tx`, one after the other in this order, each as
/// [`assign_ticket`] does it; returns what became of each ticket that exists.
///
/// The tickets are read (on PostgreSQL locked, in id order) with one statement, each
/// department and its agents once, and the tickets, their history and the outbox written
/// together at the end: a relay round of a hundred new tickets is a few statements, not a
/// dozen per ticket.
pub(crate) async fn assign_in(
    tx: &mut Tx,
    tickets: &[TicketId],
    rules: &[Rule],
    routing: &Routing<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<(TicketId, Assigned)>> {
    if tickets.is_empty() {
        return Ok(Vec::new());
    }
    let rows = assign::ticket_rows(tx, tickets).await?;
    let mut rows: HashMap<TicketId, TicketRow> =
        rows.into_iter().map(|row| (row.id, row)).collect();
    let mut round = Round::default();
    let mut outcomes = Vec::with_capacity(tickets.len());
    for ticket_id in tickets {
        if let Some(row) = rows.remove(ticket_id) {
            let outcome = round.assign(tx, row, rules, routing, now).await?;
            outcomes.push((*ticket_id, outcome));
        }
    }
    round.write(tx, now).await?;
    Ok(outcomes)
}

/// Active tickets nobody is assigned to that assignment should look at again, oldest first
/// (see [`assign::waiting`]).
pub async fn waiting(store: &Store, limit: i64) -> Result<Vec<TicketId>> {
    assign::waiting(
        store,
        limit,
        chrono::Utc::now() - chrono::Duration::minutes(1),
    )
    .await
}
