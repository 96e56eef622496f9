//! Layered settings: config/default.toml (built in) < the file given by `--config` <
//! `HELPDESK_SECTION__KEY` environment variables.

mod layers;
mod mailboxes;
#[cfg(test)]
mod tests;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::{FixedOffset, NaiveTime, Weekday};
use serde::Deserialize;
use toml::Value;

use crate::domain::rules::BusinessHours;
use crate::domain::sla::{MinutesByPriority, SlaTargets};
use layers::{Layered, apply_env, merge, parse_toml};
pub use mailboxes::{DEFAULT_MAILBOX, ImapOverride, Mailbox, MailboxEntry, SmtpOverride};

/// The documented defaults; the same file ships in config/ for people to read.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

const ENV_PREFIX: &str = "HELPDESK_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read settings file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("settings file {origin} is not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    #[error("setting `{key}` (from {origin}): {message}")]
    Key {
        key: String,
        origin: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database: DatabaseSettings,
    pub web: WebSettings,
    pub intake: IntakeSettings,
    pub attachments: AttachmentSettings,
    pub sla: SlaSettings,
    pub workflow: WorkflowSettings,
    pub log: LogSettings,
    pub webhooks: WebhookSettings,
    pub email: EmailSettings,
    pub telegram: TelegramSettings,
    pub discord: DiscordSettings,
    pub surveys: SurveySettings,
    pub telemetry: TelemetrySettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    pub listen: SocketAddr,
    pub public_url: String,
    /// Whether a proxy in front of the web server is trusted to say who the client is in
    /// `X-Forwarded-For` (its last entry); otherwise the connection's address counts.
    #[serde(default)]
    pub trust_forwarded_for: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeSettings {
    pub max_attachment_bytes: u64,
    pub max_message_bytes: u64,
    pub unknown_sender_tag: crate::intake::UnknownSenderTag,
}

/// Where attachment contents are kept (`store::blobs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentSettings {
    pub store: BlobBackend,
    pub s3: S3Settings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobBackend {
    /// Files under `data_dir/attachments`.
    Fs,
    /// Objects in an S3-compatible bucket.
    S3,
}

/// An S3-compatible bucket; empty values fall back to the `AWS_*` environment variables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    pub bucket: String,
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub path_style: bool,
    pub prefix: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaSettings {
    pub first_response_minutes: MinutesByPriority,
    pub resolution_minutes: MinutesByPriority,
    pub next_response_minutes: MinutesByPriority,
    /// The share of a target's time after which its warning goes out (0.8 = 80 %).
    pub warning_share: f64,
}

impl SlaSettings {
    pub fn targets(&self) -> SlaTargets {
        SlaTargets {
            first_response: self.first_response_minutes,
            resolution: self.resolution_minutes,
            next_response: self.next_response_minutes,
            // Validated to lie in (0, 1) when the settings were loaded.
            warning_permille: (self.warning_share.clamp(0.0, 1.0) * 1000.0).round() as u32,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSettings {
    pub auto_close_days: u32,
    pub business_days: Vec<String>,
    pub business_hours: String,
    pub utc_offset_minutes: i32,
    /// The department (by name) of tickets no rule routes; empty for none.
    pub default_department: String,
}

impl WorkflowSettings {
    /// The default department's name, or `None` when the setting is empty (turned off).
    pub fn default_department(&self) -> Option<&str> {
        Some(self.default_department.as_str()).filter(|name| !name.is_empty())
    }

    /// The business hours these settings describe; `None` names what is wrong.
    pub fn business_hours(&self) -> Result<BusinessHours, String> {
        let days = self
            .business_days
            .iter()
            .map(|day| {
                day.parse::<Weekday>()
                    .map_err(|_| format!("{day:?} is not a day such as \"mon\""))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (start, end) = self
            .business_hours
            .split_once('-')
            .ok_or_else(|| format!("{:?} is not \"HH:MM-HH:MM\"", self.business_hours))?;
        let time = |text: &str| {
            NaiveTime::parse_from_str(text.trim(), "%H:%M")
                .map_err(|_| format!("{text:?} is not a time such as \"09:00\""))
        };
        let (start, end) = (time(start)?, time(end)?);
        if start >= end {
            return Err(format!("{:?} ends before it starts", self.business_hours));
        }
        let offset = FixedOffset::east_opt(self.utc_offset_minutes.saturating_mul(60))
            .ok_or_else(|| format!("{} minutes is not a UTC offset", self.utc_offset_minutes))?;
        Ok(BusinessHours {
            days,
            start,
            end,
            offset,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

/// How webhook deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub max_attempts: u32,
    pub first_retry_seconds: u64,
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub enabled: bool,
    pub address: String,
    pub acknowledge: bool,
    pub acknowledge_interval_minutes: i64,
    pub never_answer: String,
    /// The display name of the single mailbox's From: ("" for none).
    #[serde(default)]
    pub display_name: String,
    /// Appended to every mail the single mailbox sends ("" for none).
    #[serde(default)]
    pub signature: String,
    /// Several mailboxes; empty: the one mailbox of `address`, `[email.imap]` and
    /// `[email.smtp]`.
    #[serde(default)]
    pub mailboxes: Vec<MailboxEntry>,
    pub imap: ImapSettings,
    pub smtp: SmtpSettings,
}

impl EmailSettings {
    /// The addresses that never get automatic mail, as a regular expression.
    pub fn never_answer_regex(&self) -> Result<regex::Regex, regex::Error> {
        regex::Regex::new(&self.never_answer)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: String,
    pub password: String,
    pub mailbox: String,
    pub idle: bool,
    pub poll_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSettings {
    pub enabled: bool,
    pub token: String,
    pub api_url: String,
    pub agents_chat_id: i64,
    pub mode: TelegramMode,
    /// Webhook mode: the public HTTPS address Telegram posts updates to.
    pub webhook_url: String,
    /// Webhook mode: the token Telegram sends back with every update.
    pub webhook_secret: String,
    /// Webhook mode: where the webhook's own HTTP listener binds (behind the reverse proxy).
    pub webhook_listen: SocketAddr,
}

/// How updates come from Telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TelegramMode {
    /// We ask (getUpdates); works behind NAT, no public address needed.
    Polling,
    /// Telegram posts each update to `webhook_url`.
    Webhook,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordSettings {
    pub enabled: bool,
    pub token: String,
    pub api_url: String,
    pub agents_channel_id: u64,
}

/// Satisfaction surveys (`[surveys]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveySettings {
    pub enabled: bool,
    /// Days a survey can be answered after it was sent.
    pub valid_days: u32,
}

/// What the process reports besides logs (`[telemetry]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// The OTLP/HTTP collector's base URL; empty: no traces are exported.
    pub otlp_endpoint: String,
}

impl Settings {
    /// Loads the settings of this process: defaults, `file`, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Settings::load_from(file, std::env::vars())
    }

    /// Loads settings from the defaults, an optional file and the given environment.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut layered = Layered {
            table: parse_toml(DEFAULT_TOML, "the built-in defaults")?,
            origins: Vec::new(),
        };
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let origin = path.display().to_string();
            let overlay = parse_toml(&text, &origin)?;
            merge(&mut layered, overlay, "", &origin)?;
        }
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        env.sort();
        for (name, value) in env {
            apply_env(&mut layered, &name, value)?;
        }
        let settings: Settings = serde_path_to_error::deserialize(Value::Table(
            layered.table.clone(),
        ))
        .map_err(|error| {
            let key = error.path().to_string();
            ConfigError::Key {
                origin: layered.origin_of(&key),
                message: error.into_inner().message().to_owned(),
                key,
            }
        })?;
        settings.validate(&layered)?;
        Ok(settings)
    }

    /// Where attachments are stored, content-addressed, with `[attachments] store = "fs"`.
    pub fn attachments_dir(&self) -> PathBuf {
        self.data_dir.join("attachments")
    }
}
