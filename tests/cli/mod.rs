//! The `helpdesk` binary as operators use it.

use crate::support;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::Env;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail")
}

store_test! {
    #[tokio::test]
    async fn ingesting_a_mailbox_twice_creates_its_tickets_once(env: Env) {
        let fixtures = fixtures();
        let fixtures = fixtures.to_str().expect("utf-8 path");
        let first = env.ok(&["ingest", "--concurrency", "1", fixtures]);
        assert!(
            first.starts_with(
                "7 messages: 3 new tickets, 3 replies threaded (0 reopened), 0 duplicates, 1 rejected"
            ),
            "{first}"
        );
        assert!(
            first.contains("no-sender.eml: no sender address"),
            "{first}"
        );

        let second = env.ok(&["ingest", fixtures]);
        assert!(
            second.starts_with(
                "7 messages: 0 new tickets, 0 replies threaded (0 reopened), 6 duplicates, 1 rejected"
            ),
            "{second}"
        );

        let list: Value = serde_json::from_str(&env.ok(&["ticket", "list", "--format", "json"]))
            .expect("json list");
        let subjects: Vec<&str> = list
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|t| t["subject"].as_str())
            .collect();
        assert_eq!(subjects.len(), 3, "{subjects:?}");
        assert!(
            subjects.contains(&"VPN verbindet sich nicht – dringend"),
            "{subjects:?}"
        );

        let invoice: Value =
            serde_json::from_str(&env.ok(&["ticket", "show", "#1001", "--format", "json"]))
                .expect("json ticket");
        assert_eq!(invoice["number"], 1001);
        assert_eq!(invoice["subject"], "Invoice 2026-118 charged twice");
        assert_eq!(invoice["status"], "new");
        assert_eq!(invoice["customer"], "Ada Lovelace");
        assert_eq!(invoice["channel"], "email");
        for key in [
            "priority",
            "department",
            "assignee",
            "created_at",
            "updated_at",
        ] {
            assert!(invoice.get(key).is_some(), "{key} missing: {invoice}");
        }
        let messages = invoice["messages"].as_array().expect("messages");
        assert_eq!(
            messages.len(),
            3,
            "first mail, reply and the subject-tag reply"
        );
        assert_eq!(messages[0]["direction"], "inbound");
        assert_eq!(messages[0]["kind"], "public");
        assert_eq!(messages[0]["author"], "Ada Lovelace");
        let body = messages[0]["body_text"].as_str().expect("text");
        assert!(
            body.contains("\nFrom what I can see"),
            "mbox >From unquoted: {body}"
        );

        let vpn: Value =
            serde_json::from_str(&env.ok(&["ticket", "show", "1002", "--format", "json"]))
                .expect("json ticket");
        assert_eq!(vpn["customer"], "Gräce Höpper");
        let messages = vpn["messages"].as_array().expect("messages");
        assert!(
            messages[0]["body_text"]
                .as_str()
                .expect("text")
                .contains("Grüße")
        );
        let attachment = &messages[1]["attachments"][0];
        assert_eq!(attachment["filename"], "vpn.log");
        assert_eq!(attachment["content_type"], "text/plain");

        let printer: Value =
            serde_json::from_str(&env.ok(&["ticket", "show", "1003", "--format", "json"]))
                .expect("json ticket");
        let html = printer["messages"][0]["body_html"]
            .as_str()
            .expect("html kept");
        assert!(
            html.contains("<b>blank pages</b>")
                && !html.contains("script")
                && !html.contains("onclick"),
            "{html}"
        );
        let text = printer["messages"][0]["body_text"]
            .as_str()
            .expect("text derived");
        assert!(text.contains("blank pages"), "{text}");

        let shown = env.ok(&["ticket", "show", "1001"]);
        assert!(
            shown.starts_with("#1001 Invoice 2026-118 charged twice\n"),
            "{shown}"
        );
        let missing = env.run(&["ticket", "show", "999"]);
        assert!(!missing.status.success());
        assert!(String::from_utf8_lossy(&missing.stderr).contains("no ticket #999"));
    }
}

store_test! {
    #[tokio::test]
    async fn users_are_added_with_hashed_passwords_and_listed(env: Env) {
        env.ok(&["department", "add", "Billing", "--strategy", "least_open"]);
        let mut add = env
            .command()
            .args([
                "user",
                "add",
                "--email",
                "Boss@Helpdesk.example",
                "--name",
                "Bo Boss",
                "--role",
                "admin",
                "--department",
                "Billing",
                "--telegram-id",
                "1234",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        add.stdin
            .take()
            .expect("stdin")
            .write_all(b"a long secret\n")
            .expect("password written");
        let output = add.wait_with_output().expect("finished");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );

        let list: Value =
            serde_json::from_str(&env.ok(&["user", "list", "--format", "json"])).expect("json");
        let user = &list[0];
        assert_eq!(user["email"], "boss@helpdesk.example");
        assert_eq!(user["role"], "admin");
        assert_eq!(user["departments"], "Billing");
        assert_eq!(user["identities"], "telegram:1234");
        assert_eq!(user["has_password"], true);

        let password_file = env.dir.path().join("password");
        std::fs::write(&password_file, "another secret\n").expect("write");
        let again = env.run(&[
            "user",
            "add",
            "--email",
            "boss@helpdesk.example",
            "--name",
            "X",
            "--role",
            "agent",
            "--password-file",
            password_file.to_str().expect("path"),
        ]);
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

        let unknown = env.run(&[
            "user",
            "add",
            "--email",
            "x@helpdesk.example",
            "--name",
            "X",
            "--role",
            "agent",
            "--department",
            "Nope",
            "--password-file",
            password_file.to_str().expect("path"),
        ]);
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("no department named \"Nope\""));
        let no_password = env
            .command()
            .args([
                "user",
                "add",
                "--email",
                "y@helpdesk.example",
                "--name",
                "Y",
                "--role",
                "agent",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("runs");
        assert!(String::from_utf8_lossy(&no_password.stderr).contains("no password given"));
    }
}

#[test]
fn a_broken_setting_stops_start_up_and_names_the_key() {
    let env = Env::sqlite();
    let output = env
        .command()
        .env("HELPDESK_EMAIL__IMAP__PORT", "imap")
        .args(["migrate"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`email.imap.port`"), "{stderr}");
    assert!(stderr.contains("HELPDESK_EMAIL__IMAP__PORT"), "{stderr}");

    let config = env.dir.path().join("broken.toml");
    std::fs::write(&config, "[web]\nlisten = \"everywhere\"\n").expect("write");
    let output = env
        .command()
        .args(["--config", config.to_str().expect("path"), "serve"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`web.listen`") && stderr.contains("broken.toml"),
        "{stderr}"
    );
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// Starts `serve` (after the global `options`) on a free port and waits for `/healthz`; the
/// process, its port and that answer. If `serve` ends instead, its error output is the panic.
fn serve_until_healthy(env: &Env, options: &[&str]) -> (Child, u16, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let mut server = env
        .command()
        .env("HELPDESK_WEB__LISTEN", format!("127.0.0.1:{port}"))
        .args(options)
        .arg("serve")
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(response) = http_get(port, "/healthz") {
            return (server, port, response);
        }
        if let Some(status) = server.try_wait().expect("status") {
            let mut stderr = String::new();
            server
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut stderr)
                .expect("read");
            panic!("serve ended ({status}) instead of starting: {stderr}");
        }
        assert!(
            Instant::now() < deadline,
            "serve did not answer within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every mailbox with an SMTP server of its own and the shared `[email.smtp]` left empty is a
/// valid configuration, so `serve` starts with it (agents' notices go out through the first
/// mailbox).
#[test]
fn serve_starts_when_only_the_mailboxes_have_smtp_servers() {
    let env = Env::sqlite();
    let config = env.dir.path().join("mailboxes.toml");
    std::fs::write(
        &config,
        r#"
[email]
enabled = true
[email.imap]
host = "127.0.0.1"
port = 1
tls = "none"
poll_seconds = 3600
[[email.mailboxes]]
name = "support"
address = "support@helpdesk.example"
[email.mailboxes.smtp]
host = "127.0.0.1"
port = 2
tls = "none"
[[email.mailboxes]]
name = "billing"
address = "billing@helpdesk.example"
[email.mailboxes.smtp]
host = "127.0.0.1"
port = 3
tls = "none"
"#,
    )
    .expect("settings written");
    let (mut server, _, response) =
        serve_until_healthy(&env, &["--config", config.to_str().expect("path")]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(response.contains("{\"status\":\"ok\"}"), "{response}");
}

#[test]
fn serve_migrates_and_answers_health_checks_until_terminated() {
    let env = Env::sqlite();
    let (mut server, port, response) = serve_until_healthy(&env, &[]);
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    assert!(response.contains("{\"status\":\"ok\"}"), "{response}");
    assert!(
        env.dir.path().join("helpdesk.db").exists(),
        "SQLite file created"
    );
    // The dashboard needs a signed-in agent; the sign-in page is served.
    let home = http_get(port, "/").expect("home page");
    assert!(
        home.contains("303 See Other") && home.contains("/login"),
        "{home}"
    );
    let login = http_get(port, "/login").expect("sign-in page");
    assert!(login.contains("name=\"password\""), "{login}");
    // It tells the database it runs (no channels with the default settings).
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let running = || {
        runtime.block_on(async {
            let store = helpdesk::store::Store::connect(&env.database_url, 1)
                .await
                .expect("database");
            let running = helpdesk::store::instances::running(&store, chrono::Utc::now())
                .await
                .expect("instances");
            store.close().await;
            running
        })
    };
    let instances = running();
    assert_eq!(instances.len(), 1, "{instances:?}");
    assert_eq!(instances[0].pid, i64::from(server.id()));
    assert_eq!(instances[0].channels, "");

    // SIGTERM ends it cleanly.
    let pid = server.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    let status = server.wait().expect("exits");
    let mut stderr = String::new();
    server
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read");
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
    // Written to a pipe, not a terminal: no colour codes in the log.
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a piped log: {stderr:?}"
    );
    assert!(running().is_empty(), "a clean stop removes the instance");
}

store_test! {
    #[tokio::test]
    async fn an_agent_replies_from_the_command_line_and_the_reply_is_queued(env: Env) {
        let fixtures = fixtures();
        env.ok(&[
            "ingest",
            "--concurrency",
            "1",
            fixtures.to_str().expect("path"),
        ]);
        let password_file = env.dir.path().join("password");
        std::fs::write(&password_file, "a long secret\n").expect("write");
        env.ok(&[
            "user",
            "add",
            "--email",
            "sam@helpdesk.example",
            "--name",
            "Sam",
            "--role",
            "agent",
            "--password-file",
            password_file.to_str().expect("path"),
        ]);
        let reply = [
            "ticket",
            "reply",
            "1001",
            "--agent",
            "sam@helpdesk.example",
            "--text",
            "Refund is on its way.",
        ];
        // Mail is enabled neither in these settings nor on a running server: refused.
        let refused = env.run(&reply);
        assert!(!refused.status.success());
        let why = String::from_utf8_lossy(&refused.stderr);
        assert!(why.contains("email.enabled"), "{why}");
        // A server that runs mail is up (on the same database).
        let store = helpdesk::store::Store::connect(&env.database_url, 2)
            .await
            .expect("database");
        support::other_instance(
            &store,
            &[helpdesk::helpdesk_channel::ChannelKind::Email],
            chrono::Utc::now(),
        )
        .await;
        let queued = env.ok(&reply);
        assert_eq!(queued.trim(), "reply to #1001 queued for delivery");
        let noted = env.ok(&[
            "ticket",
            "reply",
            "#1001",
            "--agent",
            "sam@helpdesk.example",
            "--note",
            "--text",
            "Checked with the bank.",
        ]);
        assert_eq!(noted.trim(), "note added to #1001");

        let ticket: Value =
            serde_json::from_str(&env.ok(&["ticket", "show", "1001", "--format", "json"]))
                .expect("json");
        assert_eq!(ticket["status"], "open");
        let messages = ticket["messages"].as_array().expect("messages");
        let reply = &messages[messages.len() - 2];
        assert_eq!(reply["direction"], "outbound");
        assert_eq!(reply["kind"], "public");
        assert_eq!(reply["author"], "Sam");
        assert_eq!(reply["delivery_status"], "pending");
        let note = &messages[messages.len() - 1];
        assert_eq!(note["kind"], "internal");
        assert_eq!(note["delivery_status"], Value::Null);
        let created = ticket["history"][0]["text"].as_str().expect("text");
        assert!(created.starts_with("Created by mail from "), "{created}");
        let shown = env.ok(&["ticket", "show", "1001"]);
        assert!(
            shown.contains("Replied to the customer — Sam")
                && shown.contains("Status: new → open — Sam (first reply)"),
            "{shown}"
        );

        let jobs: Value =
            serde_json::from_str(&env.ok(&["jobs", "list", "--format", "json"])).expect("json");
        let queues: Vec<&str> = jobs
            .as_array()
            .expect("jobs")
            .iter()
            .filter_map(|j| j["queue"].as_str())
            .collect();
        assert!(queues.contains(&"helpdesk.deliver"), "{queues:?}");

        let unknown = env.run(&[
            "ticket", "reply", "1001", "--agent", "nobody@x", "--text", "x",
        ]);
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("no agent with email nobody@x"));
    }
}

store_test! {
    #[tokio::test]
    async fn commands_whose_reader_left_end_quietly(env: Env) {
        env.ok(&["seed", "--tickets", "3"]);
        let commands: &[&[&str]] = &[
            &["ticket", "list"],
            &["ticket", "list", "--format", "json"],
            &["ticket", "show", "1001"],
            &["jobs", "list"],
            &["jobs", "list", "--format", "json"],
            &["user", "list"],
            &["department", "list"],
            &["token", "list"],
            &["migrate"],
            &["--help"],
            &["jobs", "--help"],
        ];
        for args in commands {
            let output = env.run_into_closed_pipe(args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
            assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
            // Ended by SIGPIPE, as Unix tools are when their reader leaves, or by exiting.
            use std::os::unix::process::ExitStatusExt;
            assert!(
                output.status.success() || output.status.signal() == Some(libc::SIGPIPE),
                "{args:?} {:?}: {stderr}",
                output.status
            );
        }
    }
}
