//! A real S3-compatible server for the attachment store's tests: moto's server (PyPI
//! `moto[server]`), started on a free port in its own process, reached through a relay in the
//! test process that a test can cut and restore to take the server off the network for a while
//! (moto keeps its buckets in memory, so stopping the process would lose them).
//!
//! The executable is `$TEST_MOTO_SERVER` or `moto_server` on the PATH (`.ci/run`
//! installs it into a virtualenv and sets the variable). Without it the tests are skipped with a
//! message, except under `CI=true`, where a missing server fails them.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};

/// Keys moto accepts (it checks no signatures).
pub const ACCESS_KEY_ID: &str = "testing";
pub const SECRET_ACCESS_KEY: &str = "testing";
pub const REGION: &str = "us-east-1";

pub struct S3Server {
    child: Child,
    /// Where the relay listens: the endpoint clients use.
    relay: SocketAddr,
    server: SocketAddr,
    running: Arc<Mutex<Option<Relay>>>,
}

struct Relay {
    accept: AbortHandle,
    connections: Arc<Mutex<JoinSet<()>>>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.cut();
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl S3Server {
    /// Starts moto's server and the relay; `None` (with a message) when moto is not installed
    /// and this is not CI.
    pub async fn start() -> Option<S3Server> {
        let program = std::env::var("TEST_MOTO_SERVER")
            .ok()
            .filter(|path| !path.is_empty())
            .unwrap_or_else(|| "moto_server".to_owned());
        let server = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &server.port().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(error) => {
                let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
                let message = format!(
                    "`{program}` cannot run ({error}): install moto's server \
                     (pip install 'moto[server]') or set TEST_MOTO_SERVER"
                );
                assert!(!ci, "CI=true but {message}");
                eprintln!("SKIPPED: {message}");
                return None;
            }
        };
        let mut started = S3Server {
            child,
            relay: SocketAddr::from(([127, 0, 0, 1], free_port())),
            server,
            running: Arc::new(Mutex::new(None)),
        };
        for _ in 0..300 {
            if TcpStream::connect(server).await.is_ok() {
                started.restore().await;
                return Some(started);
            }
            if let Ok(Some(status)) = started.child.try_wait() {
                panic!("{program} ended at start: {status}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{program} did not listen on {server} within 30 s");
    }

    /// The URL clients are given.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.relay)
    }

    /// Creates a bucket (moto takes the unsigned request).
    pub async fn create_bucket(&self, name: &str) {
        let answer = reqwest::Client::new()
            .put(format!("http://{}/{name}", self.server))
            .send()
            .await
            .expect("moto answers");
        assert!(answer.status().is_success(), "bucket {name}: {answer:?}");
    }

    /// The keys in `bucket`, read from the server itself (not through the relay).
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let listing = reqwest::Client::new()
            .get(format!("http://{}/{bucket}?list-type=2", self.server))
            .send()
            .await
            .expect("moto answers")
            .text()
            .await
            .expect("listing");
        listing
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_owned()))
            .collect()
    }

    /// Takes the server off the network: new connections are refused and open ones closed.
    pub fn cut(&self) {
        let Some(relay) = self.running.lock().expect("relay").take() else {
            return;
        };
        relay.accept.abort();
        relay.connections.lock().expect("connections").abort_all();
    }

    /// Puts the server back on the network at the same address.
    pub async fn restore(&self) {
        if self.running.lock().expect("relay").is_some() {
            return;
        }
        let mut listener = None;
        // The port was just closed by `cut`; binding it again may take a moment.
        for _ in 0..50 {
            match TcpListener::bind(self.relay).await {
                Ok(bound) => {
                    listener = Some(bound);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let listener = listener.unwrap_or_else(|| panic!("relay cannot bind {}", self.relay));
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let server = self.server;
        let tracked = Arc::clone(&connections);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                tracked.lock().expect("connections").spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(server).await {
                        tokio::io::copy_bidirectional(&mut client, &mut upstream)
                            .await
                            .ok();
                    }
                });
            }
        })
        .abort_handle();
        *self.running.lock().expect("relay") = Some(Relay {
            accept,
            connections,
        });
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}
