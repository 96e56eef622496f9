//! What the jobs need from the settings, read once when the workers start.

use chrono::{NaiveTime, Offset, Utc, Weekday};

use super::assign;
use crate::domain::rules::BusinessHours;
use crate::domain::sla::SlaTargets;

/// Monday to Friday, 09:00–17:00 UTC, until business hours are a setting.
pub fn default_business_hours() -> BusinessHours {
    BusinessHours {
        days: vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ],
        start: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
        end: NaiveTime::from_hms_opt(17, 0, 0).unwrap_or_default(),
        offset: chrono::FixedOffset::east_opt(0).unwrap_or_else(|| Utc.fix()),
    }
}

/// What the workers need from the settings.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub hours: BusinessHours,
    /// Where agents are told about new, assigned and escalated tickets.
    pub agents_places: Vec<helpdesk_channel::Identity>,
    pub sla: SlaTargets,
    /// Resolved tickets close after this long without news; `None` = never.
    pub auto_close_after: Option<chrono::Duration>,
    /// Retries and timeout of webhook deliveries.
    pub webhooks: crate::config::WebhookSettings,
    /// Where tickets no rule routes go (`workflow.default_department`).
    pub default_department: Option<String>,
    /// Satisfaction surveys (`[surveys]`).
    pub surveys: crate::surveys::SurveyConfig,
    /// How people reach the pages (`web.public_url`), for the ticket links in notices.
    pub public_url: String,
}

impl JobSettings {
    pub fn from_settings(settings: &crate::config::Settings) -> JobSettings {
        let mut agents_places = Vec::new();
        if settings.telegram.enabled && settings.telegram.agents_chat_id != 0 {
            agents_places.push(helpdesk_channel::Identity {
                channel: helpdesk_channel::ChannelKind::Telegram,
                address: settings.telegram.agents_chat_id.to_string(),
                display_name: None,
                handle: None,
            });
        }
        if settings.discord.enabled && settings.discord.agents_channel_id != 0 {
            agents_places.push(helpdesk_channel::Identity {
                channel: helpdesk_channel::ChannelKind::Discord,
                address: settings.discord.agents_channel_id.to_string(),
                display_name: None,
                handle: None,
            });
        }
        JobSettings {
            agents_places,
            // Validated when the settings were loaded.
            hours: settings
                .workflow
                .business_hours()
                .unwrap_or_else(|_| default_business_hours()),
            sla: settings.sla.targets(),
            auto_close_after: (settings.workflow.auto_close_days > 0)
                .then(|| chrono::Duration::days(i64::from(settings.workflow.auto_close_days))),
            webhooks: settings.webhooks,
            default_department: settings.workflow.default_department().map(str::to_owned),
            surveys: crate::surveys::SurveyConfig::from_settings(settings),
            public_url: settings.web.public_url.clone(),
        }
    }

    /// What assignment needs of these settings.
    pub fn routing(&self) -> assign::Routing<'_> {
        assign::Routing {
            hours: &self.hours,
            default_department: self.default_department.as_deref(),
        }
    }
}
