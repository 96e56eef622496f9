//! Rules route tickets and strategies assign them fairly, once, whatever fails.

use super::*;
use helpdesk::domain::TicketNumber;

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
        route_all_to(s, "Everything else to support", support).await;

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
        let first = store::tickets::detail(s, TicketNumber(1001))
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
        let detail = store::tickets::detail(s, other.into())
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
        let detail = store::tickets::detail(s, routed.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(detail.summary.department.as_deref(), Some("Billing"));

        let unrouted = ticket(&db, "d2@x", "ada@example.org", "Printer").await;
        assert_eq!(assign(&db, unrouted).await, Assigned::To { agent_id: gil });
        let detail = store::tickets::detail(s, unrouted.into())
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
        route_all_to(s, "all to team", team).await;
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
            let detail = store::tickets::detail(s, number.into())
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
        route_all_to(s, "all to team", team).await;
        let first = ticket(&db, "ok1@x", "ada@example.org", "Printer").await;
        let broken = ticket(&db, "bad@x", "bob@example.org", "Broken rule").await;
        let last = ticket(&db, "ok2@x", "cy@example.org", "Scanner").await;

        assert_eq!(
            jobs::relay_outbox(s, &settings_with_place(), 100)
                .await
                .expect("relay"),
            3
        );
        // The assignments' own announcements follow in later rounds, until nothing is left.
        let mut rounds = 0;
        while jobs::relay_outbox(s, &settings_with_place(), 100)
            .await
            .expect("relay again")
            > 0
        {
            rounds += 1;
            assert!(rounds < 5, "the outbox keeps refilling");
        }
        for number in [first, last] {
            let ticket = store::tickets::summary(s, number.into())
                .await
                .expect("read")
                .expect("exists");
            assert_eq!(ticket.assignee.as_deref(), Some("eva"), "#{number}");
        }
        let queued = jobs::list(s, Some("Pending"), 100).await.expect("jobs");
        let assign_jobs = queued
            .iter()
            .filter(|job| job.queue == jobs::assign::AssignTicket::QUEUE)
            .count();
        assert_eq!(
            assign_jobs, 1,
            "the failed assignment is retried by a job: {queued:?}"
        );
        let broken_ticket = store::tickets::summary(s, broken.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(broken_ticket.assignee, None);
        let notify_jobs = queued
            .iter()
            .filter(|job| job.queue == jobs::notify::NotifyAgents::QUEUE)
            .count();
        assert!(
            notify_jobs >= 3,
            "every new ticket (the broken one included) is announced: {queued:?}"
        );
    }
}

store_test! {
    #[tokio::test]
    async fn one_relay_round_shares_its_tickets_as_one_by_one_would(db: TestStore) {
        let s = &db.store;
        let billing = department(s, "Billing", AssignmentStrategy::RoundRobin).await;
        let support = department(s, "Support", AssignmentStrategy::LeastOpen).await;
        agent(s, "anna@helpdesk.example", &[billing], None).await;
        agent(s, "ben@helpdesk.example", &[billing], Some(1)).await;
        agent(s, "cleo@helpdesk.example", &[billing, support], None).await;
        agent(s, "dora@helpdesk.example", &[support], None).await;
        rule(
            s,
            "Money goes to billing",
            vec![Condition::TextContains {
                any: vec!["invoice".into()],
            }],
            vec![Action::SetDepartment {
                department: billing,
            }],
            true,
        )
        .await;
        route_all_to(s, "Everything else to support", support).await;
        let mut numbers = Vec::new();
        for n in 0..6 {
            let (id, subject) = if n % 2 == 0 {
                (format!("inv{n}@x"), format!("Invoice {n}"))
            } else {
                (format!("other{n}@x"), format!("Printer {n}"))
            };
            numbers.push(ticket(&db, &id, "c@example.org", &subject).await);
        }

        // All six in one round: each department's agents and counts are read once and kept
        // up to date as the round gives tickets out.
        assert_eq!(
            jobs::relay_outbox(s, &test_settings(), 100)
                .await
                .expect("relay"),
            6
        );
        let mut assignees = Vec::new();
        for number in &numbers {
            let summary = store::tickets::summary(s, (*number).into())
                .await
                .expect("read")
                .expect("exists");
            assignees.push(summary.assignee.unwrap_or_default());
        }
        // Billing, round robin: anna, ben (then at his limit of one), cleo. Support, least
        // open: cleo (the lower id of two with none), dora, then dora again, as cleo's
        // billing ticket of this same round counts in Support too.
        assert_eq!(
            assignees,
            vec!["anna", "cleo", "ben", "dora", "cleo", "dora"],
            "{:?}",
            db.backend()
        );
        let detail = store::tickets::detail(s, numbers[4].into())
            .await
            .expect("read")
            .expect("exists");
        let kinds: Vec<&str> = detail.history.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, vec!["created", "rule", "department", "assignee"]);
        assert_eq!(
            jobs::assign::waiting(s, 10).await.expect("waiting"),
            Vec::new()
        );
    }
}

store_test! {
    #[tokio::test]
    async fn no_ticket_goes_to_an_agent_who_can_neither_sign_in_nor_chat(db: TestStore) {
        let s = &db.store;
        let billing = department(s, "Billing", AssignmentStrategy::RoundRobin).await;
        // Made as the API or the agents page may: no password and no chat account.
        let hollow = store::agents::create_agent(
            s,
            &NewAgent {
                email: "hollow@helpdesk.example",
                name: "Hollow",
                role: Role::Agent,
                password_hash: None,
                department_ids: &[billing],
                identities: &[],
                max_open_tickets: None,
            },
            Utc::now(),
        )
        .await
        .expect("agent");
        let anna = agent(s, "anna@helpdesk.example", &[billing], None).await;
        route_all_to(s, "Everything to billing", billing).await;

        for n in 0..10 {
            let number = ticket(&db, &format!("h{n}@x"), "c@example.org", "Invoice").await;
            assert_eq!(
                assign(&db, number).await,
                Assigned::To { agent_id: anna },
                "ticket {n} of {:?} (the other agent is #{hollow})",
                db.backend()
            );
        }

        // A chat account is enough to answer: such an agent takes their turn.
        let chatty = store::agents::create_agent(
            s,
            &NewAgent {
                email: "chatty@helpdesk.example",
                name: "Chatty",
                role: Role::Agent,
                password_hash: None,
                department_ids: &[billing],
                identities: &[(helpdesk::helpdesk_channel::ChannelKind::Telegram, "777")],
                max_open_tickets: None,
            },
            Utc::now(),
        )
        .await
        .expect("agent");
        let mut assignees = Vec::new();
        for n in 10..12 {
            let number = ticket(&db, &format!("h{n}@x"), "c@example.org", "Invoice").await;
            assignees.push(assign(&db, number).await);
        }
        assert!(
            assignees.contains(&Assigned::To { agent_id: chatty }),
            "{assignees:?}"
        );
        assert!(!assignees.contains(&Assigned::To { agent_id: hollow }));

        // A rule that names them is passed over too, and the history says why.
        rule(
            s,
            "Hollow's own",
            vec![Condition::SubjectContains {
                any: vec!["hollow".into()],
            }],
            vec![Action::AssignTo { agent: hollow }],
            false,
        )
        .await;
        let number = ticket(&db, "h99@x", "c@example.org", "For hollow").await;
        let outcome = assign(&db, number).await;
        assert!(
            matches!(outcome, Assigned::To { agent_id } if agent_id != hollow),
            "{outcome:?}"
        );
        let detail = store::tickets::detail(s, number.into())
            .await
            .expect("read")
            .expect("exists");
        assert!(
            detail.history.iter().any(|event| event
                .reason
                .as_deref()
                .is_some_and(|reason| reason.contains("Hollow can neither sign in nor chat"))),
            "{:?}",
            detail.history
        );
    }
}
