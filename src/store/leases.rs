//! Leases: a consumer that must run on one instance at a time (a mailbox's IMAP intake, the
//! Telegram poller, the Discord gateway) runs only while its instance holds the consumer's
//! lease. On PostgreSQL a lease is a session advisory lock taken on a connection of its own:
//! the server releases it the moment that connection ends (the process killed, the network
//! gone), so no expiry has to pass before another instance may take over. A row in `leases`
//! says who took it; `holders` shows only rows whose backend still holds the lock. On SQLite
//! there is one instance, and a lease is always granted.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};

use super::{Result, Store, StoreError, on_pool, on_writer};

/// How long a check of a held lease may take before the lease counts as lost.
pub const CHECK_WITHIN: Duration = Duration::from_secs(2);

/// A lease this instance holds. Dropping it without [`Held::release`] ends the connection,
/// which releases the lock all the same.
pub struct Held {
    name: String,
    /// The lease's own connection (PostgreSQL); `None` on SQLite.
    connection: Option<PgConnection>,
    key: i64,
}

/// Who holds a lease.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Holder {
    /// The consumer: `email:<mailbox>`, `telegram`, `discord`.
    pub name: String,
    /// The holding instance's id (as in `instances`).
    pub instance_id: String,
    pub taken_at: DateTime<Utc>,
}

/// The advisory lock key of lease `name`: a stable 64-bit FNV-1a hash, the same in every
/// instance and release.
pub fn key_of(name: &str) -> i64 {
    let hash = format!("helpdesk lease {name}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    hash as i64
}

/// Takes lease `name` for `instance_id` if no other instance holds it; `None` when one does.
pub async fn take(store: &Store, name: &str, instance_id: &str) -> Result<Option<Held>> {
    let key = key_of(name);
    let now = Utc::now();
    let pool = match store {
        Store::Sqlite { .. } => {
            record(store, name, instance_id, key, now).await?;
            return Ok(Some(Held {
                name: name.to_owned(),
                connection: None,
                key,
            }));
        }
        Store::Postgres { pool } => pool,
    };
    let mut connection = PgConnection::connect_with(&pool.connect_options()).await?;
    // The server notices a holder that vanished from the network within ~15 s (it would take
    // hours with the system's keepalive defaults) and ends its session, releasing the lock.
    sqlx::raw_sql(
        "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2;
         SET tcp_keepalives_count = 3; SET application_name = 'helpdesk lease'",
    )
    .execute(&mut connection)
    .await?;
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut connection)
        .await?;
    if !taken {
        connection.close().await.ok();
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO leases (name, instance_id, lock_key, backend_pid, taken_at)
         VALUES ($1, $2, $3, pg_backend_pid(), $4)
         ON CONFLICT (name) DO UPDATE SET instance_id = excluded.instance_id,
             lock_key = excluded.lock_key, backend_pid = excluded.backend_pid,
             taken_at = excluded.taken_at",
    )
    .bind(name)
    .bind(instance_id)
    .bind(key)
    .bind(now)
    .execute(&mut connection)
    .await?;
    Ok(Some(Held {
        name: name.to_owned(),
        connection: Some(connection),
        key,
    }))
}

/// The SQLite record of a lease: there the row is all there is.
async fn record(
    store: &Store,
    name: &str,
    instance_id: &str,
    key: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    on_writer!(store, conn => sqlx::query(
        "INSERT INTO leases (name, instance_id, lock_key, backend_pid, taken_at)
         VALUES ($1, $2, $3, 0, $4)
         ON CONFLICT (name) DO UPDATE SET instance_id = excluded.instance_id,
             taken_at = excluded.taken_at",
    )
    .bind(name)
    .bind(instance_id)
    .bind(key)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()));
    Ok(())
}

impl Held {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the lease is still held: its connection answers within [`CHECK_WITHIN`] and
    /// still holds the lock. An error means lost: the consumer must stop.
    pub async fn check(&mut self) -> Result<()> {
        let Some(connection) = &mut self.connection else {
            return Ok(());
        };
        let held = tokio::time::timeout(
            CHECK_WITHIN,
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
                     AND pid = pg_backend_pid() AND granted AND objsubid = 1
                     AND ((classid::bigint << 32) | objid::bigint) = $1)",
            )
            .bind(self.key)
            .fetch_one(connection),
        )
        .await
        .map_err(|_| StoreError::Unavailable("the lease connection did not answer".into()))??;
        if held {
            Ok(())
        } else {
            Err(StoreError::Unavailable("the lease's lock is gone".into()))
        }
    }

    /// Gives the lease up: the lock is released and the connection closed.
    pub async fn release(self) -> Result<()> {
        if let Some(mut connection) = self.connection {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut connection)
                .await?;
            connection.close().await?;
        }
        Ok(())
    }
}

/// Which instance holds each consumer now, by name. On PostgreSQL a row counts only while
/// its backend holds the lock; on SQLite while its instance is running.
pub async fn holders(store: &Store) -> Result<Vec<Holder>> {
    let holders = match store {
        Store::Postgres { pool } => {
            sqlx::query_as(
                "SELECT l.name, l.instance_id, l.taken_at FROM leases l
             JOIN pg_locks k ON k.locktype = 'advisory' AND k.granted AND k.objsubid = 1
                 AND k.pid = l.backend_pid
                 AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                 AND ((k.classid::bigint << 32) | k.objid::bigint) = l.lock_key
             ORDER BY l.name",
            )
            .fetch_all(pool)
            .await?
        }
        Store::Sqlite { .. } => on_pool!(store, pool => sqlx::query_as(
            "SELECT l.name, l.instance_id, l.taken_at FROM leases l
             JOIN instances i ON i.id = l.instance_id
             WHERE i.heartbeat_at >= $1 ORDER BY l.name",
        )
        .bind(Utc::now() - super::instances::RUNNING_WITHIN)
        .fetch_all(pool)
        .await)?,
    };
    Ok(holders)
}
