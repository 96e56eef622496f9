//! Departments' business calendars (weekly hours in a zone, holidays) and SLA policies.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::{Result, Store, StoreError, Tx, on_pool, on_tx, on_writer};
use crate::domain::Priority;
use crate::domain::calendar::{Calendar, WeeklyHours};
use crate::domain::ics::Holiday;
use crate::domain::sla::{PolicyOverrides, Target};
use crate::domain::zone::parse_zone;

/// A department's calendar as stored: its zone's name, its hours and its holidays by date.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCalendar {
    pub time_zone: String,
    pub hours: WeeklyHours,
    pub holidays: Vec<Holiday>,
}

impl StoredCalendar {
    /// The calendar the arithmetic counts in.
    pub fn calendar(&self) -> Result<Calendar> {
        Ok(Calendar {
            zone: parse_zone(&self.time_zone).map_err(|e| StoreError::Invalid(e.to_string()))?,
            hours: self.hours.clone(),
            holidays: self.holidays.iter().map(|h| h.date).collect(),
        })
    }
}

fn hours_of(json: &str) -> Result<WeeklyHours> {
    let map: BTreeMap<String, Vec<String>> = serde_json::from_str(json)?;
    WeeklyHours::from_map(&map).map_err(|e| StoreError::Invalid(e.to_string()))
}

async fn department_exists(store: &Store, department_id: i64) -> Result<()> {
    let found: Option<i64> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT id FROM departments WHERE id = $1",
    )
    .bind(department_id)
    .fetch_optional(pool)
    .await)?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::NotFound(format!("there is no department {department_id}")))
}

/// The calendar of a department, inside `tx`; `None` when it counts around the clock.
pub async fn calendar_in(tx: &mut Tx, department_id: i64) -> Result<Option<StoredCalendar>> {
    let row: Option<(String, String)> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT time_zone, hours FROM department_calendars WHERE department_id = $1",
    )
    .bind(department_id)
    .fetch_optional(&mut *conn)
    .await)?;
    let Some((time_zone, hours)) = row else {
        return Ok(None);
    };
    let holidays: Vec<(NaiveDate, String)> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT day, name FROM department_holidays WHERE department_id = $1 ORDER BY day",
    )
    .bind(department_id)
    .fetch_all(&mut *conn)
    .await)?;
    Ok(Some(StoredCalendar {
        time_zone,
        hours: hours_of(&hours)?,
        holidays: holidays
            .into_iter()
            .map(|(date, name)| Holiday { date, name })
            .collect(),
    }))
}

/// The calendar of a department; `None` when it counts around the clock.
pub async fn calendar(store: &Store, department_id: i64) -> Result<Option<StoredCalendar>> {
    let row: Option<(String, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT time_zone, hours FROM department_calendars WHERE department_id = $1",
    )
    .bind(department_id)
    .fetch_optional(pool)
    .await)?;
    let Some((time_zone, hours)) = row else {
        return Ok(None);
    };
    let holidays: Vec<(NaiveDate, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT day, name FROM department_holidays WHERE department_id = $1 ORDER BY day",
    )
    .bind(department_id)
    .fetch_all(pool)
    .await)?;
    Ok(Some(StoredCalendar {
        time_zone,
        hours: hours_of(&hours)?,
        holidays: holidays
            .into_iter()
            .map(|(date, name)| Holiday { date, name })
            .collect(),
    }))
}

/// Every department's calendar by department (the reports measure times in them).
pub async fn all_calendars(store: &Store) -> Result<BTreeMap<i64, StoredCalendar>> {
    let rows: Vec<(i64, String, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT department_id, time_zone, hours FROM department_calendars",
    )
    .fetch_all(pool)
    .await)?;
    let mut calendars = BTreeMap::new();
    for (department_id, time_zone, hours) in rows {
        let stored = StoredCalendar {
            time_zone,
            hours: hours_of(&hours)?,
            holidays: Vec::new(),
        };
        calendars.insert(department_id, stored);
    }
    let holidays: Vec<(i64, NaiveDate, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT department_id, day, name FROM department_holidays ORDER BY department_id, day",
    )
    .fetch_all(pool)
    .await)?;
    for (department_id, date, name) in holidays {
        if let Some(stored) = calendars.get_mut(&department_id) {
            stored.holidays.push(Holiday { date, name });
        }
    }
    Ok(calendars)
}

/// Sets a department's zone and weekly hours, and with `holidays` replaces its holidays
/// (`None` keeps them).
pub async fn set_calendar(
    store: &Store,
    department_id: i64,
    time_zone: &str,
    hours: &WeeklyHours,
    holidays: Option<&[Holiday]>,
    now: DateTime<Utc>,
) -> Result<()> {
    let zone = parse_zone(time_zone).map_err(|e| StoreError::Conflict(e.to_string()))?;
    let hours = serde_json::to_string(&hours.to_map())?;
    department_exists(store, department_id).await?;
    let mut tx = store.begin_write().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO department_calendars (department_id, time_zone, hours, updated_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (department_id) DO UPDATE
         SET time_zone = excluded.time_zone, hours = excluded.hours,
             updated_at = excluded.updated_at",
    )
    .bind(department_id)
    .bind(zone.name())
    .bind(hours)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    if let Some(holidays) = holidays {
        on_tx!(&mut tx, conn => sqlx::query(
            "DELETE FROM department_holidays WHERE department_id = $1",
        )
        .bind(department_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
        put_holidays(&mut tx, department_id, holidays).await?;
    }
    tx.commit().await
}

/// Writes `holidays` (renaming those on dates already there); how many were new.
async fn put_holidays(tx: &mut Tx, department_id: i64, holidays: &[Holiday]) -> Result<u64> {
    let mut added = 0;
    for holiday in holidays {
        let name = holiday.name.trim();
        let existed: Option<i64> = on_tx!(tx, conn => sqlx::query_scalar(
            "SELECT id FROM department_holidays WHERE department_id = $1 AND day = $2",
        )
        .bind(department_id)
        .bind(holiday.date)
        .fetch_optional(&mut *conn)
        .await)?;
        on_tx!(tx, conn => sqlx::query(
            "INSERT INTO department_holidays (department_id, day, name) VALUES ($1, $2, $3)
             ON CONFLICT (department_id, day) DO UPDATE SET name = excluded.name",
        )
        .bind(department_id)
        .bind(holiday.date)
        .bind(if name.is_empty() { "Holiday" } else { name })
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
        added += u64::from(existed.is_none());
    }
    Ok(added)
}

/// Removes a department's calendar and holidays: its targets count around the clock again.
pub async fn delete_calendar(store: &Store, department_id: i64) -> Result<()> {
    let mut tx = store.begin_write().await?;
    for sql in [
        "DELETE FROM department_holidays WHERE department_id = $1",
        "DELETE FROM department_calendars WHERE department_id = $1",
    ] {
        on_tx!(&mut tx, conn => sqlx::query(sql)
            .bind(department_id)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))?;
    }
    tx.commit().await
}

/// Adds holidays to a department's calendar, renaming those on dates it has already; how
/// many were new. The department needs a calendar first.
pub async fn add_holidays(store: &Store, department_id: i64, holidays: &[Holiday]) -> Result<u64> {
    let mut tx = store.begin_write().await?;
    let has_calendar: Option<i64> = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "SELECT department_id FROM department_calendars WHERE department_id = $1",
    )
    .bind(department_id)
    .fetch_optional(&mut *conn)
    .await)?;
    if has_calendar.is_none() {
        tx.rollback().await?;
        return Err(StoreError::Conflict(
            "set the department's business hours first: holidays belong to a calendar".into(),
        ));
    }
    let added = put_holidays(&mut tx, department_id, holidays).await?;
    tx.commit().await?;
    Ok(added)
}

/// Removes one holiday; whether there was one.
pub async fn delete_holiday(store: &Store, department_id: i64, date: NaiveDate) -> Result<bool> {
    let done = on_writer!(store, conn => sqlx::query(
        "DELETE FROM department_holidays WHERE department_id = $1 AND day = $2",
    )
    .bind(department_id)
    .bind(date)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()));
    Ok(done > 0)
}

/// A department's own targets, inside `tx`.
pub async fn policy_in(tx: &mut Tx, department_id: i64) -> Result<PolicyOverrides> {
    let rows: Vec<(String, String, i64)> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT target, priority, minutes FROM department_sla_policies WHERE department_id = $1",
    )
    .bind(department_id)
    .fetch_all(&mut *conn)
    .await)?;
    rows.into_iter()
        .map(
            |(target, priority, minutes)| -> Result<((Target, Priority), i64)> {
                Ok(((target.parse()?, priority.parse()?), minutes))
            },
        )
        .collect()
}

/// A department's own targets.
pub async fn policy(store: &Store, department_id: i64) -> Result<PolicyOverrides> {
    let found: Vec<(String, String, i64)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT target, priority, minutes FROM department_sla_policies WHERE department_id = $1",
    )
    .bind(department_id)
    .fetch_all(pool)
    .await)?;
    found
        .into_iter()
        .map(
            |(target, priority, minutes)| -> Result<((Target, Priority), i64)> {
                Ok(((target.parse()?, priority.parse()?), minutes))
            },
        )
        .collect()
}

/// Replaces a department's own targets with `overrides` (empty: the [sla] defaults for all).
pub async fn set_policy(
    store: &Store,
    department_id: i64,
    overrides: &PolicyOverrides,
) -> Result<()> {
    if let Some(((target, priority), minutes)) = overrides.iter().find(|(_, m)| **m <= 0) {
        return Err(StoreError::Conflict(format!(
            "{} at {priority}: {minutes} minutes; a target needs at least 1",
            target.label()
        )));
    }
    department_exists(store, department_id).await?;
    let mut tx = store.begin_write().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "DELETE FROM department_sla_policies WHERE department_id = $1",
    )
    .bind(department_id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    for ((target, priority), minutes) in overrides {
        on_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO department_sla_policies (department_id, target, priority, minutes)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(department_id)
        .bind(target.as_str())
        .bind(priority.as_str())
        .bind(minutes)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    }
    tx.commit().await
}
