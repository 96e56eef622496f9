//! The database failing, and coming back: writes that fail under the real binary (the process's
//! file size limit brought to zero, so every write to a file fails as on a dying or full disk),
//! a mail intake cannot store for lack of room (SQLite's page limit), and a PostgreSQL server of
//! the test's own that stops and starts again. Nothing needs a restart, health checks answer
//! within a second, and intake loses nothing.
//! (Long because the three ways of failing share the serve process, the cluster and the checks
//! of what survived, kept in one place.)

use crate::support;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::{Env, Serve};
use helpdesk::store::Store;
use serde_json::{Value, json};

/// An admin with an API token, and an agent of the default department to assign tickets to.
fn admin_token(env: &Env) -> String {
    env.ok_with(
        &[
            "user",
            "add",
            "--email",
            "ada@team.example",
            "--name",
            "Ada",
            "--role",
            "admin",
        ],
        "a long secret\n",
    );
    env.ok_with(
        &[
            "user",
            "add",
            "--email",
            "ana@team.example",
            "--name",
            "Ana",
            "--role",
            "agent",
        ],
        "a long secret\n",
    );
    env.ok(&[
        "token",
        "create",
        "--agent",
        "ada@team.example",
        "--name",
        "outages",
    ])
    .trim()
    .to_owned()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn create_ticket(serve: &Serve, token: &str, subject: &str) -> reqwest::Response {
    client()
        .post(format!("{}/api/v1/tickets", serve.base))
        .bearer_auth(token)
        .json(&json!({
            "subject": subject,
            "body": "The invoice for March never arrived.",
            "customer_email": "dora@example.org",
        }))
        .send()
        .await
        .expect("API answers")
}

/// A GET and how long its answer took.
async fn timed_get(
    url: &str,
    token: Option<&str>,
    cookie: Option<&str>,
) -> (u16, String, Duration) {
    let started = Instant::now();
    let mut request = client().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    let answer = request.send().await.expect("server answers");
    let status = answer.status().as_u16();
    let body = answer.text().await.expect("body");
    (status, body, started.elapsed())
}

/// Waits until `url` answers 200, at most `within`.
async fn until_ok(url: &str, token: Option<&str>, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (status, body, _) = timed_get(url, token, None).await;
        if status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} still answers {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until ticket `number` has an assignee: the outbox relay and the job workers run.
async fn until_assigned(serve: &Serve, token: &str, number: i64) {
    let url = format!("{}/api/v1/tickets/{number}", serve.base);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body, _) = timed_get(&url, Some(token), None).await;
        if status == 200 {
            let detail: Value = serde_json::from_str(&body).expect("json");
            if !detail["assignee_id"].is_null() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "ticket {number} not assigned: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn number_of(answer: reqwest::Response) -> i64 {
    let status = answer.status();
    let body = answer.text().await.expect("body");
    assert_eq!(status, 201, "{body}");
    let detail: Value = serde_json::from_str(&body).expect("json");
    detail["number"].as_i64().expect("number")
}

fn assert_unavailable_problem(status: u16, body: &str) {
    assert_eq!(status, 503, "{body}");
    let problem: Value = serde_json::from_str(body).expect("problem+json");
    assert_eq!(
        problem["type"], "urn:helpdesk:problem:unavailable",
        "{body}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("try again")),
        "{body}"
    );
}

// ---- writes that fail ----

/// Past its file size limit a process gets SIGXFSZ, which ends it; ignored (children of this
/// test inherit that), the write fails with EFBIG instead, which is what the test wants.
fn ignore_file_size_signal() {
    // SAFETY: sets one signal's disposition; no handler runs.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Sets the file size limit of process `pid` (`None`: no limit) and leaves its hard limit.
fn limit_file_size(pid: u32, bytes: Option<u64>) {
    let pid = libc::pid_t::try_from(pid).expect("pid");
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit writes the current limit into `limit` and reads nothing else.
    let read = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, std::ptr::null(), &mut limit) };
    assert_eq!(read, 0, "prlimit: {}", std::io::Error::last_os_error());
    limit.rlim_cur = bytes.map_or(limit.rlim_max, |bytes| bytes.min(limit.rlim_max));
    // SAFETY: prlimit reads `limit` and writes nothing (no old value is asked for).
    let set = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    assert_eq!(set, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_work_again_without_a_restart_once_the_disk_takes_them() {
    ignore_file_size_signal();
    let env = Env::sqlite();
    let token = admin_token(&env);
    // The log goes to a file, which the limit below stops too: a log that cannot be written
    // must not take the requests down with it.
    let log = std::fs::File::create(env.dir.path().join("serve.log")).expect("log file");
    let serve = Serve::start_logging_to(&env, log).await;
    let first = number_of(create_ticket(&serve, &token, "Before").await).await;
    until_assigned(&serve, &token, first).await;
    let ready = format!("{}/readyz", serve.base);
    until_ok(&ready, None, Duration::from_secs(5)).await;

    // From now on every write of `serve` to a file fails.
    limit_file_size(serve.pid(), Some(0));
    let refused = create_ticket(&serve, &token, "While full").await;
    let status = refused.status().as_u16();
    assert_unavailable_problem(status, &refused.text().await.expect("body"));
    let (status, body, took) = timed_get(&ready, None, None).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database cannot write"), "{body}");
    assert!(took < Duration::from_secs(1), "/readyz took {took:?}");

    // The disk takes writes again: the very next ticket is stored, and readiness says so.
    limit_file_size(serve.pid(), None);
    let after = number_of(create_ticket(&serve, &token, "After").await).await;
    let (status, body, _) = timed_get(&ready, None, None).await;
    assert_eq!(status, 200, "{body}");
    // The outbox relay and the job workers work again too.
    until_assigned(&serve, &token, after).await;

    let (status, body, _) = timed_get(
        &format!("{}/api/v1/tickets", serve.base),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("json");
    let mut subjects: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|ticket| ticket["subject"].as_str())
        .collect();
    subjects.sort_unstable();
    assert_eq!(subjects, ["After", "Before"]);
}

/// An mbox of `count` mails from different senders.
fn write_mbox(path: &Path, count: usize) {
    let mut mbox = Vec::new();
    for n in 0..count {
        mbox.extend_from_slice(b"From sender@example.org Mon Jan  1 00:00:00 2024\n");
        mbox.extend(support::mail(
            &[
                &format!("From: Customer {n} <customer{n}@example.org>"),
                &format!("Subject: Question {n}"),
                &format!("Message-ID: <archive-{n}@example.org>"),
            ],
            &format!(
                "Hello, this is question {n}. {}\n",
                "Some more text. ".repeat(20)
            ),
        ));
        mbox.extend_from_slice(b"\n");
    }
    std::fs::write(path, mbox).expect("mbox written");
}

/// (raw messages kept, of them rejected, tickets) in the database of `env`.
async fn counts(env: &Env) -> (i64, i64, i64) {
    let store = Store::connect(&env.database_url, 1)
        .await
        .expect("database opens");
    let Store::Sqlite { pool, .. } = &store else {
        panic!("SQLite expected");
    };
    let counts = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM raw_messages),
                (SELECT COUNT(*) FROM raw_messages WHERE intake_error IS NOT NULL),
                (SELECT COUNT(*) FROM tickets)",
    )
    .fetch_one(pool)
    .await
    .expect("counts");
    store.close().await;
    counts
}

#[tokio::test]
async fn ingest_stops_at_the_first_failed_write_and_the_next_run_takes_the_rest() {
    const MAILS: usize = 2000;
    let env = Env::sqlite();
    env.ok(&["migrate"]);
    let mbox = env.dir.path().join("archive.mbox");
    write_mbox(&mbox, MAILS);
    // Room for a few hundred of the mails: no file of the database (the schema may still be in
    // the write-ahead log) may grow more than 512 KiB past the largest one now.
    let database = env.database_url.trim_start_matches("sqlite://").to_owned();
    let largest = ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{database}{suffix}")).ok())
        .map(|metadata| metadata.len())
        .max()
        .expect("database file");
    let room = largest + 512 * 1024;

    let mut command = env.command();
    // Small batches, so the first commit fits in the room whatever the reader had ready.
    command
        .args(["ingest", "--batch-size", "16", mbox.to_str().expect("path")])
        .stdin(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls: setrlimit and signal.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: room,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let stopped = command.output().expect("ingest runs");
    let stdout = String::from_utf8_lossy(&stopped.stdout);
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert!(!stopped.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("ingest stopped") && stderr.contains("run the same command again"),
        "{stderr}"
    );
    // One clear error, not a failure per message.
    assert!(!stdout.contains("FAILED"), "{stdout}");
    let (kept, rejected, tickets) = counts(&env).await;
    assert!(
        kept > 0 && (kept as usize) < MAILS,
        "{kept} of {MAILS} kept"
    );
    assert_eq!(rejected, 0, "a mail was marked as not taken in");
    assert_eq!(tickets, kept);

    let again = env.ok(&["ingest", mbox.to_str().expect("path")]);
    assert!(again.contains(&format!("{kept} duplicates")), "{again}");
    assert_eq!(counts(&env).await, (MAILS as i64, 0, MAILS as i64));
}

#[tokio::test]
async fn a_mail_the_disk_cannot_take_is_left_at_its_source_not_rejected() {
    let db = support::sqlite().await;
    let Store::Sqlite { writer, .. } = &db.store else {
        panic!("SQLite expected");
    };
    // Room for about 26 more pages of 4 KiB: the raw mail (80 KiB) fits, its message's text
    // (80 KiB more) does not, so intake fails half-way with "database or disk is full".
    let (pages, free): (i64, i64) = sqlx::query_as(
        "SELECT page_count, freelist_count FROM pragma_page_count, pragma_freelist_count",
    )
    .fetch_one(writer)
    .await
    .expect("page counts");
    // A number of our own making, not input.
    let limit = pages + (26 - free).max(0);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA max_page_count = {limit}"
    )))
    .execute(writer)
    .await
    .expect("limit set");
    let raw = support::mail(
        &[
            "From: Dora <dora@example.org>",
            "Subject: Big question",
            "Message-ID: <big@example.org>",
        ],
        &"All the details of my question, once more. ".repeat(2000),
    );
    let refused = db.intake.accept_email(raw.clone()).await;
    let helpdesk::intake::IntakeError::Store(error) = refused.expect_err("no room");
    assert!(error.is_unavailable(), "{error}");
    // Not kept as a message that cannot be taken in: the source (IMAP) keeps it unread.
    let counts = helpdesk::store::raw::counts(&db.store)
        .await
        .expect("counts");
    assert_eq!((counts.kept, counts.failed), (0, 0));

    // Room again (a new writer connection has no such limit): the same mail is taken in.
    sqlx::query("PRAGMA max_page_count = 1073741823")
        .execute(writer)
        .await
        .expect("limit lifted");
    let outcome = db.intake.accept_email(raw).await.expect("taken in");
    assert!(
        matches!(outcome, helpdesk::intake::Outcome::Created { .. }),
        "{outcome:?}"
    );
}

// ---- PostgreSQL stops and starts ----

/// A PostgreSQL cluster of the test's own, on a free port, run by the `postgres` OS user when
/// the test runs as root (initdb refuses root).
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// The newest PostgreSQL server programs installed (Debian keeps them out of PATH).
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    versions.sort_by_key(|bin| {
        bin.parent()
            .and_then(|version| version.file_name())
            .and_then(|name| name.to_str())
            .and_then(|name| name.parse::<u32>().ok())
    });
    versions.pop()
}

impl Cluster {
    /// A new cluster, started; `None` (after saying why) without PostgreSQL outside CI.
    fn start() -> Option<Cluster> {
        let Some(bin) = postgres_bin() else {
            assert!(
                !std::env::var("CI").is_ok_and(|ci| ci == "true"),
                "CI=true but no PostgreSQL server programs under /usr/lib/postgresql/*/bin"
            );
            eprintln!(
                "SKIPPED: no initdb/pg_ctl under /usr/lib/postgresql/*/bin; install the Debian \
                 package postgresql to run the outage test"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        // SAFETY: geteuid cannot fail and touches no memory.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        if as_postgres {
            let id = |flag: &str| -> u32 {
                let out = Command::new("id")
                    .args([flag, "postgres"])
                    .output()
                    .expect("id runs");
                assert!(
                    out.status.success(),
                    "no `postgres` OS user to run PostgreSQL"
                );
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .expect("numeric id")
            };
            std::os::unix::fs::chown(dir.path(), Some(id("-u")), Some(id("-g")))
                .expect("temp dir given to postgres");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let cluster = Cluster {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.start_again();
        Some(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        let output = command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("PostgreSQL program runs");
        assert!(
            output.status.success(),
            "{} {args:?} failed: {}{}\n{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    fn stop(&self, mode: &str) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", mode, "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let program = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            Command::new(&program).args(args).output()
        };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_answered_within_seconds_and_ends_without_a_restart() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let env = Env {
        dir: tempfile::tempdir().expect("temp dir"),
        database_url: cluster.url(),
    };
    let token = admin_token(&env);
    let serve = Serve::start(&env).await;
    let (status, cookie) = serve.session("ada@team.example", "a long secret").await;
    assert_eq!(status, 303);
    let cookie = cookie.expect("session cookie");
    let ready = format!("{}/readyz", serve.base);
    let metrics = format!("{}/metrics", serve.base);
    let page = format!("{}/tickets", serve.base);
    let api = format!("{}/api/v1/tickets", serve.base);
    until_ok(&ready, None, Duration::from_secs(10)).await;

    // The database answers, but the tables the checks read are locked (a long migration or a
    // stuck transaction): the checks give up within a second altogether.
    let locker = sqlx::PgPool::connect(&cluster.url())
        .await
        .expect("connects");
    let mut lock = locker.begin().await.expect("transaction");
    sqlx::query("LOCK TABLE channel_health, messages IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("locked");
    let within = |url: String| async move {
        tokio::time::timeout(Duration::from_secs(5), timed_get(&url, None, None))
            .await
            .unwrap_or_else(|_| panic!("{url} did not answer within 5 s"))
    };
    let (status, body, took) = within(ready.clone()).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database"), "{body}");
    assert!(took < Duration::from_secs(1), "/readyz took {took:?}");
    let (status, body, took) = within(metrics.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("helpdesk_database_up 0"), "{body}");
    assert!(took < Duration::from_secs(1), "/metrics took {took:?}");
    lock.rollback().await.expect("unlocked");
    locker.close().await;
    until_ok(&ready, None, Duration::from_secs(10)).await;

    // Mail taken in by an intake of its own on the same database, as a mailbox or `ingest`
    // takes it in.
    let store = Store::connect(&cluster.url(), 2).await.expect("database");
    let attachments = tempfile::tempdir().expect("temp dir");
    let intake = helpdesk::intake::Intake::new(
        store.clone(),
        helpdesk::store::blobs::BlobStore::local(attachments.path()).expect("attachment store"),
        support::LIMITS,
    );
    let before = helpdesk::store::raw::counts(&store).await.expect("counts");
    let raw = support::mail(
        &[
            "From: Dora <dora@example.org>",
            "Subject: During the outage",
            "Message-ID: <outage@example.org>",
        ],
        "Is anyone there?",
    );

    cluster.stop("fast");
    let started = Instant::now();
    let refused = intake.accept_email(raw.clone()).await;
    let helpdesk::intake::IntakeError::Store(error) = refused.expect_err("the database is down");
    assert!(error.is_unavailable(), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "intake took {:?}",
        started.elapsed()
    );
    let (status, body, took) = timed_get(&ready, None, None).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database"), "{body}");
    assert!(took < Duration::from_secs(1), "/readyz took {took:?}");
    let (status, body, took) = timed_get(&metrics, None, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("helpdesk_database_up 0"), "{body}");
    assert!(took < Duration::from_secs(1), "/metrics took {took:?}");
    let (status, body, took) = timed_get(&page, None, Some(&cookie)).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("try again"), "{body}");
    assert!(took < Duration::from_secs(8), "the page took {took:?}");
    let (status, body, took) = timed_get(&api, Some(&token), None).await;
    assert_unavailable_problem(status, &body);
    assert!(took < Duration::from_secs(8), "the API took {took:?}");

    cluster.start_again();
    until_ok(&ready, None, Duration::from_secs(30)).await;

    // Nothing of the refused mail was kept; taken in again, it becomes one ticket, once.
    let counts = helpdesk::store::raw::counts(&store).await.expect("counts");
    assert_eq!(
        (counts.kept, counts.failed),
        (before.kept, before.failed),
        "{counts:?}"
    );
    let outcome = intake.accept_email(raw.clone()).await.expect("taken in");
    assert!(
        matches!(outcome, helpdesk::intake::Outcome::Created { .. }),
        "{outcome:?}"
    );
    let again = intake.accept_email(raw).await.expect("taken in");
    assert!(
        matches!(again, helpdesk::intake::Outcome::Duplicate),
        "{again:?}"
    );
    let counts = helpdesk::store::raw::counts(&store).await.expect("counts");
    assert_eq!(
        (counts.kept, counts.duplicates_dropped),
        (before.kept + 1, before.duplicates_dropped + 1),
        "{counts:?}"
    );
    store.close().await;

    let (status, body, _) = timed_get(&metrics, None, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("helpdesk_database_up 1"), "{body}");
    let (status, body, _) = timed_get(&page, None, Some(&cookie)).await;
    assert_eq!(status, 200, "{body}");
    let number = number_of(create_ticket(&serve, &token, "After the outage").await).await;
    until_assigned(&serve, &token, number).await;
}
