//! Servers helpdesk's tests talk to, so the real clients can be pointed at them: a throw-away
//! Dovecot ([`dovecot::Dovecot`]) and an SMTP sink in the test process ([`smtp::SmtpServer`])
//! for the email channel, and local fakes of the chat platforms written from their public API
//! documents: the Telegram Bot API ([`telegram::FakeTelegram`]) and Discord's REST API and
//! gateway ([`discord::FakeDiscord`]).

pub mod discord;
pub mod dovecot;
pub mod s3;
pub mod smtp;
pub mod telegram;
