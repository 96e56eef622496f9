//! The application as operators run it: `helpdesk serve` processes on one database. A process
//! killed (SIGKILL) while its jobs run loses none of them: after a restart every ticket is
//! assigned, once. Two processes sharing one PostgreSQL never assign a ticket twice.

mod telemetry;

use crate::support;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TestStore, mail};
use chrono::Utc;
use helpdesk::domain::rules::{Action, Condition};
use helpdesk::domain::{AssignmentStrategy, Role};
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::store::agents::NewAgent;
use helpdesk::store::rules::NewRule;
use helpdesk::store::tickets::AssignmentAudit;
use helpdesk::store::{self, Store};

/// A `helpdesk serve` process on `db`, killed when dropped.
struct Serve(Child);

impl Serve {
    fn start(db: &TestStore) -> Serve {
        let child = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
            .arg("serve")
            .env("HELPDESK_DATABASE__URL", &db.url)
            .env("HELPDESK_DATA_DIR", db.dir.path())
            .env("HELPDESK_WEB__LISTEN", "127.0.0.1:0")
            .env("HELPDESK_LOG__LEVEL", "warn,sqlx=error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("helpdesk serve starts");
        Serve(child)
    }

    /// SIGKILL: no shutdown, no cleanup, jobs cut off wherever they are.
    fn kill(mut self) {
        self.0.kill().expect("killed");
        self.0.wait().expect("reaped");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A department that takes all mail, round robin among three agents without limits.
async fn routing(store: &Store) {
    let now = Utc::now();
    let department =
        store::agents::create_department(store, "Support", AssignmentStrategy::RoundRobin, now)
            .await
            .expect("department")
            .id;
    for email in [
        "a@helpdesk.example",
        "b@helpdesk.example",
        "c@helpdesk.example",
    ] {
        store::agents::create_agent(
            store,
            &NewAgent {
                email,
                name: email,
                role: Role::Agent,
                password_hash: Some(crate::support::web::password_hash()),
                department_ids: &[department],
                identities: &[],
                max_open_tickets: None,
            },
            now,
        )
        .await
        .expect("agent");
    }
    store::rules::create(
        store,
        NewRule {
            name: "all mail to Support".into(),
            enabled: true,
            conditions: vec![Condition::Channel {
                any: vec![ChannelKind::Email],
            }],
            actions: vec![Action::SetDepartment { department }],
            stop: false,
        },
        now,
    )
    .await
    .expect("rule");
}

async fn new_tickets(db: &TestStore, count: usize, tag: &str) {
    for start in (0..count).step_by(100) {
        let batch = (start..count.min(start + 100))
            .map(|n| {
                db.intake.prepare_email(mail(
                    &[
                        &format!("From: customer{n}@example.org"),
                        &format!("Subject: Question {n}"),
                        &format!("Message-ID: <{tag}-{n}@example.org>"),
                    ],
                    "Hello",
                ))
            })
            .collect();
        for outcome in db.intake.accept_batch(batch).await {
            outcome.expect("taken in");
        }
    }
}

async fn audit(db: &TestStore) -> AssignmentAudit {
    store::tickets::assignment_audit(&db.store)
        .await
        .expect("audit")
}

async fn wait_for(
    db: &TestStore,
    what: &str,
    timeout: Duration,
    done: impl Fn(&AssignmentAudit) -> bool,
) -> AssignmentAudit {
    let deadline = Instant::now() + timeout;
    loop {
        let now = audit(db).await;
        if done(&now) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {now:?} on {:?}",
            db.backend()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_process_loses_no_job_and_repeats_none_after_a_restart(db: TestStore) {
        routing(&db.store).await;
        new_tickets(&db, 600, "kill").await;
        let serve = Serve::start(&db);
        let before = wait_for(&db, "assignment under way", Duration::from_secs(60), |a| {
            a.assigned >= 20
        })
        .await;
        serve.kill();
        let at_kill = audit(&db).await;
        assert!(
            at_kill.assigned < 600,
            "killed too late to test anything: {at_kill:?}"
        );
        eprintln!(
            "{:?}: killed with {} of 600 assigned (seen {before:?})",
            db.backend(),
            at_kill.assigned
        );

        // Jobs the dead process held are offered again (apalis's orphan recovery, the sweep).
        let _serve = Serve::start(&db);
        let done = wait_for(
            &db,
            "every ticket assigned after the restart",
            Duration::from_secs(240),
            |a| a.assigned == 600,
        )
        .await;
        assert_eq!(done.tickets, 600);
        assert_eq!(done.assigned_twice, 0, "{done:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_never_assign_a_ticket_twice() {
    let Some(server) = support::postgres_url() else {
        eprintln!("SKIPPED: DATABASE_URL is not set; this test needs PostgreSQL");
        return;
    };
    let db = support::postgres(&server, "process_pair").await;
    routing(&db.store).await;
    let _first = Serve::start(&db);
    let _second = Serve::start(&db);
    // Tickets arrive while both run, as from two IMAP readers or an import.
    new_tickets(&db, 400, "pair").await;
    let done = wait_for(
        &db,
        "every ticket assigned",
        Duration::from_secs(120),
        |a| a.assigned == 400,
    )
    .await;
    assert_eq!(done.assigned_twice, 0, "{done:?}");
}
