//! `helpdesk seed`: demo data for a first look — departments, routing rules, agents who can sign
//! in, and generated tickets taken in through the same intake as real mail, then routed and
//! assigned as `serve` would.

use chrono::Utc;

use crate::corpus::{self, CorpusSpec};
use crate::domain::rules::{Action, Condition};
use crate::domain::{AssignmentStrategy, Priority, Role, Status};
use crate::intake::{Intake, IntakeError, Outcome};
use crate::jobs::JobSettings;
use crate::store::agents::NewAgent;
use crate::store::rules::NewRule;
use crate::store::tickets::Actor;
use crate::store::{self, StoreError};

#[derive(Debug, Default, serde::Serialize)]
pub struct SeedReport {
    pub departments_created: usize,
    pub agents_created: usize,
    pub rules_created: usize,
    pub tickets_created: usize,
    pub tickets_assigned: usize,
    pub messages: usize,
    /// Demo agents given a new password by this run: shown once, stored only hashed.
    pub sign_ins: Vec<DemoSignIn>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoSignIn {
    pub email: String,
    pub name: String,
    pub departments: String,
    pub password: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error(transparent)]
    Password(#[from] crate::auth::PasswordError),
    #[error(transparent)]
    Account(#[from] crate::accounts::AccountError),
}

/// "General" is normally there already: it is the default department of a fresh database.
const DEPARTMENTS: &[(&str, AssignmentStrategy)] = &[
    ("General", AssignmentStrategy::LeastOpen),
    ("Billing", AssignmentStrategy::LeastOpen),
    ("Technical", AssignmentStrategy::RoundRobin),
];

const AGENTS: &[(&str, &str, &[&str])] = &[
    ("demo.agent1@helpdesk.example", "Dana Demo", &["General"]),
    ("demo.agent2@helpdesk.example", "Sam Sample", &["Billing"]),
    ("demo.agent3@helpdesk.example", "Toni Test", &["Technical"]),
    (
        "demo.agent4@helpdesk.example",
        "Kim Keen",
        &["General", "Technical"],
    ),
];

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|word| (*word).to_owned()).collect()
}

/// The demo routing: priorities first (they do not stop), then departments by topic; what
/// no rule routes goes to the default department.
fn demo_rules(billing: i64, technical: i64) -> Vec<NewRule> {
    let rule = |name: &str, conditions, actions, stop| NewRule {
        name: name.to_owned(),
        enabled: true,
        conditions,
        actions,
        stop,
    };
    vec![
        rule(
            "Demo: a blocked team is urgent",
            vec![Condition::TextContains {
                any: words(&["blocking our whole team"]),
            }],
            vec![Action::SetPriority {
                priority: Priority::Urgent,
            }],
            false,
        ),
        rule(
            "Demo: deadlines are high",
            vec![Condition::TextContains {
                any: words(&["as soon as possible", "before the end of the month"]),
            }],
            vec![Action::SetPriority {
                priority: Priority::High,
            }],
            false,
        ),
        rule(
            "Demo: slowness is low",
            vec![Condition::SubjectContains {
                any: words(&["is very slow"]),
            }],
            vec![Action::SetPriority {
                priority: Priority::Low,
            }],
            false,
        ),
        rule(
            "Demo: money to Billing",
            vec![Condition::SubjectContains {
                any: words(&["invoice", "refund", "license", "charged twice"]),
            }],
            vec![
                Action::SetDepartment {
                    department: billing,
                },
                Action::AddTags {
                    tags: words(&["billing"]),
                },
            ],
            true,
        ),
        rule(
            "Demo: devices to Technical",
            vec![Condition::SubjectContains {
                any: words(&[
                    "printer",
                    "vpn",
                    "laptop",
                    "router",
                    "backup",
                    "mailbox",
                    "mobile app",
                ]),
            }],
            vec![Action::SetDepartment {
                department: technical,
            }],
            true,
        ),
    ]
}

/// A password for a demo agent: 16 random hex digits.
fn demo_password() -> Result<String, StoreError> {
    Ok(store::sessions::random_token()?[..16].to_owned())
}

/// Adds what is missing of the demo departments, rules (only into a helpdesk without rules)
/// and agents, and `tickets` generated conversations, which are routed and assigned at once.
/// Demo agents without a password get one, reported once in the result.
pub async fn seed(
    intake: &Intake,
    tickets: usize,
    jobs: &JobSettings,
) -> Result<SeedReport, SeedError> {
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
    let department_id = |name: &'static str| async move {
        store::agents::department_by_name(store, name)
            .await?
            .map(|department| department.id)
            .ok_or_else(|| StoreError::NotFound(format!("no department {name}")))
    };
    if store::rules::list(store).await?.is_empty() {
        let rules = demo_rules(
            department_id("Billing").await?,
            department_id("Technical").await?,
        );
        for rule in rules {
            store::rules::create(store, rule, now).await?;
            report.rules_created += 1;
        }
    }
    let existing = store::agents::list_agents(store).await?;
    for (email, name, departments) in AGENTS {
        let known = existing.iter().find(|agent| agent.email == *email);
        if known.is_some_and(|agent| agent.has_password || !agent.active) {
            continue;
        }
        // A new demo agent, or one an earlier seed left without a password: nobody gets
        // tickets they could not sign in to answer.
        let password = demo_password()?;
        match known {
            Some(agent) => {
                crate::accounts::set_password(store, agent.id, &password, None).await?;
            }
            None => {
                let hash = crate::auth::hash_password(&password)?;
                let mut department_ids = Vec::new();
                for department in *departments {
                    department_ids.push(department_id(department).await?);
                }
                store::agents::create_agent(
                    store,
                    &NewAgent {
                        email,
                        name,
                        role: Role::Agent,
                        password_hash: Some(&hash),
                        department_ids: &department_ids,
                        identities: &[],
                        max_open_tickets: None,
                    },
                    now,
                )
                .await?;
                report.agents_created += 1;
            }
        }
        report.sign_ins.push(DemoSignIn {
            email: (*email).to_owned(),
            name: (*name).to_owned(),
            departments: departments.join(", "),
            password,
        });
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
    // Route and assign now, as the job queue of `serve` would (notifications and SLA timers
    // wait in the queue for it).
    while crate::jobs::relay_outbox(store, jobs, 200).await? > 0 {}
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
        let assigned = store::tickets::summary(store, *number)
            .await?
            .is_some_and(|ticket| ticket.assignee.is_some());
        if assigned {
            report.tickets_assigned += 1;
        }
    }
    Ok(report)
}
