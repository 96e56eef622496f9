//! People's accounts: new passwords, changing one's own, disabling and enabling, the time zone
//! one reads times in. The command line, the pages and the API all go through here, so each
//! does the same.

use chrono::{DateTime, Utc};

use crate::auth::{self, PasswordError};
use crate::jobs::Job;
use crate::jobs::assign::AssignTicket;
use crate::sign_in;
use crate::store::agents::{self, Account};
use crate::store::tickets::{Actor, NewEvent, record_event};
use crate::store::{Store, StoreError, sessions};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("the current password is not right")]
    WrongPassword,
    #[error("too many wrong passwords for {email}; wait {minutes} minutes and try again")]
    TooManyTries { email: String, minutes: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn find(store: &Store, agent_id: i64) -> Result<Account, AccountError> {
    agents::account(store, agent_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("there is no agent #{agent_id}")).into())
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    // argon2 takes tens of milliseconds of CPU: off the async threads. A panicked hash is a
    // bug; it surfaces as a failed request rather than a hung one.
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// Gives an agent a new password (the same policy as everywhere: [`auth::hash_password`]) and
/// ends their web sessions, all but `keep`: a person who changed their own password stays
/// signed in where they did it. API tokens are not passwords and keep working.
pub async fn set_password(
    store: &Store,
    agent_id: i64,
    password: &str,
    keep: Option<&str>,
) -> Result<Account, AccountError> {
    let account = find(store, agent_id).await?;
    let password = password.to_owned();
    let hash = blocking(move || auth::hash_password(&password)).await?;
    let mut tx = store.begin_write().await?;
    agents::set_password_hash(&mut tx, agent_id, &hash).await?;
    sessions::end_for_agent(&mut tx, agent_id, keep).await?;
    tx.commit().await?;
    Ok(account)
}

/// A person changes their own password: the current one must be right. Tries count against
/// the address like sign-ins, so a session left open cannot be used to find the password by
/// trying.
pub async fn change_own_password(
    store: &Store,
    agent_id: i64,
    current: &str,
    new: &str,
    keep: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), AccountError> {
    let account = find(store, agent_id).await?;
    // Counted by address only: a session can only try its own person's password.
    let counted = match sign_in::count(store, &account.email, None, now).await? {
        Ok(counted) => counted,
        Err(refused) => {
            return Err(AccountError::TooManyTries {
                email: account.email,
                minutes: refused.minutes(),
            });
        }
    };
    let matches = match account.password_hash.clone() {
        Some(stored) => {
            let current = current.to_owned();
            blocking(move || auth::verify_password(&current, &stored)).await
        }
        None => false,
    };
    if !matches {
        counted.failed(store, now).await?;
        return Err(AccountError::WrongPassword);
    }
    counted.succeeded(store).await?;
    set_password(store, agent_id, new, keep).await?;
    Ok(())
}

/// Disables (`active = false`) or enables an agent. A disabled agent cannot sign in, their API
/// tokens stop working (both check `active`), their web sessions end at once, and assignment
/// passes them over; their open tickets go back to their department's strategy through the
/// job queue, each with a history entry saying why. Enabling restores sign-in only. Returns
/// how many tickets were handed back.
pub async fn set_active(
    store: &Store,
    agent_id: i64,
    active: bool,
    by: Actor,
    now: DateTime<Utc>,
) -> Result<usize, AccountError> {
    let account = find(store, agent_id).await?;
    let mut tx = store.begin_write().await?;
    agents::set_active(&mut tx, agent_id, active).await?;
    if active {
        tx.commit().await?;
        return Ok(0);
    }
    sessions::end_for_agent(&mut tx, agent_id, None).await?;
    let open = agents::unassign_active_tickets(&mut tx, agent_id, now).await?;
    let reason = format!(
        "{} was disabled; the department's assignment strategy gives the ticket to someone else",
        account.name
    );
    for ticket_id in &open {
        record_event(
            &mut tx,
            &NewEvent {
                ticket_id: *ticket_id,
                actor: by,
                kind: "assignee",
                old_value: Some(&account.name),
                new_value: None,
                reason: Some(&reason),
                at: now,
            },
        )
        .await?;
        let key = format!("disabled:{agent_id}:{ticket_id}:{}", now.timestamp_micros());
        AssignTicket {
            ticket_id: *ticket_id,
        }
        .enqueue(&mut tx, &key, Utc::now())
        .await?;
    }
    tx.commit().await?;
    Ok(open.len())
}

/// The departments of a new agent: those chosen, or else the default department
/// (`workflow.default_department`) when it exists, so they get tickets from the start.
pub async fn departments_or_default(
    store: &Store,
    chosen: Vec<i64>,
    default: Option<&str>,
) -> Result<Vec<i64>, StoreError> {
    if !chosen.is_empty() {
        return Ok(chosen);
    }
    let Some(name) = default else {
        return Ok(chosen);
    };
    match agents::department_by_name(store, name).await? {
        Some(department) => Ok(vec![department.id]),
        None => {
            tracing::warn!(
                department = name,
                "the default department (workflow.default_department) does not exist; the new \
                 agent is in no department"
            );
            Ok(chosen)
        }
    }
}

/// Why a time zone was not set.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error(transparent)]
    Unknown(#[from] crate::domain::zone::UnknownZone),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sets the zone a person reads the pages in, by its IANA name; an empty name leaves times to
/// their browser's zone. Returns the name as stored.
pub async fn set_time_zone(
    store: &Store,
    agent_id: i64,
    name: &str,
) -> Result<Option<String>, ZoneError> {
    let zone = match name.trim() {
        "" => None,
        name => Some(crate::domain::zone::parse_zone(name)?.name().to_owned()),
    };
    agents::set_time_zone(store, agent_id, zone.as_deref()).await?;
    Ok(zone)
}
