//! Routing rules, stored as JSON conditions and actions, applied in position order.

use chrono::{DateTime, Utc};

use super::{Result, Store, StoreError, on_pool};
use crate::domain::TicketNumber;
use crate::domain::rule_check::{Directory, KnownAgent, Sample};
use crate::domain::rules::{Action, Condition, Rule, TicketFacts};

/// A rule to save; it is validated first.
#[derive(Debug, Clone)]
pub struct NewRule {
    pub name: String,
    pub enabled: bool,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    pub stop: bool,
}

/// A checked rule from a form or the API, saved as a new one (its id is given on insert).
impl From<Rule> for NewRule {
    fn from(rule: Rule) -> NewRule {
        NewRule {
            name: rule.name,
            enabled: rule.enabled,
            conditions: rule.conditions,
            actions: rule.actions,
            stop: rule.stop,
        }
    }
}

/// Appends a rule after the existing ones.
pub async fn create(store: &Store, rule: NewRule, now: DateTime<Utc>) -> Result<Rule> {
    let mut rule = Rule {
        id: 0,
        name: rule.name.trim().to_owned(),
        enabled: rule.enabled,
        conditions: rule.conditions,
        actions: rule.actions,
        stop: rule.stop,
    };
    rule.validate()
        .map_err(|error| StoreError::Conflict(error.to_string()))?;
    let conditions = serde_json::to_string(&rule.conditions)?;
    let actions = serde_json::to_string(&rule.actions)?;
    rule.id = on_pool!(store, pool => sqlx::query_scalar(
        "INSERT INTO rules (position, name, enabled, conditions, actions, stop_processing,
                            created_at, updated_at)
         VALUES ((SELECT COALESCE(MAX(position), 0) + 1 FROM rules), $1, $2, $3, $4, $5, $6, $6)
         RETURNING id",
    )
    .bind(&rule.name)
    .bind(rule.enabled)
    .bind(conditions)
    .bind(actions)
    .bind(rule.stop)
    .bind(now)
    .fetch_one(pool)
    .await)?;
    Ok(rule)
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: i64,
    name: String,
    enabled: bool,
    conditions: String,
    actions: String,
    stop_processing: bool,
}

/// All rules in the order they run.
pub async fn list(store: &Store) -> Result<Vec<Rule>> {
    let rows: Vec<RuleRow> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, name, enabled, conditions, actions, stop_processing FROM rules
         ORDER BY position, id",
    )
    .fetch_all(pool)
    .await)?;
    rows.into_iter()
        .map(|row| {
            let invalid = |error: serde_json::Error| {
                StoreError::Invalid(format!("rule {:?}: {error}", row.name))
            };
            Ok(Rule {
                id: row.id,
                conditions: serde_json::from_str(&row.conditions).map_err(invalid)?,
                actions: serde_json::from_str(&row.actions).map_err(invalid)?,
                name: row.name,
                enabled: row.enabled,
                stop: row.stop_processing,
            })
        })
        .collect()
}

/// The departments and agents rules can name, for their names and to tell which are gone.
pub async fn directory(store: &Store) -> Result<Directory> {
    let departments: Vec<(i64, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, name FROM departments ORDER BY name",
    )
    .fetch_all(pool)
    .await)?;
    let agents: Vec<(i64, String, bool)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, name, active FROM agents ORDER BY name",
    )
    .fetch_all(pool)
    .await)?;
    Ok(Directory {
        departments,
        agents: agents
            .into_iter()
            .map(|(id, name, active)| KnownAgent { id, name, active })
            .collect(),
    })
}

#[derive(sqlx::FromRow)]
struct SampleRow {
    number: TicketNumber,
    channel: String,
    subject: String,
    created_at: DateTime<Utc>,
    sender: Option<String>,
    first_text: Option<String>,
    priority: String,
    first_priority: Option<String>,
    department_id: Option<i64>,
    department_changed: bool,
    first_department: Option<i64>,
}

/// The newest `limit` tickets as they arrived, for trying rules on: what the customer sent,
/// and the department and priority before any rule or person changed them (the first change in
/// the history says what they were).
pub async fn recent_samples(store: &Store, limit: i64) -> Result<Vec<Sample>> {
    let rows: Vec<SampleRow> = on_pool!(store, pool => sqlx::query_as(
        "SELECT t.number, t.channel, t.subject, t.created_at, t.priority, t.department_id,
                (SELECT ci.address FROM customer_identities ci
                 WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1) AS sender,
                (SELECT m.body_text FROM messages m
                 WHERE m.ticket_id = t.id ORDER BY m.id LIMIT 1) AS first_text,
                (SELECT e.old_value FROM ticket_events e
                 WHERE e.ticket_id = t.id AND e.kind = 'priority'
                 ORDER BY e.id LIMIT 1) AS first_priority,
                EXISTS (SELECT 1 FROM ticket_events e
                        WHERE e.ticket_id = t.id AND e.kind = 'department') AS department_changed,
                (SELECT d.id FROM departments d WHERE d.name =
                    (SELECT e.old_value FROM ticket_events e
                     WHERE e.ticket_id = t.id AND e.kind = 'department'
                     ORDER BY e.id LIMIT 1)) AS first_department
         FROM tickets t WHERE t.merged_into_ticket_id IS NULL
         ORDER BY t.id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await)?;
    rows.into_iter()
        .map(|row| {
            Ok(Sample {
                number: row.number,
                facts: TicketFacts {
                    channel: row.channel.parse().map_err(
                        |error: helpdesk_channel::UnknownChannel| {
                            StoreError::Invalid(error.to_string())
                        },
                    )?,
                    sender_address: row.sender.unwrap_or_default(),
                    subject: row.subject,
                    text: row.first_text.unwrap_or_default(),
                    department: if row.department_changed {
                        row.first_department
                    } else {
                        row.department_id
                    },
                    priority: row.first_priority.unwrap_or(row.priority).parse()?,
                    tags: Vec::new(),
                    assignee: None,
                    received_at: row.created_at,
                },
            })
        })
        .collect()
}
