//! helpdesk's integration tests, in one binary so a change links one test executable, not one
//! per area. Run one area with a module filter: `cargo test --test integration email::`.
//!
//! Tests that run on every store are written with `store_test!` (tests/macros.rs): SQLite
//! always, PostgreSQL when `DATABASE_URL` names a server (required under `CI=true`).

#[macro_use]
mod macros;

// Shared setup: stores per backend, the web app in process, the binary, headless Chromium.
mod support;

// People's accounts: passwords, disabling, agents without a department.
mod accounts;
// Attachment contents in S3-compatible storage shared by two instances; outages; migration.
mod attachments;
// The JSON API, webhooks, /metrics and /readyz.
mod api;
// The `helpdesk` binary's one-shot commands as operators use them.
mod cli;
// Several `serve` instances on one PostgreSQL: one holder per channel consumer, failover.
mod cluster;
// Mail in, a Telegram answer out, threaded back into the customer's mail client.
mod cross_channel;
// Replies delivered on the customer's channel through the job queue, with retries.
mod delivery;
// The Discord channel end to end against the fake Discord of testkit.
mod discord;
// The email channel: real IMAP (Dovecot) and SMTP, automatic replies, a whole mailbox.
mod email;
// `helpdesk import csv`.
mod import_csv;
// Intake: tickets, threading, duplicates, attachments, bad input.
mod intake;
// The job queue: outbox relay, rules, assignment strategies, workers.
mod jobs;
// The database failing and coming back, under the real binary.
mod outages;
// `helpdesk serve` processes killed and restarted, and two of them on one database.
mod processes;
// The ticket list's full-text search on a large table.
mod search;
// Pooled PostgreSQL connections left behind by cancelled requests.
mod store;
// SLA escalation and auto-close on a controlled clock.
mod sla;
// Satisfaction surveys: who is asked, and the mail survey's links.
mod surveys;
// The Telegram channel end to end against the fake Bot API of testkit.
mod telegram;
// The web pages over HTTP in process.
mod web;
// The web pages in headless Chromium (skipped without chromedriver unless CI=true).
mod web_browser;
// Agents told by chat and mail: preferences, mentions, assignments, customer replies, SLA.
mod notices;
// Reports: figures from the history, per grouping and per person, CSV and SVG charts.
mod reports;
