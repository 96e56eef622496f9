//! Local fakes of the chat platforms helpdesk talks to, for tests: the Telegram Bot API
//! ([`telegram::FakeTelegram`]) and Discord's REST API and gateway
//! ([`discord::FakeDiscord`]), written from the public API documents, so the real clients
//! can be pointed at them.

pub mod discord;
pub mod telegram;
