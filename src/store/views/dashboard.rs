//! The dashboard figures: active tickets by status, priority, department and assignee, SLA
//! targets missed or due soon, and the day's arrivals and resolutions.

use chrono::{DateTime, Duration, Utc};
use sqlx::AssertSqlSafe;

use super::{ACTIVE_STATUSES, Bind, Conditions, Visibility, visibility_clause};
use crate::domain::Priority;
use crate::domain::sla::SlaTargets;
use crate::store::{Result, Store, on_pool};

/// A name and how many active tickets it has; `key` is the list filter's value for it (a status,
/// a priority, an id), empty for "(none)".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Count {
    pub name: String,
    pub key: String,
    pub count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Dashboard {
    pub open_total: i64,
    pub by_status: Vec<Count>,
    pub by_priority: Vec<Count>,
    pub by_department: Vec<Count>,
    pub by_assignee: Vec<Count>,
    pub unassigned: i64,
    pub first_response_breached: i64,
    pub first_response_due_soon: i64,
    pub resolution_breached: i64,
    pub resolution_due_soon: i64,
    pub new_today: i64,
    pub resolved_today: i64,
    /// Over tickets created in the last 30 days that were answered.
    pub median_first_response_minutes: Option<i64>,
}

/// How soon a target counts as "due soon".
pub const DUE_SOON: Duration = Duration::hours(1);

/// The dashboard figures over the tickets `visibility` allows.
pub async fn dashboard(
    store: &Store,
    visibility: Visibility,
    targets: &SlaTargets,
    now: DateTime<Utc>,
) -> Result<Dashboard> {
    let mut base = Conditions::default();
    visibility_clause(&mut base, visibility);
    let visible = if base.clauses.is_empty() {
        "TRUE".to_owned()
    } else {
        base.clauses.join(" AND ")
    };
    let grouped = |label: &str, key: &str, join: &str| {
        format!(
            "SELECT COALESCE({label}, '(none)'), COALESCE(CAST({key} AS TEXT), ''), COUNT(*)
             FROM tickets t {join}
             WHERE t.status IN {ACTIVE_STATUSES} AND {visible}
             GROUP BY {label}, {key} ORDER BY COUNT(*) DESC, 1"
        )
    };
    let mut dashboard = Dashboard {
        by_status: counts(store, &grouped("t.status", "t.status", ""), &base.binds).await?,
        by_priority: counts(store, &grouped("t.priority", "t.priority", ""), &base.binds).await?,
        by_department: counts(
            store,
            &grouped(
                "d.name",
                "d.id",
                "LEFT JOIN departments d ON d.id = t.department_id",
            ),
            &base.binds,
        )
        .await?,
        by_assignee: counts(
            store,
            &grouped(
                "a.name",
                "a.id",
                "LEFT JOIN agents a ON a.id = t.assignee_id",
            ),
            &base.binds,
        )
        .await?,
        ..Dashboard::default()
    };
    dashboard.open_total = dashboard.by_status.iter().map(|count| count.count).sum();
    dashboard.unassigned = dashboard
        .by_assignee
        .iter()
        .filter(|count| count.name == "(none)")
        .map(|count| count.count)
        .sum();

    // A target is breached when the ticket was created longer ago than its priority allows.
    let overdue =
        |conditions: &mut Conditions, minutes: &dyn Fn(Priority) -> i64, at: DateTime<Utc>| {
            let parts: Vec<String> = Priority::ALL
                .iter()
                .map(|priority| {
                    let name = conditions.placeholder(Bind::Text(priority.as_str().to_owned()));
                    let limit = conditions
                        .placeholder(Bind::Time(at - Duration::minutes(minutes(*priority))));
                    format!("(t.priority = {name} AND t.created_at < {limit})")
                })
                .collect();
            format!("({})", parts.join(" OR "))
        };
    let first_minutes = |priority| targets.first_response.get(priority).num_minutes();
    let resolution_minutes = |priority| targets.resolution.get(priority).num_minutes();
    for (first, soon) in [(true, false), (true, true), (false, false), (false, true)] {
        let mut conditions = Conditions {
            clauses: base.clauses.clone(),
            binds: clone_binds(&base.binds),
        };
        let at = if soon { now + DUE_SOON } else { now };
        let minutes: &dyn Fn(Priority) -> i64 = if first {
            &first_minutes
        } else {
            &resolution_minutes
        };
        let due = overdue(&mut conditions, minutes, at);
        conditions.push(format!("t.status IN {ACTIVE_STATUSES}"));
        if first {
            conditions.push("t.first_response_at IS NULL".into());
        }
        if soon {
            let breached_already = overdue(&mut conditions, minutes, now);
            conditions.push(format!("NOT {breached_already}"));
        }
        conditions.push(due);
        let count = count(
            store,
            &format!("SELECT COUNT(*) FROM tickets t {}", conditions.sql()),
            &conditions.binds,
        )
        .await?;
        match (first, soon) {
            (true, false) => dashboard.first_response_breached = count,
            (true, true) => dashboard.first_response_due_soon = count,
            (false, false) => dashboard.resolution_breached = count,
            (false, true) => dashboard.resolution_due_soon = count,
        }
    }

    let midnight = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|time| time.and_utc())
        .unwrap_or(now);
    for resolved in [false, true] {
        let mut conditions = Conditions {
            clauses: base.clauses.clone(),
            binds: clone_binds(&base.binds),
        };
        let since = conditions.placeholder(Bind::Time(midnight));
        let column = if resolved {
            "resolved_at"
        } else {
            "created_at"
        };
        conditions.push(format!("t.{column} >= {since}"));
        let count = count(
            store,
            &format!("SELECT COUNT(*) FROM tickets t {}", conditions.sql()),
            &conditions.binds,
        )
        .await?;
        if resolved {
            dashboard.resolved_today = count;
        } else {
            dashboard.new_today = count;
        }
    }

    let mut conditions = Conditions {
        clauses: base.clauses.clone(),
        binds: clone_binds(&base.binds),
    };
    let since = conditions.placeholder(Bind::Time(now - Duration::days(30)));
    conditions.push(format!("t.created_at >= {since}"));
    conditions.push("t.first_response_at IS NOT NULL".into());
    let sql = format!(
        "SELECT t.created_at, t.first_response_at FROM tickets t {} LIMIT 200000",
        conditions.sql()
    );
    let pairs: Vec<(DateTime<Utc>, DateTime<Utc>)> = on_pool!(store, pool => {
        bind_all!(sqlx::query_as(AssertSqlSafe(sql.clone())), &conditions.binds)
            .fetch_all(pool)
            .await
    })?;
    let mut minutes: Vec<i64> = pairs
        .iter()
        .map(|(created, answered)| (*answered - *created).num_minutes().max(0))
        .collect();
    minutes.sort_unstable();
    dashboard.median_first_response_minutes = minutes.get(minutes.len() / 2).copied();
    Ok(dashboard)
}

fn clone_binds(binds: &[Bind]) -> Vec<Bind> {
    binds.to_vec()
}

async fn counts(store: &Store, sql: &str, binds: &[Bind]) -> Result<Vec<Count>> {
    let rows: Vec<(String, String, i64)> = on_pool!(store, pool => {
        bind_all!(sqlx::query_as(AssertSqlSafe(sql.to_owned())), binds)
            .fetch_all(pool)
            .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(name, key, count)| Count { name, key, count })
        .collect())
}

async fn count(store: &Store, sql: &str, binds: &[Bind]) -> Result<i64> {
    let count = on_pool!(store, pool => {
        bind_all!(sqlx::query_scalar(AssertSqlSafe(sql.to_owned())), binds)
            .fetch_one(pool)
            .await
    })?;
    Ok(count)
}
