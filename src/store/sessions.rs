//! Web sign-in sessions and the count of sign-in tries.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::{Result, Store, Tx, on_pool, on_tx, on_writer};
use crate::domain::Role;

/// A random value for cookies and CSRF tokens: 32 bytes from the operating system, as hex.
pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(super::StoreError::NoRandom)?;
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
    /// The IANA zone they read times in; none: the browser's.
    pub time_zone: Option<String>,
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
    type Row = (
        i64,
        String,
        String,
        String,
        String,
        DateTime<Utc>,
        Option<String>,
    );
    let row: Option<Row> = on_pool!(store, pool => sqlx::query_as(
        "SELECT a.id, a.email, a.name, a.role, s.csrf_token, s.expires_at, a.time_zone
         FROM web_sessions s JOIN agents a ON a.id = s.agent_id
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND a.active",
    )
    .bind(token_hash(token))
    .bind(now)
    .fetch_optional(pool)
    .await)?;
    row.map(
        |(agent_id, email, name, role, csrf_token, expires_at, time_zone)| {
            Ok(SessionAgent {
                agent_id,
                email,
                name,
                role: role.parse()?,
                csrf_token,
                expires_at,
                time_zone,
            })
        },
    )
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

/// What a sign-in try is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryScope {
    /// The address signed in with (lower case).
    Email,
    /// The client IP (see `web::auth::ClientIp`).
    Ip,
}

impl TryScope {
    fn as_str(self) -> &'static str {
        match self {
            TryScope::Email => "email",
            TryScope::Ip => "ip",
        }
    }
}

/// The count of tries in one window, this try included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tries {
    pub count: i64,
    pub window_started_at: DateTime<Utc>,
}

/// Counts one try against `key` and returns the new count: one statement, so parallel tries
/// each get their own number however many instances share the database. A window older than
/// `window` starts over at this try.
pub async fn count_try(
    store: &Store,
    scope: TryScope,
    key: &str,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<Tries> {
    let (count, window_started_at): (i64, DateTime<Utc>) = on_writer!(store, conn => sqlx::query_as(
        "INSERT INTO sign_in_tries (scope, key, tries, window_started_at) VALUES ($1, $2, 1, $3)
         ON CONFLICT (scope, key) DO UPDATE SET
             tries = CASE WHEN sign_in_tries.window_started_at <= $4 THEN 1
                          ELSE sign_in_tries.tries + 1 END,
             window_started_at = CASE WHEN sign_in_tries.window_started_at <= $4 THEN $3
                                      ELSE sign_in_tries.window_started_at END
         RETURNING tries, window_started_at",
    )
    .bind(scope.as_str())
    .bind(key)
    .bind(now)
    .bind(now - window)
    .fetch_one(&mut *conn)
    .await);
    Ok(Tries {
        count,
        window_started_at,
    })
}

/// Takes back one try counted by [`count_try`], unless its window has started over since.
pub async fn take_back_try(
    store: &Store,
    scope: TryScope,
    key: &str,
    counted: Tries,
) -> Result<()> {
    on_writer!(store, conn => sqlx::query(
        "UPDATE sign_in_tries SET tries = tries - 1
         WHERE scope = $1 AND key = $2 AND window_started_at <= $3 AND tries > 0",
    )
    .bind(scope.as_str())
    .bind(key)
    .bind(counted.window_started_at)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()));
    Ok(())
}

/// Forgets the tries counted against `key`.
pub async fn clear_tries(store: &Store, scope: TryScope, key: &str) -> Result<()> {
    on_writer!(store, conn => sqlx::query("DELETE FROM sign_in_tries WHERE scope = $1 AND key = $2")
        .bind(scope.as_str())
        .bind(key)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    Ok(())
}

/// Forgets the counts whose window started before `before`: they would start over anyway.
pub async fn forget_old_tries(store: &Store, before: DateTime<Utc>) -> Result<()> {
    on_writer!(store, conn => sqlx::query("DELETE FROM sign_in_tries WHERE window_started_at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    Ok(())
}
