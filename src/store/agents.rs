//! Agents (people who answer tickets; admins among them) and departments.

use chrono::{DateTime, Utc};
use helpdesk_channel::ChannelKind;

use super::{Result, Store, StoreError, Tx, is_unique_violation, on_pool, on_tx, on_writer};
use crate::domain::TicketId;
use crate::domain::{AssignmentStrategy, Role};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Department {
    pub id: i64,
    pub name: String,
    pub assignment_strategy: String,
}

pub async fn create_department(
    store: &Store,
    name: &str,
    strategy: AssignmentStrategy,
    now: DateTime<Utc>,
) -> Result<Department> {
    let name = name.trim();
    if name.is_empty() {
        return Err(StoreError::Conflict("a department needs a name".into()));
    }
    let inserted = on_pool!(store, pool => sqlx::query_as(
        "INSERT INTO departments (name, assignment_strategy, created_at) VALUES ($1, $2, $3)
         RETURNING id, name, assignment_strategy",
    )
    .bind(name)
    .bind(strategy.as_str())
    .bind(now)
    .fetch_one(pool)
    .await);
    match inserted {
        Ok(department) => Ok(department),
        Err(error) if is_unique_violation(&error) => Err(StoreError::Conflict(format!(
            "a department named {name:?} already exists"
        ))),
        Err(error) => Err(error.into()),
    }
}

pub async fn departments(store: &Store) -> Result<Vec<Department>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, name, assignment_strategy FROM departments ORDER BY name",
    )
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// Per department: its id, how many agents belong to it and how many of its tickets are
/// active.
pub async fn department_counts(store: &Store) -> Result<Vec<(i64, i64, i64)>> {
    let counts = on_pool!(store, pool => sqlx::query_as(
        "SELECT d.id,
                (SELECT COUNT(*) FROM agent_departments ad WHERE ad.department_id = d.id),
                (SELECT COUNT(*) FROM tickets t
                 WHERE t.department_id = d.id AND t.status IN ('new', 'open', 'pending'))
         FROM departments d",
    )
    .fetch_all(pool)
    .await)?;
    Ok(counts)
}

/// Per agent with active tickets: the agent's id and how many.
pub async fn active_ticket_counts(store: &Store) -> Result<Vec<(i64, i64)>> {
    let counts = on_pool!(store, pool => sqlx::query_as(
        "SELECT assignee_id, COUNT(*) FROM tickets
         WHERE assignee_id IS NOT NULL AND status IN ('new', 'open', 'pending')
         GROUP BY assignee_id",
    )
    .fetch_all(pool)
    .await)?;
    Ok(counts)
}

/// Every (agent id, department id) membership.
pub async fn memberships(store: &Store) -> Result<Vec<(i64, i64)>> {
    let pairs = on_pool!(store, pool => sqlx::query_as(
        "SELECT agent_id, department_id FROM agent_departments",
    )
    .fetch_all(pool)
    .await)?;
    Ok(pairs)
}

pub async fn department_by_name(store: &Store, name: &str) -> Result<Option<Department>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, name, assignment_strategy FROM departments WHERE name = $1",
    )
    .bind(name.trim())
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// What `user add` asks for.
#[derive(Debug, Clone)]
pub struct NewAgent<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub password_hash: Option<&'a str>,
    pub department_ids: &'a [i64],
    /// Chat identities: (channel, user id on that channel).
    pub identities: &'a [(ChannelKind, &'a str)],
    pub max_open_tickets: Option<i64>,
}

/// Creates an agent with their departments and chat identities in one transaction.
pub async fn create_agent(store: &Store, agent: &NewAgent<'_>, now: DateTime<Utc>) -> Result<i64> {
    let email = agent.email.trim().to_lowercase();
    if !email.contains('@') {
        return Err(StoreError::Conflict(format!(
            "{:?} is not an email address",
            agent.email
        )));
    }
    let mut tx = store.begin_write().await?;
    let inserted = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "INSERT INTO agents (email, name, role, password_hash, max_open_tickets, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&email)
    .bind(agent.name.trim())
    .bind(agent.role.as_str())
    .bind(agent.password_hash)
    .bind(agent.max_open_tickets)
    .bind(now)
    .fetch_one(&mut *conn)
    .await);
    let agent_id: i64 = match inserted {
        Ok(id) => id,
        Err(error) if is_unique_violation(&error) => {
            return Err(StoreError::Conflict(format!(
                "an agent with email {email} already exists"
            )));
        }
        Err(error) => return Err(error.into()),
    };
    for department_id in agent.department_ids {
        on_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO agent_departments (agent_id, department_id) VALUES ($1, $2)",
        )
        .bind(agent_id)
        .bind(department_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    }
    for (channel, address) in agent.identities {
        let linked = on_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO agent_identities (agent_id, channel, address) VALUES ($1, $2, $3)",
        )
        .bind(agent_id)
        .bind(channel.as_str())
        .bind(address.trim())
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
        match linked {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::Conflict(format!(
                    "the {channel} identity {address} already belongs to another agent"
                )));
            }
            Err(error) => return Err(error.into()),
        }
    }
    tx.commit().await?;
    Ok(agent_id)
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct AgentSummary {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: String,
    pub active: bool,
    pub available: bool,
    pub max_open_tickets: Option<i64>,
    /// Department names, comma separated.
    pub departments: String,
    /// Chat identities as `channel:id`, comma separated.
    pub identities: String,
    pub has_password: bool,
    /// The IANA zone the pages show times in; none: the browser's.
    pub time_zone: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AgentRow {
    id: i64,
    email: String,
    name: String,
    role: String,
    active: bool,
    available: bool,
    max_open_tickets: Option<i64>,
    has_password: bool,
    time_zone: Option<String>,
}

pub async fn list_agents(store: &Store) -> Result<Vec<AgentSummary>> {
    // Aggregated in Rust rather than with string_agg/group_concat, which the two spell apart.
    let agents: Vec<AgentRow> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, email, name, role, active, available, max_open_tickets,
                password_hash IS NOT NULL AS has_password, time_zone
         FROM agents ORDER BY email",
    )
    .fetch_all(pool)
    .await)?;
    let departments: Vec<(i64, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT ad.agent_id, d.name FROM agent_departments ad
         JOIN departments d ON d.id = ad.department_id ORDER BY d.name",
    )
    .fetch_all(pool)
    .await)?;
    let identities: Vec<(i64, String, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT agent_id, channel, address FROM agent_identities ORDER BY channel, address",
    )
    .fetch_all(pool)
    .await)?;
    Ok(agents
        .into_iter()
        .map(|agent| AgentSummary {
            departments: departments
                .iter()
                .filter(|(id, _)| *id == agent.id)
                .map(|(_, name)| name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            identities: identities
                .iter()
                .filter(|(id, _, _)| *id == agent.id)
                .map(|(_, channel, address)| format!("{channel}:{address}"))
                .collect::<Vec<_>>()
                .join(", "),
            id: agent.id,
            email: agent.email,
            name: agent.name,
            role: agent.role,
            active: agent.active,
            available: agent.available,
            max_open_tickets: agent.max_open_tickets,
            has_password: agent.has_password,
            time_zone: agent.time_zone,
        })
        .collect())
}

/// Sets the time zone a person reads the pages in (an IANA name checked by the caller), or
/// with `None` leaves it to their browser.
pub async fn set_time_zone(store: &Store, agent_id: i64, zone: Option<&str>) -> Result<()> {
    on_writer!(store, conn => sqlx::query("UPDATE agents SET time_zone = $1 WHERE id = $2")
        .bind(zone)
        .bind(agent_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
    Ok(())
}

/// The id of the agent with this email address.
pub async fn agent_id_by_email(store: &Store, email: &str) -> Result<Option<i64>> {
    let id = on_pool!(store, pool => sqlx::query_scalar("SELECT id FROM agents WHERE email = $1")
        .bind(email.trim().to_lowercase())
        .fetch_optional(pool)
        .await)?;
    Ok(id)
}

/// The sign-in facts of one agent, for changing a password or disabling them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Account {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub active: bool,
    /// `None` for a chat-only agent.
    pub password_hash: Option<String>,
}

pub async fn account(store: &Store, agent_id: i64) -> Result<Option<Account>> {
    let row = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, email, name, active, password_hash FROM agents WHERE id = $1",
    )
    .bind(agent_id)
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// Checks a chat user id as the channels send it: Telegram and Discord ids are positive
/// numbers (Discord's are 64-bit snowflakes). Returns the id without surrounding spaces.
pub fn valid_chat_user_id(channel: ChannelKind, text: &str) -> std::result::Result<String, String> {
    let id = text.trim();
    let name = chat_name(channel);
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "the {name} user id must be a number (digits only), not {id:?}"
        ));
    }
    match id.parse::<u64>() {
        Ok(0) => Err(format!("the {name} user id cannot be 0")),
        Ok(value) => Ok(value.to_string()),
        Err(_) => Err(format!("the {name} user id {id} is too long to be an id")),
    }
}

fn chat_name(channel: ChannelKind) -> &'static str {
    match channel {
        ChannelKind::Telegram => "Telegram",
        ChannelKind::Discord => "Discord",
        other => other.as_str(),
    }
}

/// Sets (or, with `None`, removes) an agent's user id on chat channels, replacing any id they
/// had there, all in one transaction. Ids are unique across agents: one taken by someone else
/// is refused with their name, and nothing changes.
pub async fn set_chat_identities(
    store: &Store,
    agent_id: i64,
    identities: &[(ChannelKind, Option<&str>)],
) -> Result<()> {
    let mut tx = store.begin_write().await?;
    for (channel, address) in identities {
        let channel = *channel;
        if let Some(address) = address {
            let owner: Option<String> = on_tx!(&mut tx, conn => sqlx::query_scalar(
                "SELECT a.name FROM agent_identities i JOIN agents a ON a.id = i.agent_id
                 WHERE i.channel = $1 AND i.address = $2 AND i.agent_id <> $3",
            )
            .bind(channel.as_str())
            .bind(*address)
            .bind(agent_id)
            .fetch_optional(&mut *conn)
            .await)?;
            if let Some(owner) = owner {
                return Err(StoreError::Conflict(format!(
                    "the {} user id {address} already belongs to {owner}",
                    chat_name(channel)
                )));
            }
        }
        on_tx!(&mut tx, conn => sqlx::query(
            "DELETE FROM agent_identities WHERE agent_id = $1 AND channel = $2",
        )
        .bind(agent_id)
        .bind(channel.as_str())
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
        let Some(address) = address else {
            continue;
        };
        let linked = on_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO agent_identities (agent_id, channel, address) VALUES ($1, $2, $3)",
        )
        .bind(agent_id)
        .bind(channel.as_str())
        .bind(*address)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()));
        match linked {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::Conflict(format!(
                    "the {} user id {address} already belongs to another agent",
                    chat_name(channel)
                )));
            }
            Err(error) => return Err(error.into()),
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Stores agent `agent_id`'s new password hash.
pub async fn set_password_hash(tx: &mut Tx, agent_id: i64, hash: &str) -> Result<()> {
    on_tx!(tx, conn => sqlx::query("UPDATE agents SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(agent_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// Enables or disables agent `agent_id`.
pub async fn set_active(tx: &mut Tx, agent_id: i64, active: bool) -> Result<()> {
    on_tx!(tx, conn => sqlx::query("UPDATE agents SET active = $1 WHERE id = $2")
        .bind(active)
        .bind(agent_id)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// Takes agent `agent_id` off their active tickets at `now`; returns those tickets' ids, in
/// order (the history entries are the caller's, who knows why).
pub async fn unassign_active_tickets(
    tx: &mut Tx,
    agent_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<TicketId>> {
    let open: Vec<TicketId> = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT id FROM tickets
         WHERE assignee_id = $1 AND status IN ('new', 'open', 'pending') ORDER BY id",
    )
    .bind(agent_id)
    .fetch_all(&mut *conn)
    .await)?;
    on_tx!(tx, conn => sqlx::query(
        "UPDATE tickets SET assignee_id = NULL, updated_at = $1
         WHERE assignee_id = $2 AND status IN ('new', 'open', 'pending')",
    )
    .bind(now)
    .bind(agent_id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(open)
}
