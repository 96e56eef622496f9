//! The `helpdesk` binary as operators run it: a data directory and database per backend, one-shot
//! commands, and `serve` on a free port.

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A data directory and database for the `helpdesk` binary.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub database_url: String,
}

impl Env {
    pub fn sqlite() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = format!("sqlite://{}", dir.path().join("helpdesk.db").display());
        Env { dir, database_url }
    }

    async fn postgres_database(server: &str, name: &str) -> Env {
        let database_url = helpdesk::store::scratch::create_postgres_database(
            server,
            &super::scoped_database_name(name),
        )
        .await
        .expect("PostgreSQL reachable");
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
            database_url,
        }
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_helpdesk"));
        command
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .env("HELPDESK_DATA_DIR", self.dir.path().join("data"))
            .env("HELPDESK_DATABASE__URL", &self.database_url);
        command
    }

    /// Runs a command with nothing on stdin.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("helpdesk runs")
    }

    /// Runs a command with `stdin` piped in (a password, say).
    pub fn run_with(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("helpdesk runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("stdin written");
        child.wait_with_output().expect("finished")
    }

    /// Runs a command whose stdout is a pipe nobody reads any more (`| head` after it left):
    /// the read end is closed before the command starts, so its first write meets EPIPE.
    pub fn run_into_closed_pipe(&self, args: &[&str]) -> Output {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        self.command()
            .args(args)
            .stdout(writer)
            .output()
            .expect("helpdesk runs")
    }

    /// The output of a command that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(args))
    }

    pub fn ok_with(&self, args: &[&str], stdin: &str) -> String {
        succeeded(args, self.run_with(args, stdin))
    }
}

fn succeeded(args: &[&str], output: Output) -> String {
    assert!(
        output.status.success(),
        "helpdesk {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

impl super::Fixture for Env {
    async fn sqlite() -> Self {
        Env::sqlite()
    }

    async fn postgres(server: &str, name: &str) -> Self {
        Env::postgres_database(server, name).await
    }
}

/// `helpdesk serve` on a free port, killed when dropped.
pub struct Serve {
    child: Child,
    pub base: String,
}

impl Serve {
    pub async fn start(env: &Env) -> Serve {
        Serve::start_logging_to(env, Stdio::inherit()).await
    }

    /// `serve` with its log (stderr) going to `log`, e.g. a file that can fill up.
    pub async fn start_logging_to(env: &Env, log: impl Into<Stdio>) -> Serve {
        Serve::start_with(env, &[], log).await
    }

    /// `serve` with more settings in its environment (`HELPDESK_TELEGRAM__ENABLED`, …).
    pub async fn start_with(
        env: &Env,
        settings: &[(&str, String)],
        log: impl Into<Stdio>,
    ) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let child = env
            .command()
            .env("HELPDESK_WEB__LISTEN", format!("127.0.0.1:{port}"))
            .env("HELPDESK_LOG__LEVEL", "warn,sqlx=error")
            .envs(settings.iter().map(|(key, value)| (key, value)))
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("serve starts");
        let serve = Serve {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client
            .get(format!("{}/healthz", serve.base))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "serve did not answer in 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        serve
    }

    /// The process id of the running `serve`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Serve {
    /// Signs in at /login as a browser does (the form first, for its token and cookie); the
    /// status of the answer: 303 signed in, 401 refused.
    pub async fn sign_in(&self, email: &str, password: &str) -> u16 {
        self.session(email, password).await.0
    }

    /// Signs in through the form (its token first) and gives the answer's status and the
    /// session cookie it set, if any.
    pub async fn session(&self, email: &str, password: &str) -> (u16, Option<String>) {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let form = client
            .get(format!("{}/login", self.base))
            .send()
            .await
            .expect("the sign-in form");
        let cookie = form
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("helpdesk_signin="))
            .and_then(|value| value.split(';').next())
            .expect("the form's token cookie")
            .to_owned();
        let page = form.text().await.expect("the form");
        let token = super::web::csrf_of(&page).expect("the form's token");
        let answer = client
            .post(format!("{}/login", self.base))
            .header(reqwest::header::COOKIE, cookie)
            .form(&[
                ("csrf", token.as_str()),
                ("email", email),
                ("password", password),
            ])
            .send()
            .await
            .expect("answer");
        let session = answer
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| !value.starts_with("helpdesk_signin="))
            .and_then(|value| value.split(';').next())
            .map(str::to_owned);
        (answer.status().as_u16(), session)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
