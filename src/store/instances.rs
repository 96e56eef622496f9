//! The serving instances on this database and the channels each runs: `serve` registers
//! itself, beats every few seconds and leaves on a clean stop. Whether a reply on a channel
//! can go out, and what the channels page says, is read from here rather than guessed from
//! channel health reports (which stay after an instance stops).

use chrono::{DateTime, Duration, Utc};
use helpdesk_channel::ChannelKind;

use super::{Result, Store, Tx, on_pool, on_tx, on_writer};

/// How often a running instance moves its heartbeat on.
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// An instance whose last heartbeat is older than this is taken as stopped.
pub const RUNNING_WITHIN: Duration = Duration::seconds(30);
/// Rows of instances silent for this long (crashed, never cleaned up) are deleted.
const FORGET_AFTER: Duration = Duration::days(1);

/// One registered instance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Instance {
    pub id: String,
    pub host: String,
    pub pid: i64,
    /// Its enabled channels, comma-separated.
    pub channels: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}

impl Instance {
    /// This process, about to serve with `channels` enabled.
    pub fn this_process(channels: &[ChannelKind], now: DateTime<Utc>) -> Instance {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|name| !name.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|name| name.trim().to_owned())
                    .filter(|name| !name.is_empty())
            })
            .unwrap_or_else(|| "unknown host".to_owned());
        let pid = i64::from(std::process::id());
        Instance {
            id: format!("{host}-{pid}-{:08x}", fastrand::u32(..)),
            host,
            pid,
            channels: channel_list(channels),
            started_at: now,
            heartbeat_at: now,
        }
    }

    pub fn runs(&self, channel: ChannelKind) -> bool {
        self.channels.split(',').any(|c| c == channel.as_str())
    }
}

/// `email,telegram`: the form kept in the `channels` column.
pub fn channel_list(channels: &[ChannelKind]) -> String {
    channels
        .iter()
        .map(|channel| channel.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Adds (or replaces) an instance's row.
pub async fn register(store: &Store, instance: &Instance) -> Result<()> {
    on_writer!(store, conn => sqlx::query(
        "INSERT INTO instances (id, host, pid, channels, started_at, heartbeat_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET channels = excluded.channels,
             heartbeat_at = excluded.heartbeat_at",
    )
    .bind(&instance.id)
    .bind(&instance.host)
    .bind(instance.pid)
    .bind(&instance.channels)
    .bind(instance.started_at)
    .bind(instance.heartbeat_at)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()));
    Ok(())
}

/// Moves the instance's heartbeat on (adding its row again if someone deleted it) and forgets
/// instances silent for a day.
pub async fn heartbeat(store: &Store, instance: &Instance, now: DateTime<Utc>) -> Result<()> {
    register(
        store,
        &Instance {
            heartbeat_at: now,
            ..instance.clone()
        },
    )
    .await?;
    on_writer!(store, conn => sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1")
        .bind(now - FORGET_AFTER)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    Ok(())
}

/// Removes the instance's row: it stopped cleanly.
pub async fn remove(store: &Store, id: &str) -> Result<()> {
    on_writer!(store, conn => sqlx::query("DELETE FROM instances WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    Ok(())
}

/// The instances running at `now` (heartbeat within [`RUNNING_WITHIN`]), oldest first.
pub async fn running(store: &Store, now: DateTime<Utc>) -> Result<Vec<Instance>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, host, pid, channels, started_at, heartbeat_at FROM instances
         WHERE heartbeat_at >= $1 ORDER BY started_at, id",
    )
    .bind(now - RUNNING_WITHIN)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// Whether a running instance has `channel` enabled, read inside `tx`.
pub async fn channel_running(
    tx: &mut Tx,
    channel: ChannelKind,
    now: DateTime<Utc>,
) -> Result<bool> {
    let count: i64 = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT COUNT(*) FROM instances
         WHERE heartbeat_at >= $1 AND (',' || channels || ',') LIKE $2",
    )
    .bind(now - RUNNING_WITHIN)
    .bind(format!("%,{},%", channel.as_str()))
    .fetch_one(&mut *conn)
    .await)?;
    Ok(count > 0)
}

/// Whether replies on `channel` can go out: it is enabled in this process (`here`) or on a
/// running instance. The one check every way of writing a reply passes through.
pub async fn can_deliver(
    tx: &mut Tx,
    channel: ChannelKind,
    here: &[ChannelKind],
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(here.contains(&channel) || channel_running(tx, channel, now).await?)
}

/// Why a reply cannot go out on `channel`: it is enabled neither here nor on any running
/// instance. Names the setting that turns it on.
pub fn not_enabled(channel: ChannelKind) -> String {
    format!(
        "Replies on this ticket go out by {channel}, and the {channel} channel is not enabled on \
         any running instance (setting {channel}.enabled). Nothing was sent: enable \
         {channel}.enabled and restart the server, or add an internal note instead."
    )
}
