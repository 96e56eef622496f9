//! Assignment of one ticket: the admin's rules in order, then the department's strategy.
//! Why the ticket went where it went is written to its history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;

use super::{Job, JobContext, JobError};

use crate::domain::assignment::{self, Candidate};
use crate::domain::rules::{self, Action, BusinessHours, Rule, TicketFacts};
use crate::domain::{AssignmentStrategy, Status};
use crate::store::jobs::About;
use crate::store::tickets::{Actor, NewEvent, record_event};
use crate::store::{self, Result, Store, StoreError, Tx, on_tx};

/// Assign a ticket: rules first, then the department's strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignTicket {
    pub ticket_id: i64,
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
        tracing::debug!(ticket_id = self.ticket_id, ?outcome, "assignment ran");
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

#[derive(sqlx::FromRow)]
struct TicketRow {
    channel: String,
    subject: String,
    department_id: Option<i64>,
    priority: String,
    assignee_id: Option<i64>,
    status: String,
    routed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    sender: Option<String>,
    first_text: Option<String>,
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
    ticket_id: i64,
    routing: &Routing<'_>,
    now: DateTime<Utc>,
) -> Result<Assigned> {
    let rules = store::rules::list(store).await?;
    let mut tx = store.begin_write().await?;
    let assigned = assign_in(&mut tx, ticket_id, &rules, routing, now).await?;
    tx.commit().await?;
    Ok(assigned)
}

/// Assignment of one ticket inside `tx` (see [`assign_ticket`]).
pub(crate) async fn assign_in(
    tx: &mut Tx,
    ticket_id: i64,
    rules: &[Rule],
    routing: &Routing<'_>,
    now: DateTime<Utc>,
) -> Result<Assigned> {
    let lock = match tx {
        Tx::Sqlite { .. } => "",
        Tx::Postgres { .. } => "FOR UPDATE OF t",
    };
    let sql = format!(
        "SELECT t.channel, t.subject, t.department_id, t.priority, t.assignee_id, t.status,
                t.routed_at, t.created_at,
                (SELECT ci.address FROM customer_identities ci
                 WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1) AS sender,
                (SELECT m.body_text FROM messages m
                 WHERE m.ticket_id = t.id ORDER BY m.id LIMIT 1) AS first_text
         FROM tickets t WHERE t.id = $1 {lock}"
    );
    let row: Option<TicketRow> = on_tx!(tx, conn => sqlx::query_as(AssertSqlSafe(sql))
        .bind(ticket_id)
        .fetch_optional(&mut *conn)
        .await)?;
    let Some(row) = row else {
        return Ok(Assigned::Skipped);
    };
    let status: Status = row.status.parse()?;
    if row.assignee_id.is_some() || !status.is_active() {
        return Ok(Assigned::Skipped);
    }
    let mut facts = TicketFacts {
        channel: row
            .channel
            .parse()
            .map_err(|error: helpdesk_channel::UnknownChannel| {
                StoreError::Invalid(error.to_string())
            })?,
        sender_address: row.sender.unwrap_or_default(),
        subject: row.subject,
        text: row.first_text.unwrap_or_default(),
        department: row.department_id,
        priority: row.priority.parse()?,
        tags: Vec::new(),
        assignee: None,
        received_at: row.created_at,
    };
    if row.routed_at.is_none() {
        let before = facts.clone();
        let applied = rules::apply(rules, &mut facts, routing.hours);
        for rule in &applied {
            let reason = describe(&rule.actions);
            record_event(
                tx,
                &NewEvent {
                    ticket_id,
                    actor: Actor::System,
                    kind: "rule",
                    old_value: None,
                    new_value: Some(&rule.rule_name),
                    reason: Some(&reason),
                    at: now,
                },
            )
            .await?;
        }
        let by_rules = applied
            .iter()
            .map(|rule| rule.rule_name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let why = format!("rules: {by_rules}");
        if facts.department != before.department {
            let old = department_name(tx, before.department).await?;
            let new = department_name(tx, facts.department).await?;
            record_change(
                tx,
                ticket_id,
                "department",
                old.as_deref(),
                new.as_deref(),
                &why,
                now,
            )
            .await?;
        }
        if facts.priority != before.priority {
            record_change(
                tx,
                ticket_id,
                "priority",
                Some(before.priority.as_str()),
                Some(facts.priority.as_str()),
                &why,
                now,
            )
            .await?;
        }
        for tag in &facts.tags {
            on_tx!(tx, conn => sqlx::query(
                "INSERT INTO ticket_tags (ticket_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(ticket_id)
            .bind(tag)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))?;
        }
        if let Some(agent_id) = facts.assignee {
            // A rule may name someone who has been disabled since: they get nothing new.
            let (name, active): (String, bool) = on_tx!(tx, conn => sqlx::query_as(
                "SELECT name, active FROM agents WHERE id = $1",
            )
            .bind(agent_id)
            .fetch_optional(&mut *conn)
            .await)?
            .ok_or_else(|| StoreError::NotFound(format!("no agent #{agent_id}")))?;
            if active {
                give_to(tx, ticket_id, agent_id, facts.department, &why, now).await?;
            } else {
                facts.assignee = None;
                let reason =
                    format!("{why}: {name} is disabled, so the department's strategy chooses");
                record_change(tx, ticket_id, "unassigned", None, None, &reason, now).await?;
            }
        }
    }

    // A ticket no rule routed goes to the default department, so its agents get it.
    let mut no_department = "no department: no rule routed the ticket to one".to_owned();
    if let (None, Some(name)) = (facts.department, routing.default_department) {
        match department_id(tx, name).await? {
            Some(id) => {
                facts.department = Some(id);
                let why = "no rule routed the ticket: the default department \
                           (workflow.default_department)";
                record_change(tx, ticket_id, "department", None, Some(name), why, now).await?;
            }
            None => {
                no_department = format!(
                    "no department: no rule routed the ticket to one, and the default \
                     department {name:?} (workflow.default_department) does not exist"
                );
            }
        }
    }

    let outcome = match (facts.assignee, facts.department) {
        (Some(agent_id), _) => Assigned::To { agent_id },
        (None, None) => Assigned::Waiting {
            reason: no_department,
        },
        (None, Some(department)) => {
            let (strategy, last_assigned) = department_strategy(tx, department).await?;
            let candidates = candidates(tx, department).await?;
            match assignment::choose(strategy, &candidates, last_assigned) {
                Ok(choice) => {
                    give_to(
                        tx,
                        ticket_id,
                        choice.agent_id,
                        Some(department),
                        &choice.reason,
                        now,
                    )
                    .await?;
                    Assigned::To {
                        agent_id: choice.agent_id,
                    }
                }
                Err(no_one) => Assigned::Waiting {
                    reason: no_one.reason,
                },
            }
        }
    };
    if let (Assigned::Waiting { reason }, None) = (&outcome, row.routed_at) {
        record_change(tx, ticket_id, "unassigned", None, None, reason, now).await?;
    }
    let assignee = match &outcome {
        Assigned::To { agent_id } => Some(*agent_id),
        _ => None,
    };
    on_tx!(tx, conn => sqlx::query(
        "UPDATE tickets SET department_id = $1, priority = $2, routed_at = COALESCE(routed_at, $3),
                assignee_id = COALESCE($5, assignee_id)
         WHERE id = $4",
    )
    .bind(facts.department)
    .bind(facts.priority.as_str())
    .bind(now)
    .bind(ticket_id)
    .bind(assignee)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(outcome)
}

fn describe(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|action| match action {
            Action::SetDepartment { department } => format!("department → #{department}"),
            Action::SetPriority { priority } => format!("priority → {priority}"),
            Action::AddTags { tags } => format!("tags + {}", tags.join(" ")),
            Action::AssignTo { agent } => format!("assignee → agent #{agent}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

async fn record_change(
    tx: &mut Tx,
    ticket_id: i64,
    kind: &str,
    old_value: Option<&str>,
    new_value: Option<&str>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    record_event(
        tx,
        &NewEvent {
            ticket_id,
            actor: Actor::System,
            kind,
            old_value,
            new_value,
            reason: Some(reason),
            at: now,
        },
    )
    .await
}

async fn department_name(tx: &mut Tx, department: Option<i64>) -> Result<Option<String>> {
    let Some(id) = department else {
        return Ok(None);
    };
    let name = on_tx!(tx, conn => sqlx::query_scalar("SELECT name FROM departments WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await)?;
    Ok(name)
}

async fn department_id(tx: &mut Tx, name: &str) -> Result<Option<i64>> {
    let id = on_tx!(tx, conn => sqlx::query_scalar("SELECT id FROM departments WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await)?;
    Ok(id)
}

async fn department_strategy(
    tx: &mut Tx,
    department: i64,
) -> Result<(AssignmentStrategy, Option<i64>)> {
    // On PostgreSQL the department's row is locked until commit, so assignments running at
    // once take their turn here and each sees who the one before it chose.
    let lock = match tx {
        Tx::Sqlite { .. } => "",
        Tx::Postgres { .. } => "FOR UPDATE",
    };
    let sql = format!(
        "SELECT assignment_strategy, last_assigned_agent_id FROM departments WHERE id = $1 {lock}"
    );
    let (strategy, last): (String, Option<i64>) = on_tx!(tx, conn => sqlx::query_as(AssertSqlSafe(sql))
    .bind(department)
    .fetch_one(&mut *conn)
    .await)?;
    Ok((strategy.parse()?, last))
}

#[derive(sqlx::FromRow)]
struct CandidateRow {
    id: i64,
    name: String,
    active: bool,
    available: bool,
    max_open_tickets: Option<i64>,
    last_assigned_at: Option<DateTime<Utc>>,
    open_tickets: i64,
}

async fn candidates(tx: &mut Tx, department: i64) -> Result<Vec<Candidate>> {
    let rows: Vec<CandidateRow> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT a.id, a.name, a.active, a.available, a.max_open_tickets, a.last_assigned_at,
                (SELECT COUNT(*) FROM tickets t
                 WHERE t.assignee_id = a.id AND t.status IN ('new', 'open', 'pending'))
                    AS open_tickets
         FROM agents a JOIN agent_departments ad ON ad.agent_id = a.id
         WHERE ad.department_id = $1
         ORDER BY a.id",
    )
    .bind(department)
    .fetch_all(&mut *conn)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|row| Candidate {
            agent_id: row.id,
            name: row.name,
            active: row.active,
            available: row.available,
            open_tickets: row.open_tickets,
            max_open_tickets: row.max_open_tickets,
            last_assigned_at: row.last_assigned_at,
        })
        .collect())
}

async fn give_to(
    tx: &mut Tx,
    ticket_id: i64,
    agent_id: i64,
    department: Option<i64>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let name: Option<String> = on_tx!(tx, conn => sqlx::query_scalar(
        "UPDATE agents SET last_assigned_at = $1 WHERE id = $2 RETURNING name",
    )
    .bind(now)
    .bind(agent_id)
    .fetch_optional(&mut *conn)
    .await)?;
    let Some(name) = name else {
        return Err(StoreError::NotFound(format!("no agent #{agent_id}")));
    };
    // The ticket row itself is written once, at the end of assign_in: every update of it
    // costs a change-feed row.
    if let Some(department) = department {
        on_tx!(tx, conn => sqlx::query(
            "UPDATE departments SET last_assigned_agent_id = $1 WHERE id = $2",
        )
        .bind(agent_id)
        .bind(department)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    }
    record_change(tx, ticket_id, "assignee", None, Some(&name), reason, now).await?;
    crate::store::outbox::record(
        tx,
        crate::store::outbox::OutboxKind::TicketAssigned,
        ticket_id,
        None,
        now,
    )
    .await
}

/// Active tickets nobody is assigned to that assignment should look at again, oldest first:
/// those with a department (an agent may have become available), and those assignment never
/// finished for since `stale_before` (their job was lost with a crashed process).
pub async fn waiting(store: &Store, limit: i64) -> Result<Vec<i64>> {
    let stale_before = chrono::Utc::now() - chrono::Duration::minutes(1);
    let ids = store::on_pool!(store, pool => sqlx::query_scalar(
        "SELECT id FROM tickets
         WHERE assignee_id IS NULL AND status IN ('new', 'open', 'pending')
           AND (department_id IS NOT NULL OR (routed_at IS NULL AND created_at < $2))
         ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .bind(stale_before)
    .fetch_all(pool)
    .await)?;
    Ok(ids)
}
