//! Several mailboxes: each read by an IMAP intake of its own (its own position and health row,
//! so one server down stops no other), each answering From its own address with its signature.

use std::future::Future;
use std::sync::Arc;

use helpdesk_channel::Health;
use helpdesk_email::smtp::{SmtpConfigError, SmtpSender};

use super::email;
use crate::config::Mailbox;
use crate::intake::Intake;
use crate::jobs::deliver::{Deliverers, MailboxSender};
use crate::store::{Store, StoreError};

/// Why the mailboxes cannot start.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error(
        "mailbox {mailbox:?}: its department {department:?} does not exist; create it \
         (admin page Departments, or `helpdesk department add`) or correct \
         email.mailboxes.department"
    )]
    NoDepartment { mailbox: String, department: String },
    #[error("mailbox {mailbox:?}: the SMTP settings: {source}")]
    Smtp {
        mailbox: String,
        #[source]
        source: SmtpConfigError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks that every mailbox's department exists.
pub async fn check_departments(store: &Store, mailboxes: &[Mailbox]) -> Result<(), MailboxError> {
    for mailbox in mailboxes {
        if let Some(department) = &mailbox.department {
            let missing =
                crate::store::mailboxes::missing_departments(store, &[department]).await?;
            if !missing.is_empty() {
                return Err(MailboxError::NoDepartment {
                    mailbox: mailbox.name.clone(),
                    department: department.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The SMTP sender of a mailbox: its server, From its address with its display name.
pub fn sender(mailbox: &Mailbox) -> Result<SmtpSender, MailboxError> {
    let mut settings = email::smtp_settings_of(&mailbox.smtp, &mailbox.address);
    settings.from_name = mailbox.display_name.clone();
    SmtpSender::new(&settings).map_err(|source| MailboxError::Smtp {
        mailbox: mailbox.name.clone(),
        source,
    })
}

/// `deliverers` with every mailbox's sender and signature. Agents' notices by mail go out
/// through the first mailbox: its server and its address, so every configuration that
/// validates can send them (the shared `[email.smtp]` may be empty when each mailbox has its
/// own).
pub fn with_senders(
    mut deliverers: Deliverers,
    mailboxes: &[Mailbox],
) -> Result<Deliverers, MailboxError> {
    for (index, mailbox) in mailboxes.iter().enumerate() {
        let sender = Arc::new(sender(mailbox)?);
        if index == 0 {
            deliverers = deliverers.with_notice_mail(Arc::clone(&sender));
        }
        deliverers = deliverers.with_mailbox(
            &mailbox.name,
            MailboxSender {
                deliver: sender,
                signature: mailbox.signature.clone(),
            },
        );
    }
    Ok(deliverers)
}

/// Starts the IMAP intake of one mailbox (a task of its own) until `shutdown` completes.
pub fn start(
    mailbox: &Mailbox,
    intake: &Intake,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (Health, tokio::task::JoinHandle<()>) {
    email::start_imap_scoped(
        email::imap_settings_of(&mailbox.imap),
        mailbox.cursor_scope(),
        mailbox.health_name(),
        intake.clone().in_mailbox(mailbox),
        shutdown,
    )
}

/// What the pages and the API show of a mailbox (never its passwords).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxSummary {
    pub name: String,
    pub address: String,
    pub display_name: Option<String>,
    pub department: Option<String>,
    /// Its IMAP connection's row in `channel_health`.
    pub health_name: String,
    pub has_signature: bool,
}

/// The mailboxes of these settings; none when mail is off.
pub fn summaries(settings: &crate::config::Settings) -> Vec<MailboxSummary> {
    if !settings.email.enabled {
        return Vec::new();
    }
    settings
        .email
        .mailboxes()
        .into_iter()
        .map(|mailbox| MailboxSummary {
            health_name: mailbox.health_name(),
            has_signature: mailbox.signature.is_some(),
            name: mailbox.name,
            address: mailbox.address,
            display_name: mailbox.display_name,
            department: mailbox.department,
        })
        .collect()
}
