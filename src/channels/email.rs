//! The email channel wired to the application: IMAP intake into tickets ([`IntakeSink`]), the
//! mailbox's position in `channel_cursors` ([`StoredCursor`]), and the settings of SMTP
//! delivery.

use std::future::Future;

use helpdesk_channel::{ChannelKind, Health, Sink};
use helpdesk_email::RawMail;
use helpdesk_email::imap::{ImapIntake, ImapSettings, ImapTls, Uid};
use helpdesk_email::smtp::{SmtpSettings, SmtpTls};

use super::StoredCursor;
use crate::config::{Settings, Tls};
use crate::intake::{Intake, IntakeError};
use crate::store::StoreError;

/// The IMAP settings of `[email.imap]`.
pub fn imap_settings(settings: &Settings) -> ImapSettings {
    imap_settings_of(&settings.email.imap)
}

/// The IMAP settings of one mailbox, as the IMAP crate takes them.
pub fn imap_settings_of(imap: &crate::config::ImapSettings) -> ImapSettings {
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

/// SMTP settings sending as `from_address`.
pub fn smtp_settings_of(smtp: &crate::config::SmtpSettings, from_address: &str) -> SmtpSettings {
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
        from_address: from_address.to_owned(),
        from_name: None,
    }
}

/// Hands fetched mail to intake; returns only after the batch is committed, so the mailbox
/// marks nothing \Seen that is not stored. A message intake rejected is stored raw with its
/// error, and one too large is stored as its headers with a note, which both count as stored.
#[derive(Debug, Clone)]
pub struct IntakeSink {
    intake: Intake,
}

impl IntakeSink {
    pub fn new(intake: Intake) -> IntakeSink {
        IntakeSink { intake }
    }
}

impl Sink<(Uid, RawMail)> for IntakeSink {
    type Error = IntakeError;

    async fn accept(&self, batch: Vec<(Uid, RawMail)>) -> Result<(), IntakeError> {
        let preparer = self.intake.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .map(|(_, mail)| preparer.prepare_email(mail))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|source| {
            IntakeError::Store(StoreError::Join {
                what: "preparing mail",
                source,
            })
        })?;
        for outcome in self.intake.accept_batch(prepared).await {
            outcome?;
        }
        Ok(())
    }
}

/// Runs IMAP intake until `shutdown` completes, with its health reported to the database;
/// returns the health handle first.
pub fn start_imap(
    settings: &Settings,
    intake: Intake,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (Health, tokio::task::JoinHandle<()>) {
    start_imap_with(imap_settings(settings), intake, shutdown)
}

/// [`start_imap`] with the IMAP settings given directly.
pub fn start_imap_with(
    imap: ImapSettings,
    intake: Intake,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (Health, tokio::task::JoinHandle<()>) {
    let name = format!("imap:{}", imap.mailbox);
    start_imap_scoped(imap, None, name, intake, shutdown)
}

/// [`start_imap_with`] for one of several mailboxes: its position kept under `scope`, its
/// health under `name`.
pub fn start_imap_scoped(
    imap: ImapSettings,
    scope: Option<&str>,
    name: String,
    intake: Intake,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (Health, tokio::task::JoinHandle<()>) {
    let cursor = StoredCursor::scoped(intake.store().clone(), ChannelKind::Email, scope);
    let detail = if imap.idle {
        "waits with IDLE when the server offers it".to_owned()
    } else {
        format!("polls every {} s", imap.poll_seconds)
    };
    let store = intake.store().clone();
    let max_message_bytes = intake.limits().max_message_bytes;
    let runner = ImapIntake::new(imap, cursor, IntakeSink::new(intake))
        .with_max_message_bytes(max_message_bytes);
    let health = runner.health();
    let describe = move |state: &helpdesk_channel::HealthState| {
        let detail = if state.idling {
            "idling: the server announces new mail".to_owned()
        } else {
            detail.clone()
        };
        super::health_row(ChannelKind::Email, &name, detail, state)
    };
    let task = tokio::spawn(super::run_reported(
        store,
        health.clone(),
        describe,
        runner.run(shutdown),
    ));
    (health, task)
}
