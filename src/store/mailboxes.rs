//! Mailboxes and signatures: the mailbox a mail ticket came in through (and the department it
//! starts in), and each person's signature for replies by mail.

use chrono::{DateTime, Utc};

use super::tickets::{Actor, NewEvent, record_event};
use super::{Result, Store, Tx, on_pool, on_tx, on_writer};
use crate::domain::{TicketId, TicketNumber};

/// Records that a new ticket came in through `mailbox` and, when `department` names one that
/// exists, starts it there with the reason in its history (rules may still move it). Returns
/// whether the department was found.
pub async fn place_ticket(
    tx: &mut Tx,
    ticket_id: TicketId,
    mailbox: &str,
    department: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let department_id: Option<i64> = match department {
        Some(name) => on_tx!(tx, conn => sqlx::query_scalar(
            "SELECT id FROM departments WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&mut *conn)
        .await)?,
        None => None,
    };
    on_tx!(tx, conn => sqlx::query(
        "UPDATE tickets SET mailbox = $1, department_id = COALESCE($2, department_id)
         WHERE id = $3",
    )
    .bind(mailbox)
    .bind(department_id)
    .bind(ticket_id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    if department_id.is_some() {
        let reason = format!("came in through the mailbox {mailbox}");
        record_event(
            tx,
            &NewEvent {
                ticket_id,
                actor: Actor::System,
                kind: "department",
                old_value: None,
                new_value: department,
                reason: Some(&reason),
                at: now,
            },
        )
        .await?;
    }
    Ok(department_id.is_some())
}

/// The mailbox ticket `number` came in through, if it came in through one.
pub async fn of_ticket(store: &Store, number: TicketNumber) -> Result<Option<String>> {
    let mailbox: Option<Option<String>> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT mailbox FROM tickets WHERE number = $1",
    )
    .bind(number)
    .fetch_optional(pool)
    .await)?;
    Ok(mailbox.flatten())
}

/// Which of these department names do not exist.
pub async fn missing_departments(store: &Store, names: &[&str]) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for name in names {
        let found: Option<i64> = on_pool!(store, pool => sqlx::query_scalar(
            "SELECT id FROM departments WHERE name = $1",
        )
        .bind(*name)
        .fetch_optional(pool)
        .await)?;
        if found.is_none() {
            missing.push((*name).to_owned());
        }
    }
    Ok(missing)
}

/// A person's signature for replies by mail, if they set one.
pub async fn agent_signature(store: &Store, agent_id: i64) -> Result<Option<String>> {
    let signature: Option<Option<String>> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT signature FROM agents WHERE id = $1",
    )
    .bind(agent_id)
    .fetch_optional(pool)
    .await)?;
    Ok(signature.flatten())
}

/// Every signature that is set, by agent id.
pub async fn agent_signatures(store: &Store) -> Result<Vec<(i64, String)>> {
    let signatures = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, signature FROM agents WHERE signature IS NOT NULL ORDER BY id",
    )
    .fetch_all(pool)
    .await)?;
    Ok(signatures)
}

/// Sets a person's signature; blank clears it. Returns whether the person exists.
pub async fn set_agent_signature(store: &Store, agent_id: i64, signature: &str) -> Result<bool> {
    let signature = clean_signature(signature);
    let changed = on_writer!(store, conn => sqlx::query(
        "UPDATE agents SET signature = $1 WHERE id = $2",
    )
    .bind(signature.as_deref())
    .bind(agent_id)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()));
    Ok(changed == 1)
}

/// Most characters of a signature kept.
pub const MAX_SIGNATURE_CHARS: usize = 2000;

/// A signature as kept: line ends made `\n`, trailing spaces and blank lines at either end
/// gone (the "-- " line above it is written on sending), at most [`MAX_SIGNATURE_CHARS`];
/// `None` when nothing is left.
pub fn clean_signature(signature: &str) -> Option<String> {
    let lines: Vec<&str> = signature
        .lines()
        .map(str::trim_end)
        .filter(|line| *line != "--")
        .collect();
    let text = lines.join("\n");
    let text = text.trim_matches('\n');
    (!text.trim().is_empty()).then(|| text.chars().take(MAX_SIGNATURE_CHARS).collect())
}
