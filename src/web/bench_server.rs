//! A `helpdesk serve` child process for the benchmarks that measure a real server over
//! loopback (`bench live`, `bench cluster`).

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::bench::{WebBenchError, request};

/// A `helpdesk serve` child process on a free loopback port.
pub(crate) struct Server {
    child: std::process::Child,
    pub address: std::net::SocketAddr,
}

impl Server {
    /// Starts `program serve` on the database at `url` with its files in `data_dir`.
    pub(crate) async fn start(
        program: &std::path::Path,
        url: &str,
        data_dir: &std::path::Path,
    ) -> Result<Server, WebBenchError> {
        let address = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let child = std::process::Command::new(program)
            .arg("serve")
            .env("HELPDESK_DATABASE__URL", url)
            .env("HELPDESK_WEB__LISTEN", address.to_string())
            .env("HELPDESK_DATA_DIR", data_dir)
            .env("HELPDESK_LOG__LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        let server = Server { child, address };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut stream) = TcpStream::connect(address).await {
                let mut buffer = Vec::new();
                if let Ok(200) = request(&mut stream, "GET", "/healthz", "", "", &mut buffer).await
                {
                    return Ok(server);
                }
            }
            if Instant::now() > deadline {
                return Err(WebBenchError::Failed(format!(
                    "{} serve did not answer on {address} within 60 s",
                    program.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A memory figure of the server from /proc (`VmRSS:` now, `VmHWM:` its peak), in MB.
    pub(crate) fn memory_mb(&self, field: &str) -> f64 {
        memory_mb(&format!("/proc/{}/status", self.child.id()), field)
    }

    pub(crate) async fn stop(mut self) {
        // SAFETY: sends SIGTERM to our own child, not yet reaped, so the pid is still its.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(None) = self.child.try_wait() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    /// A benchmark that fails half-way leaves no server behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The peak resident memory of this process so far, in MB.
pub fn peak_memory_mb() -> f64 {
    memory_mb("/proc/self/status", "VmHWM:")
}

/// A memory line (`VmRSS:`, `VmHWM:`) of a /proc status file, in MB; 0 where there is none.
fn memory_mb(status: &str, field: &str) -> f64 {
    std::fs::read_to_string(status)
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let kb: f64 = line
                    .strip_prefix(field)?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()?;
                Some(kb / 1024.0)
            })
        })
        .unwrap_or(0.0)
}
