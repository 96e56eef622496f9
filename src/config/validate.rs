//! Checks across keys that the types alone cannot make: what an enabled channel needs, valid
//! hours and regular expressions.

use super::layers::Layered;
use super::{ConfigError, Settings, TelegramMode};

impl Settings {
    pub(super) fn validate(&self, layered: &Layered) -> Result<(), ConfigError> {
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
        let otlp = self.telemetry.otlp_endpoint.trim();
        let otlp_valid = otlp.is_empty()
            || ((otlp.starts_with("http://") || otlp.starts_with("https://"))
                && reqwest::Url::parse(otlp).is_ok_and(|url| url.host().is_some()));
        if !otlp_valid {
            return Err(fail(
                "telemetry.otlp_endpoint",
                format!(
                    "{otlp:?} must be the collector's http:// or https:// base URL \
                     (traces go to its /v1/traces), or empty to export none"
                ),
            ));
        }
        if !(1..=365).contains(&self.surveys.valid_days) {
            return Err(fail("surveys.valid_days", "must be 1 to 365 days".into()));
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
            ("sla.next_response_minutes", self.sla.next_response_minutes),
        ] {
            if [minutes.low, minutes.normal, minutes.high, minutes.urgent]
                .iter()
                .any(|m| *m <= 0)
            {
                return Err(fail(key, "every target must be at least 1 minute".into()));
            }
        }
        if !(self.sla.warning_share > 0.0 && self.sla.warning_share < 1.0) {
            return Err(fail(
                "sla.warning_share",
                format!(
                    "{} must be above 0 and below 1 (0.8 warns when 80 % of a target's time has passed)",
                    self.sla.warning_share
                ),
            ));
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
        if self.email.enabled
            && let Err((key, message)) = super::mailboxes::check(&self.email)
        {
            return Err(ConfigError::Key {
                origin: layered.origin_of(&key),
                key,
                message,
            });
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
}
