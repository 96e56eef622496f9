//! Starts a throw-away Dovecot (Debian package `dovecot-imapd`) for the IMAP tests.
//!
//! Each [`Dovecot`] has its own temp dir holding config, sockets, state, log and the test
//! user's maildir, and listens on 127.0.0.1 on a free port with plain-text login. Mail is put
//! in with IMAP APPEND, so the intake reads it as it would from any server.
//!
//! Without Dovecot the tests are skipped with a message, except under `CI=true`, where a
//! missing Dovecot is a failure.
//!
//! Mail access runs as the current user, or, when the tests run as root (Dovecot refuses mail
//! access for uid 0), as the system user `helpdesk-test`, created here if missing.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_imap::Client;
use futures_util::TryStreamExt;
use helpdesk_email::imap::{ImapSettings, ImapTls, Uid};

pub const USER: &str = "helpdesk";
pub const PASSWORD: &str = "test-password";
/// A second user with a mailbox of its own (same password), for tests of several mailboxes.
pub const SECOND_USER: &str = "billing";
/// The non-root user that owns the mail when the tests run as root.
const ROOT_MAIL_USER: &str = "helpdesk-test";

pub struct Dovecot {
    dir: tempfile::TempDir,
    binary: PathBuf,
    port: u16,
    tls: Option<Tls>,
    child: Option<Child>,
}

/// The TLS side of a Dovecot started with [`Dovecot::start_tls`].
pub struct Tls {
    /// Port of the implicit-TLS listener (the plain port offers STARTTLS).
    pub port: u16,
    /// The server's self-signed certificate (for 127.0.0.1), DER.
    pub certificate: Vec<u8>,
}

impl Dovecot {
    /// Starts Dovecot, or returns `None` (after saying why) when it is not installed and this
    /// is not CI.
    pub fn start() -> Option<Dovecot> {
        Self::start_with(false)
    }

    /// Like [`start`](Self::start), with TLS: STARTTLS on the plain port and implicit TLS on
    /// [`Tls::port`], with a fresh self-signed certificate.
    pub fn start_tls() -> Option<Dovecot> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Option<Dovecot> {
        let Some(binary) = find_dovecot() else {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "CI=true but `dovecot` was not found (in PATH, /usr/sbin or /usr/local/sbin): \
                 install the Debian package dovecot-imapd"
            );
            eprintln!(
                "SKIPPED: `dovecot` not found; install the Debian package dovecot-imapd to run \
                 the IMAP tests"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir for Dovecot");
        let port = free_port();
        let (user, uid, gid) = mail_user();
        let tls = tls.then(|| write_certificate(dir.path()));
        write_config(dir.path(), port, tls.as_ref(), &user, uid, gid);
        let mut dovecot = Dovecot {
            dir,
            binary,
            port,
            tls,
            child: None,
        };
        dovecot.start_again();
        Some(dovecot)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS listener and certificate; panics unless started with [`start_tls`](Self::start_tls).
    pub fn tls(&self) -> &Tls {
        self.tls.as_ref().expect("Dovecot started without TLS")
    }

    /// Intake settings for this server: plain IMAP, the test user's INBOX, IDLE on.
    pub fn settings(&self) -> ImapSettings {
        self.settings_of(USER)
    }

    /// [`settings`](Self::settings) for another user ([`SECOND_USER`]).
    pub fn settings_of(&self, user: &str) -> ImapSettings {
        ImapSettings {
            host: "127.0.0.1".into(),
            port: self.port,
            tls: ImapTls::None,
            username: user.into(),
            password: PASSWORD.into(),
            mailbox: "INBOX".into(),
            idle: true,
            poll_seconds: 3600,
        }
    }

    /// Dovecot's own log, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Stops the server, keeping its mail: SIGTERM to its whole process group, as a service
    /// manager does. (Signalling only the master leaves the imap processes, and so the
    /// clients' connections, alive for about ten more seconds.)
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = -libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) on the process group Dovecot leads (see `start_again`).
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of the group (or a master that ignored SIGTERM) goes now.
        // SAFETY: as above; ESRCH when nothing is left is fine.
        unsafe { libc::kill(group, libc::SIGKILL) };
        child.wait().ok();
    }

    /// Starts the server (again) on the same port and mail, and waits for its greeting.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "Dovecot is already running");
        let config = self.dir.path().join("dovecot.conf");
        let mut child = Command::new(&self.binary)
            // Its own process group, so that `stop` reaches every Dovecot process.
            .process_group(0)
            .arg("-F")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.dir.path().join("stderr.log")).expect("stderr log"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "Dovecot exited at start ({status}):\n{}\n{}",
                    fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default(),
                    self.log()
                );
            }
            if greets(self.port) {
                break;
            }
            if Instant::now() > deadline {
                child.kill().ok();
                child.wait().ok();
                panic!(
                    "Dovecot did not answer on port {}:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    async fn session(&self) -> async_imap::Session<tokio::net::TcpStream> {
        self.session_as(USER).await
    }

    async fn session_as(&self, user: &str) -> async_imap::Session<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))
            .await
            .expect("connect to Dovecot");
        let mut client = Client::new(tcp);
        client
            .read_response()
            .await
            .expect("greeting")
            .expect("greeting");
        client
            .login(user, PASSWORD)
            .await
            .map_err(|(e, _)| e)
            .expect("login to Dovecot")
    }

    /// Puts a message into the INBOX with IMAP APPEND.
    pub async fn append(&self, raw: &[u8]) {
        let mut session = self.session().await;
        session
            .append("INBOX", None, None, raw)
            .await
            .expect("APPEND");
        session.logout().await.ok();
    }

    /// Puts a message into `user`'s INBOX with IMAP APPEND.
    pub async fn append_to(&self, user: &str, raw: &[u8]) {
        let mut session = self.session_as(user).await;
        session
            .append("INBOX", None, None, raw)
            .await
            .expect("APPEND");
        session.logout().await.ok();
    }

    /// UIDs of the messages flagged `\Seen` in `user`'s INBOX, ascending.
    pub async fn seen_of(&self, user: &str) -> Vec<Uid> {
        let mut session = self.session_as(user).await;
        session.examine("INBOX").await.expect("EXAMINE");
        let mut uids: Vec<Uid> = session
            .uid_search("SEEN")
            .await
            .expect("UID SEARCH")
            .into_iter()
            .collect();
        session.logout().await.ok();
        uids.sort_unstable();
        uids
    }

    /// Puts many messages into the INBOX over one session; returns how many the server took
    /// (it may refuse a message it finds malformed).
    pub async fn append_all<'a>(&self, messages: impl IntoIterator<Item = &'a [u8]>) -> usize {
        let mut session = self.session().await;
        let mut taken = 0;
        for raw in messages {
            if session.append("INBOX", None, None, raw).await.is_ok() {
                taken += 1;
            }
        }
        session.logout().await.ok();
        taken
    }

    /// The INBOX's UIDVALIDITY.
    pub async fn uid_validity(&self) -> u32 {
        let mut session = self.session().await;
        let mailbox = session.examine("INBOX").await.expect("EXAMINE");
        session.logout().await.ok();
        mailbox.uid_validity.expect("UIDVALIDITY")
    }

    /// UIDs of the INBOX messages flagged `\Seen`, ascending.
    pub async fn seen(&self) -> Vec<Uid> {
        self.search("SEEN").await
    }

    /// UIDs of all INBOX messages, ascending.
    pub async fn all(&self) -> Vec<Uid> {
        self.search("ALL").await
    }

    async fn search(&self, query: &str) -> Vec<Uid> {
        let mut session = self.session().await;
        // EXAMINE: looking must not change what the intake sees.
        session.examine("INBOX").await.expect("EXAMINE");
        let mut uids: Vec<Uid> = session
            .uid_search(query)
            .await
            .expect("UID SEARCH")
            .into_iter()
            .collect();
        session.logout().await.ok();
        uids.sort_unstable();
        uids
    }

    /// Runs `UID STORE uids flags`, e.g. `-FLAGS (\Seen)`, as a mail client would.
    pub async fn store(&self, uids: &str, flags: &str) {
        let mut session = self.session().await;
        session.select("INBOX").await.expect("SELECT");
        let _: Vec<_> = session
            .uid_store(uids, flags)
            .await
            .expect("UID STORE")
            .try_collect()
            .await
            .expect("UID STORE responses");
        session.logout().await.ok();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

fn find_dovecot() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join("dovecot"))
        .find(|candidate| candidate.is_file())
}

/// A port that was free a moment ago. Dovecot binds it right after; a collision would show
/// as a failed start, not as a wrong result.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Whether something on `port` answers with an IMAP greeting.
fn greets(port: u16) -> bool {
    let Ok(stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("* OK")
}

/// The user (name, uid, gid) that owns the mail and runs Dovecot's unprivileged processes.
fn mail_user() -> (String, u32, u32) {
    // SAFETY: geteuid/getegid cannot fail and touch no memory.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if euid != 0 {
        return (id(&["-un"]), euid, egid);
    }
    // Tests run in parallel: one useradd at a time.
    static CREATE: Mutex<()> = Mutex::new(());
    let _guard = CREATE.lock().unwrap_or_else(|e| e.into_inner());
    if !user_exists(ROOT_MAIL_USER) {
        let status = Command::new("useradd")
            .args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                ROOT_MAIL_USER,
            ])
            .status()
            .expect("running useradd");
        // Another test process may have created it meanwhile.
        assert!(
            status.success() || user_exists(ROOT_MAIL_USER),
            "useradd {ROOT_MAIL_USER} failed: {status}"
        );
    }
    let uid = id(&["-u", ROOT_MAIL_USER]).parse().expect("uid");
    let gid = id(&["-g", ROOT_MAIL_USER]).parse().expect("gid");
    (ROOT_MAIL_USER.to_owned(), uid, gid)
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn id(args: &[&str]) -> String {
    let out = Command::new("id").args(args).output().expect("running id");
    assert!(out.status.success(), "id {args:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Writes a self-signed certificate for 127.0.0.1 and its key into `dir`.
fn write_certificate(dir: &Path) -> Tls {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("self-signed certificate");
    fs::write(dir.join("cert.pem"), certified.cert.pem()).expect("write cert.pem");
    fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).expect("write key.pem");
    Tls {
        port: free_port(),
        certificate: certified.cert.der().to_vec(),
    }
}

/// Writes `dovecot.conf` and the passwd-file into `dir` and gives `dir` to the mail user.
fn write_config(dir: &Path, port: u16, tls: Option<&Tls>, user: &str, uid: u32, gid: u32) {
    let d = dir.display();
    let (ssl, imaps_port) = match tls {
        Some(tls) => (
            format!("ssl = yes\nssl_cert = <{d}/cert.pem\nssl_key = <{d}/key.pem"),
            tls.port,
        ),
        None => ("ssl = no".to_owned(), 0),
    };
    let mut conf = String::new();
    // Dovecot 2.3 names. Everything Dovecot writes stays in `dir`; chroots are off because
    // they need root; the login and internal processes run as the mail user.
    writeln!(
        conf,
        r#"protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {user}
default_internal_user = {user}
default_internal_group = {user}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}"#
    )
    .expect("write to String");
    fs::write(dir.join("dovecot.conf"), conf).expect("write dovecot.conf");
    fs::write(
        dir.join("passwd"),
        format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n{SECOND_USER}:{{PLAIN}}{PASSWORD}::::::\n"),
    )
    .expect("write passwd");
    fs::create_dir(dir.join("home")).expect("create home");
    for entry in fs::read_dir(dir).expect("read temp dir") {
        let path = entry.expect("temp dir entry").path();
        chown(&path, Some(uid), Some(gid)).expect("chown to the mail user");
    }
    chown(dir, Some(uid), Some(gid)).expect("chown to the mail user");
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).expect("chmod temp dir");
}
