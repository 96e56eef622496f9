//! The job queue on every backend: outbox relay, rules, assignment strategies, workers.

fn test_settings() -> helpdesk::jobs::JobSettings {
    helpdesk::jobs::JobSettings::from_settings(
        &helpdesk::config::Settings::load_from(None, Vec::new()).expect("default settings"),
    )
}

/// The default settings with a Telegram group as the agents' place, so new and assigned
/// tickets are announced.
fn settings_with_place() -> helpdesk::jobs::JobSettings {
    let mut settings = test_settings();
    settings.agents_places = vec![helpdesk::helpdesk_channel::Identity {
        channel: helpdesk::helpdesk_channel::ChannelKind::Telegram,
        address: "-100123".into(),
        display_name: None,
        handle: None,
    }];
    settings
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{TestStore, mail};
use chrono::Utc;
use helpdesk::domain::TicketId;
use helpdesk::domain::rules::{Action, Condition};
use helpdesk::domain::{AssignmentStrategy, Priority, Role};
use helpdesk::intake::Outcome;
use helpdesk::jobs::{self, Job, assign::Assigned};
use helpdesk::store::agents::NewAgent;
use helpdesk::store::rules::NewRule;
use helpdesk::store::{self, Store};

mod routing;
mod workers;

async fn department(store: &Store, name: &str, strategy: AssignmentStrategy) -> i64 {
    store::agents::create_department(store, name, strategy, Utc::now())
        .await
        .expect("department")
        .id
}

async fn agent(store: &Store, email: &str, departments: &[i64], limit: Option<i64>) -> i64 {
    store::agents::create_agent(
        store,
        &NewAgent {
            email,
            name: email.split('@').next().unwrap_or(email),
            role: Role::Agent,
            password_hash: Some(crate::support::web::password_hash()),
            department_ids: departments,
            identities: &[],
            max_open_tickets: limit,
        },
        Utc::now(),
    )
    .await
    .expect("agent")
}

async fn rule(
    store: &Store,
    name: &str,
    conditions: Vec<Condition>,
    actions: Vec<Action>,
    stop: bool,
) {
    store::rules::create(
        store,
        NewRule {
            name: name.to_owned(),
            enabled: true,
            conditions,
            actions,
            stop,
        },
        Utc::now(),
    )
    .await
    .expect("valid rule");
}

/// A rule named `name` that sends every ticket to `department`.
async fn route_all_to(store: &Store, name: &str, department: i64) {
    let actions = vec![Action::SetDepartment { department }];
    rule(store, name, vec![], actions, false).await;
}

async fn ticket(db: &TestStore, id: &str, from: &str, subject: &str) -> i64 {
    let raw = mail(
        &[
            &format!("From: {from}"),
            &format!("Subject: {subject}"),
            &format!("Message-ID: <{id}>"),
        ],
        "Hello",
    );
    match db.intake.accept_email(raw).await.expect("taken in") {
        Outcome::Created { number, .. } => number.get(),
        other => panic!("{other:?}"),
    }
}

async fn ticket_id(store: &Store, number: i64) -> TicketId {
    store::tickets::summary(store, number.into())
        .await
        .expect("read")
        .expect("exists")
        .id
}

async fn assign(db: &TestStore, number: i64) -> Assigned {
    let id = ticket_id(&db.store, number).await;
    let settings = test_settings();
    jobs::assign::assign_ticket(&db.store, id, &settings.routing(), Utc::now())
        .await
        .expect("assignment runs")
}
