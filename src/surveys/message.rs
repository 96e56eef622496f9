//! The survey's text: a mail with five links (text and HTML), or a chat line the buttons go
//! under.

use askama::Template;
use chrono::{DateTime, Utc};
use helpdesk_channel::ChannelKind;

use super::{RATINGS, SurveyConfig};
use crate::domain::TicketNumber;
use crate::store::StoreError;

/// What the survey is about.
pub(super) struct About<'a> {
    pub channel: ChannelKind,
    pub number: TicketNumber,
    pub subject: &'a str,
    pub customer_name: Option<&'a str>,
    pub token: &'a str,
    pub until: DateTime<Utc>,
}

#[derive(Template)]
#[template(path = "mail/survey.txt")]
struct SurveyText<'a> {
    customer_name: Option<&'a str>,
    number: TicketNumber,
    subject: &'a str,
    links: &'a [(i64, &'static str, String)],
    until: &'a str,
    support_address: &'a str,
}

#[derive(Template)]
#[template(path = "mail/survey.html")]
struct SurveyHtml<'a> {
    customer_name: Option<&'a str>,
    number: TicketNumber,
    subject: &'a str,
    links: &'a [(i64, &'static str, String)],
    until: &'a str,
    support_address: &'a str,
}

/// The link that records `rating` for the survey of `token`.
pub fn link(public_url: &str, token: &str, rating: i64) -> String {
    format!("{public_url}/survey/{token}?rating={rating}")
}

/// The survey's text and, for mail, its HTML.
pub(super) fn render(
    config: &SurveyConfig,
    about: &About<'_>,
) -> Result<(String, Option<String>), StoreError> {
    let until = about.until.format("%Y-%m-%d").to_string();
    if about.channel != ChannelKind::Email {
        let text = format!(
            "Your ticket #{} ({}) was resolved. How satisfied are you with our help? Press a \
             rating from 1 (not at all) to 5 (very); you can change it until {until}.",
            about.number, about.subject
        );
        return Ok((text, None));
    }
    let links: Vec<(i64, &'static str, String)> = RATINGS
        .iter()
        .map(|(rating, label)| {
            (
                *rating,
                *label,
                link(&config.public_url, about.token, *rating),
            )
        })
        .collect();
    let text = SurveyText {
        customer_name: about.customer_name,
        number: about.number,
        subject: about.subject,
        links: &links,
        until: &until,
        support_address: &config.support_address,
    }
    .render()?;
    let html = SurveyHtml {
        customer_name: about.customer_name,
        number: about.number,
        subject: about.subject,
        links: &links,
        until: &until,
        support_address: &config.support_address,
    }
    .render()?;
    Ok((text, Some(html)))
}
