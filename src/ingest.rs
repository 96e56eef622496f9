//! Feeding files of mail through intake, as if they had arrived by IMAP: single .eml files,
//! mbox files (auto-detected) and directories such as Maildir.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use helpdesk_email::{MAX_HEADER_BYTES, RawMail, header_section};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::intake::{Intake, IntakeError, Outcome};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One message read from a file, with where it came from for reports.
#[derive(Debug)]
pub struct SourceMessage {
    pub origin: String,
    pub mail: RawMail,
}

/// The files under `paths`: files as given, directories walked in name order (hidden files
/// and Dovecot/Courier index files skipped).
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SourceError> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files)?;
    }
    Ok(files)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let read_error = |source| SourceError::Read {
        path: path.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    if !metadata.is_dir() {
        files.push(path.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(read_error)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|entry| {
            let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.') && !name.starts_with("dovecot") && !name.starts_with("courier")
        })
        .collect();
    entries.sort();
    for entry in entries {
        // Maildir's tmp/ holds messages still being delivered.
        if entry.is_dir() && entry.file_name().is_some_and(|name| name == "tmp") {
            continue;
        }
        collect(&entry, files)?;
    }
    Ok(())
}

/// Reads the messages of one file and hands each to `emit`: an mbox (it starts with a
/// "From " separator line) gives many, anything else is one message. A message larger than
/// `max_message_bytes` is not read whole: only its header section is kept (an .eml or Maildir
/// file by its length, an mbox message while it is scanned).
pub fn read_file(
    path: &Path,
    max_message_bytes: u64,
    mut emit: impl FnMut(SourceMessage) -> bool,
) -> Result<(), SourceError> {
    let read_error = |source| SourceError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let is_mbox = reader.fill_buf().map_err(read_error)?.starts_with(b"From ");
    if !is_mbox {
        let mail = if size > max_message_bytes {
            let headers = read_header_section(&mut reader).map_err(read_error)?;
            RawMail::Oversized { headers, size }
        } else {
            let mut raw = Vec::new();
            reader.read_to_end(&mut raw).map_err(read_error)?;
            RawMail::Whole(raw)
        };
        emit(SourceMessage {
            origin: path.display().to_string(),
            mail,
        });
        return Ok(());
    }
    for (index, message) in MboxReader::new(reader, max_message_bytes).enumerate() {
        let mail = message.map_err(read_error)?;
        let origin = format!("{} (message {})", path.display(), index + 1);
        if !emit(SourceMessage { origin, mail }) {
            break;
        }
    }
    Ok(())
}

/// Longest piece of a line read at once, so that a file of one endless line cannot fill memory.
const MAX_LINE_PIECE: u64 = 64 << 10;

fn is_blank(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

/// The header section at the start of `reader`, at most [`MAX_HEADER_BYTES`], read line by line.
fn read_header_section(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut headers = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let room = MAX_HEADER_BYTES.saturating_sub(headers.len()) as u64;
        let read = reader
            .by_ref()
            .take(room + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 || headers.len() + line.len() > MAX_HEADER_BYTES {
            return Ok(headers);
        }
        headers.extend_from_slice(&line);
        if is_blank(&line) {
            return Ok(headers);
        }
    }
}

/// Splits an mbox stream into messages without holding the whole file: a line starting with
/// "From " begins a message; ">From " lines (mboxrd/mboxo quoting) lose one '>'. A message
/// that grows past `max_message_bytes` keeps only its header section from then on.
pub struct MboxReader<R> {
    reader: R,
    pending: Option<Pending>,
    line: Vec<u8>,
    /// Whether `line` starts a line (a long line is read in pieces).
    at_line_start: bool,
    done: bool,
    max_message_bytes: u64,
}

/// The message being read.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// Bytes of the message so far, also those no longer kept.
    size: u64,
    in_headers: bool,
    oversized: bool,
    /// Length of the last line if it was blank: before a separator it belongs to the mbox.
    last_blank: u64,
}

impl Pending {
    fn new() -> Pending {
        Pending {
            in_headers: true,
            ..Pending::default()
        }
    }

    fn push(&mut self, piece: &[u8], line_start: bool, max_message_bytes: u64) {
        self.size += piece.len() as u64;
        let header_room = self.in_headers && self.bytes.len() + piece.len() <= MAX_HEADER_BYTES;
        if !self.oversized || header_room {
            self.bytes.extend_from_slice(piece);
        }
        let blank = line_start && is_blank(piece);
        if blank {
            self.in_headers = false;
        }
        self.last_blank = if blank { piece.len() as u64 } else { 0 };
        if !self.oversized && self.size > max_message_bytes {
            self.oversized = true;
            self.bytes.truncate(header_section(&self.bytes).len());
            self.bytes.shrink_to_fit();
        }
    }

    fn finish(self) -> RawMail {
        if self.oversized {
            RawMail::Oversized {
                headers: self.bytes,
                size: self.size - self.last_blank,
            }
        } else {
            RawMail::Whole(trim_separator_blank(self.bytes))
        }
    }
}

impl<R: BufRead> MboxReader<R> {
    pub fn new(reader: R, max_message_bytes: u64) -> Self {
        MboxReader {
            reader,
            pending: None,
            line: Vec::new(),
            at_line_start: true,
            done: false,
            max_message_bytes,
        }
    }
}

fn is_separator(line: &[u8]) -> bool {
    line.starts_with(b"From ")
}

impl<R: BufRead> Iterator for MboxReader<R> {
    type Item = std::io::Result<RawMail>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            self.line.clear();
            let line_start = self.at_line_start;
            let read = self
                .reader
                .by_ref()
                .take(MAX_LINE_PIECE)
                .read_until(b'\n', &mut self.line);
            match read {
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
                Ok(0) => {
                    self.done = true;
                    return self.pending.take().map(|message| Ok(message.finish()));
                }
                Ok(_) => {}
            }
            self.at_line_start = self.line.ends_with(b"\n");
            if line_start && is_separator(&self.line) {
                let finished = self.pending.replace(Pending::new());
                if let Some(message) = finished {
                    return Some(Ok(message.finish()));
                }
                continue;
            }
            let Some(message) = self.pending.as_mut() else {
                // Text before the first separator is not part of any message.
                continue;
            };
            let quoted_from = self.line.iter().position(|&b| b != b'>');
            let piece = match quoted_from {
                Some(depth)
                    if line_start && depth > 0 && self.line[depth..].starts_with(b"From ") =>
                {
                    &self.line[1..]
                }
                _ => &self.line[..],
            };
            message.push(piece, line_start, self.max_message_bytes);
        }
    }
}

/// The blank line before the next separator belongs to the mbox format, not to the message.
fn trim_separator_blank(mut message: Vec<u8>) -> Vec<u8> {
    if message.ends_with(b"\r\n\r\n") {
        message.truncate(message.len() - 2);
    } else if message.ends_with(b"\n\n") {
        message.truncate(message.len() - 1);
    }
    message
}

/// What an ingest run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub messages: u64,
    pub new_tickets: u64,
    pub threaded: u64,
    pub reopened: u64,
    /// Bounces of mail sent from here, kept on that mail's ticket.
    pub bounces: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Rejection reasons with how often each occurred.
    pub rejected_reasons: BTreeMap<String, u64>,
    /// Where the first rejected messages came from, with their reason.
    pub rejected_examples: Vec<(String, String)>,
    /// Messages that could not even be kept (the database failed).
    pub failed: u64,
    pub failures: Vec<(String, String)>,
    /// Why the run stopped before the end: the database became unavailable (full,
    /// unreachable). What was not taken in stays in the files for the next run.
    pub stopped: Option<String>,
    /// Messages read but not taken in because the database was unavailable.
    pub not_taken: u64,
}

const MAX_EXAMPLES: usize = 20;

impl Summary {
    pub fn count(&mut self, origin: &str, outcome: Result<Outcome, IntakeError>) {
        self.messages += 1;
        match outcome {
            Ok(Outcome::Created { .. }) => self.new_tickets += 1,
            Ok(Outcome::Threaded { reopened, .. }) => {
                self.threaded += 1;
                self.reopened += u64::from(reopened);
            }
            Ok(Outcome::Bounced { .. }) => self.bounces += 1,
            Ok(Outcome::Duplicate) => self.duplicates += 1,
            Ok(Outcome::Rejected { reason }) => {
                self.rejected += 1;
                if self.rejected_examples.len() < MAX_EXAMPLES {
                    self.rejected_examples
                        .push((origin.to_owned(), reason.clone()));
                }
                *self.rejected_reasons.entry(reason).or_default() += 1;
            }
            Err(IntakeError::Store(error)) if error.is_unavailable() => {
                self.not_taken += 1;
                self.stopped.get_or_insert_with(|| error.to_string());
            }
            Err(error) => {
                self.failed += 1;
                if self.failures.len() < MAX_EXAMPLES {
                    self.failures.push((origin.to_owned(), error.to_string()));
                }
            }
        }
    }
}

/// Takes in messages from `source` in batches of up to `batch_size` (one commit per batch;
/// see [`Intake::accept_batch`]), with up to `concurrency` batches in flight so that parsing
/// overlaps with writing; `progress` is called after each message. Once the database is
/// unavailable (full, unreachable) no further message is read: the run ends with
/// [`Summary::stopped`] after the batches in flight.
pub async fn run(
    intake: &Intake,
    mut source: mpsc::Receiver<SourceMessage>,
    concurrency: usize,
    batch_size: usize,
    mut progress: impl FnMut(&Summary),
) -> Summary {
    let mut summary = Summary::default();
    let mut in_flight = JoinSet::new();
    let mut source_open = true;
    // The tables grow by orders of magnitude in a bulk import: the database's statistics are
    // gathered again at every doubling (see `Store::refresh_statistics`).
    let mut statistics_at = 1000;
    let mut statistics: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        if source_open && summary.stopped.is_some() {
            // The reader sees the channel closed and stops.
            source.close();
            source_open = false;
        }
        while source_open && in_flight.len() < concurrency.max(1) {
            let Some(first) = source.recv().await else {
                source_open = false;
                break;
            };
            // Whatever else is ready joins the batch; nothing waits to fill it.
            let mut batch = vec![first];
            while batch.len() < batch_size.max(1) {
                match source.try_recv() {
                    Ok(message) => batch.push(message),
                    Err(_) => break,
                }
            }
            let intake = intake.clone();
            in_flight.spawn(async move {
                let (origins, mails): (Vec<String>, Vec<RawMail>) = batch
                    .into_iter()
                    .map(|message| (message.origin, message.mail))
                    .unzip();
                let preparer = intake.clone();
                let prepared = tokio::task::spawn_blocking(move || {
                    mails
                        .into_iter()
                        .map(|mail| preparer.prepare_email(mail))
                        .collect::<Vec<_>>()
                })
                .await;
                match prepared {
                    Ok(prepared) => origins
                        .into_iter()
                        .zip(intake.accept_batch(prepared).await)
                        .collect::<Vec<_>>(),
                    Err(join_error) => {
                        let reason = format!("preparing the batch stopped: {join_error}");
                        origins
                            .into_iter()
                            .map(|origin| {
                                let error = IntakeError::Store(crate::store::StoreError::Stopped(
                                    reason.clone(),
                                ));
                                (origin, Err(error))
                            })
                            .collect()
                    }
                }
            });
        }
        match in_flight.join_next().await {
            Some(Ok(results)) => {
                for (origin, outcome) in results {
                    summary.count(&origin, outcome);
                    progress(&summary);
                }
                let idle = statistics.as_ref().is_none_or(|task| task.is_finished());
                if summary.messages >= statistics_at && idle {
                    statistics_at = summary.messages.saturating_mul(2);
                    let store = intake.store().clone();
                    statistics = Some(tokio::spawn(async move {
                        if let Err(error) = store.refresh_statistics().await {
                            tracing::warn!(%error, "could not refresh the database's statistics");
                        }
                    }));
                }
            }
            Some(Err(join_error)) => {
                summary.failed += 1;
                summary
                    .failures
                    .push(("(batch)".to_owned(), join_error.to_string()));
            }
            None => break,
        }
    }
    if let Some(task) = statistics {
        task.await.ok();
    }
    summary
}

/// Reads `files` on a blocking thread into a channel that [`run`] consumes; messages larger
/// than `max_message_bytes` are read as their header section only.
pub fn spawn_reader(
    files: Vec<PathBuf>,
    max_message_bytes: u64,
) -> (
    mpsc::Receiver<SourceMessage>,
    tokio::task::JoinHandle<Vec<SourceError>>,
) {
    let (sender, receiver) = mpsc::channel(256);
    let reader = tokio::task::spawn_blocking(move || {
        let mut errors = Vec::new();
        for file in files {
            if sender.is_closed() {
                break;
            }
            let result = read_file(&file, max_message_bytes, |message| {
                sender.blocking_send(message).is_ok()
            });
            if let Err(error) = result {
                errors.push(error);
            }
        }
        errors
    });
    (receiver, reader)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(mbox: &str) -> Vec<String> {
        MboxReader::new(mbox.as_bytes(), u64::MAX)
            .map(|message| match message.expect("readable") {
                RawMail::Whole(raw) => String::from_utf8(raw).expect("utf-8"),
                oversized => panic!("no limit, yet {oversized:?}"),
            })
            .collect()
    }

    #[test]
    fn an_mbox_message_over_the_limit_keeps_its_headers_and_its_size() {
        let body = "0123456789\n".repeat(100);
        let mbox = format!(
            "From a\nSubject: one\n\nsmall\n\nFrom b\nSubject: big\nX: y\n\n{body}\nFrom c\nSubject: three\n\nsmall\n"
        );
        let mails: Vec<RawMail> = MboxReader::new(mbox.as_bytes(), 200)
            .map(|message| message.expect("readable"))
            .collect();
        assert_eq!(
            mails,
            [
                RawMail::Whole(b"Subject: one\n\nsmall\n".to_vec()),
                RawMail::Oversized {
                    headers: b"Subject: big\nX: y\n\n".to_vec(),
                    size: (19 + body.len()) as u64,
                },
                RawMail::Whole(b"Subject: three\n\nsmall\n".to_vec()),
            ]
        );
    }

    #[test]
    fn a_line_longer_than_a_piece_is_not_read_for_separators_inside_it() {
        let long = "x".repeat(MAX_LINE_PIECE as usize);
        let mbox = format!("From a\nSubject: one\n\n{long}From inside\nend\n");
        assert_eq!(
            split(&mbox),
            vec![format!("Subject: one\n\n{long}From inside\nend\n")]
        );
    }

    #[test]
    fn a_header_section_is_read_up_to_its_blank_line() {
        let mut reader = "A: 1\r\nB: 2\r\n\r\nbody\r\n".as_bytes();
        assert_eq!(
            read_header_section(&mut reader).expect("read"),
            b"A: 1\r\nB: 2\r\n\r\n"
        );
        let endless = "H: ".to_owned() + &"x".repeat(2 * MAX_HEADER_BYTES);
        let headers = read_header_section(&mut endless.as_bytes()).expect("read");
        assert!(headers.is_empty(), "an endless line is not kept");
    }

    #[test]
    fn mbox_splits_on_from_lines_and_unquotes() {
        let mbox = "From a@example.org Mon Jan  1 00:00:00 2024\nSubject: one\n\nFirst\n>From here\n\nFrom b@example.org Mon Jan  1 00:00:01 2024\nSubject: two\n\nSecond\n>>From deep\n";
        assert_eq!(
            split(mbox),
            vec![
                "Subject: one\n\nFirst\nFrom here\n".to_owned(),
                "Subject: two\n\nSecond\n>From deep\n".to_owned(),
            ]
        );
    }

    #[test]
    fn mbox_with_crlf_and_no_trailing_newline() {
        let mbox = "From x\r\nSubject: a\r\n\r\nbody\r\n\r\nFrom y\r\nSubject: b\r\n\r\nend";
        assert_eq!(
            split(mbox),
            vec![
                "Subject: a\r\n\r\nbody\r\n".to_owned(),
                "Subject: b\r\n\r\nend".to_owned()
            ]
        );
    }

    #[test]
    fn text_before_the_first_separator_is_ignored() {
        assert_eq!(
            split("junk\nFrom x\nS: 1\n\nb\n"),
            vec!["S: 1\n\nb\n".to_owned()]
        );
        assert!(split("").is_empty());
    }
}
