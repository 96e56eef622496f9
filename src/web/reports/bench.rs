//! `helpdesk bench reports`: latency of the reports on a large database. The tickets are those
//! of `bench web`; their history is added in SQL: first responses, resolutions (some reopened),
//! one SLA target per ticket and a survey per resolved ticket, two of three rated. Billing counts
//! its times in business hours (Monday to Friday 09:00-17:00, Berlin), the other departments
//! around the clock.

use std::time::Instant;

use chrono::Utc;

use crate::domain::calendar::WeeklyHours;
use crate::store::{self, Backend, Store, on_pool, on_writer};
use crate::web::bench::{BenchDatabase, PageLatency, WebBenchError};

#[derive(Debug, Clone)]
pub struct ReportBench {
    pub tickets: i64,
    /// A postgres:// server URL (a scratch database is made) or a SQLite URL; default: a
    /// temporary SQLite file.
    pub database_url: Option<String>,
    pub seconds: u64,
    pub concurrency: usize,
    /// Use the database as it is (filling what it lacks) and keep it.
    pub reuse: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportBenchReport {
    pub backend: String,
    pub tickets: i64,
    pub fill_seconds: f64,
    pub concurrency: usize,
    pub pages: Vec<PageLatency>,
}

const CHUNK: i64 = 50_000;

/// The history statements for ids $1..=$2, per backend.
fn history_statements(backend: Backend) -> Vec<&'static str> {
    match backend {
        Backend::Sqlite => vec![
            "UPDATE tickets SET first_response_at = strftime('%Y-%m-%dT%H:%M:%S+00:00',
                 unixepoch(created_at) + 60 + (id % 480) * 60, 'unixepoch')
             WHERE id BETWEEN $1 AND $2 AND id % 4 <> 0",
            "INSERT INTO ticket_events (ticket_id, at, kind, old_value, new_value, reason)
             SELECT id, strftime('%Y-%m-%dT%H:%M:%S+00:00',
                        unixepoch(created_at) + 3600 + (id % 4000) * 60, 'unixepoch'),
                    'status', 'open', 'resolved', 'bench'
             FROM tickets WHERE id BETWEEN $1 AND $2 AND status IN ('resolved', 'closed')",
            "INSERT INTO ticket_events (ticket_id, at, kind, old_value, new_value, reason)
             SELECT id, strftime('%Y-%m-%dT%H:%M:%S+00:00',
                        unixepoch(created_at) + 3600 + (id % 4000) * 60 + 172800, 'unixepoch'),
                    'status', 'resolved', 'closed', 'bench'
             FROM tickets WHERE id BETWEEN $1 AND $2 AND status = 'closed'",
            "INSERT INTO ticket_events (ticket_id, at, kind, old_value, new_value, reason)
             SELECT id, strftime('%Y-%m-%dT%H:%M:%S+00:00', unixepoch(created_at) + 7200, 'unixepoch'),
                    'status', 'open', 'resolved', 'bench'
             FROM tickets WHERE id BETWEEN $1 AND $2 AND status = 'open' AND id % 20 = 1",
            "INSERT INTO ticket_events (ticket_id, at, kind, old_value, new_value, reason)
             SELECT id, strftime('%Y-%m-%dT%H:%M:%S+00:00', unixepoch(created_at) + 18000, 'unixepoch'),
                    'status', 'resolved', 'open', 'bench'
             FROM tickets WHERE id BETWEEN $1 AND $2 AND status = 'open' AND id % 20 = 1",
            "INSERT INTO sla_targets (ticket_id, target, started_at, due_at, met_at, breached_at)
             SELECT id, 'first_response', created_at,
                    strftime('%Y-%m-%dT%H:%M:%S+00:00', unixepoch(created_at) + 28800, 'unixepoch'),
                    CASE WHEN id % 7 <> 0 THEN first_response_at END,
                    CASE WHEN id % 7 = 0 THEN strftime('%Y-%m-%dT%H:%M:%S+00:00',
                        unixepoch(created_at) + 28800, 'unixepoch') END
             FROM tickets WHERE id BETWEEN $1 AND $2
               AND (first_response_at IS NOT NULL OR id % 7 = 0)",
            "INSERT INTO satisfaction_surveys (ticket_id, channel, agent_id, department_id,
                                               sent_at, expires_at, rating, rated_at)
             SELECT t.id, t.channel, t.assignee_id, t.department_id, e.at,
                    strftime('%Y-%m-%dT%H:%M:%S+00:00', unixepoch(e.at) + 1209600, 'unixepoch'),
                    CASE WHEN t.id % 3 <> 0 THEN 1 + t.id % 5 END,
                    CASE WHEN t.id % 3 <> 0 THEN strftime('%Y-%m-%dT%H:%M:%S+00:00',
                        unixepoch(e.at) + 3600, 'unixepoch') END
             FROM tickets t JOIN ticket_events e
               ON e.ticket_id = t.id AND e.kind = 'status' AND e.new_value = 'resolved'
             WHERE t.id BETWEEN $1 AND $2 AND t.status IN ('resolved', 'closed')",
        ],
        Backend::Postgres => vec![
            "UPDATE tickets SET first_response_at = created_at + make_interval(secs => 60 + (id % 480) * 60)
             WHERE id BETWEEN $1 AND $2 AND id % 4 <> 0",
            "INSERT INTO ticket_events (ticket_id, at, kind, old_value, new_value, reason)
             SELECT id, created_at + make_interval(secs => 3600 + (id % 4000) * 60),
                    'status', 'open', 'resolved', 'bench'
             FROM tickets WHERE id BETWEEN $1 AND $2 AND status IN ('resolved', 'closed')",
            "INSERT INTO ticket_events (ticket_id, at, kind, old_value, new_value, reason)
             SELECT id, created_at + make_interval(secs => 3600 + (id % 4000) * 60 + 172800),
                    'status', 'resolved', 'closed', 'bench'
             FROM tickets WHERE id BETWEEN $1 AND $2 AND status = 'closed'",
            "INSERT INTO ticket_events (ticket_id, at, kind, old_value, new_value, reason)
             SELECT id, created_at + interval '2 hours', 'status', 'open', 'resolved', 'bench'
             FROM tickets WHERE id BETWEEN $1 AND $2 AND status = 'open' AND id % 20 = 1",
            "INSERT INTO ticket_events (ticket_id, at, kind, old_value, new_value, reason)
             SELECT id, created_at + interval '5 hours', 'status', 'resolved', 'open', 'bench'
             FROM tickets WHERE id BETWEEN $1 AND $2 AND status = 'open' AND id % 20 = 1",
            "INSERT INTO sla_targets (ticket_id, target, started_at, due_at, met_at, breached_at)
             SELECT id, 'first_response', created_at, created_at + interval '8 hours',
                    CASE WHEN id % 7 <> 0 THEN first_response_at END,
                    CASE WHEN id % 7 = 0 THEN created_at + interval '8 hours' END
             FROM tickets WHERE id BETWEEN $1 AND $2
               AND (first_response_at IS NOT NULL OR id % 7 = 0)",
            "INSERT INTO satisfaction_surveys (ticket_id, channel, agent_id, department_id,
                                               sent_at, expires_at, rating, rated_at)
             SELECT t.id, t.channel, t.assignee_id, t.department_id, e.at,
                    e.at + interval '14 days',
                    CASE WHEN t.id % 3 <> 0 THEN 1 + t.id % 5 END,
                    CASE WHEN t.id % 3 <> 0 THEN e.at + interval '1 hour' END
             FROM tickets t JOIN ticket_events e
               ON e.ticket_id = t.id AND e.kind = 'status' AND e.new_value = 'resolved'
             WHERE t.id BETWEEN $1 AND $2 AND t.status IN ('resolved', 'closed')",
        ],
    }
}

/// Adds the history the reports read to the tickets `bench web` filled.
pub async fn fill_history(store: &Store, tickets: i64) -> Result<(), WebBenchError> {
    for statement in history_statements(store.backend()) {
        let mut from = 1;
        while from <= tickets {
            let to = (from + CHUNK - 1).min(tickets);
            on_writer!(store, conn => sqlx::query(statement)
                .bind(from)
                .bind(to)
                .execute(&mut *conn)
                .await
                .map(|done| done.rows_affected()));
            from = to + 1;
        }
    }
    match store {
        Store::Sqlite { writer, .. } => {
            sqlx::query("ANALYZE").execute(writer).await?;
        }
        Store::Postgres { pool } => {
            sqlx::query("VACUUM ANALYZE").execute(pool).await?;
        }
    }
    Ok(())
}

/// Fills (or reuses) a database, serves it on loopback and measures the report pages.
pub async fn run(bench: &ReportBench) -> Result<ReportBenchReport, WebBenchError> {
    let database = BenchDatabase::open(
        bench.database_url.as_deref(),
        bench.reuse,
        "reports",
        bench.tickets,
        (bench.concurrency as u32 + 2).max(8),
    )
    .await?;
    let store = &database.store;
    let filling = Instant::now();
    let targets: i64 = on_pool!(store, pool => sqlx::query_scalar("SELECT COUNT(*) FROM sla_targets")
        .fetch_one(pool)
        .await)?;
    if targets == 0 {
        fill_history(store, bench.tickets).await?;
    }
    let fill_seconds = database.fill_seconds + filling.elapsed().as_secs_f64();
    if let Some(billing) = store::agents::department_by_name(store, "Billing").await? {
        let hours = WeeklyHours::parse_text(
            "mon 09:00-17:00\ntue 09:00-17:00\nwed 09:00-17:00\nthu 09:00-17:00\nfri 09:00-17:00",
        )
        .map_err(|error| WebBenchError::Failed(error.to_string()))?;
        store::calendars::set_calendar(
            store,
            billing.id,
            "Europe/Berlin",
            &hours,
            None,
            Utc::now(),
        )
        .await?;
    }

    let kinds: Vec<(&str, Vec<String>)> = vec![
        (
            "report, last 30 days by day",
            vec!["/reports?period=last_30_days&group_by=day".to_owned()],
        ),
        (
            "report, last 30 days by department, agent and channel",
            vec![
                "/reports?period=last_30_days&group_by=department".to_owned(),
                "/reports?period=last_30_days&group_by=agent".to_owned(),
                "/reports?period=last_30_days&group_by=channel".to_owned(),
            ],
        ),
        (
            "report CSV, last month by week",
            vec!["/reports.csv?period=last_month&group_by=week".to_owned()],
        ),
        (
            "report, this year by month",
            vec!["/reports?period=this_year&group_by=month".to_owned()],
        ),
    ];
    let pages = database
        .measure_pages(kinds, bench.concurrency, bench.seconds)
        .await?;
    let backend = database.close().await?;
    Ok(ReportBenchReport {
        backend: backend.to_owned(),
        tickets: bench.tickets,
        fill_seconds,
        concurrency: bench.concurrency,
        pages,
    })
}
