//! The email channel wired to the application: IMAP intake into tickets.

use std::future::Future;

use helpdesk_email::imap::{
    Cursor, CursorPosition, ImapHealth, ImapIntake, ImapSettings, ImapTls, Sink, Uid,
};
use helpdesk_email::smtp::{SmtpSettings, SmtpTls};

use crate::config::{Settings, Tls};
use crate::intake::{Intake, IntakeError};
use crate::store::{self, Store, StoreError};

/// The IMAP settings of `[email.imap]`.
pub fn imap_settings(settings: &Settings) -> ImapSettings {
    let imap = &settings.email.imap;
    ImapSettings {
        host: imap.host.clone(),
        port: imap.port,
        tls: match imap.tls {
            Tls::None => ImapTls::None,
            Tls::Starttls => ImapTls::Starttls,
            Tls::Tls => ImapTls::Tls,
        },
        username: imap.username.clone(),
        password: imap.password.clone(),
        mailbox: imap.mailbox.clone(),
        idle: imap.idle,
        poll_seconds: imap.poll_seconds,
    }
}

/// The SMTP settings of `[email.smtp]`, sending as `email.address`.
pub fn smtp_settings(settings: &Settings) -> SmtpSettings {
    let smtp = &settings.email.smtp;
    SmtpSettings {
        host: smtp.host.clone(),
        port: smtp.port,
        tls: match smtp.tls {
            Tls::None => SmtpTls::None,
            Tls::Starttls => SmtpTls::Starttls,
            Tls::Tls => SmtpTls::Tls,
        },
        username: smtp.username.clone(),
        password: smtp.password.clone(),
        from_address: settings.email.address.clone(),
        from_name: None,
    }
}

/// The mailbox's position, kept in `channel_cursors` as "UIDVALIDITY:LAST_UID".
#[derive(Debug, Clone)]
pub struct StoredCursor {
    store: Store,
    name: String,
}

impl StoredCursor {
    pub fn new(store: Store, mailbox: &str) -> StoredCursor {
        StoredCursor {
            store,
            name: format!("imap:{mailbox}"),
        }
    }
}

impl Cursor for StoredCursor {
    type Error = StoreError;

    async fn load(&self) -> Result<Option<CursorPosition>, StoreError> {
        let Some(value) = store::cursors::get(&self.store, "email", &self.name).await? else {
            return Ok(None);
        };
        let parsed = value
            .split_once(':')
            .and_then(|(validity, uid)| Some((validity.parse().ok()?, uid.parse().ok()?)));
        match parsed {
            Some((uid_validity, last_uid)) => Ok(Some(CursorPosition {
                uid_validity,
                last_uid,
            })),
            None => Err(StoreError::Invalid(format!(
                "IMAP cursor {:?} is not UIDVALIDITY:UID",
                value
            ))),
        }
    }

    async fn save(&self, position: CursorPosition) -> Result<(), StoreError> {
        let value = format!("{}:{}", position.uid_validity, position.last_uid);
        store::cursors::set(&self.store, "email", &self.name, &value).await
    }
}

/// Hands fetched mail to intake; returns only after the batch is committed, so the mailbox
/// marks nothing \Seen that is not stored. A message intake rejected is stored raw with its
/// error, which counts as stored.
#[derive(Debug, Clone)]
pub struct IntakeSink {
    intake: Intake,
}

impl IntakeSink {
    pub fn new(intake: Intake) -> IntakeSink {
        IntakeSink { intake }
    }
}

impl Sink for IntakeSink {
    type Error = IntakeError;

    async fn deliver(&self, batch: Vec<(Uid, Vec<u8>)>) -> Result<(), IntakeError> {
        let preparer = self.intake.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .map(|(_, raw)| preparer.prepare_email(raw))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|error| {
            IntakeError::Store(StoreError::Invalid(format!(
                "preparing mail stopped: {error}"
            )))
        })?;
        for outcome in self.intake.accept_batch(prepared).await {
            outcome?;
        }
        Ok(())
    }
}

/// Runs IMAP intake until `shutdown` completes; returns its health handle first.
pub fn start_imap(
    settings: &Settings,
    intake: Intake,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (ImapHealth, tokio::task::JoinHandle<()>) {
    let imap = imap_settings(settings);
    let cursor = StoredCursor::new(intake.store().clone(), &imap.mailbox);
    let runner = ImapIntake::new(imap, cursor, IntakeSink::new(intake));
    let health = runner.health();
    (health, tokio::spawn(runner.run(shutdown)))
}
