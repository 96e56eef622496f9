//! Customer satisfaction surveys: when a ticket is resolved its customer is asked once, on
//! their own channel, for a rating from 1 to 5.
//!
//! - Deciding and storing ([`offer_in`], run by `jobs::survey`, which queues the delivery): never for tickets an automatic
//!   message opened, merged tickets, departments or settings that turned surveys off, or mail
//!   addresses that cannot answer; at most one survey per ticket (the table's key). The survey
//!   is an automatic message of the ticket, delivered (with retries) like any reply: by mail
//!   threaded into the conversation, so the customer sees what it is about (marked
//!   Auto-Submitted, and not a response: status and first-response time stay as they are); on
//!   chat with five buttons ([`choices`]).
//! - Answers: a mail link carries a signed token per ticket ([`token`], HMAC-SHA256 under a
//!   server key kept in the database), a chat button its ticket and rating, checked against
//!   who pressed it ([`record_choice`]). A second answer changes the rating; each answer is a
//!   `rated` history event (and so a `ticket.rated` webhook).

mod message;

use chrono::{DateTime, Duration, Utc};
use helpdesk_channel::{ChannelKind, Choice, ChoiceMade};
use hmac::{Hmac, Mac};
use regex::Regex;
use sha2::Sha256;

use crate::domain::TicketId;
use crate::store::surveys::{self, NewSurvey, Survey, TicketFacts};
use crate::store::tickets::{Actor, NewEvent, record_event};
use crate::store::{self, Store, StoreError, Tx};

/// The name of the key survey links are signed with.
const KEY_NAME: &str = "survey-links";
/// Hex characters of the MAC a token carries (128 bits).
const MAC_HEX: usize = 32;
/// What a chat button's data starts with.
const CHOICE_PREFIX: &str = "survey:";
/// The longest comment kept, in characters.
pub const MAX_COMMENT_CHARS: usize = 4000;

/// The ratings and what they mean.
pub const RATINGS: [(i64, &str); 5] = [
    (1, "not at all satisfied"),
    (2, "not satisfied"),
    (3, "neither"),
    (4, "satisfied"),
    (5, "very satisfied"),
];

/// What sending surveys needs from the settings.
#[derive(Debug, Clone)]
pub struct SurveyConfig {
    /// `[surveys] enabled`.
    pub enabled: bool,
    /// How long a survey can be answered.
    pub valid_for: Duration,
    /// `web.public_url`, where the mail's links point.
    pub public_url: String,
    /// Our own address (never surveyed; its domain names the mail's Message-ID).
    pub support_address: String,
    /// Addresses that never get automatic mail (`email.never_answer`).
    pub never_to: Option<Regex>,
}

impl SurveyConfig {
    pub fn from_settings(settings: &crate::config::Settings) -> SurveyConfig {
        SurveyConfig {
            enabled: settings.surveys.enabled,
            valid_for: Duration::days(i64::from(settings.surveys.valid_days)),
            public_url: settings.web.public_url.trim_end_matches('/').to_owned(),
            support_address: settings.email.address.clone(),
            // Validated when the settings were loaded.
            never_to: settings.email.never_answer_regex().ok(),
        }
    }
}

/// Why ticket `facts` gets no survey, if it gets none.
pub fn reason_not_to_ask(config: &SurveyConfig, facts: &TicketFacts) -> Option<&'static str> {
    if !config.enabled {
        return Some("surveys are turned off ([surveys] enabled)");
    }
    if facts.merged_into_ticket_id.is_some() {
        return Some("the ticket was merged into another");
    }
    if !matches!(facts.status.as_str(), "resolved" | "closed") {
        return Some("the ticket is no longer resolved");
    }
    if facts.opened_by_automatic {
        return Some("an automatic message opened the ticket");
    }
    if facts.department_surveys == Some(false) {
        return Some("surveys are turned off for the ticket's department");
    }
    let Some(address) = facts.address.as_deref() else {
        return Some("the customer has no address on the ticket's channel");
    };
    match facts.channel.as_str() {
        "email" => {
            let address = address.to_lowercase();
            if address == config.support_address.to_lowercase()
                || !address.contains('@')
                || config
                    .never_to
                    .as_ref()
                    .is_some_and(|never| never.is_match(&address))
            {
                return Some("the address cannot answer");
            }
            None
        }
        "telegram" | "discord" => None,
        _ => Some("the ticket's channel has no way to ask"),
    }
}

/// What [`offer`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    /// The survey and its message are stored (and the message's delivery queued by
    /// `jobs::survey::offer`).
    Queued { message_id: i64 },
    /// No survey, and why.
    Skipped(&'static str),
}

/// The key survey links are signed with, made on first use.
pub async fn link_key(store: &Store, now: DateTime<Utc>) -> Result<String, StoreError> {
    surveys::signing_key(store, KEY_NAME, now).await
}

/// Asks the customer of ticket `ticket_id` for a rating, if they may be asked: stores the
/// survey and its message in `tx`, signing its links with `key`. Queueing the message's
/// delivery in the same transaction is the caller's part (`jobs::survey`); after
/// [`Offered::Skipped`] nothing needs to be kept.
pub async fn offer_in(
    tx: &mut Tx,
    config: &SurveyConfig,
    key: &str,
    ticket_id: TicketId,
    now: DateTime<Utc>,
) -> Result<Offered, StoreError> {
    let facts = surveys::ticket_facts(tx, ticket_id).await?;
    let skipped = match &facts {
        None => Some("there is no such ticket"),
        Some(facts) => reason_not_to_ask(config, facts),
    };
    let (Some(facts), None) = (facts, skipped) else {
        return Ok(Offered::Skipped(skipped.unwrap_or_default()));
    };
    let channel: ChannelKind =
        facts
            .channel
            .parse()
            .map_err(|error: helpdesk_channel::UnknownChannel| {
                StoreError::Invalid(error.to_string())
            })?;
    let expires_at = now + config.valid_for;
    let inserted = surveys::insert(
        tx,
        &NewSurvey {
            ticket_id,
            channel: channel.as_str(),
            agent_id: facts.assignee_id,
            department_id: facts.department_id,
            sent_at: now,
            expires_at,
        },
    )
    .await?;
    if !inserted {
        return Ok(Offered::Skipped("the customer was asked before"));
    }
    let (text, html) = message::render(
        config,
        &message::About {
            channel,
            number: facts.number,
            subject: &facts.subject,
            customer_name: facts.customer_name.as_deref(),
            token: &token(key, ticket_id),
            until: expires_at,
        },
    )?;
    let external_id = (channel == ChannelKind::Email)
        .then(|| crate::domain::new_mail_message_id(&config.support_address, facts.number));
    let message_id = store::outbound::add_automatic(
        tx,
        &store::outbound::NewAutomatic {
            ticket_id,
            channel,
            external_id: external_id.as_deref(),
            text: &text,
            html: html.as_deref(),
            now,
        },
    )
    .await?;
    surveys::set_message(tx, ticket_id, message_id).await?;
    record_event(
        tx,
        &NewEvent {
            ticket_id,
            actor: Actor::System,
            kind: "survey_sent",
            old_value: None,
            new_value: Some(channel.as_str()),
            reason: None,
            at: now,
        },
    )
    .await?;
    Ok(Offered::Queued { message_id })
}

fn mac(key: &str, ticket_id: TicketId) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(format!("survey:{ticket_id}").as_bytes());
    mac
}

/// The token of ticket `ticket_id`'s survey links: its id and a MAC of it under `key`.
pub fn token(key: &str, ticket_id: TicketId) -> String {
    let digest = hex::encode(mac(key, ticket_id).finalize().into_bytes());
    format!("{ticket_id}.{}", &digest[..MAC_HEX])
}

/// The ticket a token is for, if `key` signed it.
pub fn verify(key: &str, token: &str) -> Option<TicketId> {
    let (id, given) = token.split_once('.')?;
    let ticket_id = id.parse::<i64>().ok().filter(|id| *id > 0).map(TicketId)?;
    if given.len() != MAC_HEX {
        return None;
    }
    let given = hex::decode(given).ok()?;
    mac(key, ticket_id)
        .verify_truncated_left(&given)
        .ok()
        .map(|()| ticket_id)
}

/// The ticket a survey link's token is for, checked against the server's key.
pub async fn ticket_of_token(store: &Store, token: &str) -> Result<Option<TicketId>, StoreError> {
    let key = surveys::signing_key(store, KEY_NAME, Utc::now()).await?;
    Ok(verify(&key, token))
}

/// The buttons of a chat survey: the five ratings of ticket `ticket_id`.
pub fn choices(ticket_id: TicketId) -> Vec<Choice> {
    RATINGS
        .iter()
        .map(|(rating, _)| Choice {
            label: format!("{rating} ★"),
            data: format!("{CHOICE_PREFIX}{ticket_id}:{rating}"),
        })
        .collect()
}

/// The ticket and rating a chat button's data names.
pub fn parse_choice(data: &str) -> Option<(TicketId, i64)> {
    let (ticket, rating) = data.strip_prefix(CHOICE_PREFIX)?.split_once(':')?;
    let rating: i64 = rating.parse().ok().filter(|r| (1..=5).contains(r))?;
    Some((TicketId(ticket.parse().ok()?), rating))
}

/// What an answer came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded, replacing this rating (if there was one).
    Rated { previous: Option<i64> },
    /// The survey can no longer be answered.
    Expired,
    /// No survey was sent for this ticket.
    NoSurvey,
}

/// Whether `survey` can still be answered at `now`.
pub fn open(survey: &Survey, now: DateTime<Utc>) -> bool {
    now < survey.expires_at
}

/// Records `rating` (1-5) for ticket `ticket_id`'s survey at `now`.
pub async fn record_rating(
    store: &Store,
    ticket_id: TicketId,
    rating: i64,
    now: DateTime<Utc>,
) -> Result<Recorded, StoreError> {
    let Some(survey) = surveys::of_ticket(store, ticket_id).await? else {
        return Ok(Recorded::NoSurvey);
    };
    if !open(&survey, now) {
        return Ok(Recorded::Expired);
    }
    let mut tx = store.begin_write().await?;
    let previous = surveys::rate(&mut tx, &survey, rating, now).await?;
    tx.commit().await?;
    Ok(Recorded::Rated { previous })
}

/// Keeps the customer's comment on ticket `ticket_id`'s survey (trimmed, at most
/// [`MAX_COMMENT_CHARS`]; blank removes it).
pub async fn record_comment(
    store: &Store,
    ticket_id: TicketId,
    comment: &str,
    now: DateTime<Utc>,
) -> Result<Recorded, StoreError> {
    let Some(survey) = surveys::of_ticket(store, ticket_id).await? else {
        return Ok(Recorded::NoSurvey);
    };
    if !open(&survey, now) {
        return Ok(Recorded::Expired);
    }
    let comment: String = comment.trim().chars().take(MAX_COMMENT_CHARS).collect();
    let comment = Some(comment.as_str()).filter(|comment| !comment.is_empty());
    let mut tx = store.begin_write().await?;
    surveys::comment(&mut tx, &survey, comment, now).await?;
    tx.commit().await?;
    Ok(Recorded::Rated {
        previous: survey.rating,
    })
}

/// Records a rating button pressed on chat and says what came of it, in a line for the
/// presser. Only the ticket's customer, on the survey's channel, can rate.
pub async fn record_choice(
    store: &Store,
    choice: &ChoiceMade,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let Some((ticket_id, rating)) = parse_choice(&choice.data) else {
        return Ok(String::new());
    };
    let channel = choice.sender.channel.as_str();
    let survey = surveys::of_ticket(store, ticket_id).await?;
    let theirs = match &survey {
        Some(survey) if survey.channel == channel => {
            surveys::is_customer(store, ticket_id, channel, &choice.sender.address).await?
        }
        _ => false,
    };
    if !theirs {
        return Ok("This survey is not yours to answer.".to_owned());
    }
    Ok(match record_rating(store, ticket_id, rating, now).await? {
        Recorded::Rated { previous: None } => {
            format!("Thank you! Your rating {rating} of 5 is recorded.")
        }
        Recorded::Rated {
            previous: Some(previous),
        } if previous != rating => {
            format!("Thank you! Your rating is now {rating} of 5 (it was {previous}).")
        }
        Recorded::Rated { .. } => format!("Your rating {rating} of 5 is recorded already."),
        Recorded::Expired => "Sorry, this survey has expired.".to_owned(),
        Recorded::NoSurvey => "This survey is not yours to answer.".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_ticket_and_refuse_forgeries() {
        let token = token("server key", TicketId(42));
        assert_eq!(verify("server key", &token), Some(TicketId(42)));
        assert_eq!(verify("other key", &token), None);
        let forged = token.replacen("42.", "43.", 1);
        assert_eq!(verify("server key", &forged), None);
        assert_eq!(verify("server key", "42"), None);
        assert_eq!(verify("server key", "42.zz"), None);
        assert_eq!(verify("server key", &format!("{token}00")), None);
    }

    #[test]
    fn chat_buttons_carry_ticket_and_rating_within_telegrams_limit() {
        let choices = choices(TicketId(i64::MAX));
        assert_eq!(choices.len(), 5);
        for (choice, (rating, _)) in choices.iter().zip(RATINGS) {
            assert!(choice.data.len() <= 64, "{}", choice.data);
            assert_eq!(
                parse_choice(&choice.data),
                Some((TicketId(i64::MAX), rating))
            );
        }
        assert_eq!(parse_choice("survey:1:6"), None);
        assert_eq!(parse_choice("other:1:5"), None);
    }
}
