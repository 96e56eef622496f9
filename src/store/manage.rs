//! The writes behind what people change: ticket fields and merges (the operations that use
//! them are in [`crate::ops`]), and the workflow settings (rules, departments, agents) beyond
//! what the command line creates.

use chrono::{DateTime, Utc};

use super::tickets::{Actor, NewEvent, TicketRef, record_event};
use super::{Result, Store, StoreError, Tx, on_tx, on_writer};
use crate::domain::rules::Rule;
use crate::domain::tags::TagChange;
use crate::domain::{AssignmentStrategy, Priority, Role, Status, TicketId, TicketNumber};

/// Who changes a ticket and why, for its history.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub agent_id: i64,
    pub reason: Option<&'a str>,
    pub now: DateTime<Utc>,
}

async fn event(
    tx: &mut Tx,
    ticket_id: TicketId,
    change: &Change<'_>,
    kind: &str,
    old_value: Option<&str>,
    new_value: Option<&str>,
) -> Result<()> {
    record_event(
        tx,
        &NewEvent {
            ticket_id,
            actor: Actor::Agent(change.agent_id),
            kind,
            old_value,
            new_value,
            reason: change
                .reason
                .map(str::trim)
                .filter(|reason| !reason.is_empty()),
            at: change.now,
        },
    )
    .await
}

/// The ticket's id with its current status, priority, department and assignee.
async fn current(tx: &mut Tx, number: TicketNumber) -> Result<Current> {
    let row = on_tx!(tx, conn => sqlx::query_as(
        "SELECT id, status, priority, department_id, assignee_id FROM tickets WHERE number = $1",
    )
    .bind(number)
    .fetch_optional(&mut *conn)
    .await)?;
    row.ok_or_else(|| no_ticket(number))
}

/// A ticket's fields that people change, as [`current`] reads them.
#[derive(sqlx::FromRow)]
struct Current {
    id: TicketId,
    status: Status,
    priority: Priority,
    department_id: Option<i64>,
    assignee_id: Option<i64>,
}

async fn name_of(tx: &mut Tx, table: &str, id: Option<i64>) -> Result<Option<String>> {
    let Some(id) = id else {
        return Ok(None);
    };
    let sql = match table {
        "agents" => "SELECT name FROM agents WHERE id = $1",
        _ => "SELECT name FROM departments WHERE id = $1",
    };
    let name: Option<String> = on_tx!(tx, conn => sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await)?;
    name.map(Some)
        .ok_or_else(|| StoreError::NotFound(format!("no such {} #{id}", &table[..table.len() - 1])))
}

/// Moves the ticket along the workflow; `false` when it has that status already. The
/// setters below change one field in the caller's transaction (so a whole change request is
/// one commit, see [`crate::ops::change`]) and record it in the history.
pub async fn set_status(
    tx: &mut Tx,
    number: TicketNumber,
    to: Status,
    change: &Change<'_>,
) -> Result<bool> {
    if current(tx, number).await?.status == to {
        return Ok(false);
    }
    super::tickets::change_status(
        tx,
        number,
        to,
        Actor::Agent(change.agent_id),
        change
            .reason
            .map(str::trim)
            .filter(|reason| !reason.is_empty()),
        change.now,
    )
    .await?;
    Ok(true)
}

pub async fn set_priority(
    tx: &mut Tx,
    number: TicketNumber,
    to: Priority,
    change: &Change<'_>,
) -> Result<bool> {
    let Current { id, priority, .. } = current(tx, number).await?;
    if priority == to {
        return Ok(false);
    }
    on_tx!(tx, conn => sqlx::query("UPDATE tickets SET priority = $1, updated_at = $2 WHERE id = $3")
        .bind(to.as_str())
        .bind(change.now)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    event(
        tx,
        id,
        change,
        "priority",
        Some(priority.as_str()),
        Some(to.as_str()),
    )
    .await?;
    Ok(true)
}

pub async fn set_department(
    tx: &mut Tx,
    number: TicketNumber,
    to: Option<i64>,
    change: &Change<'_>,
) -> Result<bool> {
    let Current {
        id, department_id, ..
    } = current(tx, number).await?;
    if department_id == to {
        return Ok(false);
    }
    let old = name_of(tx, "departments", department_id).await?;
    let new = name_of(tx, "departments", to).await?;
    on_tx!(tx, conn => sqlx::query("UPDATE tickets SET department_id = $1, updated_at = $2 WHERE id = $3")
        .bind(to)
        .bind(change.now)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    event(tx, id, change, "department", old.as_deref(), new.as_deref()).await?;
    Ok(true)
}

pub async fn set_assignee(
    tx: &mut Tx,
    number: TicketNumber,
    to: Option<i64>,
    change: &Change<'_>,
) -> Result<bool> {
    let Current {
        id, assignee_id, ..
    } = current(tx, number).await?;
    if assignee_id == to {
        return Ok(false);
    }
    let old = name_of(tx, "agents", assignee_id).await?;
    let new = name_of(tx, "agents", to).await?;
    if let Some(agent_id) = to {
        let active: bool = on_tx!(tx, conn => sqlx::query_scalar(
            "SELECT active FROM agents WHERE id = $1",
        )
        .bind(agent_id)
        .fetch_one(&mut *conn)
        .await)?;
        if !active {
            return Err(StoreError::Conflict(format!(
                "{} is disabled and cannot take tickets; enable them first",
                new.as_deref().unwrap_or("the agent")
            )));
        }
    }
    on_tx!(tx, conn => sqlx::query("UPDATE tickets SET assignee_id = $1, updated_at = $2 WHERE id = $3")
        .bind(to)
        .bind(change.now)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    if let Some(agent_id) = to {
        on_tx!(tx, conn => sqlx::query("UPDATE agents SET last_assigned_at = $1 WHERE id = $2")
            .bind(change.now)
            .bind(agent_id)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))?;
    }
    event(tx, id, change, "assignee", old.as_deref(), new.as_deref()).await?;
    Ok(true)
}

/// The ticket's tags, sorted, read in the caller's transaction.
pub async fn tags_in(tx: &mut Tx, number: TicketNumber) -> Result<Vec<String>> {
    let id = current(tx, number).await?.id;
    tags_of(tx, id).await
}

async fn tags_of(tx: &mut Tx, id: TicketId) -> Result<Vec<String>> {
    let tags = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT tag FROM ticket_tags WHERE ticket_id = $1 ORDER BY tag",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await)?;
    Ok(tags)
}

/// Applies `tags` (normalized, see [`crate::domain::tags`]) to the ticket's tags; `false`
/// when they stay the same. One history event lists the tags before and after.
pub async fn set_tags(
    tx: &mut Tx,
    number: TicketNumber,
    tags: &TagChange,
    change: &Change<'_>,
) -> Result<bool> {
    let id = current(tx, number).await?.id;
    let before = tags_of(tx, id).await?;
    let after = tags.applied_to(&before);
    if before == after {
        return Ok(false);
    }
    for gone in before.iter().filter(|tag| !after.contains(tag)) {
        on_tx!(tx, conn => sqlx::query("DELETE FROM ticket_tags WHERE ticket_id = $1 AND tag = $2")
            .bind(id)
            .bind(gone)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))?;
    }
    for new in after.iter().filter(|tag| !before.contains(tag)) {
        on_tx!(tx, conn => sqlx::query(
            "INSERT INTO ticket_tags (ticket_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(new)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    }
    on_tx!(tx, conn => sqlx::query("UPDATE tickets SET updated_at = $1 WHERE id = $2")
        .bind(change.now)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    let (old, new) = (before.join(" "), after.join(" "));
    event(
        tx,
        id,
        change,
        "tags",
        Some(old.as_str()).filter(|text| !text.is_empty()),
        Some(new.as_str()).filter(|text| !text.is_empty()),
    )
    .await?;
    Ok(true)
}

/// One side of a merge: a ticket, its customer and how many messages it holds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MergeSide {
    pub number: TicketNumber,
    pub customer_id: i64,
    pub customer_name: Option<String>,
    /// The customer's address on the ticket's channel (or any, if none there).
    pub customer_address: Option<String>,
    pub messages: i64,
}

impl MergeSide {
    /// "Pia Example (pia@example.org)".
    pub fn customer(&self) -> String {
        match (&self.customer_name, &self.customer_address) {
            (Some(name), Some(address)) if name != address => format!("{name} ({address})"),
            (Some(name), _) => name.clone(),
            (None, Some(address)) => address.clone(),
            (None, None) => format!("customer #{}", self.customer_id),
        }
    }
}

/// What merging `from` into `into` would move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergePlan {
    pub from: MergeSide,
    pub into: MergeSide,
}

impl MergePlan {
    pub fn same_customer(&self) -> bool {
        self.from.customer_id == self.into.customer_id
    }

    /// "The 3 messages of Pia Example (pia@…) on #1002 move to #1001 of Max Muster (max@…)."
    pub fn sentence(&self) -> String {
        let messages = match self.from.messages {
            1 => "The one message".to_owned(),
            n => format!("The {n} messages"),
        };
        let verb = if self.from.messages == 1 {
            "moves"
        } else {
            "move"
        };
        format!(
            "{messages} of {} on #{} {verb} to #{} of {}.",
            self.from.customer(),
            self.from.number,
            self.into.number,
            self.into.customer()
        )
    }
}

const MERGE_SIDE: &str = "SELECT t.number, t.customer_id, c.name AS customer_name,
        COALESCE((SELECT ci.address FROM customer_identities ci
                  WHERE ci.customer_id = t.customer_id AND ci.channel = t.channel
                  ORDER BY ci.id LIMIT 1),
                 (SELECT ci.address FROM customer_identities ci
                  WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1))
            AS customer_address,
        (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS messages
    FROM tickets t JOIN customers c ON c.id = t.customer_id WHERE t.number = $1";

fn no_ticket(number: TicketNumber) -> StoreError {
    StoreError::NotFound(format!("no ticket #{number}"))
}

/// What merging `number` into `into` would move, for the confirmation page.
pub async fn merge_plan(
    store: &Store,
    number: TicketNumber,
    into: TicketNumber,
) -> Result<MergePlan> {
    let mut sides = Vec::with_capacity(2);
    for side in [number, into] {
        let row: Option<MergeSide> = super::on_pool!(store, pool => sqlx::query_as(MERGE_SIDE)
            .bind(side)
            .fetch_optional(pool)
            .await)?;
        sides.push(row.ok_or_else(|| no_ticket(side))?);
    }
    let into = sides.pop().ok_or_else(|| no_ticket(into))?;
    let from = sides.pop().ok_or_else(|| no_ticket(number))?;
    Ok(MergePlan { from, into })
}

/// One side of a merge, read in the merge's transaction.
pub async fn merge_side(tx: &mut Tx, number: TicketNumber) -> Result<MergeSide> {
    let row: Option<MergeSide> = on_tx!(tx, conn => sqlx::query_as(MERGE_SIDE)
        .bind(number)
        .fetch_optional(&mut *conn)
        .await)?;
    row.ok_or_else(|| no_ticket(number))
}

/// The data side of a merge, in the caller's transaction: the messages and tags of
/// `duplicate` move to `target`, `duplicate` closes with a pointer to it, and both histories
/// say so. Intake uses it too, when a mail shows that two tickets are one conversation.
pub async fn move_into(
    tx: &mut Tx,
    duplicate: &TicketRef,
    target: &TicketRef,
    actor: Actor,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, conn => sqlx::query("UPDATE messages SET ticket_id = $1 WHERE ticket_id = $2")
        .bind(target.id)
        .bind(duplicate.id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO ticket_tags (ticket_id, tag)
         SELECT $1, tag FROM ticket_tags WHERE ticket_id = $2 ON CONFLICT DO NOTHING",
    )
    .bind(target.id)
    .bind(duplicate.id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    on_tx!(tx, conn => sqlx::query(
        "UPDATE tickets SET merged_into_ticket_id = $1, updated_at = $2 WHERE id = $3",
    )
    .bind(target.id)
    .bind(now)
    .bind(duplicate.id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    on_tx!(tx, conn => sqlx::query("UPDATE tickets SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(target.id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    let why = format!("merged into #{}", target.number);
    super::tickets::change_status(tx, duplicate.number, Status::Closed, actor, Some(&why), now)
        .await?;
    let from = format!("#{}", duplicate.number);
    let to = format!("#{}", target.number);
    let reason = reason.map(str::trim).filter(|reason| !reason.is_empty());
    for (ticket_id, old_value, new_value) in [
        (duplicate.id, None, Some(to.as_str())),
        (target.id, Some(from.as_str()), None),
    ] {
        record_event(
            tx,
            &NewEvent {
                ticket_id,
                actor,
                kind: "merged",
                old_value,
                new_value,
                reason,
                at: now,
            },
        )
        .await?;
    }
    Ok(())
}

/// Replaces a rule's name, conditions, actions and switches, after validating it.
pub async fn update_rule(store: &Store, rule: &Rule, now: DateTime<Utc>) -> Result<()> {
    rule.validate()
        .map_err(|error| StoreError::Conflict(error.to_string()))?;
    let conditions = serde_json::to_string(&rule.conditions)?;
    let actions = serde_json::to_string(&rule.actions)?;
    let updated = on_writer!(store, conn => sqlx::query(
        "UPDATE rules SET name = $1, enabled = $2, conditions = $3, actions = $4,
                          stop_processing = $5, updated_at = $6
         WHERE id = $7",
    )
    .bind(rule.name.trim())
    .bind(rule.enabled)
    .bind(conditions)
    .bind(actions)
    .bind(rule.stop)
    .bind(now)
    .bind(rule.id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()));
    if updated == 0 {
        return Err(StoreError::NotFound(format!("no rule #{}", rule.id)));
    }
    Ok(())
}

pub async fn delete_rule(store: &Store, rule_id: i64) -> Result<()> {
    on_writer!(store, conn => sqlx::query("DELETE FROM rules WHERE id = $1")
        .bind(rule_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    Ok(())
}

/// Where a rule moves to in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleMove {
    Up,
    Down,
    /// To this position, counted from 1; past the end means last.
    To(usize),
}

/// Moves a rule in the order; the others keep theirs relative to each other.
pub async fn move_rule(store: &Store, rule_id: i64, to: RuleMove) -> Result<()> {
    let mut tx = store.begin_write().await?;
    let mut order: Vec<i64> = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "SELECT id FROM rules ORDER BY position, id",
    )
    .fetch_all(&mut *conn)
    .await)?;
    let Some(at) = order.iter().position(|id| *id == rule_id) else {
        return Err(StoreError::NotFound(format!("no rule #{rule_id}")));
    };
    let target = match to {
        RuleMove::Up => at.saturating_sub(1),
        RuleMove::Down => at + 1,
        RuleMove::To(position) => position.saturating_sub(1),
    }
    .min(order.len() - 1);
    let id = order.remove(at);
    order.insert(target, id);
    for (position, id) in order.iter().enumerate() {
        on_tx!(&mut tx, conn => sqlx::query("UPDATE rules SET position = $1 WHERE id = $2")
            .bind(position as i64 + 1)
            .bind(*id)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))?;
    }
    tx.commit().await
}

pub async fn set_department_strategy(
    store: &Store,
    department_id: i64,
    strategy: AssignmentStrategy,
) -> Result<()> {
    on_writer!(store, conn => sqlx::query("UPDATE departments SET assignment_strategy = $1 WHERE id = $2")
        .bind(strategy.as_str())
        .bind(department_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    Ok(())
}

/// What the agents page changes about an agent (disabling is `accounts::set_active`).
#[derive(Debug, Clone)]
pub struct AgentUpdate {
    pub agent_id: i64,
    pub role: Role,
    pub available: bool,
    pub max_open_tickets: Option<i64>,
    pub department_ids: Vec<i64>,
}

pub async fn update_agent(store: &Store, update: &AgentUpdate) -> Result<()> {
    if update.max_open_tickets.is_some_and(|limit| limit < 0) {
        return Err(StoreError::Conflict(
            "the limit of open tickets cannot be negative".into(),
        ));
    }
    let mut tx = store.begin_write().await?;
    let updated = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE agents SET role = $1, available = $2, max_open_tickets = $3 WHERE id = $4",
    )
    .bind(update.role.as_str())
    .bind(update.available)
    .bind(update.max_open_tickets)
    .bind(update.agent_id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    if updated == 0 {
        return Err(StoreError::NotFound(format!(
            "no agent #{}",
            update.agent_id
        )));
    }
    on_tx!(&mut tx, conn => sqlx::query("DELETE FROM agent_departments WHERE agent_id = $1")
        .bind(update.agent_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    for department_id in &update.department_ids {
        on_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO agent_departments (agent_id, department_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(update.agent_id)
        .bind(*department_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    }
    tx.commit().await
}
