//! The workers: the outbox relayed once, new tickets assigned within seconds, agents told.

use super::*;
use helpdesk::domain::TicketNumber;

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
        assert_eq!(count(jobs::assign::AssignTicket::QUEUE), 0, "{queued:?}");
        for number in 1001..=1003 {
            let ticket = store::tickets::detail(&db.store, TicketNumber(number))
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
            count(jobs::sla::SlaCheck::QUEUE),
            4,
            "one SLA check per new ticket, one for the customer's reply"
        );
        assert!(queued.iter().all(|job| job.attempts == 0));
    }
}

store_test! {
    #[tokio::test]
    async fn the_worker_assigns_a_new_ticket_within_seconds_and_stops_on_request(db: TestStore) {
        let s = &db.store;
        let team = department(s, "Team", AssignmentStrategy::LeastOpen).await;
        let zoe = agent(s, "zoe@helpdesk.example", &[team], None).await;
        route_all_to(s, "all to team", team).await;
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
                let summary = store::tickets::summary(s, number.into())
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
            .filter(|job| job.queue == jobs::assign::AssignTicket::QUEUE)
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
        use helpdesk::helpdesk_channel::ChannelKind;
        use helpdesk::jobs::notify::{self, Event, NotifyAgents};

        let s = &db.store;
        let team = department(s, "Team", AssignmentStrategy::RoundRobin).await;
        agent(s, "kim@helpdesk.example", &[team], None).await;
        route_all_to(s, "all to team", team).await;
        let number = ticket(&db, "n1@x", "Ada <ada@example.org>", "Printer on fire").await;
        let settings = settings_with_place();
        jobs::relay_outbox(s, &settings, 100).await.expect("relay");
        assign(&db, number).await;
        jobs::relay_outbox(s, &settings, 100).await.expect("relay");
        let queued = jobs::list(s, Some("Pending"), 50).await.expect("jobs");
        let notifications = queued
            .iter()
            .filter(|job| job.queue == notify::NotifyAgents::QUEUE)
            .count();
        assert_eq!(notifications, 2, "created and assigned: {queued:?}");

        let recorder = Arc::new(Recorder::default());
        let deliverers =
            jobs::deliver::Deliverers::default().with(ChannelKind::Telegram, recorder.clone());
        let places = settings.agents_places.clone();
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
            format!("New ticket #{number}: Printer on fire\nfrom Ada <ada@example.org> via email")
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
    async fn without_agents_places_no_announcement_is_queued(db: TestStore) {
        use helpdesk::jobs::notify::NotifyAgents;

        let s = &db.store;
        let team = department(s, "Team", AssignmentStrategy::RoundRobin).await;
        agent(s, "kim@helpdesk.example", &[team], None).await;
        route_all_to(s, "all to team", team).await;
        let number = ticket(&db, "n2@x", "Ada <ada@example.org>", "Printer on fire").await;
        // The first round assigns the ticket at once, the second relays the assignment.
        for _ in 0..2 {
            jobs::relay_outbox(s, &test_settings(), 100)
                .await
                .expect("relay");
        }
        let summary = store::tickets::summary(s, number.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(summary.assignee.as_deref(), Some("kim"));
        let queued = jobs::list(s, Some("Pending"), 50).await.expect("jobs");
        assert!(
            queued.iter().all(|job| job.queue != NotifyAgents::QUEUE),
            "no place to post in, no job: {queued:?}"
        );
        assert!(
            queued.iter().any(|job| job.queue == jobs::sla::SlaCheck::QUEUE),
            "the ticket's other work is queued: {queued:?}"
        );
    }
}

/// SQLite: the queue's acknowledgement (apalis's `ack.sql`: the finished ids from json_each
/// joined to `Jobs`, and `lock_by`) looks each id up; by the `lock_by` index it would walk every
/// job the worker ever took, and the queue slowed as it grew (migration 0029).
#[tokio::test]
async fn the_queue_acknowledges_each_job_by_its_id() {
    let db = crate::support::sqlite().await;
    let store::Store::Sqlite { writer, .. } = &db.store else {
        panic!("a SQLite store");
    };
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN
         WITH j AS (SELECT value ->> 'task_id' AS task_id, value ->> 'status' AS status
                    FROM json_each(?1))
         UPDATE Jobs SET status = j.status, done_at = strftime('%s', 'now')
         FROM j WHERE Jobs.id = j.task_id AND Jobs.lock_by = ?2",
    )
    .bind("[]")
    .bind("worker")
    .fetch_all(writer)
    .await
    .expect("plan");
    let steps: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
    assert!(
        steps
            .iter()
            .any(|step| step.contains("Jobs USING INDEX sqlite_autoindex_Jobs_1 (id=?)")),
        "{steps:?}"
    );
}
