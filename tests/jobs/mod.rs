//! The job queue on every backend: outbox relay, rules, assignment strategies, workers.


fn test_settings() -> helpdesk::jobs::JobSettings {
    helpdesk::jobs::JobSettings::from_settings(
        &helpdesk::config::Settings::load_from(None, Vec::new()).expect("default settings"),
    )
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use helpdesk::domain::rules::{Action, Condition};
use helpdesk::domain::{AssignmentStrategy, Priority, Role};
use helpdesk::intake::Outcome;
use helpdesk::jobs::{self, assign::Assigned};
use helpdesk::store::agents::NewAgent;
use helpdesk::store::rules::NewRule;
use helpdesk::store::{self, Store};
use crate::support::{TestStore, mail, stores};

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
            password_hash: None,
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
        Outcome::Created { number, .. } => number,
        other => panic!("{other:?}"),
    }
}

async fn ticket_id(store: &Store, number: i64) -> i64 {
    store::tickets::summary(store, number)
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

store_test! {
    #[tokio::test]
    async fn rules_route_tickets_and_strategies_share_them_fairly(db: TestStore) {
        let s = &db.store;
        let billing = department(s, "Billing", AssignmentStrategy::RoundRobin).await;
        let support = department(s, "Support", AssignmentStrategy::LeastOpen).await;
        let anna = agent(s, "anna@helpdesk.example", &[billing], None).await;
        let ben = agent(s, "ben@helpdesk.example", &[billing], Some(1)).await;
        let cleo = agent(s, "cleo@helpdesk.example", &[billing], None).await;
        agent(s, "dora@helpdesk.example", &[], None).await;
        rule(
            s,
            "VIP customers are urgent",
            vec![Condition::SenderDomain {
                any: vec!["vip.example".into()],
            }],
            vec![Action::SetPriority {
                priority: Priority::Urgent,
            }],
            false,
        )
        .await;
        rule(
            s,
            "Money goes to billing",
            vec![Condition::TextContains {
                any: vec!["invoice".into(), "refund".into()],
            }],
            vec![
                Action::SetDepartment {
                    department: billing,
                },
                Action::AddTags {
                    tags: vec!["money".into()],
                },
            ],
            true,
        )
        .await;
        rule(
            s,
            "Everything else to support",
            vec![],
            vec![Action::SetDepartment {
                department: support,
            }],
            false,
        )
        .await;

        let mut given = Vec::new();
        for n in 0..7 {
            let number = ticket(
                &db,
                &format!("inv{n}@x"),
                "c@vip.example",
                &format!("Invoice {n}"),
            )
            .await;
            given.push(assign(&db, number).await);
        }
        // Round robin over anna, ben, cleo; ben takes no second ticket (limit 1).
        assert_eq!(
            given,
            vec![
                Assigned::To { agent_id: anna },
                Assigned::To { agent_id: ben },
                Assigned::To { agent_id: cleo },
                Assigned::To { agent_id: anna },
                Assigned::To { agent_id: cleo },
                Assigned::To { agent_id: anna },
                Assigned::To { agent_id: cleo },
            ],
            "{:?}",
            db.backend()
        );
        let first = store::tickets::detail(s, 1001)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(first.summary.department.as_deref(), Some("Billing"));
        assert_eq!(first.summary.priority, "urgent");
        assert_eq!(first.summary.assignee.as_deref(), Some("anna"));
        let kinds: Vec<(&str, Option<&str>)> = first
            .history
            .iter()
            .map(|e| (e.kind.as_str(), e.new_value.as_deref()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("created", Some("new")),
                ("rule", Some("VIP customers are urgent")),
                ("rule", Some("Money goes to billing")),
                ("department", Some("Billing")),
                ("priority", Some("urgent")),
                ("assignee", Some("anna")),
            ]
        );
        let why = first
            .history
            .last()
            .and_then(|e| e.reason.clone())
            .expect("reason");
        assert!(
            why.starts_with("round robin: anna is next of 3 eligible agents"),
            "{why}"
        );

        // Support has no agents: the ticket waits, and says why, once.
        let other = ticket(&db, "other@x", "someone@example.org", "Printer").await;
        let waiting = assign(&db, other).await;
        assert_eq!(
            waiting,
            Assigned::Waiting {
                reason: "the department has no agents".into()
            }
        );
        assert_eq!(
            assign(&db, other).await,
            waiting,
            "asked again, still waiting"
        );
        let detail = store::tickets::detail(s, other)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(
            detail
                .history
                .iter()
                .filter(|e| e.kind == "unassigned")
                .count(),
            1
        );
        assert_eq!(detail.summary.department.as_deref(), Some("Support"));

        // An agent joins Support: the waiting ticket is picked up.
        let eva = agent(s, "eva@helpdesk.example", &[support], None).await;
        assert_eq!(
            jobs::assign::waiting(s, 10).await.expect("waiting"),
            vec![ticket_id(s, other).await]
        );
        assert_eq!(assign(&db, other).await, Assigned::To { agent_id: eva });
        assert_eq!(
            assign(&db, other).await,
            Assigned::Skipped,
            "already assigned"
        );
    }
}

store_test! {
    #[tokio::test]
    async fn the_outbox_is_relayed_exactly_once(db: TestStore) {
        for n in 0..3 {
            ticket(&db, &format!("r{n}@x"), "ada@example.org", "Hello").await;
        }
        let reply = mail(
            &[
                "From: ada@example.org",
                "Subject: Re: Hello",
                "Message-ID: <r9@x>",
                "In-Reply-To: <r0@x>",
            ],
            "more",
        );
        db.intake.accept_email(reply).await.expect("reply");
        assert_eq!(
            jobs::relay_outbox(&db.store, &test_settings(), 100)
                .await
                .expect("relay"),
            4
        );
        assert_eq!(
            jobs::relay_outbox(&db.store, &test_settings(), 100)
                .await
                .expect("relay again"),
            0
        );
        let queued = jobs::list(&db.store, Some("Pending"), 100)
            .await
            .expect("jobs");
        let count = |queue: &str| queued.iter().filter(|job| job.queue == queue).count();
        // Assignment ran in the relay: no job needed, and each new ticket was looked at once
        // (no rule routes these, so they go to the default department, which has nobody yet:
        // they wait there, saying why).
        assert_eq!(count(jobs::ASSIGN_QUEUE), 0, "{queued:?}");
        for number in 1001..=1003 {
            let ticket = store::tickets::detail(&db.store, number)
                .await
                .expect("read")
                .expect("exists");
            let looked_at = ticket
                .history
                .iter()
                .filter(|e| e.kind == "unassigned")
                .count();
            assert_eq!(looked_at, 1, "#{number}: {:?}", ticket.history);
            assert_eq!(ticket.summary.department.as_deref(), Some("General"));
        }
        assert_eq!(
            count(jobs::sla::SLA_QUEUE),
            6,
            "two SLA timers per new ticket"
        );
        assert!(queued.iter().all(|job| job.attempts == 0));
    }
}

store_test! {
    #[tokio::test]
    async fn tickets_no_rule_routes_go_to_the_default_department_and_its_agents(db: TestStore) {
        let s = &db.store;
        let general = store::agents::department_by_name(s, "General")
            .await
            .expect("read")
            .expect("a fresh database has the default department");
        assert_eq!(general.assignment_strategy, "least_open");
        let billing = department(s, "Billing", AssignmentStrategy::RoundRobin).await;
        let gil = agent(s, "gil@helpdesk.example", &[general.id], None).await;
        agent(s, "bo@helpdesk.example", &[billing], None).await;
        rule(
            s,
            "Invoices to billing",
            vec![Condition::SubjectContains {
                any: vec!["invoice".into()],
            }],
            vec![Action::SetDepartment {
                department: billing,
            }],
            true,
        )
        .await;

        let routed = ticket(&db, "d1@x", "ada@example.org", "Invoice 7").await;
        assert!(matches!(assign(&db, routed).await, Assigned::To { .. }));
        let detail = store::tickets::detail(s, routed)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(detail.summary.department.as_deref(), Some("Billing"));

        let unrouted = ticket(&db, "d2@x", "ada@example.org", "Printer").await;
        assert_eq!(assign(&db, unrouted).await, Assigned::To { agent_id: gil });
        let detail = store::tickets::detail(s, unrouted)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(detail.summary.department.as_deref(), Some("General"));
        let moved = detail
            .history
            .iter()
            .find(|e| e.kind == "department")
            .expect("the move is in the history");
        assert!(
            moved
                .reason
                .as_deref()
                .is_some_and(|why| why.contains("default department")),
            "{moved:?}"
        );

        // Turned off, an unrouted ticket waits without a department, saying so.
        let mut settings = test_settings();
        settings.default_department = None;
        let waiting = ticket(&db, "d3@x", "ada@example.org", "Scanner").await;
        let id = ticket_id(s, waiting).await;
        let outcome = jobs::assign::assign_ticket(s, id, &settings.routing(), Utc::now())
            .await
            .expect("assignment runs");
        assert_eq!(
            outcome,
            Assigned::Waiting {
                reason: "no department: no rule routed the ticket to one".into()
            }
        );
        // Naming a department that does not exist says that too.
        settings.default_department = Some("Nowhere".into());
        let lost = ticket(&db, "d4@x", "ada@example.org", "Keyboard").await;
        let id = ticket_id(s, lost).await;
        let outcome = jobs::assign::assign_ticket(s, id, &settings.routing(), Utc::now())
            .await
            .expect("assignment runs");
        assert!(
            matches!(&outcome, Assigned::Waiting { reason } if reason.contains("\"Nowhere\"")),
            "{outcome:?}"
        );
    }
}

store_test! {
    #[tokio::test]
    async fn one_ticket_assigned_from_two_places_at_once_is_assigned_once(db: TestStore) {
        let s = &db.store;
        let team = department(s, "Team", AssignmentStrategy::RoundRobin).await;
        for n in 0..3 {
            agent(s, &format!("a{n}@helpdesk.example"), &[team], None).await;
        }
        rule(
            s,
            "all to team",
            vec![],
            vec![Action::SetDepartment { department: team }],
            false,
        )
        .await;
        for n in 0..10 {
            let number = ticket(&db, &format!("race{n}@x"), "ada@example.org", "Race").await;
            let id = ticket_id(s, number).await;
            let mut runs = Vec::new();
            for _ in 0..2 {
                let store = s.clone();
                runs.push(tokio::spawn(async move {
                    let settings = test_settings();
                    jobs::assign::assign_ticket(&store, id, &settings.routing(), Utc::now()).await
                }));
            }
            let mut outcomes = Vec::new();
            for run in runs {
                outcomes.push(run.await.expect("task").expect("assignment"));
            }
            let assigned = outcomes
                .iter()
                .filter(|o| matches!(o, Assigned::To { .. }))
                .count();
            assert_eq!(assigned, 1, "{:?}: {outcomes:?}", db.backend());
            let detail = store::tickets::detail(s, number)
                .await
                .expect("read")
                .expect("exists");
            assert_eq!(
                detail
                    .history
                    .iter()
                    .filter(|e| e.kind == "assignee")
                    .count(),
                1
            );
        }
    }
}

store_test! {
    #[tokio::test]
    async fn the_worker_assigns_a_new_ticket_within_seconds_and_stops_on_request(db: TestStore) {
        let s = &db.store;
        let team = department(s, "Team", AssignmentStrategy::LeastOpen).await;
        let zoe = agent(s, "zoe@helpdesk.example", &[team], None).await;
        rule(
            s,
            "all to team",
            vec![],
            vec![Action::SetDepartment { department: team }],
            false,
        )
        .await;
        // Twice: a restarted process starts its workers again on the same database.
        for round in 0..2 {
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let workers = tokio::spawn(jobs::run(
                s.clone(),
                test_settings(),
                jobs::deliver::Deliverers::default(),
                db.intake.committed(),
                stopped,
            ));
            let number = ticket(&db, &format!("live{round}@x"), "ada@example.org", "Live").await;
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let summary = store::tickets::summary(s, number)
                    .await
                    .expect("read")
                    .expect("exists");
                if summary.assignee.is_some() {
                    assert_eq!(summary.assignee.as_deref(), Some("zoe"));
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "round {round}: not assigned within 20 s on {:?}",
                    db.backend()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            stop.send(true).expect("workers listening");
            tokio::time::timeout(Duration::from_secs(20), workers)
                .await
                .expect("workers stop")
                .expect("task")
                .expect("clean stop");
        }
        let _ = zoe;
        // The relay assigned both on arrival: no assignment job was needed.
        let queued = jobs::list(s, None, 50).await.expect("jobs");
        let assign_jobs = queued
            .iter()
            .filter(|job| job.queue == jobs::ASSIGN_QUEUE)
            .count();
        assert_eq!(assign_jobs, 0, "{queued:?}");
    }
}

/// A channel that records what it was asked to post.
#[derive(Default)]
struct Recorder {
    posted: std::sync::Mutex<Vec<helpdesk::helpdesk_channel::OutboundMessage>>,
}

impl helpdesk::helpdesk_channel::Deliver for Recorder {
    fn channel(&self) -> helpdesk::helpdesk_channel::ChannelKind {
        helpdesk::helpdesk_channel::ChannelKind::Telegram
    }

    async fn deliver(
        &self,
        message: &helpdesk::helpdesk_channel::OutboundMessage,
    ) -> Result<helpdesk::helpdesk_channel::Delivered, helpdesk::helpdesk_channel::DeliveryError>
    {
        self.posted.lock().expect("lock").push(message.clone());
        Ok(helpdesk::helpdesk_channel::Delivered {
            external_id: "1".into(),
        })
    }
}

store_test! {
    #[tokio::test]
    async fn agents_are_told_about_new_and_assigned_tickets_in_their_place(db: TestStore) {
        use helpdesk::helpdesk_channel::{ChannelKind, Identity};
        use helpdesk::jobs::notify::{self, Event, NotifyAgents};

        let s = &db.store;
        let team = department(s, "Team", AssignmentStrategy::RoundRobin).await;
        agent(s, "kim@helpdesk.example", &[team], None).await;
        rule(
            s,
            "all to team",
            vec![],
            vec![Action::SetDepartment { department: team }],
            false,
        )
        .await;
        let number = ticket(&db, "n1@x", "Ada <ada@example.org>", "Printer on fire").await;
        jobs::relay_outbox(s, &test_settings(), 100)
            .await
            .expect("relay");
        assign(&db, number).await;
        jobs::relay_outbox(s, &test_settings(), 100)
            .await
            .expect("relay");
        let queued = jobs::list(s, Some("Pending"), 50).await.expect("jobs");
        let notifications = queued
            .iter()
            .filter(|job| job.queue == notify::NOTIFY_QUEUE)
            .count();
        assert_eq!(notifications, 2, "created and assigned: {queued:?}");

        let recorder = Arc::new(Recorder::default());
        let deliverers =
            jobs::deliver::Deliverers::default().with(ChannelKind::Telegram, recorder.clone());
        let places = vec![Identity {
            channel: ChannelKind::Telegram,
            address: "-100123".into(),
            display_name: None,
        }];
        let ticket_id = ticket_id(s, number).await;
        for event in [Event::Created, Event::Assigned] {
            let posted = notify::notify(
                s,
                &deliverers,
                &places,
                NotifyAgents {
                    ticket_id,
                    event,
                    message_id: None,
                },
            )
            .await
            .expect("notified");
            assert_eq!(posted, 1);
        }
        let posted = recorder.posted.lock().expect("lock").clone();
        assert_eq!(posted.len(), 2);
        assert_eq!(posted[0].recipient.address, "-100123");
        assert_eq!(
            posted[0].text,
            format!("New ticket #{number}: Printer on fire\nfrom Ada via email")
        );
        assert!(
            posted[1]
                .text
                .starts_with(&format!("Ticket #{number} assigned to kim:")),
            "{}",
            posted[1].text
        );
        // No place on an enabled channel: nothing to post, nothing fails.
        let none = notify::notify(
            s,
            &jobs::deliver::Deliverers::default(),
            &places,
            NotifyAgents {
                ticket_id,
                event: Event::Created,
                message_id: None,
            },
        )
        .await
        .expect("nothing to do");
        assert_eq!(none, 0);
    }
}

store_test! {
    #[tokio::test]
    async fn a_ticket_whose_assignment_fails_does_not_hold_back_the_others(db: TestStore) {
        let s = &db.store;
        let team = department(s, "Team", AssignmentStrategy::RoundRobin).await;
        agent(s, "eva@helpdesk.example", &[team], None).await;
        // A rule that names an agent who no longer exists: its assignment fails every time.
        rule(
            s,
            "to a gone agent",
            vec![Condition::SubjectContains {
                any: vec!["broken".into()],
            }],
            vec![Action::AssignTo { agent: 999_999 }],
            true,
        )
        .await;
        rule(
            s,
            "all to team",
            vec![],
            vec![Action::SetDepartment { department: team }],
            false,
        )
        .await;
        let first = ticket(&db, "ok1@x", "ada@example.org", "Printer").await;
        let broken = ticket(&db, "bad@x", "bob@example.org", "Broken rule").await;
        let last = ticket(&db, "ok2@x", "cy@example.org", "Scanner").await;

        assert_eq!(
            jobs::relay_outbox(s, &test_settings(), 100)
                .await
                .expect("relay"),
            3
        );
        // The assignments' own announcements follow in later rounds, until nothing is left.
        let mut rounds = 0;
        while jobs::relay_outbox(s, &test_settings(), 100)
            .await
            .expect("relay again")
            > 0
        {
            rounds += 1;
            assert!(rounds < 5, "the outbox keeps refilling");
        }
        for number in [first, last] {
            let ticket = store::tickets::summary(s, number)
                .await
                .expect("read")
                .expect("exists");
            assert_eq!(ticket.assignee.as_deref(), Some("eva"), "#{number}");
        }
        let queued = jobs::list(s, Some("Pending"), 100).await.expect("jobs");
        let assign_jobs = queued
            .iter()
            .filter(|job| job.queue == jobs::ASSIGN_QUEUE)
            .count();
        assert_eq!(
            assign_jobs, 1,
            "the failed assignment is retried by a job: {queued:?}"
        );
        let broken_ticket = store::tickets::summary(s, broken)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(broken_ticket.assignee, None);
        let notify_jobs = queued
            .iter()
            .filter(|job| job.queue == jobs::notify::NOTIFY_QUEUE)
            .count();
        assert!(
            notify_jobs >= 3,
            "every new ticket (the broken one included) is announced: {queued:?}"
        );
    }
}
