//! SLA escalation and auto-close on every backend, on a controlled clock.

mod api;
pub(crate) mod clock;

use crate::support;
use crate::support::{TestStore, mail};
use chrono::{Duration, Utc};
use helpdesk::config::Settings;
use helpdesk::domain::TicketNumber;
use helpdesk::domain::{MessageKind, Priority, Status};
use helpdesk::intake::Outcome;
use helpdesk::jobs::sla::{self, SlaCheck, SlaOutcome, Target};
use helpdesk::jobs::{self, Job, JobSettings};
use helpdesk::store;
use helpdesk::store::outbound::NewReply;
use helpdesk::store::tickets::Actor;

fn settings() -> JobSettings {
    JobSettings::from_settings(&Settings::load_from(None, Vec::new()).expect("defaults"))
}

async fn new_ticket(db: &TestStore, id: &str) -> (i64, i64, chrono::DateTime<Utc>) {
    let raw = mail(
        &[
            "From: ada@example.org",
            "Subject: Down",
            &format!("Message-ID: <{id}>"),
        ],
        "Help",
    );
    let Outcome::Created { number, .. } = db.intake.accept_email(raw).await.expect("taken in")
    else {
        panic!("new ticket");
    };
    let summary = store::tickets::summary(&db.store, number)
        .await
        .expect("read")
        .expect("exists");
    (number.get(), summary.id.get(), summary.created_at)
}

pub(crate) async fn status(db: &TestStore, number: i64, to: Status, at: chrono::DateTime<Utc>) {
    let mut tx = db.store.begin_write().await.expect("tx");
    store::tickets::change_status(&mut tx, number.into(), to, Actor::System, None, at)
        .await
        .expect("status");
    tx.commit().await.expect("commit");
}

store_test! {
    #[tokio::test]
    async fn a_missed_first_response_escalates_once_at_its_due_time(db: TestStore) {
        let targets = settings().sla;
        let (number, ticket_id, created) = new_ticket(&db, "sla1@x").await;
        let first = SlaCheck {
            ticket_id: ticket_id.into(),
            target: Target::FirstResponse,
        };
        let due = created + Duration::minutes(480);
        assert_eq!(
            sla::check(&db.store, &targets, first, created + Duration::minutes(1))
                .await
                .expect("check"),
            SlaOutcome::CheckAgainAt(due),
            "normal priority: 8 hours"
        );
        assert_eq!(
            sla::check(&db.store, &targets, first, due - Duration::seconds(1))
                .await
                .expect("check"),
            SlaOutcome::CheckAgainAt(due)
        );
        assert_eq!(
            sla::check(&db.store, &targets, first, due)
                .await
                .expect("check"),
            SlaOutcome::Escalated {
                from: Priority::Normal,
                to: Priority::High
            }
        );
        assert_eq!(
            sla::check(&db.store, &targets, first, due + Duration::hours(1))
                .await
                .expect("check"),
            SlaOutcome::AlreadyEscalated
        );
        let ticket = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(ticket.summary.priority, "high");
        let escalation = ticket
            .history
            .iter()
            .find(|e| e.kind == "escalated")
            .expect("escalated");
        assert_eq!(escalation.new_value.as_deref(), Some("first response"));
        assert!(
            escalation
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("first response was due at"))
        );
        let pending = store::outbox::pending(&db.store, 10).await.expect("outbox");
        assert!(
            pending.iter().any(|e| e.kind == "ticket_escalated"),
            "{pending:?}"
        );

        // The resolution target now follows the higher priority: 24 hours.
        let resolution = SlaCheck {
            ticket_id: ticket_id.into(),
            target: Target::Resolution,
        };
        assert_eq!(
            sla::check(
                &db.store,
                &targets,
                resolution,
                created + Duration::hours(9)
            )
            .await
            .expect("check"),
            SlaOutcome::CheckAgainAt(created + Duration::minutes(1440))
        );
    }
}

store_test! {
    #[tokio::test]
    async fn answering_or_resolving_in_time_cancels_the_escalation(db: TestStore) {
        let targets = settings().sla;
        let agent = support::plain_agent(&db.store, "sam@helpdesk.example", "Sam").await;
        let (number, ticket_id, created) = new_ticket(&db, "sla2@x").await;
        helpdesk::ops::send_reply(
            &db.store,
            &NewReply {
                number: number.into(),
                agent_id: agent,
                text: "Looking into it",
                kind: MessageKind::Public,
                external_id: Some("r-sla2@helpdesk.example"),
                channels_here: &[helpdesk::helpdesk_channel::ChannelKind::Email],
                now: created + Duration::minutes(5),
            },
        )
        .await
        .expect("reply");
        let late = created + Duration::days(30);
        let first = SlaCheck {
            ticket_id: ticket_id.into(),
            target: Target::FirstResponse,
        };
        assert_eq!(
            sla::check(&db.store, &targets, first, late)
                .await
                .expect("check"),
            SlaOutcome::Met
        );
        status(&db, number, Status::Resolved, created + Duration::hours(1)).await;
        let resolution = SlaCheck {
            ticket_id: ticket_id.into(),
            target: Target::Resolution,
        };
        assert_eq!(
            sla::check(&db.store, &targets, resolution, late)
                .await
                .expect("check"),
            SlaOutcome::Met
        );
        let ticket = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(ticket.summary.priority, "normal");
        assert!(ticket.history.iter().all(|e| e.kind != "escalated"));
    }
}

store_test! {
    #[tokio::test]
    async fn new_tickets_get_their_sla_timers_and_quiet_resolved_ones_close(db: TestStore) {
        let (number, ticket_id, created) = new_ticket(&db, "sla3@x").await;
        jobs::relay_outbox(&db.store, &settings(), 100)
            .await
            .expect("relay");
        let sla_jobs = || async {
            jobs::list(&db.store, Some("Pending"), 10)
                .await
                .expect("jobs")
                .into_iter()
                .filter(|job| job.queue == sla::SlaCheck::QUEUE)
                .collect::<Vec<_>>()
        };
        let first = sla_jobs().await;
        assert_eq!(first.len(), 1, "one first check: {first:?}");
        // It writes every target and queues each one's check at its warning time.
        let check = SlaCheck {
            ticket_id: ticket_id.into(),
            target: Target::FirstResponse,
        };
        sla::check(&db.store, &settings().sla, check, created)
            .await
            .expect("check");
        let later = sla_jobs().await;
        assert_eq!(later.len(), 3, "first response and resolution: {later:?}");
        assert!(
            later
                .iter()
                .filter(|job| job.id != first[0].id)
                .all(|job| job.run_at > first[0].run_at),
            "{later:?}"
        );

        let resolved_at = Utc::now();
        status(&db, number, Status::Open, resolved_at).await;
        status(&db, number, Status::Resolved, resolved_at).await;
        let week = Duration::days(7);
        let early = sla::close_quiet(&db.store, week, resolved_at + Duration::days(6))
            .await
            .expect("sweep");
        assert!(early.is_empty());
        let closed = sla::close_quiet(&db.store, week, resolved_at + week)
            .await
            .expect("sweep");
        assert_eq!(closed, vec![TicketNumber(number)]);
        let ticket = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(ticket.summary.status, "closed");
        let last = ticket.history.last().expect("event");
        assert_eq!(
            last.reason.as_deref(),
            Some("resolved 7 days ago without news")
        );
    }
}
