//! SLA targets as rows: pauses while pending, warnings before breaches (each once, with its
//! history event and outbox row), department policies and business calendars.

use super::{new_ticket, settings, status};
use crate::support::{self, TestStore, mail};
use chrono::{DateTime, Duration, DurationRound, Utc};
use helpdesk::domain::calendar::WeeklyHours;
use helpdesk::domain::ics::Holiday;
use helpdesk::domain::sla::{PolicyOverrides, Target};
use helpdesk::domain::{AssignmentStrategy, MessageKind, Priority, Status};
use helpdesk::intake::Outcome;
use helpdesk::jobs::sla::{self, SlaCheck, SlaOutcome};
use helpdesk::store;
use helpdesk::store::outbound::NewReply;
use helpdesk::store::sla::{TargetRow, TargetState};

/// Moves a new ticket (one message, its creation events) to have been created at `at`.
pub(crate) async fn created_at(db: &TestStore, ticket_id: i64, at: DateTime<Utc>) {
    let statements = [
        "UPDATE tickets SET created_at = $1, updated_at = $1 WHERE id = $2",
        "UPDATE messages SET created_at = $1 WHERE ticket_id = $2",
        "UPDATE ticket_events SET at = $1 WHERE ticket_id = $2",
    ];
    for sql in statements {
        match &db.store {
            store::Store::Sqlite { writer, .. } => sqlx::query(sql)
                .bind(at)
                .bind(ticket_id)
                .execute(writer)
                .await
                .map(|_| ()),
            store::Store::Postgres { pool } => sqlx::query(sql)
                .bind(at)
                .bind(ticket_id)
                .execute(pool)
                .await
                .map(|_| ()),
        }
        .expect("moved back in time");
    }
}

async fn outbox_kinds(db: &TestStore, ticket_id: i64) -> Vec<String> {
    store::outbox::pending(&db.store, 100)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|entry| entry.ticket_id == ticket_id.into())
        .map(|entry| entry.kind)
        .collect()
}

async fn rows(db: &TestStore, ticket_id: i64) -> Vec<TargetRow> {
    store::sla::targets(&db.store, ticket_id.into())
        .await
        .expect("targets")
}

fn of(rows: &[TargetRow], target: Target) -> &TargetRow {
    rows.iter()
        .rev()
        .find(|row| row.target == target)
        .expect("a row of that target")
}

pub(crate) async fn answer(db: &TestStore, number: i64, agent: i64, now: DateTime<Utc>) {
    helpdesk::ops::send_reply(
        &db.store,
        &NewReply {
            number: number.into(),
            agent_id: agent,
            text: "On it",
            kind: MessageKind::Public,
            external_id: Some(&format!("r-{number}-{}@helpdesk.example", now.timestamp())),
            channels_here: &[helpdesk::helpdesk_channel::ChannelKind::Email],
            now,
        },
    )
    .await
    .expect("reply");
}

async fn department_with(db: &TestStore, name: &str, policy: &[(Target, Priority, i64)]) -> i64 {
    let department = store::agents::create_department(
        &db.store,
        name,
        AssignmentStrategy::RoundRobin,
        Utc::now(),
    )
    .await
    .expect("department")
    .id;
    let overrides: PolicyOverrides = policy
        .iter()
        .map(|(target, priority, minutes)| ((*target, *priority), *minutes))
        .collect();
    store::calendars::set_policy(&db.store, department, &overrides)
        .await
        .expect("policy");
    department
}

async fn route(db: &TestStore, number: i64, department: i64, agent: i64) {
    helpdesk::ops::apply(
        &db.store,
        number.into(),
        helpdesk::ops::ChangedBy {
            agent_id: agent,
            now: Utc::now(),
        },
        &helpdesk::ops::TicketChange {
            department: Some(Some(department)),
            ..Default::default()
        },
    )
    .await
    .expect("routed");
}

store_test! {
    #[tokio::test]
    async fn a_pending_ticket_pauses_and_resumes_when_the_customer_writes(db: TestStore) {
        let targets = settings().sla;
        let agent = support::plain_agent(&db.store, "pat@helpdesk.example", "Pat").await;
        let (number, ticket_id, _) = new_ticket(&db, "pause1@x").await;
        let t0 = (Utc::now() - Duration::hours(3))
            .duration_trunc(Duration::seconds(1))
            .expect("whole seconds");
        created_at(&db, ticket_id, t0).await;
        answer(&db, number, agent, t0 + Duration::minutes(10)).await;
        status(&db, number, Status::Pending, t0 + Duration::minutes(20)).await;

        let resolution = SlaCheck { ticket_id: ticket_id.into(), target: Target::Resolution };
        // Pending for an hour: the two-day resolution target moved by that hour.
        let outcome = sla::check(&db.store, &targets, resolution, t0 + Duration::minutes(80))
            .await
            .expect("check");
        let moved = t0 + Duration::minutes(2880 + 60);
        assert_eq!(outcome, SlaOutcome::Paused(moved));
        let found = rows(&db, ticket_id).await;
        assert_eq!(of(&found, Target::FirstResponse).state(), TargetState::Met);
        assert_eq!(
            of(&found, Target::FirstResponse).met_at,
            Some(t0 + Duration::minutes(10))
        );
        let paused = of(&found, Target::Resolution);
        assert_eq!(paused.state(), TargetState::Paused);
        assert_eq!(paused.paused_since, Some(t0 + Duration::minutes(20)));
        assert_eq!(paused.paused_seconds, 3600);
        let summary = store::tickets::summary(&db.store, number.into()).await.expect("read").expect("ticket");
        assert!(summary.sla_paused, "the list shows the ticket paused");
        assert_eq!(summary.sla_due_at, None);

        // The customer writes: the ticket opens, the clock runs again, a next response starts.
        let raw = mail(
            &["From: ada@example.org", &format!("Subject: Re: [#{number}] Down"), "Message-ID: <pause1-b@x>"],
            "Here is what you asked for",
        );
        let outcome = db.intake.accept_email(raw).await.expect("taken in");
        assert!(
            matches!(outcome, Outcome::Threaded { number: n, reopened: true, .. } if n == number.into()),
            "{outcome:?}"
        );
        let detail = store::tickets::detail(&db.store, number.into()).await.expect("read").expect("ticket");
        assert_eq!(detail.summary.status, Status::Open);
        let resumed_at = detail
            .history
            .iter()
            .rev()
            .find(|e| e.kind == "status" && e.new_value.as_deref() == Some("open"))
            .expect("reopened")
            .at;
        let now = resumed_at + Duration::minutes(1);
        let next = SlaCheck { ticket_id: ticket_id.into(), target: Target::NextResponse };
        let outcome = sla::check(&db.store, &targets, next, now).await.expect("check");
        let found = rows(&db, ticket_id).await;
        let resolution_row = of(&found, Target::Resolution);
        let pause = resumed_at - (t0 + Duration::minutes(20));
        assert_eq!(resolution_row.state(), TargetState::Running);
        assert_eq!(resolution_row.paused_since, None);
        assert_eq!(resolution_row.paused_seconds, pause.num_seconds());
        assert_eq!(resolution_row.due_at, t0 + Duration::minutes(2880) + pause);
        let next_row = of(&found, Target::NextResponse);
        assert!(next_row.started_at > t0 + Duration::minutes(20));
        assert_eq!(next_row.due_at, next_row.started_at + Duration::minutes(480));
        assert_eq!(outcome, SlaOutcome::CheckAgainAt(next_row.due_at));
        // Our answer meets it.
        answer(&db, number, agent, now + Duration::minutes(5)).await;
        let outcome = sla::check(&db.store, &targets, next, now + Duration::minutes(6))
            .await
            .expect("check");
        assert_eq!(outcome, SlaOutcome::Met);
        let summary = store::tickets::summary(&db.store, number.into()).await.expect("read").expect("ticket");
        assert!(!summary.sla_paused);
        assert_eq!(summary.sla_due_at, Some(t0 + Duration::minutes(2880) + pause));
        assert_eq!(summary.sla_due_target.as_deref(), Some("resolution"));
    }
}

store_test! {
    #[tokio::test]
    async fn a_warning_comes_once_before_the_breach_which_marks_the_ticket(db: TestStore) {
        let targets = settings().sla;
        let agent = support::plain_agent(&db.store, "wes@helpdesk.example", "Wes").await;
        // The department's own first response target overrides the default 8 hours.
        let department =
            department_with(&db, "Fast lane", &[(Target::FirstResponse, Priority::Normal, 60)]).await;
        let (number, ticket_id, _) = new_ticket(&db, "warn1@x").await;
        route(&db, number, department, agent).await;
        let t0 = (Utc::now() - Duration::hours(5))
            .duration_trunc(Duration::seconds(1))
            .expect("whole seconds");
        created_at(&db, ticket_id, t0).await;
        let first = SlaCheck { ticket_id: ticket_id.into(), target: Target::FirstResponse };
        let due = t0 + Duration::minutes(60);
        assert_eq!(
            sla::check(&db.store, &targets, first, t0 + Duration::minutes(1)).await.expect("check"),
            SlaOutcome::CheckAgainAt(due)
        );
        assert!(outbox_kinds(&db, ticket_id).await.iter().all(|k| k != "sla_warning"));

        // 80 % of the hour: the warning, once however often the check runs.
        for minute in [48, 50, 59] {
            assert_eq!(
                sla::check(&db.store, &targets, first, t0 + Duration::minutes(minute))
                    .await
                    .expect("check"),
                SlaOutcome::CheckAgainAt(due)
            );
        }
        let kinds = outbox_kinds(&db, ticket_id).await;
        assert_eq!(kinds.iter().filter(|k| *k == "sla_warning").count(), 1, "{kinds:?}");
        assert!(!kinds.iter().any(|k| k == "sla_breached"));
        let found = rows(&db, ticket_id).await;
        assert_eq!(of(&found, Target::FirstResponse).state(), TargetState::Warned);
        assert_eq!(of(&found, Target::FirstResponse).warned_at, Some(t0 + Duration::minutes(48)));

        // The due time: breached, marked, escalated; once.
        assert_eq!(
            sla::check(&db.store, &targets, first, due).await.expect("check"),
            SlaOutcome::Escalated { from: Priority::Normal, to: Priority::High }
        );
        assert_eq!(
            sla::check(&db.store, &targets, first, due + Duration::minutes(5)).await.expect("check"),
            SlaOutcome::AlreadyEscalated
        );
        let kinds = outbox_kinds(&db, ticket_id).await;
        for kind in ["sla_warning", "sla_breached", "ticket_escalated"] {
            assert_eq!(kinds.iter().filter(|k| *k == kind).count(), 1, "{kind}: {kinds:?}");
        }
        let detail = store::tickets::detail(&db.store, number.into()).await.expect("read").expect("ticket");
        let events = |kind: &str| detail.history.iter().filter(|e| e.kind == kind).count();
        assert_eq!((events("sla_warning"), events("sla_breached"), events("escalated")), (1, 1, 1));
        let warning = detail.history.iter().position(|e| e.kind == "sla_warning").expect("warning");
        let breach = detail.history.iter().position(|e| e.kind == "sla_breached").expect("breach");
        assert!(warning < breach, "the warning comes first");
        assert_eq!(detail.summary.sla_breached_at, Some(due));
        assert_eq!(detail.summary.priority, Priority::High);
        let found = rows(&db, ticket_id).await;
        let row = of(&found, Target::FirstResponse);
        assert_eq!((row.state(), row.breached_at), (TargetState::Breached, Some(due)));

        // Answered late: met, and the breach stays on record.
        answer(&db, number, agent, due + Duration::minutes(10)).await;
        sla::check(&db.store, &targets, first, due + Duration::minutes(11)).await.expect("check");
        let found = rows(&db, ticket_id).await;
        let row = of(&found, Target::FirstResponse);
        assert_eq!(row.met_at, Some(due + Duration::minutes(10)));
        assert_eq!(row.breached_at, Some(due));
        assert_eq!(row.state(), TargetState::Breached);
    }
}

store_test! {
    #[tokio::test]
    async fn a_department_calendar_counts_business_hours_and_skips_holidays(db: TestStore) {
        let targets = settings().sla;
        let agent = support::plain_agent(&db.store, "bea@helpdesk.example", "Bea").await;
        let department =
            department_with(&db, "Berlin office", &[(Target::FirstResponse, Priority::Normal, 120)]).await;
        let hours = WeeklyHours::parse_text(
            "mon 09:00-17:00\ntue 09:00-17:00\nwed 09:00-17:00\nthu 09:00-17:00\nfri 09:00-17:00",
        )
        .expect("hours");
        let monday = Holiday { date: "2026-11-30".parse().expect("date"), name: "Closed".into() };
        store::calendars::set_calendar(
            &db.store,
            department,
            "Europe/Berlin",
            &hours,
            Some(&[monday]),
            Utc::now(),
        )
        .await
        .expect("calendar");
        let (number, ticket_id, _) = new_ticket(&db, "cal1@x").await;
        route(&db, number, department, agent).await;
        // Friday 27 November 2026, 16:00 in Berlin: one hour on Friday, Monday is a holiday,
        // the second hour is Tuesday 09:00-10:00 Berlin.
        let friday: DateTime<Utc> = "2026-11-27T15:00:00Z".parse().expect("instant");
        created_at(&db, ticket_id, friday).await;
        let first = SlaCheck { ticket_id: ticket_id.into(), target: Target::FirstResponse };
        assert_eq!(
            sla::check(&db.store, &targets, first, friday + Duration::minutes(1)).await.expect("check"),
            SlaOutcome::CheckAgainAt("2026-12-01T09:00:00Z".parse().expect("instant"))
        );
        // The resolution default (2 880 business minutes = six 8-hour days) counts there too.
        let found = rows(&db, ticket_id).await;
        assert_eq!(
            of(&found, Target::Resolution).due_at,
            "2026-12-08T15:00:00Z".parse::<DateTime<Utc>>().expect("instant")
        );
    }
}

store_test! {
    #[tokio::test]
    async fn holidays_are_imported_from_an_icalendar_file(db: TestStore) {
        let department = department_with(&db, "Imported", &[]).await;
        let file = include_str!("../fixtures/holidays-berlin.ics");
        let imported = helpdesk::domain::ics::parse(file).expect("a calendar");
        // No calendar yet: holidays have nowhere to go.
        assert!(store::calendars::add_holidays(&db.store, department, &imported.holidays).await.is_err());
        let hours = WeeklyHours::parse_text("mon 09:00-17:00").expect("hours");
        store::calendars::set_calendar(&db.store, department, "Europe/Berlin", &hours, None, Utc::now())
            .await
            .expect("calendar");
        let added = store::calendars::add_holidays(&db.store, department, &imported.holidays)
            .await
            .expect("imported");
        assert_eq!(added, imported.holidays.len() as u64);
        // Again: nothing new.
        let again = store::calendars::add_holidays(&db.store, department, &imported.holidays)
            .await
            .expect("imported");
        assert_eq!(again, 0);
        let calendar = store::calendars::calendar(&db.store, department)
            .await
            .expect("read")
            .expect("a calendar");
        let christmas = calendar
            .holidays
            .iter()
            .find(|h| h.date.to_string() == "2026-12-25")
            .expect("Christmas");
        assert_eq!(christmas.name, "1. Weihnachtstag");
        assert_eq!(calendar.holidays.len(), imported.holidays.len());
        assert_eq!(calendar.time_zone, "Europe/Berlin");
    }
}
