//! Intake on every backend: tickets, threading, duplicates, attachments, bad input.

use crate::support;
use crate::support::{mail, stores};
use chrono::Utc;
use helpdesk::domain::Status;
use helpdesk::helpdesk_channel::{
    AutomationMarks, ChannelKind, Identity, InboundMessage, ThreadHints,
};
use helpdesk::ingest;
use helpdesk::intake::{Intake, Limits, Outcome};
use helpdesk::store::tickets::Actor;
use helpdesk::store::{self, Backend};

mod chat;
mod concurrency;
mod size_limit;
mod tags;
mod threading;
mod tickets;

fn first(id: &str, from: &str, subject: &str) -> Vec<u8> {
    mail(
        &[
            &format!("From: {from}"),
            "To: support@helpdesk.example",
            &format!("Subject: {subject}"),
            &format!("Message-ID: <{id}>"),
            "Date: Tue, 24 Nov 2026 10:00:00 +0000",
        ],
        "Hello, my printer is on fire.\r\n",
    )
}

fn reply(id: &str, in_reply_to: &str, references: &str, subject: &str) -> Vec<u8> {
    mail(
        &[
            "From: Ada Lovelace <ada@example.org>",
            &format!("Subject: {subject}"),
            &format!("Message-ID: <{id}>"),
            &format!("In-Reply-To: <{in_reply_to}>"),
            &format!("References: {references}"),
        ],
        "Any news?\r\n\r\n> Hello, my printer is on fire.\r\n",
    )
}

fn created(outcome: &Outcome) -> i64 {
    match outcome {
        Outcome::Created { number, .. } => number.get(),
        other => panic!("expected a new ticket, got {other:?}"),
    }
}

fn threaded(outcome: &Outcome) -> i64 {
    match outcome {
        Outcome::Threaded { number, .. } => number.get(),
        other => panic!("expected a threaded reply, got {other:?}"),
    }
}

fn prepared(db: &support::TestStore, raws: Vec<Vec<u8>>) -> Vec<helpdesk::intake::Prepared> {
    raws.into_iter()
        .map(|raw| db.intake.prepare_email(raw))
        .collect()
}

/// `raws` taken in as one batch (`accept_batch`); the outcomes in the order given.
async fn take_in_batch(db: &support::TestStore, raws: Vec<Vec<u8>>) -> Vec<Outcome> {
    db.intake
        .accept_batch(prepared(db, raws))
        .await
        .into_iter()
        .map(|outcome| outcome.expect("taken in"))
        .collect()
}

/// The ticket each message of the channel ended on, by external id.
async fn ticket_of_each_message(store: &store::Store) -> std::collections::HashMap<String, i64> {
    let sql = "SELECT m.external_id, t.number FROM messages m JOIN tickets t ON t.id = m.ticket_id
               WHERE m.external_id IS NOT NULL";
    let rows: Vec<(String, i64)> = match store {
        store::Store::Sqlite { pool, .. } => sqlx::query_as(sql).fetch_all(pool).await,
        store::Store::Postgres { pool } => sqlx::query_as(sql).fetch_all(pool).await,
    }
    .expect("messages");
    rows.into_iter().collect()
}

/// Tickets that go on: not merged into another.
async fn unmerged_tickets(store: &store::Store) -> i64 {
    let sql = "SELECT COUNT(*) FROM tickets WHERE merged_into_ticket_id IS NULL";
    match store {
        store::Store::Sqlite { pool, .. } => sqlx::query_scalar(sql).fetch_one(pool).await,
        store::Store::Postgres { pool } => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .expect("count")
}
