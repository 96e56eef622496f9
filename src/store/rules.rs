//! Routing rules, stored as JSON conditions and actions, applied in position order.

use chrono::{DateTime, Utc};

use super::{Result, Store, StoreError, on_pool};
use crate::domain::rules::{Action, Condition, Rule};

/// A rule to save; it is validated first.
#[derive(Debug, Clone)]
pub struct NewRule {
    pub name: String,
    pub enabled: bool,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    pub stop: bool,
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
    let conditions = serde_json::to_string(&rule.conditions)
        .map_err(|error| StoreError::Invalid(error.to_string()))?;
    let actions = serde_json::to_string(&rule.actions)
        .map_err(|error| StoreError::Invalid(error.to_string()))?;
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
