//! Feeding files of mail through intake, as if they had arrived by IMAP: single .eml files,
//! mbox files (auto-detected) and directories such as Maildir.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

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
    pub raw: Vec<u8>,
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
/// "From " separator line) gives many, anything else is one message.
pub fn read_file(
    path: &Path,
    mut emit: impl FnMut(SourceMessage) -> bool,
) -> Result<(), SourceError> {
    let read_error = |source| SourceError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let is_mbox = reader.fill_buf().map_err(read_error)?.starts_with(b"From ");
    if !is_mbox {
        let mut raw = Vec::new();
        reader.read_to_end(&mut raw).map_err(read_error)?;
        emit(SourceMessage {
            origin: path.display().to_string(),
            raw,
        });
        return Ok(());
    }
    for (index, message) in MboxReader::new(reader).enumerate() {
        let raw = message.map_err(read_error)?;
        let origin = format!("{} (message {})", path.display(), index + 1);
        if !emit(SourceMessage { origin, raw }) {
            break;
        }
    }
    Ok(())
}

/// Splits an mbox stream into messages without holding the whole file: a line starting with
/// "From " begins a message; ">From " lines (mboxrd/mboxo quoting) lose one '>'.
pub struct MboxReader<R> {
    reader: R,
    pending: Option<Vec<u8>>,
    line: Vec<u8>,
    done: bool,
}

impl<R: BufRead> MboxReader<R> {
    pub fn new(reader: R) -> Self {
        MboxReader {
            reader,
            pending: None,
            line: Vec::new(),
            done: false,
        }
    }
}

fn is_separator(line: &[u8]) -> bool {
    line.starts_with(b"From ")
}

impl<R: BufRead> Iterator for MboxReader<R> {
    type Item = std::io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            self.line.clear();
            match self.reader.read_until(b'\n', &mut self.line) {
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
                Ok(0) => {
                    self.done = true;
                    return self
                        .pending
                        .take()
                        .map(|message| Ok(trim_separator_blank(message)));
                }
                Ok(_) => {}
            }
            if is_separator(&self.line) {
                let finished = self.pending.replace(Vec::new());
                if let Some(message) = finished {
                    return Some(Ok(trim_separator_blank(message)));
                }
                continue;
            }
            let Some(message) = self.pending.as_mut() else {
                // Text before the first separator is not part of any message.
                continue;
            };
            let quoted_from = self.line.iter().position(|&b| b != b'>');
            match quoted_from {
                Some(depth) if depth > 0 && self.line[depth..].starts_with(b"From ") => {
                    message.extend_from_slice(&self.line[1..]);
                }
                _ => message.extend_from_slice(&self.line),
            }
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
                let (origins, raws): (Vec<String>, Vec<Vec<u8>>) = batch
                    .into_iter()
                    .map(|message| (message.origin, message.raw))
                    .unzip();
                let preparer = intake.clone();
                let prepared = tokio::task::spawn_blocking(move || {
                    raws.into_iter()
                        .map(|raw| preparer.prepare_email(raw))
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
                                let error = IntakeError::Store(crate::store::StoreError::Invalid(
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
    summary
}

/// Reads `files` on a blocking thread into a channel that [`run`] consumes.
pub fn spawn_reader(
    files: Vec<PathBuf>,
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
            let result = read_file(&file, |message| sender.blocking_send(message).is_ok());
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
        MboxReader::new(mbox.as_bytes())
            .map(|message| String::from_utf8(message.expect("readable")).expect("utf-8"))
            .collect()
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
