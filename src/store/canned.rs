//! Canned responses: shared ones (no owner, kept by admins) and each agent's own. An agent
//! sees and uses the shared ones and their own.

use chrono::{DateTime, Utc};

use super::{Result, Store, StoreError, Tx, is_unique_violation, on_pool, on_tx};
use crate::domain::TicketNumber;
use crate::domain::canned::{CannedDraft, PlaceholderValues};
use crate::domain::{Priority, Status};

/// A stored canned response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedResponse {
    pub id: i64,
    pub name: String,
    pub body: String,
    /// `None` for a shared one.
    pub owner_agent_id: Option<i64>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CannedResponse {
    pub fn is_shared(&self) -> bool {
        self.owner_agent_id.is_none()
    }

    /// Whether it applies any action besides the reply.
    pub fn has_actions(&self) -> bool {
        self.status.is_some() || self.priority.is_some() || !self.tags.is_empty()
    }

    /// The tags as stored and shown: separated by spaces.
    pub fn tag_text(&self) -> String {
        self.tags.join(" ")
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    name: String,
    body: String,
    owner_agent_id: Option<i64>,
    status: Option<Status>,
    priority: Option<Priority>,
    tags: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for CannedResponse {
    fn from(row: Row) -> CannedResponse {
        CannedResponse {
            id: row.id,
            name: row.name,
            body: row.body,
            owner_agent_id: row.owner_agent_id,
            status: row.status,
            priority: row.priority,
            tags: row.tags.split_whitespace().map(str::to_owned).collect(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The columns of a [`Row`], as a literal for `concat!` (queries are `&'static str`).
macro_rules! columns {
    () => {
        "id, name, body, owner_agent_id, status, priority, tags, created_at, updated_at"
    };
}

/// The shared ones and `agent_id`'s own, shared first, each by name.
pub async fn visible_to(store: &Store, agent_id: i64) -> Result<Vec<CannedResponse>> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM canned_responses
         WHERE owner_agent_id IS NULL OR owner_agent_id = $1
         ORDER BY owner_agent_id IS NOT NULL, lower(name), id"
    );
    let rows: Vec<Row> = on_pool!(store, pool => sqlx::query_as(sql)
        .bind(agent_id)
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(CannedResponse::from).collect())
}

/// The canned response `id` if `agent_id` may see it (shared, or their own).
pub async fn visible(store: &Store, agent_id: i64, id: i64) -> Result<Option<CannedResponse>> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM canned_responses
         WHERE id = $1 AND (owner_agent_id IS NULL OR owner_agent_id = $2)"
    );
    let row: Option<Row> = on_pool!(store, pool => sqlx::query_as(sql)
        .bind(id)
        .bind(agent_id)
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(CannedResponse::from))
}

/// Which canned response a reply uses: by id (pages, API) or by name (chat).
#[derive(Debug, Clone, Copy)]
pub enum Pick<'a> {
    Id(i64),
    /// Ignoring case; the agent's own before a shared one of the same name.
    Name(&'a str),
}

/// The canned response `pick` names among those `agent_id` may use, in the caller's
/// transaction.
pub async fn pick_in(tx: &mut Tx, agent_id: i64, pick: Pick<'_>) -> Result<Option<CannedResponse>> {
    let row: Option<Row> = match pick {
        Pick::Id(id) => {
            let sql = concat!(
                "SELECT ",
                columns!(),
                " FROM canned_responses
                 WHERE id = $1 AND (owner_agent_id IS NULL OR owner_agent_id = $2)"
            );
            on_tx!(tx, conn => sqlx::query_as(sql)
                .bind(id)
                .bind(agent_id)
                .fetch_optional(&mut *conn)
                .await)?
        }
        Pick::Name(name) => {
            let sql = concat!(
                "SELECT ",
                columns!(),
                " FROM canned_responses
                 WHERE lower(name) = lower($1) AND (owner_agent_id IS NULL OR owner_agent_id = $2)
                 ORDER BY owner_agent_id IS NULL LIMIT 1"
            );
            on_tx!(tx, conn => sqlx::query_as(sql)
                .bind(name.trim())
                .bind(agent_id)
                .fetch_optional(&mut *conn)
                .await)?
        }
    };
    Ok(row.map(CannedResponse::from))
}

/// The names `agent_id` may use that contain `typed` (ignoring case), own first, at most
/// `limit`: the choices offered while typing a name in chat.
pub async fn names_like(
    store: &Store,
    agent_id: i64,
    typed: &str,
    limit: i64,
) -> Result<Vec<String>> {
    let pattern = super::contains_pattern(typed.trim());
    let names: Vec<String> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT name FROM canned_responses
         WHERE (owner_agent_id IS NULL OR owner_agent_id = $1)
           AND lower(name) LIKE $2 ESCAPE '\\'
         ORDER BY owner_agent_id IS NULL, lower(name) LIMIT $3",
    )
    .bind(agent_id)
    .bind(pattern)
    .bind(limit)
    .fetch_all(pool)
    .await)?;
    Ok(names)
}

fn taken(draft: &CannedDraft, owner: Option<i64>) -> StoreError {
    let whose = if owner.is_some() {
        "one of yours"
    } else {
        "a shared one"
    };
    StoreError::Conflict(format!(
        "{whose} is already called {:?} (names are unique ignoring case)",
        draft.name
    ))
}

/// Saves a new canned response: shared when `owner` is `None`.
pub async fn create(
    store: &Store,
    owner: Option<i64>,
    draft: &CannedDraft,
    now: DateTime<Utc>,
) -> Result<CannedResponse> {
    let sql = concat!(
        "INSERT INTO canned_responses
             (name, body, owner_agent_id, status, priority, tags, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
         RETURNING ",
        columns!(),
        ""
    );
    let mut tx = store.begin_write().await?;
    let inserted: std::result::Result<Row, sqlx::Error> = on_tx!(&mut tx, conn => sqlx::query_as(sql)
        .bind(&draft.name)
        .bind(&draft.body)
        .bind(owner)
        .bind(draft.status.map(Status::as_str))
        .bind(draft.priority.map(Priority::as_str))
        .bind(draft.tags.join(" "))
        .bind(now)
        .fetch_one(&mut *conn)
        .await);
    match inserted {
        Ok(row) => {
            tx.commit().await?;
            Ok(row.into())
        }
        Err(error) => {
            tx.rollback().await?;
            if is_unique_violation(&error) {
                Err(taken(draft, owner))
            } else {
                Err(error.into())
            }
        }
    }
}

/// Replaces the name, body and actions of canned response `id`; `None` if there is none.
pub async fn update(
    store: &Store,
    id: i64,
    draft: &CannedDraft,
    now: DateTime<Utc>,
) -> Result<Option<CannedResponse>> {
    let sql = concat!(
        "UPDATE canned_responses
         SET name = $1, body = $2, status = $3, priority = $4, tags = $5, updated_at = $6
         WHERE id = $7
         RETURNING ",
        columns!(),
        ""
    );
    let mut tx = store.begin_write().await?;
    let updated: std::result::Result<Option<Row>, sqlx::Error> = on_tx!(&mut tx, conn => sqlx::query_as(sql)
        .bind(&draft.name)
        .bind(&draft.body)
        .bind(draft.status.map(Status::as_str))
        .bind(draft.priority.map(Priority::as_str))
        .bind(draft.tags.join(" "))
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await);
    match updated {
        Ok(row) => {
            tx.commit().await?;
            Ok(row.map(CannedResponse::from))
        }
        Err(error) => {
            tx.rollback().await?;
            if is_unique_violation(&error) {
                let owner: Option<Option<i64>> = on_pool!(store, pool => sqlx::query_scalar(
                    "SELECT owner_agent_id FROM canned_responses WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(pool)
                .await)?;
                Err(taken(draft, owner.flatten()))
            } else {
                Err(error.into())
            }
        }
    }
}

/// Deletes canned response `id`; whether there was one.
pub async fn delete(store: &Store, id: i64) -> Result<bool> {
    let mut tx = store.begin_write().await?;
    let deleted = on_tx!(&mut tx, conn => sqlx::query("DELETE FROM canned_responses WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await?;
    Ok(deleted > 0)
}

#[derive(sqlx::FromRow)]
struct ValuesRow {
    customer_name: String,
    department: Option<String>,
    agent_name: Option<String>,
}

const VALUES_SQL: &str = "SELECT
        COALESCE(c.name,
                 (SELECT COALESCE(ci.display_name, ci.address) FROM customer_identities ci
                  WHERE ci.customer_id = t.customer_id ORDER BY ci.id LIMIT 1), '') AS customer_name,
        d.name AS department,
        (SELECT a.name FROM agents a WHERE a.id = $2) AS agent_name
    FROM tickets t
    JOIN customers c ON c.id = t.customer_id
    LEFT JOIN departments d ON d.id = t.department_id
    WHERE t.number = $1";

fn values_of(number: TicketNumber, row: Option<ValuesRow>) -> Result<PlaceholderValues> {
    let row = row.ok_or_else(|| StoreError::NotFound(format!("no ticket #{number}")))?;
    Ok(PlaceholderValues {
        customer_name: row.customer_name,
        ticket_number: number,
        agent_name: row.agent_name.unwrap_or_default(),
        department: row.department.unwrap_or_default(),
    })
}

/// What the placeholders become on ticket `number` when `agent_id` replies.
pub async fn placeholder_values(
    store: &Store,
    number: TicketNumber,
    agent_id: i64,
) -> Result<PlaceholderValues> {
    let row: Option<ValuesRow> = on_pool!(store, pool => sqlx::query_as(VALUES_SQL)
        .bind(number)
        .bind(agent_id)
        .fetch_optional(pool)
        .await)?;
    values_of(number, row)
}

/// [`placeholder_values`] in the caller's transaction.
pub async fn placeholder_values_in(
    tx: &mut Tx,
    number: TicketNumber,
    agent_id: i64,
) -> Result<PlaceholderValues> {
    let row: Option<ValuesRow> = on_tx!(tx, conn => sqlx::query_as(VALUES_SQL)
        .bind(number)
        .bind(agent_id)
        .fetch_optional(&mut *conn)
        .await)?;
    values_of(number, row)
}
