//! IMAP intake: reads new mail from one mailbox and hands it, in batches, to the application.
//! (Long because one IMAP session's steps — connect, search, fetch, acknowledge, idle — share
//! the session and its error handling; split, they would only pass it around.)
//!
//! The contract with the application (the channel contract of docs/ARCHITECTURE.md): a batch
//! is handed to the [`Sink`], and only after the sink returned — that is, after the
//! application committed the messages — are they flagged `\Seen` and the [`Cursor`] moved
//! past them (its position `imap:<mailbox>`). A crash anywhere in between makes the same
//! messages arrive again, which intake recognises by their Message-ID.
//!
//! Which messages are new is decided by UID, not by the `\Seen` flag: the cursor keeps the
//! mailbox's UIDVALIDITY and the last UID delivered, so a message a person has already read
//! in a mail client is still taken in. When UIDVALIDITY changes the mailbox is read again
//! from the start.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::imap_proto::{Response, Status};
use async_imap::types::UnsolicitedResponse;
use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub use helpdesk_channel::{Cursor, Health, HealthState, Sink};

use crate::{RawMail, header_section};
/// The rustls this crate uses, for building a [`ClientConfig`](rustls::ClientConfig) for
/// [`ImapIntake::with_tls_config`].
pub use tokio_rustls::rustls;

/// An IMAP UID.
pub type Uid = u32;

/// How long one network step (connect, login, one command) may take before the connection is
/// given up as hung.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a round of intake under way at shutdown may take to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long a clean LOGOUT at shutdown may take.
const LOGOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// Transport security of the IMAP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapTls {
    /// Plain TCP (only for a server on the same host or in tests).
    None,
    /// Plain TCP upgraded with STARTTLS before login (usually port 143).
    Starttls,
    /// TLS from the first byte (usually port 993).
    Tls,
}

/// Where and how to read mail. The application maps its `[email.imap]` settings onto this.
#[derive(Clone)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub tls: ImapTls,
    pub username: String,
    pub password: String,
    /// The mailbox to read, e.g. `INBOX`.
    pub mailbox: String,
    /// Wait for new mail with IDLE when the server offers it; otherwise poll.
    pub idle: bool,
    /// Seconds between polls when IDLE is off or not offered.
    pub poll_seconds: u64,
}

impl fmt::Debug for ImapSettings {
    // By hand, so that the password never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("mailbox", &self.mailbox)
            .field("idle", &self.idle)
            .field("poll_seconds", &self.poll_seconds)
            .finish()
    }
}

/// How far a mailbox has been taken in: every message with a UID up to `last_uid` under this
/// `uid_validity` has been committed by the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorPosition {
    pub uid_validity: u32,
    pub last_uid: Uid,
}

impl CursorPosition {
    /// The name of a mailbox's position in the [`Cursor`].
    pub fn name(mailbox: &str) -> String {
        format!("imap:{mailbox}")
    }

    /// Reads a position as kept: "UIDVALIDITY:LAST_UID".
    pub fn parse(value: &str) -> Option<CursorPosition> {
        let (validity, uid) = value.split_once(':')?;
        Some(CursorPosition {
            uid_validity: validity.parse().ok()?,
            last_uid: uid.parse().ok()?,
        })
    }
}

impl fmt::Display for CursorPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uid_validity, self.last_uid)
    }
}

/// Why a connection or a round of intake failed. Every one of them is retried.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}: no answer within {COMMAND_TIMEOUT:?}")]
    Timeout(&'static str),
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    #[error("TLS setup: {0}")]
    TlsConfig(#[from] rustls::Error),
    #[error("TLS handshake: {0}")]
    TlsHandshake(#[source] io::Error),
    #[error("server greeting: {0}")]
    Greeting(String),
    #[error("login refused: {0}")]
    Login(#[source] async_imap::error::Error),
    #[error("IMAP: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("mailbox {0:?} has no UIDVALIDITY")]
    NoUidValidity(String),
    #[error("cursor: {0}")]
    Cursor(#[source] Box<dyn StdError + Send + Sync>),
    #[error("cursor: {0:?} is not UIDVALIDITY:UID")]
    CursorValue(String),
    #[error("sink: {0}")]
    Sink(#[source] Box<dyn StdError + Send + Sync>),
}

/// Reads one mailbox, hands new mail to a [`Sink`] and acknowledges it after the commit.
pub struct ImapIntake<C, S> {
    settings: ImapSettings,
    cursor: C,
    sink: S,
    health: Health,
    batch_size: usize,
    max_message_bytes: u64,
    backoff_min: Duration,
    backoff_max: Duration,
    idle_timeout: Duration,
    tls_config: Option<Arc<rustls::ClientConfig>>,
}

impl<C: Cursor, S: Sink<(Uid, RawMail)>> ImapIntake<C, S> {
    pub fn new(settings: ImapSettings, cursor: C, sink: S) -> Self {
        Self {
            settings,
            cursor,
            sink,
            health: Health::default(),
            batch_size: 50,
            max_message_bytes: u64::MAX,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            // Below the 30 minutes after which RFC 2177 lets a server drop an idle client.
            idle_timeout: Duration::from_secs(25 * 60),
            tls_config: None,
        }
    }

    /// Messages fetched and delivered per batch (default 50).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Messages larger than this are fetched as their header section only, and the messages
    /// of one delivery together hold about this much at most (default: no limit).
    pub fn with_max_message_bytes(mut self, max: u64) -> Self {
        self.max_message_bytes = max.max(1);
        self
    }

    /// Delay before reconnecting after an error: doubles from `min` up to `max`
    /// (default 1 s → 60 s).
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// How long one IDLE lasts before it is re-issued (default 25 minutes).
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// TLS client configuration to use instead of the default (Mozilla's root certificates).
    pub fn with_tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls_config = Some(config);
        self
    }

    /// The health this intake reports; clone it before calling [`run`](Self::run).
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// Takes in mail until `shutdown` completes, reconnecting after every error.
    ///
    /// Stopping may interrupt a batch in flight; nothing is acknowledged before the sink has
    /// returned, so such a batch is simply delivered again after the next start.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = pin!(shutdown);
        loop {
            let result = self.session(&mut shutdown).await;
            self.health.disconnected();
            let Err(error) = result else { return };
            let failures = self.health.failed(&error.to_string());
            let delay = self.backoff(failures);
            tracing::warn!(%error, failures, ?delay, mailbox = %self.settings.mailbox, "IMAP intake failed; reconnecting");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.as_mut() => return,
            }
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.backoff_min
            .saturating_mul(1 << doublings)
            .min(self.backoff_max)
    }

    /// One connection: rounds of intake separated by waits, until an error or shutdown
    /// (`Ok`).
    async fn session<F: Future<Output = ()>>(
        &self,
        shutdown: &mut Pin<&mut F>,
    ) -> Result<(), ImapError> {
        let (mut session, uid_validity, can_idle) = tokio::select! {
            r = self.connect() => r?,
            () = shutdown.as_mut() => return Ok(()),
        };
        self.health.update(|h| h.connected = true);
        loop {
            {
                let mut round = pin!(self.take_in(&mut session, uid_validity));
                tokio::select! {
                    r = round.as_mut() => r?,
                    () = shutdown.as_mut() => {
                        // A round whose mail the application may have committed gets to flag
                        // it and move the cursor, so a restart does not fetch it again.
                        let _ = tokio::time::timeout(SHUTDOWN_GRACE, round).await;
                        return Ok(());
                    }
                }
            }
            self.health.succeeded();
            session = match self.wait(session, can_idle, shutdown).await? {
                Some(session) => session,
                None => return Ok(()),
            };
        }
    }

    /// Connects, logs in and selects the mailbox. Returns the session, the mailbox's
    /// UIDVALIDITY and whether IDLE is to be used.
    async fn connect(&self) -> Result<(Session<ImapStream>, u32, bool), ImapError> {
        let s = &self.settings;
        let addr = format!("{}:{}", s.host, s.port);
        let tcp = net("connect", async {
            TcpStream::connect((s.host.as_str(), s.port))
                .await
                .map_err(|source| ImapError::Connect {
                    addr: addr.clone(),
                    source,
                })
        })
        .await?;
        // Commands are small and answered one at a time.
        tcp.set_nodelay(true).ok();

        let stream = match s.tls {
            ImapTls::None => ImapStream::Plain(tcp),
            ImapTls::Tls => ImapStream::Tls(Box::new(self.tls_handshake(tcp).await?)),
            ImapTls::Starttls => {
                let mut client = Client::new(tcp);
                net("greeting", read_greeting(&mut client)).await?;
                net(
                    "STARTTLS",
                    client.run_command_and_check_ok("STARTTLS", None),
                )
                .await?;
                ImapStream::Tls(Box::new(self.tls_handshake(client.into_inner()).await?))
            }
        };
        let mut client = Client::new(stream);
        // After STARTTLS there is no second greeting.
        if s.tls != ImapTls::Starttls {
            net("greeting", read_greeting(&mut client)).await?;
        }
        let mut session = net("login", async {
            client
                .login(&s.username, &s.password)
                .await
                .map_err(|(e, _)| ImapError::Login(e))
        })
        .await?;
        let can_idle = s.idle
            && net("CAPABILITY", session.capabilities())
                .await?
                .has_str("IDLE");
        let mailbox = net("SELECT", session.select(&s.mailbox)).await?;
        let uid_validity = mailbox
            .uid_validity
            .ok_or_else(|| ImapError::NoUidValidity(s.mailbox.clone()))?;
        tracing::info!(host = %s.host, mailbox = %s.mailbox, uid_validity, exists = mailbox.exists, can_idle, "IMAP mailbox selected");
        Ok((session, uid_validity, can_idle))
    }

    async fn tls_handshake(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, ImapError> {
        let config = match &self.tls_config {
            Some(config) => config.clone(),
            None => default_tls_config()?,
        };
        let name = rustls::pki_types::ServerName::try_from(self.settings.host.clone())
            .map_err(|_| ImapError::ServerName(self.settings.host.clone()))?;
        net("TLS handshake", async {
            TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(ImapError::TlsHandshake)
        })
        .await
    }

    /// Where the cursor says the mailbox stands.
    async fn position(&self) -> Result<Option<CursorPosition>, ImapError> {
        let name = CursorPosition::name(&self.settings.mailbox);
        match self.cursor.position(&name).await.map_err(cursor_error)? {
            None => Ok(None),
            Some(value) => CursorPosition::parse(&value)
                .map(Some)
                .ok_or(ImapError::CursorValue(value)),
        }
    }

    /// Delivers every message after the cursor, batch by batch, until a search finds nothing
    /// new (so mail that arrived meanwhile is not left waiting for the next wake-up).
    async fn take_in(
        &self,
        session: &mut Session<ImapStream>,
        uid_validity: u32,
    ) -> Result<(), ImapError> {
        loop {
            // What was announced so far is covered by the search below.
            while session.unsolicited_responses.try_recv().is_ok() {}
            let after = match self.position().await? {
                Some(p) if p.uid_validity == uid_validity => p.last_uid,
                Some(p) => {
                    tracing::warn!(
                        old = p.uid_validity,
                        new = uid_validity,
                        "UIDVALIDITY changed; reading the mailbox again"
                    );
                    0
                }
                None => 0,
            };
            // `n:*` always matches the last message, even one below n: filter.
            let mut uids: Vec<Uid> = net(
                "UID SEARCH",
                session.uid_search(format!("UID {}:*", after.saturating_add(1))),
            )
            .await?
            .into_iter()
            .filter(|&uid| uid > after)
            .collect();
            uids.sort_unstable();
            self.health.update(|h| h.backlog = uids.len() as u64);
            if uids.is_empty() {
                return Ok(());
            }
            for chunk in uids.chunks(self.batch_size) {
                self.take_batch(session, uid_validity, chunk).await?;
                self.health
                    .update(|h| h.backlog = h.backlog.saturating_sub(chunk.len() as u64));
            }
        }
    }

    /// Fetch → deliver → flag `\Seen` → move the cursor, for UIDs in ascending order. The
    /// sizes come first: a message too large to take in is fetched as its header section only,
    /// and the rest are fetched and delivered in parts of at most about the limit, so memory
    /// holds one large message at a time, not a batch of them.
    async fn take_batch(
        &self,
        session: &mut Session<ImapStream>,
        uid_validity: u32,
        uids: &[Uid],
    ) -> Result<(), ImapError> {
        let Some(&last_uid) = uids.last() else {
            return Ok(());
        };
        let set = uid_set(uids);
        let sizes = self.sizes(session, &set, uids).await?;
        let mut delivered = 0;
        for part in parts(&sizes, self.max_message_bytes) {
            let batch = self.fetch(session, part).await?;
            if batch.is_empty() {
                continue;
            }
            delivered += batch.len();
            self.sink
                .accept(batch)
                .await
                .map_err(|e| ImapError::Sink(Box::new(e)))?;
        }
        if delivered < uids.len() {
            tracing::warn!(
                asked = uids.len(),
                got = delivered,
                "some messages vanished before they were fetched"
            );
        }
        tracing::debug!(delivered, last_uid, "IMAP batch committed");
        // Acknowledge only now that the application has committed the batch.
        net("UID STORE", async {
            session
                .uid_store(&set, "+FLAGS.SILENT (\\Seen)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        let position = CursorPosition {
            uid_validity,
            last_uid,
        };
        self.cursor
            .set_position(
                &CursorPosition::name(&self.settings.mailbox),
                &position.to_string(),
            )
            .await
            .map_err(cursor_error)
    }

    /// The RFC822.SIZE of each of `uids` still in the mailbox, in UID order.
    async fn sizes(
        &self,
        session: &mut Session<ImapStream>,
        set: &str,
        uids: &[Uid],
    ) -> Result<Vec<(Uid, u64)>, ImapError> {
        let fetches: Vec<_> = net("UID FETCH RFC822.SIZE", async {
            session
                .uid_fetch(set, "(UID RFC822.SIZE)")
                .await?
                .try_collect()
                .await
        })
        .await?;
        // The server may mix in FETCH responses for other messages (flag changes made
        // elsewhere): keep what was asked for.
        let mut sizes: Vec<(Uid, u64)> = fetches
            .iter()
            .filter_map(|f| Some((f.uid?, f.size.map_or(0, u64::from))))
            .filter(|(uid, _)| uids.binary_search(uid).is_ok())
            .collect();
        sizes.sort_unstable_by_key(|(uid, _)| *uid);
        sizes.dedup_by_key(|(uid, _)| *uid);
        Ok(sizes)
    }

    /// The messages of `part`: whole, or the header section of those over the limit. A message
    /// expunged meanwhile is left out.
    async fn fetch(
        &self,
        session: &mut Session<ImapStream>,
        part: &[(Uid, u64)],
    ) -> Result<Vec<(Uid, RawMail)>, ImapError> {
        let over = |&&(_, size): &&(Uid, u64)| size > self.max_message_bytes;
        let whole: Vec<Uid> = part
            .iter()
            .filter(|m| !over(m))
            .map(|(uid, _)| *uid)
            .collect();
        let large: Vec<(Uid, u64)> = part.iter().filter(over).copied().collect();
        let mut batch = Vec::with_capacity(part.len());
        if !whole.is_empty() {
            let uids = whole;
            let fetches: Vec<_> = net("UID FETCH", async {
                session
                    .uid_fetch(uid_set(&uids), "(UID BODY.PEEK[])")
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
            batch.extend(
                fetches
                    .iter()
                    .filter_map(|f| Some((f.uid?, RawMail::Whole(f.body()?.to_vec()))))
                    .filter(|(uid, _)| uids.binary_search(uid).is_ok()),
            );
        }
        if !large.is_empty() {
            let uids: Vec<Uid> = large.iter().map(|(uid, _)| *uid).collect();
            let fetches: Vec<_> = net("UID FETCH header", async {
                session
                    .uid_fetch(uid_set(&uids), "(UID BODY.PEEK[HEADER])")
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
            batch.extend(fetches.iter().filter_map(|f| {
                let uid = f.uid?;
                let size = large.iter().find(|(u, _)| *u == uid)?.1;
                let headers = header_section(f.header()?).to_vec();
                Some((uid, RawMail::Oversized { headers, size }))
            }));
        }
        batch.sort_unstable_by_key(|(uid, _)| *uid);
        batch.dedup_by_key(|(uid, _)| *uid);
        Ok(batch)
    }

    /// Waits for new mail with IDLE or by sleeping. Returns the session to continue with, or
    /// `None` after a shutdown (the session logged out).
    async fn wait<F: Future<Output = ()>>(
        &self,
        mut session: Session<ImapStream>,
        can_idle: bool,
        shutdown: &mut Pin<&mut F>,
    ) -> Result<Option<Session<ImapStream>>, ImapError> {
        if !can_idle {
            let poll = Duration::from_secs(self.settings.poll_seconds.max(1));
            tokio::select! {
                () = tokio::time::sleep(poll) => return Ok(Some(session)),
                () = shutdown.as_mut() => {}
            }
            tokio::time::timeout(LOGOUT_TIMEOUT, session.logout())
                .await
                .ok();
            return Ok(None);
        }

        let unsolicited = session.unsolicited_responses.clone();
        let mut idle = session.idle();
        net("IDLE", idle.init()).await?;
        // Mail that arrived after the last search may have been announced before the server
        // accepted IDLE; then there is no need to wait.
        let announced = std::iter::from_fn(|| unsolicited.try_recv().ok()).any(|r| {
            matches!(
                r,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
            )
        });
        let stopped = if announced {
            false
        } else {
            self.health.update(|h| h.idling = true);
            let (wait, _interrupt) = idle.wait_with_timeout(self.idle_timeout);
            // The outer timeout re-issues IDLE even when keep-alives keep the inner one from
            // expiring; what woke us does not matter, the next search finds the news.
            let woken = tokio::select! {
                r = tokio::time::timeout(self.idle_timeout, wait) => Some(r),
                () = shutdown.as_mut() => None,
            };
            self.health.update(|h| h.idling = false);
            match woken {
                Some(Ok(r)) => {
                    r?;
                    false
                }
                Some(Err(_elapsed)) => false,
                None => true,
            }
        };
        if stopped {
            tokio::time::timeout(LOGOUT_TIMEOUT, async {
                let mut session = idle.done().await?;
                session.logout().await
            })
            .await
            .ok();
            return Ok(None);
        }
        Ok(Some(net("DONE", idle.done()).await?))
    }
}

fn cursor_error(e: impl StdError + Send + Sync + 'static) -> ImapError {
    ImapError::Cursor(Box::new(e))
}

/// Runs one network step under [`COMMAND_TIMEOUT`].
async fn net<T, E: Into<ImapError>>(
    what: &'static str,
    step: impl Future<Output = Result<T, E>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, step).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(ImapError::Timeout(what)),
    }
}

async fn read_greeting<T>(client: &mut Client<T>) -> Result<(), ImapError>
where
    T: AsyncRead + AsyncWrite + Unpin + fmt::Debug + Send,
{
    let greeting = client
        .read_response()
        .await
        .map_err(async_imap::error::Error::from)?
        .ok_or(async_imap::error::Error::ConnectionLost)?;
    match greeting.parsed() {
        Response::Data {
            status: Status::Ok, ..
        } => Ok(()),
        Response::Data { status, outcome } => Err(ImapError::Greeting(format!(
            "{status:?} {}",
            outcome.information.as_deref().unwrap_or("")
        ))),
        other => Err(ImapError::Greeting(format!("unexpected {other:?}"))),
    }
}

fn default_tls_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Consecutive runs of `sizes` whose whole messages (those within `max`) add up to at most
/// `max`, one message at least; a message over `max` is fetched as its headers and counts for
/// nothing.
fn parts(sizes: &[(Uid, u64)], max: u64) -> Vec<&[(Uid, u64)]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut bytes: u64 = 0;
    for (index, &(_, size)) in sizes.iter().enumerate() {
        let size = if size > max { 0 } else { size };
        if index > start && bytes.saturating_add(size) > max {
            parts.push(&sizes[start..index]);
            start = index;
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
    }
    if start < sizes.len() {
        parts.push(&sizes[start..]);
    }
    parts
}

/// An IMAP sequence set for ascending UIDs, with runs folded: `[1,2,3,7]` → `1:3,7`.
fn uid_set(uids: &[Uid]) -> String {
    let mut set = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = uids[i];
        }
        if !set.is_empty() {
            set.push(',');
        }
        if start == end {
            set.push_str(&start.to_string());
        } else {
            set.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    set
}

/// The connection under the IMAP client: plain or TLS.
enum ImapStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl fmt::Debug for ImapStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImapStream::Plain(_) => "ImapStream::Plain",
            ImapStream::Tls(_) => "ImapStream::Tls",
        })
    }
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_fold_runs() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[1, 2, 3, 7]), "1:3,7");
        assert_eq!(uid_set(&[1, 3, 4, 9, 10, 11]), "1,3:4,9:11");
        assert_eq!(uid_set(&[u32::MAX - 1, u32::MAX]), "4294967294:4294967295");
    }

    #[test]
    fn parts_hold_at_most_the_limit_and_large_messages_count_for_nothing() {
        let sizes = [(1, 40), (2, 50), (3, 500), (4, 100), (5, 10), (6, 0)];
        let uids = |max| -> Vec<Vec<Uid>> {
            parts(&sizes, max)
                .iter()
                .map(|part| part.iter().map(|(uid, _)| *uid).collect())
                .collect()
        };
        assert_eq!(uids(100), [vec![1, 2, 3], vec![4], vec![5, 6]]);
        assert_eq!(uids(u64::MAX), [vec![1, 2, 3, 4, 5, 6]]);
        assert!(parts(&[], 100).is_empty());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        struct Never;
        impl Sink<(Uid, RawMail)> for Never {
            type Error = io::Error;
            async fn accept(&self, _: Vec<(Uid, RawMail)>) -> Result<(), io::Error> {
                Ok(())
            }
        }
        let settings = ImapSettings {
            host: "localhost".into(),
            port: 143,
            tls: ImapTls::None,
            username: "u".into(),
            password: "secret".into(),
            mailbox: "INBOX".into(),
            idle: true,
            poll_seconds: 30,
        };
        assert!(!format!("{settings:?}").contains("secret"));
        let intake = ImapIntake::new(settings, helpdesk_channel::MemoryCursor::default(), Never);
        let secs: Vec<u64> = (1..=9).map(|n| intake.backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(intake.backoff(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn positions_round_trip() {
        let position = CursorPosition {
            uid_validity: 7,
            last_uid: 42,
        };
        assert_eq!(CursorPosition::parse(&position.to_string()), Some(position));
        assert_eq!(CursorPosition::parse("7"), None);
        assert_eq!(CursorPosition::name("INBOX"), "imap:INBOX");
    }

    #[test]
    fn default_tls_config_builds_with_ring() {
        assert!(default_tls_config().is_ok());
    }
}
