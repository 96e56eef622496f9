//! Web sign-in sessions and the record of failed sign-ins.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::{Result, Store, Tx, on_pool, on_tx, on_writer};
use crate::domain::Role;

/// A random value for cookies and CSRF tokens: 32 bytes from the operating system, as hex.
pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|error| super::StoreError::Invalid(format!("no random numbers: {error}")))?;
    Ok(hex::encode(bytes))
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The signed-in person behind a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAgent {
    pub agent_id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// Who may sign in with an email address: the agent's id, role and password hash.
pub async fn credentials(store: &Store, email: &str) -> Result<Option<(i64, Option<String>)>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, password_hash FROM agents WHERE email = $1 AND active",
    )
    .bind(email.trim().to_lowercase())
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// Opens a session for an agent; returns the token for the cookie.
pub async fn create(
    store: &Store,
    agent_id: i64,
    lifetime: Duration,
    now: DateTime<Utc>,
) -> Result<String> {
    let token = random_token()?;
    let csrf = random_token()?;
    let done = on_writer!(store, conn => sqlx::query(
        "INSERT INTO web_sessions (token_hash, agent_id, csrf_token, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash(&token))
    .bind(agent_id)
    .bind(csrf)
    .bind(now)
    .bind(now + lifetime)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()));
    debug_assert_eq!(done, 1);
    Ok(token)
}

/// The agent signed in with `token`, if the session is live and the agent still active.
pub async fn find(store: &Store, token: &str, now: DateTime<Utc>) -> Result<Option<SessionAgent>> {
    type Row = (i64, String, String, String, String, DateTime<Utc>);
    let row: Option<Row> = on_pool!(store, pool => sqlx::query_as(
        "SELECT a.id, a.email, a.name, a.role, s.csrf_token, s.expires_at
         FROM web_sessions s JOIN agents a ON a.id = s.agent_id
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND a.active",
    )
    .bind(token_hash(token))
    .bind(now)
    .fetch_optional(pool)
    .await)?;
    row.map(|(agent_id, email, name, role, csrf_token, expires_at)| {
        Ok(SessionAgent {
            agent_id,
            email,
            name,
            role: role.parse()?,
            csrf_token,
            expires_at,
        })
    })
    .transpose()
}

/// Moves a session's expiry on (sliding expiry for people who keep working).
pub async fn extend(store: &Store, token: &str, expires_at: DateTime<Utc>) -> Result<()> {
    on_writer!(store, conn => sqlx::query("UPDATE web_sessions SET expires_at = $1 WHERE token_hash = $2")
        .bind(expires_at)
        .bind(token_hash(token))
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    Ok(())
}

/// Ends a session (sign-out), and any expired ones on the way.
pub async fn delete(store: &Store, token: &str, now: DateTime<Utc>) -> Result<()> {
    on_writer!(store, conn => sqlx::query(
        "DELETE FROM web_sessions WHERE token_hash = $1 OR expires_at < $2",
    )
    .bind(token_hash(token))
    .bind(now)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()));
    Ok(())
}

/// Ends an agent's web sessions inside `tx`: all of them, or all but the one signed in with
/// `keep` (a person who changed their own password stays signed in where they did it).
pub async fn end_for_agent(tx: &mut Tx, agent_id: i64, keep: Option<&str>) -> Result<u64> {
    let ended = on_tx!(tx, conn => sqlx::query(
        "DELETE FROM web_sessions
         WHERE agent_id = $1 AND (CAST($2 AS TEXT) IS NULL OR token_hash <> $2)",
    )
    .bind(agent_id)
    .bind(keep.map(token_hash))
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(ended)
}

/// Failed sign-ins counted against one address or one client IP within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub count: i64,
    /// The oldest counted one: the limit lifts when it leaves the window.
    pub oldest: Option<DateTime<Utc>>,
}

/// Failed sign-ins for `email` since `since`.
pub async fn recent_failures(store: &Store, email: &str, since: DateTime<Utc>) -> Result<Failures> {
    let (count, oldest) = on_pool!(store, pool => sqlx::query_as(
        "SELECT COUNT(*), MIN(at) FROM login_failures WHERE email = $1 AND at > $2",
    )
    .bind(email.trim().to_lowercase())
    .bind(since)
    .fetch_one(pool)
    .await)?;
    Ok(Failures { count, oldest })
}

/// Failed sign-ins from client `ip` since `since`, whatever addresses they tried.
pub async fn recent_failures_from(
    store: &Store,
    ip: &str,
    since: DateTime<Utc>,
) -> Result<Failures> {
    let (count, oldest) = on_pool!(store, pool => sqlx::query_as(
        "SELECT COUNT(*), MIN(at) FROM login_failures WHERE ip = $1 AND at > $2",
    )
    .bind(ip)
    .bind(since)
    .fetch_one(pool)
    .await)?;
    Ok(Failures { count, oldest })
}

/// Records a failed sign-in for an address from a client IP; forgets those older than
/// `keep_since`.
pub async fn record_failure(
    store: &Store,
    email: &str,
    ip: &str,
    now: DateTime<Utc>,
    keep_since: DateTime<Utc>,
) -> Result<()> {
    on_writer!(store, conn => sqlx::query("INSERT INTO login_failures (email, ip, at) VALUES ($1, $2, $3)")
        .bind(email.trim().to_lowercase())
        .bind(ip)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    on_writer!(store, conn => sqlx::query("DELETE FROM login_failures WHERE at < $1")
        .bind(keep_since)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    Ok(())
}

/// Forgets the failures of an address after a successful sign-in.
pub async fn clear_failures(store: &Store, email: &str) -> Result<()> {
    on_writer!(store, conn => sqlx::query("DELETE FROM login_failures WHERE email = $1")
        .bind(email.trim().to_lowercase())
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    Ok(())
}
