//! Satisfaction surveys: who is asked and who never is (store level, every backend), and a
//! mail survey end to end: resolved, mailed through a real SMTP conversation, answered by its
//! links against the running web server. The chat surveys are in `telegram::surveys` and
//! `discord::surveys`.

use crate::support::{self, TestStore, mail};
use chrono::{DateTime, Utc};
use helpdesk::config::Settings;
use helpdesk::domain::Status;
use helpdesk::intake::Outcome;
use helpdesk::ops::{ChangedBy, TicketChange};
use helpdesk::store::{self, Store};
use helpdesk::surveys::{Offered, SurveyConfig};

mod mail_links;
mod who_is_asked;

fn config() -> SurveyConfig {
    SurveyConfig::from_settings(&Settings::load_from(None, Vec::new()).expect("defaults"))
}

/// A mail from `from` that opens a ticket; its number and id.
async fn mailed_ticket(db: &TestStore, from: &str, id: &str, extra: &[&str]) -> (i64, i64) {
    let mut headers = vec![
        format!("From: {from}"),
        "Subject: Printer on fire".to_owned(),
        format!("Message-ID: <{id}>"),
    ];
    headers.extend(extra.iter().map(|header| (*header).to_owned()));
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let Outcome::Created { number, .. } = db
        .intake
        .accept_email(mail(&headers, "Help!"))
        .await
        .expect("taken in")
    else {
        panic!("a new ticket");
    };
    let facts = store::views::ticket_facts(&db.store, number)
        .await
        .expect("ticket read")
        .expect("ticket");
    (number.get(), facts.id.0)
}

/// Sets ticket `number`'s status as agent `agent_id` would.
async fn set_status(store: &Store, number: i64, agent_id: i64, status: Status) {
    let changed = helpdesk::ops::apply(
        store,
        number.into(),
        ChangedBy {
            agent_id,
            now: Utc::now(),
        },
        &TicketChange {
            status: Some(status),
            ..TicketChange::default()
        },
    )
    .await
    .expect("status set");
    assert!(changed, "#{number} becomes {status:?}");
}

/// How many surveys ticket `ticket_id` has (0 or 1).
async fn surveys_of(store: &Store, ticket_id: i64) -> usize {
    usize::from(
        store::surveys::of_ticket(store, ticket_id.into())
            .await
            .expect("survey read")
            .is_some(),
    )
}

/// Runs one statement with two bound values, on either backend.
async fn execute(store: &Store, sql: &'static str, at: DateTime<Utc>, id: i64) {
    match store {
        Store::Sqlite { writer, .. } => sqlx::query(sql)
            .bind(at)
            .bind(id)
            .execute(writer)
            .await
            .map(|done| done.rows_affected()),
        Store::Postgres { pool } => sqlx::query(sql)
            .bind(at)
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()),
    }
    .expect("statement runs");
}

fn queued(offered: &Offered) -> bool {
    matches!(offered, Offered::Queued { .. })
}
