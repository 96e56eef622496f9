//! What the web pages read: the ticket list with filters, search and keyset pagination, one
//! ticket's facts for access checks and forms, and the dashboard figures. The query builder
//! ([`Conditions`]) and the visibility rule are shared by the list and the dashboard.

use chrono::{DateTime, Utc};

/// Statuses people still work on.
pub const ACTIVE_STATUSES: &str = "('new', 'open', 'pending')";

/// Whose tickets a query may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Admins: every ticket.
    All,
    /// An agent: tickets of their departments and those assigned to them.
    Agent(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeFilter {
    Anyone,
    Unassigned,
    Agent(i64),
}

#[derive(Clone)]
pub(super) enum Bind {
    Int(i64),
    Text(String),
    Time(DateTime<Utc>),
    Float(f64),
}

/// Collects a WHERE clause and its values, numbering placeholders as it goes.
#[derive(Default, Clone)]
pub(super) struct Conditions {
    pub(super) clauses: Vec<String>,
    pub(super) binds: Vec<Bind>,
}

impl Conditions {
    pub(super) fn placeholder(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    pub(super) fn push(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    pub(super) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                Bind::Int(value) => query.bind(*value),
                Bind::Text(value) => query.bind(value.clone()),
                Bind::Time(value) => query.bind(*value),
                Bind::Float(value) => query.bind(*value),
            };
        }
        query
    }};
}

pub(super) fn visibility_clause(conditions: &mut Conditions, visibility: Visibility) {
    if let Visibility::Agent(agent_id) = visibility {
        let me = conditions.placeholder(Bind::Int(agent_id));
        conditions.push(visible_to_agent("t", &me));
    }
}

/// Whether the ticket `ticket` (a table alias) is one the agent whose id is bound at
/// `agent` may see: theirs, or in one of their departments. The one rule for tickets and,
/// through their tickets, customers.
pub(crate) fn visible_to_agent(ticket: &str, agent: &str) -> String {
    format!(
        "({ticket}.assignee_id = {agent} OR {ticket}.department_id IN
            (SELECT department_id FROM agent_departments WHERE agent_id = {agent}))"
    )
}

mod changes;
mod dashboard;
mod list;
mod ordered;
mod reads;
pub mod report;
mod search;
mod sla;
mod ticket;

pub use changes::{
    Horizon, TicketChange, changes_after, changes_with_horizon, forget_changes_before,
    last_change_id, notify,
};
pub use dashboard::{Count, DUE_SOON, Dashboard, dashboard};
pub use list::{
    COUNT_LIMIT, Cursor, ListQuery, Sort, TagCount, TicketPage, Total, list_tickets, tag_counts,
};
pub use reads::{is_unread, mark_seen, unread_count};
pub use sla::{SlaFilter, SlaState};
pub use ticket::{
    Download, TicketFacts, agent_department_ids, agent_may_see, attachment, tags, ticket_facts,
    visible_in,
};
