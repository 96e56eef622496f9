//! Rules route tickets and strategies assign them fairly, once, whatever fails.

use super::*;

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
            .filter(|job| job.queue == jobs::assign::AssignTicket::QUEUE)
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
            .filter(|job| job.queue == jobs::notify::NotifyAgents::QUEUE)
            .count();
        assert!(
            notify_jobs >= 3,
            "every new ticket (the broken one included) is announced: {queued:?}"
        );
    }
}
