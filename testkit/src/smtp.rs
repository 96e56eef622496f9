//! A small SMTP server in the test process (RFC 5321 subset: EHLO/HELO, STARTTLS, AUTH PLAIN,
//! MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT), optionally behind implicit TLS.
//! It records every accepted message and can answer a chosen command with a chosen reply.
//!
//! Written here rather than using mailin-embedded 0.8: that crate only compiles with its
//! `rtls` feature, whose rustls defaults pull in aws-lc-rs, which this tree avoids.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// The SMTP command whose reply a test replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Mail,
    Rcpt,
    /// The reply after the message data (the final dot).
    Data,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Plain,
    Starttls,
    Implicit,
}

#[derive(Clone)]
pub struct Config {
    pub tls: TlsMode,
    /// Replies `reply` (e.g. "550 5.1.1 No such user") to the command of `stage`.
    pub fail: Option<(Stage, String)>,
    /// Offers AUTH PLAIN and accepts only these credentials.
    pub credentials: Option<(String, String)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tls: TlsMode::Plain,
            fail: None,
            credentials: None,
        }
    }
}

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub helo: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
    pub tls: bool,
    pub authenticated_as: Option<String>,
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    /// The PEM of the server's self-signed certificate for 127.0.0.1.
    pub certificate_pem: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpServer {
    pub async fn start(config: Config) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .expect("self-signed certificate");
        let certificate_pem = certified.cert.pem();
        let key = rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der())
            .expect("key DER");
        let tls_config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(tls_config));

        let received = Arc::new(Mutex::new(Vec::new()));
        let shared = received.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let config = config.clone();
                let acceptor = acceptor.clone();
                let received = shared.clone();
                tokio::spawn(async move {
                    let _ = connection(stream, config, acceptor, received).await;
                });
            }
        });
        SmtpServer {
            addr,
            certificate_pem,
            received,
            task,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    config: Config,
    acceptor: TlsAcceptor,
    received: Arc<Mutex<Vec<Received>>>,
) -> std::io::Result<()> {
    match config.tls {
        TlsMode::Implicit => {
            let tls = acceptor.accept(stream).await?;
            session(tls, &config, true, &received).await?;
        }
        TlsMode::Plain => {
            session(stream, &config, false, &received).await?;
        }
        TlsMode::Starttls => {
            if let Some(stream) = session(stream, &config, false, &received).await? {
                let tls = acceptor.accept(stream).await?;
                session(tls, &config, true, &received).await?;
            }
        }
    }
    Ok(())
}

/// Runs one SMTP session; returns the stream when the client asked for STARTTLS.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    config: &Config,
    tls: bool,
    received: &Mutex<Vec<Received>>,
) -> std::io::Result<Option<S>> {
    let mut stream = BufReader::new(stream);
    // After STARTTLS the client starts again with EHLO and gets no second greeting.
    if !(tls && config.tls == TlsMode::Starttls) {
        reply(&mut stream, "220 test.invalid ESMTP test server").await?;
    }
    let mut helo = String::new();
    let mut authenticated_as = None;
    let mut envelope: Option<(String, Vec<String>)> = None;
    let failing = |stage: Stage| {
        config
            .fail
            .as_ref()
            .filter(|(s, _)| *s == stage)
            .map(|(_, reply)| reply.clone())
    };
    loop {
        let Some(line) = read_line(&mut stream).await? else {
            return Ok(None);
        };
        let upper = line.to_ascii_uppercase();
        let verb = upper.split(' ').next().unwrap_or_default();
        match verb {
            "EHLO" | "HELO" => {
                helo = line[4..].trim().to_owned();
                envelope = None;
                let mut lines = vec!["250-test.invalid greets you".to_owned()];
                lines.push("250-8BITMIME".to_owned());
                lines.push("250-SMTPUTF8".to_owned());
                if config.tls == TlsMode::Starttls && !tls {
                    lines.push("250-STARTTLS".to_owned());
                }
                if config.credentials.is_some() {
                    lines.push("250-AUTH PLAIN".to_owned());
                }
                lines.push("250 HELP".to_owned());
                if verb == "HELO" {
                    reply(&mut stream, "250 test.invalid").await?;
                } else {
                    reply(&mut stream, &lines.join("\r\n")).await?;
                }
            }
            "STARTTLS" if config.tls == TlsMode::Starttls && !tls => {
                reply(&mut stream, "220 2.0.0 Ready to start TLS").await?;
                return Ok(Some(stream.into_inner()));
            }
            "AUTH" => {
                let ok = match (&config.credentials, upper.strip_prefix("AUTH PLAIN ")) {
                    (Some((user, password)), Some(_)) => {
                        let given = base64_decode(line["AUTH PLAIN ".len()..].trim());
                        let expected = format!("\0{user}\0{password}").into_bytes();
                        (given.as_deref() == Some(expected.as_slice())).then(|| user.clone())
                    }
                    _ => None,
                };
                match ok {
                    Some(user) => {
                        authenticated_as = Some(user);
                        reply(&mut stream, "235 2.7.0 Authentication successful").await?;
                    }
                    None => reply(&mut stream, "535 5.7.8 Authentication failed").await?,
                }
            }
            "MAIL" => {
                if config.credentials.is_some() && authenticated_as.is_none() {
                    reply(&mut stream, "530 5.7.0 Authentication required").await?;
                } else if let Some(fail) = failing(Stage::Mail) {
                    reply(&mut stream, &fail).await?;
                } else {
                    envelope = Some((address(&line), Vec::new()));
                    reply(&mut stream, "250 2.1.0 OK").await?;
                }
            }
            "RCPT" => match (&mut envelope, failing(Stage::Rcpt)) {
                (None, _) => reply(&mut stream, "503 5.5.1 MAIL first").await?,
                (Some(_), Some(fail)) => reply(&mut stream, &fail).await?,
                (Some((_, rcpt)), None) => {
                    rcpt.push(address(&line));
                    reply(&mut stream, "250 2.1.5 OK").await?;
                }
            },
            "DATA" => {
                let Some((mail_from, rcpt_to)) = envelope.take().filter(|(_, r)| !r.is_empty())
                else {
                    reply(&mut stream, "503 5.5.1 RCPT first").await?;
                    continue;
                };
                reply(&mut stream, "354 End data with <CR><LF>.<CR><LF>").await?;
                let mut data = Vec::new();
                loop {
                    let mut raw = Vec::new();
                    if stream.read_until(b'\n', &mut raw).await? == 0 {
                        return Ok(None);
                    }
                    if raw == b".\r\n" {
                        break;
                    }
                    // Dot-stuffing (RFC 5321 4.5.2): a leading dot was doubled by the client.
                    let raw = raw.strip_prefix(b".").unwrap_or(&raw);
                    data.extend_from_slice(raw);
                }
                if let Some(fail) = failing(Stage::Data) {
                    reply(&mut stream, &fail).await?;
                } else {
                    received.lock().expect("lock").push(Received {
                        helo: helo.clone(),
                        mail_from,
                        rcpt_to,
                        data,
                        tls,
                        authenticated_as: authenticated_as.clone(),
                    });
                    reply(&mut stream, "250 2.0.0 OK queued").await?;
                }
            }
            "RSET" => {
                envelope = None;
                reply(&mut stream, "250 2.0.0 OK").await?;
            }
            "NOOP" => reply(&mut stream, "250 2.0.0 OK").await?,
            "QUIT" => {
                reply(&mut stream, "221 2.0.0 Bye").await?;
                return Ok(None);
            }
            _ => reply(&mut stream, "500 5.5.2 Unknown command").await?,
        }
    }
}

async fn read_line<S: AsyncRead + Unpin>(
    stream: &mut BufReader<S>,
) -> std::io::Result<Option<String>> {
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_until(b'\n', &mut raw))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client silent"))??;
    if read == 0 {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&raw).trim_end().to_owned()))
}

async fn reply<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    text: &str,
) -> std::io::Result<()> {
    let stream = stream.get_mut();
    stream.write_all(text.as_bytes()).await?;
    stream.write_all(b"\r\n").await?;
    stream.flush().await
}

/// The address inside `<…>` of MAIL FROM / RCPT TO.
fn address(line: &str) -> String {
    match (line.find('<'), line.find('>')) {
        (Some(start), Some(end)) if start < end => line[start + 1..end].to_owned(),
        _ => String::new(),
    }
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes().filter(|&b| b != b'=') {
        let value = ALPHABET.iter().position(|&a| a == byte)? as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}
