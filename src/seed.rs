//! `helpdesk seed`: demo data for a first look — departments, agents and generated tickets taken
//! in through the same intake as real mail.

use chrono::Utc;

use crate::corpus::{self, CorpusSpec};
use crate::domain::{AssignmentStrategy, Role, Status};
use crate::intake::{Intake, IntakeError, Outcome};
use crate::store::agents::NewAgent;
use crate::store::tickets::Actor;
use crate::store::{self, StoreError};

#[derive(Debug, Default, serde::Serialize)]
pub struct SeedReport {
    pub departments_created: usize,
    pub agents_created: usize,
    pub tickets_created: usize,
    pub messages: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Intake(#[from] IntakeError),
}

const DEPARTMENTS: &[(&str, AssignmentStrategy)] = &[
    ("General", AssignmentStrategy::RoundRobin),
    ("Billing", AssignmentStrategy::LeastOpen),
    ("Technical", AssignmentStrategy::RoundRobin),
];

const AGENTS: &[(&str, &str, &str)] = &[
    ("demo.agent1@helpdesk.example", "Dana Demo", "General"),
    ("demo.agent2@helpdesk.example", "Sam Sample", "Billing"),
    ("demo.agent3@helpdesk.example", "Toni Test", "Technical"),
];

/// Adds what is missing of the demo departments and agents (agents without a password: they
/// can be given one later) and `tickets` generated conversations.
pub async fn seed(intake: &Intake, tickets: usize) -> Result<SeedReport, SeedError> {
    let store = intake.store();
    let now = Utc::now();
    let mut report = SeedReport::default();
    for (name, strategy) in DEPARTMENTS {
        if store::agents::department_by_name(store, name)
            .await?
            .is_none()
        {
            store::agents::create_department(store, name, *strategy, now).await?;
            report.departments_created += 1;
        }
    }
    let existing: Vec<String> = store::agents::list_agents(store)
        .await?
        .into_iter()
        .map(|agent| agent.email)
        .collect();
    for (email, name, department) in AGENTS {
        if existing.iter().any(|known| known == email) {
            continue;
        }
        let department_ids: Vec<i64> = store::agents::department_by_name(store, department)
            .await?
            .map(|department| department.id)
            .into_iter()
            .collect();
        store::agents::create_agent(
            store,
            &NewAgent {
                email,
                name,
                role: Role::Agent,
                password_hash: None,
                department_ids: &department_ids,
                identities: &[],
                max_open_tickets: Some(20),
            },
            now,
        )
        .await?;
        report.agents_created += 1;
    }

    // About a third of generated messages are replies, so twice as many messages start more
    // than `tickets` conversations; the rest are left out. A fresh seed value each run keeps
    // Message-IDs from colliding with earlier seeds.
    let spec = CorpusSpec {
        messages: tickets * 2,
        seed: now.timestamp_micros() as u64,
        ..CorpusSpec::default()
    };
    let mut created = Vec::new();
    for mail in corpus::generate(&spec) {
        if mail.thread >= tickets {
            continue;
        }
        match intake.accept_email(mail.raw).await? {
            Outcome::Created { number, .. } => {
                report.tickets_created += 1;
                report.messages += 1;
                created.push(number);
            }
            Outcome::Threaded { .. } | Outcome::Bounced { .. } => report.messages += 1,
            Outcome::Duplicate | Outcome::Rejected { .. } => {}
        }
    }
    // Spread the demo tickets over the workflow so every status has something to show.
    for (index, number) in created.iter().enumerate() {
        let path: &[Status] = match index % 10 {
            0..=3 => &[],
            4..=6 => &[Status::Open],
            7 => &[Status::Open, Status::Pending],
            8 => &[Status::Open, Status::Resolved],
            _ => &[Status::Open, Status::Resolved, Status::Closed],
        };
        for status in path {
            let mut tx = store.begin_write().await?;
            store::tickets::change_status(
                &mut tx,
                *number,
                *status,
                Actor::System,
                Some("demo data"),
                Utc::now(),
            )
            .await?;
            tx.commit().await?;
        }
    }
    Ok(report)
}
