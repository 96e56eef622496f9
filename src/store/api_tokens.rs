//! Bearer tokens of the JSON API, and the answers remembered for creates sent with an
//! `Idempotency-Key`.
//!
//! A token is shown once, when it is made; only its sha256 is stored. Tokens are 32 random
//! bytes, so a plain hash cannot be reversed by guessing (unlike a password).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{Result, Store, StoreError, on_pool, on_writer};
use crate::domain::Role;

/// Every token starts with this, so leaked tokens are easy to recognise in logs and scanners.
pub const TOKEN_PREFIX: &str = "hd_";
/// How many characters of a token lists show.
const SHOWN_CHARS: usize = 10;

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A token as lists show it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    /// The first characters of the token.
    pub prefix: String,
    pub agent_id: i64,
    pub agent_email: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A freshly made token: the secret, to show once, and its record.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub token: String,
    pub info: TokenInfo,
}

/// Makes a token for an agent. Its role is at most the agent's own: an agent cannot hold an
/// admin token.
pub async fn create(
    store: &Store,
    agent_id: i64,
    name: &str,
    role: Role,
    now: DateTime<Utc>,
) -> Result<NewToken> {
    let name = name.trim();
    if name.is_empty() {
        return Err(StoreError::Conflict(
            "a token needs a name that says what uses it".into(),
        ));
    }
    let owner: Option<(String, bool)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT role, active FROM agents WHERE id = $1",
    )
    .bind(agent_id)
    .fetch_optional(pool)
    .await)?;
    let Some((owner_role, active)) = owner else {
        return Err(StoreError::NotFound(format!("no agent #{agent_id}")));
    };
    if !active {
        return Err(StoreError::Conflict(format!(
            "agent #{agent_id} is deactivated and cannot hold tokens"
        )));
    }
    if role == Role::Admin && owner_role != Role::Admin.as_str() {
        return Err(StoreError::Conflict(
            "an admin token needs an admin as its owner".into(),
        ));
    }
    let token = format!("{TOKEN_PREFIX}{}", super::sessions::random_token()?);
    let prefix: String = token.chars().take(SHOWN_CHARS).collect();
    let id: i64 = on_writer!(store, conn => sqlx::query_scalar(
        "INSERT INTO api_tokens (token_hash, prefix, name, agent_id, role, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(token_hash(&token))
    .bind(&prefix)
    .bind(name)
    .bind(agent_id)
    .bind(role.as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await);
    let info = find_info(store, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("token #{id} vanished")))?;
    Ok(NewToken { token, info })
}

const INFO_COLUMNS: &str = "t.id, t.name, t.prefix, t.agent_id, a.email AS agent_email, t.role,
    t.created_at, t.last_used_at, t.revoked_at
    FROM api_tokens t JOIN agents a ON a.id = t.agent_id";

async fn find_info(store: &Store, id: i64) -> Result<Option<TokenInfo>> {
    let sql = format!("SELECT {INFO_COLUMNS} WHERE t.id = $1");
    let row = on_pool!(store, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(id)
        .fetch_optional(pool)
        .await)?;
    Ok(row)
}

/// Every token, newest first, revoked ones included.
pub async fn list(store: &Store) -> Result<Vec<TokenInfo>> {
    let sql = format!("SELECT {INFO_COLUMNS} ORDER BY t.id DESC");
    let rows = on_pool!(store, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .fetch_all(pool)
        .await)?;
    Ok(rows)
}

/// Revokes a token; it stops working at once. Revoking twice is no error.
pub async fn revoke(store: &Store, id: i64, now: DateTime<Utc>) -> Result<()> {
    let updated = on_writer!(store, conn => sqlx::query(
        "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()));
    if updated == 0 {
        return Err(StoreError::NotFound(format!("no token #{id}")));
    }
    Ok(())
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub token_id: i64,
    pub agent_id: i64,
    pub name: String,
    /// The token's role, lowered to the agent's current role (an admin demoted to agent keeps
    /// only agent rights on their admin tokens).
    pub role: Role,
}

/// The owner of `token` if it is known, not revoked, and its agent is active.
pub async fn authenticate(store: &Store, token: &str) -> Result<Option<TokenOwner>> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    type Row = (i64, i64, String, String, String, Option<DateTime<Utc>>);
    let row: Option<Row> = on_pool!(store, pool => sqlx::query_as(
        "SELECT t.id, a.id, a.name, t.role, a.role, t.last_used_at
         FROM api_tokens t JOIN agents a ON a.id = t.agent_id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND a.active",
    )
    .bind(token_hash(token))
    .fetch_optional(pool)
    .await)?;
    let Some((token_id, agent_id, name, token_role, agent_role, last_used)) = row else {
        return Ok(None);
    };
    let role = if token_role == Role::Admin.as_str() && agent_role == Role::Admin.as_str() {
        Role::Admin
    } else {
        Role::Agent
    };
    // Written at most once a minute, so reads stay reads.
    let now = Utc::now();
    if last_used.is_none_or(|at| now - at > chrono::Duration::minutes(1)) {
        on_writer!(store, conn => sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(token_id)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()));
    }
    Ok(Some(TokenOwner {
        token_id,
        agent_id,
        name,
        role,
    }))
}

/// A remembered answer to a create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RememberedAnswer {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}

pub async fn remembered(
    store: &Store,
    agent_id: i64,
    key: &str,
) -> Result<Option<RememberedAnswer>> {
    let row: Option<(String, i64, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT request_hash, status, body FROM api_idempotency
         WHERE agent_id = $1 AND idempotency_key = $2",
    )
    .bind(agent_id)
    .bind(key)
    .fetch_optional(pool)
    .await)?;
    Ok(row.map(|(request_hash, status, body)| RememberedAnswer {
        request_hash,
        status: u16::try_from(status).unwrap_or(500),
        body,
    }))
}

/// Remembers the answer to a create; whether it is the one kept. A repeat keeps an answer
/// remembered before it (a concurrent request's). The request that opened the ticket
/// (`opened`) puts its own answer in place of one a racing repeat remembered first: it is the
/// first answer, the one later repeats must get.
pub async fn remember(
    store: &Store,
    agent_id: i64,
    key: &str,
    answer: &RememberedAnswer,
    opened: bool,
    now: DateTime<Utc>,
) -> Result<bool> {
    let on_conflict = if opened {
        "ON CONFLICT (agent_id, idempotency_key) DO UPDATE SET request_hash = excluded.request_hash,
             status = excluded.status, body = excluded.body, created_at = excluded.created_at"
    } else {
        "ON CONFLICT DO NOTHING"
    };
    let sql = format!(
        "INSERT INTO api_idempotency (agent_id, idempotency_key, request_hash, status, body,
                                      created_at)
         VALUES ($1, $2, $3, $4, $5, $6) {on_conflict}"
    );
    let kept = on_writer!(store, conn => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
    .bind(agent_id)
    .bind(key)
    .bind(&answer.request_hash)
    .bind(i64::from(answer.status))
    .bind(&answer.body)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()));
    Ok(kept == 1)
}
