//! Layered settings: config/default.toml (built in) < the file given by `--config` <
//! `HELPDESK_SECTION__KEY` environment variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::{FixedOffset, NaiveTime, Weekday};
use serde::Deserialize;
use toml::{Table, Value};

use crate::domain::rules::BusinessHours;
use crate::domain::sla::{MinutesByPriority, SlaTargets};

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
    pub sla: SlaSettings,
    pub workflow: WorkflowSettings,
    pub log: LogSettings,
    pub webhooks: WebhookSettings,
    pub email: EmailSettings,
    pub telegram: TelegramSettings,
    pub discord: DiscordSettings,
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

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaSettings {
    pub first_response_minutes: MinutesByPriority,
    pub resolution_minutes: MinutesByPriority,
}

impl SlaSettings {
    pub fn targets(&self) -> SlaTargets {
        SlaTargets {
            first_response: self.first_response_minutes,
            resolution: self.resolution_minutes,
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

/// Which layer last set a key, so an error can say where to look.
struct Layered {
    table: Table,
    origins: Vec<(String, String)>,
}

impl Layered {
    fn origin_of(&self, key: &str) -> String {
        self.origins
            .iter()
            .rev()
            .find(|(set, _)| key == set || key.starts_with(&format!("{set}.")))
            .map(|(_, origin)| origin.clone())
            .unwrap_or_else(|| "the built-in defaults".to_owned())
    }
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

    fn validate(&self, layered: &Layered) -> Result<(), ConfigError> {
        let fail = |key: &str, message: String| ConfigError::Key {
            key: key.to_owned(),
            origin: layered.origin_of(key),
            message,
        };
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(fail(
                "database.url",
                format!("{url:?} is neither a sqlite: nor a postgres:// URL"),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(fail(
                "database.max_connections",
                "must be at least 1".into(),
            ));
        }
        if !(self.web.public_url.starts_with("http://")
            || self.web.public_url.starts_with("https://"))
        {
            return Err(fail(
                "web.public_url",
                format!(
                    "{:?} must start with http:// or https://",
                    self.web.public_url
                ),
            ));
        }
        if self.intake.max_attachment_bytes > self.intake.max_message_bytes {
            return Err(fail(
                "intake.max_attachment_bytes",
                "is larger than intake.max_message_bytes, so it could never apply".into(),
            ));
        }
        for (key, minutes) in [
            (
                "sla.first_response_minutes",
                self.sla.first_response_minutes,
            ),
            ("sla.resolution_minutes", self.sla.resolution_minutes),
        ] {
            if [minutes.low, minutes.normal, minutes.high, minutes.urgent]
                .iter()
                .any(|m| *m <= 0)
            {
                return Err(fail(key, "every target must be at least 1 minute".into()));
            }
        }
        if let Err(message) = self.workflow.business_hours() {
            let key = if message.contains("day") {
                "workflow.business_days"
            } else if message.contains("UTC") {
                "workflow.utc_offset_minutes"
            } else {
                "workflow.business_hours"
            };
            return Err(fail(key, message));
        }
        let department = &self.workflow.default_department;
        if department.trim() != department || department.chars().any(char::is_control) {
            return Err(fail(
                "workflow.default_department",
                format!(
                    "{department:?} must be a department name without spaces around it or \
                     control characters (empty turns the default department off)"
                ),
            ));
        }
        if let Err(error) = self.email.never_answer_regex() {
            return Err(fail("email.never_answer", error.to_string()));
        }
        if self.email.acknowledge_interval_minutes < 0 {
            return Err(fail(
                "email.acknowledge_interval_minutes",
                "cannot be negative".into(),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(fail(
                "log.level",
                format!(
                    "{:?} is not a tracing filter such as \"info\"",
                    self.log.level
                ),
            ));
        }
        if self.email.enabled {
            if !self.email.address.contains('@') {
                return Err(fail(
                    "email.address",
                    format!("{:?} is not an email address", self.email.address),
                ));
            }
            if self.email.imap.host.is_empty() {
                return Err(fail(
                    "email.imap.host",
                    "is empty but email is enabled".into(),
                ));
            }
            if self.email.smtp.host.is_empty() {
                return Err(fail(
                    "email.smtp.host",
                    "is empty but email is enabled".into(),
                ));
            }
            if self.email.imap.poll_seconds == 0 {
                return Err(fail("email.imap.poll_seconds", "must be at least 1".into()));
            }
        }
        if self.webhooks.max_attempts == 0 {
            return Err(fail("webhooks.max_attempts", "must be at least 1".into()));
        }
        if self.webhooks.timeout_seconds == 0 {
            return Err(fail(
                "webhooks.timeout_seconds",
                "must be at least 1".into(),
            ));
        }
        if self.telegram.enabled && self.telegram.token.is_empty() {
            return Err(fail(
                "telegram.token",
                "is empty but telegram is enabled".into(),
            ));
        }
        if self.telegram.enabled && self.telegram.mode == TelegramMode::Webhook {
            let url = self.telegram.webhook_url.trim();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(fail(
                    "telegram.webhook_url",
                    "must be the public https:// address of the webhook in webhook mode".into(),
                ));
            }
            if !helpdesk_telegram::valid_secret(&self.telegram.webhook_secret) {
                return Err(fail(
                    "telegram.webhook_secret",
                    "must be 1 to 256 characters of A-Z, a-z, 0-9, _ and - in webhook mode".into(),
                ));
            }
        }
        if self.discord.enabled && self.discord.token.is_empty() {
            return Err(fail(
                "discord.token",
                "is empty but discord is enabled".into(),
            ));
        }
        Ok(())
    }

    /// Where attachments are stored, content-addressed.
    pub fn attachments_dir(&self) -> PathBuf {
        self.data_dir.join("attachments")
    }
}

fn parse_toml(text: &str, origin: &str) -> Result<Table, ConfigError> {
    text.parse::<Table>().map_err(|error| ConfigError::Syntax {
        origin: origin.to_owned(),
        message: error.to_string(),
    })
}

/// Lays `overlay` over `layered`, refusing keys the defaults do not know.
fn merge(
    layered: &mut Layered,
    overlay: Table,
    prefix: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    for (name, value) in overlay {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let slot = lookup_mut(&mut layered.table, &key).ok_or_else(|| ConfigError::Key {
            key: key.clone(),
            origin: origin.to_owned(),
            message: "unknown setting (see config/default.toml for every key)".into(),
        })?;
        match (slot, value) {
            (Value::Table(_), Value::Table(inner)) => merge(layered, inner, &key, origin)?,
            (slot, value) => {
                *slot = value;
                layered.origins.push((key, origin.to_owned()));
            }
        }
    }
    Ok(())
}

fn lookup_mut<'t>(table: &'t mut Table, dotted: &str) -> Option<&'t mut Value> {
    let mut parts = dotted.split('.');
    let mut current = table.get_mut(parts.next()?)?;
    for part in parts {
        current = current.as_table_mut()?.get_mut(part)?;
    }
    Some(current)
}

/// `HELPDESK_EMAIL__IMAP__PORT=143` sets `email.imap.port`; the value is read as the type the
/// default has, so a password of digits stays a string.
fn apply_env(layered: &mut Layered, name: &str, raw: String) -> Result<(), ConfigError> {
    let key = name[ENV_PREFIX.len()..]
        .to_ascii_lowercase()
        .replace("__", ".");
    let origin = format!("environment variable {name}");
    let fail = |message: String| ConfigError::Key {
        key: key.clone(),
        origin: origin.clone(),
        message,
    };
    let slot = lookup_mut(&mut layered.table, &key)
        .ok_or_else(|| fail("unknown setting (see config/default.toml for every key)".into()))?;
    let value = match slot {
        Value::String(_) => Value::String(raw),
        Value::Integer(_) => Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| fail(format!("{raw:?} is not a whole number")))?,
        ),
        Value::Boolean(_) => Value::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(fail(format!("{raw:?} is not true or false"))),
        }),
        Value::Table(_) => return Err(fail("is a section; set one of its keys".into())),
        other => {
            return Err(fail(format!(
                "cannot be set from the environment (a {})",
                other.type_str()
            )));
        }
    };
    *slot = value;
    layered.origins.push((key, origin));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_text(text: &str, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("helpdesk.toml");
        std::fs::write(&path, text).expect("write settings");
        Settings::load_from(Some(&path), env(vars))
    }

    #[test]
    fn defaults_load_and_use_embedded_sqlite() {
        let settings = Settings::load_from(None, env(&[])).expect("defaults are valid");
        assert_eq!(settings.database.url, "sqlite://data/helpdesk.db");
        assert_eq!(settings.web.listen.port(), 8080);
        assert_eq!(settings.email.imap.tls, Tls::Tls);
        assert!(!settings.email.enabled);
    }

    #[test]
    fn file_then_environment_override_defaults() {
        let settings = load_text(
            "[database]\nurl = \"postgres://db/helpdesk\"\n[email.imap]\nport = 143\n",
            &[
                ("HELPDESK_EMAIL__IMAP__PORT", "1143"),
                ("HELPDESK_EMAIL__IMAP__PASSWORD", "12345"),
                ("HELPDESK_TELEGRAM__ENABLED", "no"),
                ("OTHER_VARIABLE", "ignored"),
            ],
        )
        .expect("valid settings");
        assert_eq!(settings.database.url, "postgres://db/helpdesk");
        assert_eq!(settings.email.imap.port, 1143);
        assert_eq!(settings.email.imap.password, "12345");
        assert!(!settings.telegram.enabled);
    }

    #[test]
    fn telegram_webhook_mode_needs_a_url_and_a_secret_telegram_accepts() {
        let webhook = |url: &str, secret: &str| {
            load_text(
                "[telegram]\nenabled = true\ntoken = \"1:x\"\nmode = \"webhook\"\n",
                &[
                    ("HELPDESK_TELEGRAM__WEBHOOK_URL", url),
                    ("HELPDESK_TELEGRAM__WEBHOOK_SECRET", secret),
                ],
            )
        };
        let settings = webhook("https://help.example.org/telegram/webhook", "s3cret_-X")
            .expect("valid webhook settings");
        assert_eq!(settings.telegram.mode, TelegramMode::Webhook);
        assert_eq!(settings.telegram.webhook_listen.port(), 8088);
        let error = webhook("", "s3cret").unwrap_err().to_string();
        assert!(error.contains("`telegram.webhook_url`"), "{error}");
        let error = webhook("https://help.example.org/hook", "not secret!")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`telegram.webhook_secret`"), "{error}");
        let error = load_text("[telegram]\nmode = \"push\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("`telegram.mode`"), "{error}");
    }

    #[test]
    fn a_wrong_type_names_the_key_and_its_origin() {
        let error = load_text("[email.imap]\nport = \"imap\"\n", &[]).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("`email.imap.port`"), "{message}");
        assert!(message.contains("helpdesk.toml"), "{message}");

        let error = Settings::load_from(None, env(&[("HELPDESK_WEB__LISTEN", "localhost")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("`web.listen`"), "{error}");
        assert!(error.contains("HELPDESK_WEB__LISTEN"), "{error}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let error = load_text("[email]\nadress = \"x@y\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`email.adress`") && error.contains("unknown"),
            "{error}"
        );

        let error = Settings::load_from(None, env(&[("HELPDESK_NOPE", "1")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("`nope`"), "{error}");

        let error = load_text("[database]\nurl = \"mysql://x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("`database.url`"), "{error}");

        let error = load_text("[email.imap]\ntls = \"ssl\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`email.imap.tls`") && error.contains("starttls"),
            "{error}"
        );

        let error = Settings::load_from(None, env(&[("HELPDESK_EMAIL__ENABLED", "true")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("`email.imap.host`"), "{error}");
    }

    #[test]
    fn sla_targets_and_business_hours_are_read_and_checked() {
        let settings = Settings::load_from(
            None,
            env(&[("HELPDESK_SLA__FIRST_RESPONSE_MINUTES__URGENT", "15")]),
        )
        .expect("valid");
        assert_eq!(settings.sla.first_response_minutes.urgent, 15);
        let hours = settings.workflow.business_hours().expect("valid hours");
        assert_eq!(hours.days.len(), 5);
        let error = load_text("[workflow]\nbusiness_hours = \"17:00-09:00\"\n", &[]).unwrap_err();
        assert!(
            error.to_string().contains("`workflow.business_hours`"),
            "{error}"
        );
        let error = load_text(
            "[workflow]\nbusiness_days = [\"monday\", \"funday\"]\n",
            &[],
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("`workflow.business_days`"),
            "{error}"
        );
        let error =
            Settings::load_from(None, env(&[("HELPDESK_SLA__RESOLUTION_MINUTES__LOW", "0")]))
                .unwrap_err();
        assert!(
            error.to_string().contains("`sla.resolution_minutes`"),
            "{error}"
        );
    }

    #[test]
    fn the_default_department_is_a_name_or_empty() {
        let settings = Settings::load_from(None, env(&[])).expect("defaults");
        assert_eq!(settings.workflow.default_department(), Some("General"));
        let off = Settings::load_from(None, env(&[("HELPDESK_WORKFLOW__DEFAULT_DEPARTMENT", "")]))
            .expect("empty turns it off");
        assert_eq!(off.workflow.default_department(), None);
        let error = load_text("[workflow]\ndefault_department = \" Support\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("`workflow.default_department`"), "{error}");
    }

    #[test]
    fn a_stranger_naming_a_ticket_opens_a_new_one_unless_set_to_join() {
        use crate::intake::UnknownSenderTag;
        let settings = Settings::load_from(None, env(&[])).expect("defaults");
        assert_eq!(
            settings.intake.unknown_sender_tag,
            UnknownSenderTag::NewTicket
        );
        let join = Settings::load_from(
            None,
            env(&[("HELPDESK_INTAKE__UNKNOWN_SENDER_TAG", "join")]),
        )
        .expect("join");
        assert_eq!(join.intake.unknown_sender_tag, UnknownSenderTag::Join);
        let error = load_text("[intake]\nunknown_sender_tag = \"hold\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("`intake.unknown_sender_tag`"), "{error}");
    }

    #[test]
    fn syntax_errors_and_missing_files_are_clear() {
        let error = load_text("[database\n", &[]).unwrap_err().to_string();
        assert!(error.contains("not valid TOML"), "{error}");
        let error = Settings::load_from(Some(Path::new("/nonexistent/helpdesk.toml")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/helpdesk.toml"), "{error}");
    }
}
