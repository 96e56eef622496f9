//! What the integration tests need: a fresh store on every backend under test.
//!
//! SQLite (in a temporary directory) always; PostgreSQL when `DATABASE_URL` names a server, on
//! which each test creates its own database. In CI (`CI=true`) PostgreSQL is required: a missing
//! `DATABASE_URL` fails the test rather than skipping it. `store_test!` (tests/macros.rs) runs
//! a test once per backend; [`Fixture`] says how to start what the test takes.

pub mod browser;
pub mod cli;
pub mod web;

pub use cli::Env;
pub use web::WebApp;

use helpdesk::intake::{Intake, Limits};
use helpdesk::store::blobs::BlobStore;
use helpdesk::store::{Backend, Store, scratch};
use tempfile::TempDir;

pub const LIMITS: Limits = Limits {
    max_attachment_bytes: 1 << 20,
    max_message_bytes: 4 << 20,
};

pub struct TestStore {
    pub store: Store,
    pub intake: Intake,
    pub dir: TempDir,
    pub url: String,
}

impl TestStore {
    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    pub fn blobs(&self) -> BlobStore {
        BlobStore::local(&self.dir.path().join("attachments")).expect("attachment directory")
    }

    /// Another intake on the same database, e.g. with other limits.
    pub fn intake_with(&self, limits: Limits) -> Intake {
        Intake::new(self.store.clone(), self.blobs(), limits)
    }
}

/// The PostgreSQL server to test against, if any.
pub fn postgres_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("CI=true but DATABASE_URL is not set: the PostgreSQL suite must run in CI")
        }
        _ => None,
    }
}

/// A fresh, migrated store per backend under test, named after the test.
pub async fn stores(test: &str) -> Vec<TestStore> {
    let mut stores = vec![sqlite().await];
    if let Some(server) = postgres_url() {
        stores.push(postgres(&server, test).await);
    }
    stores
}

/// What a `store_test!` starts on each backend.
pub trait Fixture: Sized {
    fn sqlite() -> impl Future<Output = Self>;
    /// On a fresh database `name` of the PostgreSQL server at `server`.
    fn postgres(server: &str, name: &str) -> impl Future<Output = Self>;
}

impl Fixture for TestStore {
    async fn sqlite() -> Self {
        sqlite().await
    }

    async fn postgres(server: &str, name: &str) -> Self {
        postgres_database(server, name).await
    }
}

/// The PostgreSQL database of the test at `module_path` (`module_path!()` inside the test):
/// the path without the crate, `::` as `_`, after `helpdesk_test_`.
pub fn database_name(module_path: &str) -> String {
    let path = module_path
        .split_once("::")
        .map_or(module_path, |(_, path)| path);
    let name = format!("helpdesk_test_{}", path.replace("::", "_"));
    if name.len() <= 63 {
        return name;
    }
    // PostgreSQL cuts names at 63 bytes; a hash of the whole path keeps long names apart.
    let hash = path.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}_{:08x}", &name[..54], hash as u32)
}

pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("helpdesk.db").display());
    open(url, dir).await
}

pub async fn postgres(server: &str, test: &str) -> TestStore {
    postgres_database(server, &format!("helpdesk_test_{test}")).await
}

/// `name` with `TEST_DB_PREFIX` (when set) in place of `helpdesk_test`, so that two
/// checkouts can run their suites against one PostgreSQL server at once.
pub fn scoped_database_name(name: &str) -> String {
    match std::env::var("TEST_DB_PREFIX") {
        Ok(prefix) if !prefix.is_empty() => {
            let rest = name.strip_prefix("helpdesk_test").unwrap_or(name);
            let mut scoped = format!("{prefix}{rest}");
            scoped.truncate(63);
            scoped
        }
        _ => name.to_owned(),
    }
}

async fn postgres_database(server: &str, name: &str) -> TestStore {
    let url = scratch::create_postgres_database(server, &scoped_database_name(name))
        .await
        .unwrap_or_else(|error| panic!("PostgreSQL at {server} must be reachable: {error}"));
    open(url, tempfile::tempdir().expect("temp dir")).await
}

async fn open(url: String, dir: TempDir) -> TestStore {
    // RUST_LOG=helpdesk=debug shows the application's log with a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let store = Store::connect(&url, 8).await.expect("database opens");
    store.migrate().await.expect("migrations run");
    let intake = Intake::new(
        store.clone(),
        BlobStore::local(&dir.path().join("attachments")).expect("attachment directory"),
        LIMITS,
    );
    TestStore {
        store,
        intake,
        dir,
        url,
    }
}

/// A plain mail with the given headers (one per line, without CRLF) and body.
pub fn mail(headers: &[&str], body: &str) -> Vec<u8> {
    let mut raw = String::new();
    for header in headers {
        raw.push_str(header);
        raw.push_str("\r\n");
    }
    raw.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    raw.push_str(body);
    raw.into_bytes()
}

/// A plain-SMTP sender to the test server `smtp`, from the support address.
pub fn smtp_sender(smtp: &helpdesk_testkit::smtp::SmtpServer) -> helpdesk_email::smtp::SmtpSender {
    helpdesk_email::smtp::SmtpSender::new(&helpdesk_email::smtp::SmtpSettings {
        host: smtp.addr.ip().to_string(),
        port: smtp.addr.port(),
        tls: helpdesk_email::smtp::SmtpTls::None,
        username: String::new(),
        password: String::new(),
        from_address: "support@helpdesk.example".into(),
        from_name: None,
    })
    .expect("sender")
}

/// A mail with one attachment, `filename`, holding `content`.
pub fn mail_with_file(headers: &[&str], filename: &str, content: &str) -> Vec<u8> {
    let mut raw = String::new();
    for header in headers {
        raw.push_str(header);
        raw.push_str("\r\n");
    }
    raw.push_str(
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nSee the file.\r\n--b\r\n\
         Content-Type: application/octet-stream\r\n",
    );
    raw.push_str(&format!(
        "Content-Disposition: attachment; filename=\"{filename}\"\r\n\r\n"
    ));
    raw.push_str(content);
    raw.push_str("\r\n--b--\r\n");
    raw.into_bytes()
}

/// An agent with no password, department or chat identity, named `name`.
pub async fn plain_agent(store: &Store, email: &str, name: &str) -> i64 {
    helpdesk::store::agents::create_agent(
        store,
        &helpdesk::store::agents::NewAgent {
            email,
            name,
            role: helpdesk::domain::Role::Agent,
            password_hash: None,
            department_ids: &[],
            identities: &[],
            max_open_tickets: None,
        },
        chrono::Utc::now(),
    )
    .await
    .expect("agent")
}

/// Another serving instance on the same database, running `channels`, whose last heartbeat
/// was at `at` (within 30 s of now it counts as running).
pub async fn other_instance(
    store: &Store,
    channels: &[helpdesk::helpdesk_channel::ChannelKind],
    at: chrono::DateTime<chrono::Utc>,
) -> helpdesk::store::instances::Instance {
    let instance = helpdesk::store::instances::Instance {
        host: "other-host".into(),
        ..helpdesk::store::instances::Instance::this_process(channels, at)
    };
    helpdesk::store::instances::register(store, &instance)
        .await
        .expect("instance registered");
    instance
}

#[test]
fn database_names_fit_postgresql_and_stay_apart() {
    let short = database_name("integration::intake::tickets::reopen");
    assert_eq!(short, "helpdesk_test_intake_tickets_reopen");
    let long = |last: &str| {
        database_name(&format!(
            "integration::intake::threading::a_reply_that_arrives_before_its_parent_{last}"
        ))
    };
    let (one, two) = (long("one"), long("two"));
    assert_eq!((one.len(), two.len()), (63, 63));
    assert_ne!(one, two);
}
