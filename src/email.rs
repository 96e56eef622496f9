//! The email channel wired to the application: IMAP intake into tickets.

use std::future::Future;

use helpdesk_email::RawMail;
use helpdesk_email::imap::{
    Cursor, CursorPosition, ImapHealth, ImapHealthSnapshot, ImapIntake, ImapSettings, ImapTls,
    Sink, Uid,
};
use helpdesk_email::smtp::{SmtpSettings, SmtpTls};

use crate::config::{Settings, Tls};
use crate::intake::{Intake, IntakeError};
use crate::store::health::ChannelHealth;
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

impl Sink for IntakeSink {
    type Error = IntakeError;

    async fn deliver(&self, batch: Vec<(Uid, RawMail)>) -> Result<(), IntakeError> {
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

/// How often the IMAP intake's health is copied to the database when it changed, and at the
/// latest every [`HEALTH_REFRESH`] so readers can tell a live report from a stale one.
const HEALTH_CHECK: std::time::Duration = std::time::Duration::from_secs(5);
const HEALTH_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs IMAP intake until `shutdown` completes, with its health reported to the database;
/// returns the health handle first.
pub fn start_imap(
    settings: &Settings,
    intake: Intake,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (ImapHealth, tokio::task::JoinHandle<()>) {
    start_imap_with(imap_settings(settings), intake, shutdown)
}

/// [`start_imap`] with the IMAP settings given directly.
pub fn start_imap_with(
    imap: ImapSettings,
    intake: Intake,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (ImapHealth, tokio::task::JoinHandle<()>) {
    let cursor = StoredCursor::new(intake.store().clone(), &imap.mailbox);
    let name = format!("imap:{}", imap.mailbox);
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
    let reported = health.clone();
    let task = tokio::spawn(async move {
        let reporter = tokio::spawn(report_imap_health(
            store.clone(),
            name.clone(),
            detail.clone(),
            reported.clone(),
        ));
        runner.run(shutdown).await;
        reporter.abort();
        // The last word: not connected any more.
        let mut last = reported.snapshot();
        last.connected = false;
        last.idling = false;
        write_imap_health(&store, &name, &detail, &last).await;
    });
    (health, task)
}

async fn report_imap_health(store: Store, name: String, detail: String, health: ImapHealth) {
    let mut last: Option<(ImapHealthSnapshot, tokio::time::Instant)> = None;
    loop {
        let now = health.snapshot();
        let due = match &last {
            Some((reported, at)) => *reported != now || at.elapsed() >= HEALTH_REFRESH,
            None => true,
        };
        if due {
            write_imap_health(&store, &name, &detail, &now).await;
            last = Some((now, tokio::time::Instant::now()));
        }
        tokio::time::sleep(HEALTH_CHECK).await;
    }
}

async fn write_imap_health(store: &Store, name: &str, detail: &str, snapshot: &ImapHealthSnapshot) {
    let report = ChannelHealth {
        channel: "email".to_owned(),
        name: name.to_owned(),
        connected: snapshot.connected,
        detail: Some(if snapshot.idling {
            "idling: the server announces new mail".to_owned()
        } else {
            detail.to_owned()
        }),
        last_success_at: snapshot.last_success,
        last_error: snapshot.last_error.clone(),
        last_error_at: snapshot.last_error_at,
        consecutive_failures: i64::from(snapshot.consecutive_failures),
        backlog: i64::try_from(snapshot.backlog).unwrap_or(i64::MAX),
        updated_at: chrono::Utc::now(),
    };
    if let Err(error) = store::health::report(store, &report).await {
        tracing::warn!(%error, "IMAP health not recorded");
    }
}
