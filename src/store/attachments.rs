//! Attachments: contents stored once per sha256 under the data directory, rows per message.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{Result, Store, Tx, on_pool, on_tx};

#[derive(Debug, thiserror::Error)]
#[error("cannot store attachment content in {path}: {source}")]
pub struct BlobError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Content-addressed files: `<dir>/ab/cd/abcd…` named by the sha256 of their bytes.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    pub fn new(dir: impl Into<PathBuf>) -> BlobStore {
        BlobStore { dir: dir.into() }
    }

    pub fn path_of(&self, sha256: &str) -> PathBuf {
        let (first, rest) = sha256.split_at(2.min(sha256.len()));
        let second = rest.get(..2).unwrap_or(rest);
        self.dir.join(first).join(second).join(sha256)
    }

    /// Writes `content` unless a file with the same hash exists; returns the hash. The file is
    /// written under a temporary name and renamed, so a crash never leaves a half file under the
    /// final name.
    pub fn put(&self, content: &[u8]) -> Result<String, BlobError> {
        let sha256 = hex::encode(Sha256::digest(content));
        let path = self.path_of(&sha256);
        if path.exists() {
            return Ok(sha256);
        }
        let error = |source| BlobError {
            path: path.clone(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(error)?;
        let temp = tempfile_in(dir).map_err(error)?;
        // No fsync, matching the database's synchronous=NORMAL: written data survives a crash
        // of the process; the raw message in the database holds the content as well.
        let (temp_path, mut file) = temp;
        file.write_all(content).map_err(error)?;
        drop(file);
        std::fs::rename(&temp_path, &path).map_err(error)?;
        Ok(sha256)
    }

    pub fn get(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path_of(sha256))
    }
}

/// A uniquely named new file in `dir`.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    loop {
        let path = dir.join(format!(".incoming-{:016x}", fastrand::u64(..)));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
}

/// One attachment row to write with its message.
#[derive(Debug, Clone)]
pub struct NewAttachment<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub inline: bool,
    pub content_id: Option<&'a str>,
    /// The stored content, or why it was not kept.
    pub stored: Result<String, String>,
}

pub async fn insert(
    tx: &mut Tx,
    message_id: i64,
    attachment: &NewAttachment<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    let (sha256, rejected_reason) = match &attachment.stored {
        Ok(sha256) => {
            on_tx!(tx, conn => sqlx::query(
                "INSERT INTO attachment_blobs (sha256, size, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha256)
            .bind(attachment.size)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))?;
            (Some(sha256.as_str()), None)
        }
        Err(reason) => (None, Some(reason.as_str())),
    };
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO attachments
            (message_id, sha256, filename, content_type, size, inline, content_id, rejected_reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(message_id)
    .bind(sha256)
    .bind(attachment.filename)
    .bind(attachment.content_type)
    .bind(attachment.size)
    .bind(attachment.inline)
    .bind(attachment.content_id)
    .bind(rejected_reason)
    .execute(&mut *conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct AttachmentView {
    #[serde(skip)]
    pub message_id: i64,
    pub id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub inline: bool,
    /// The Content-ID a mail's HTML refers to it by (`cid:`), without angle brackets.
    pub content_id: Option<String>,
    pub sha256: Option<String>,
    pub rejected_reason: Option<String>,
}

/// The attachments of a ticket's messages, in message order.
pub async fn of_ticket(store: &Store, ticket_id: i64) -> Result<Vec<AttachmentView>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT a.message_id, a.id, a.filename, a.content_type, a.size, a.inline, a.content_id,
                a.sha256, a.rejected_reason
         FROM attachments a JOIN messages m ON m.id = a.message_id
         WHERE m.ticket_id = $1 ORDER BY a.message_id, a.id",
    )
    .bind(ticket_id)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// How many distinct contents are stored, and their total size.
pub async fn blob_totals(store: &Store) -> Result<(i64, i64)> {
    let totals = on_pool!(store, pool => sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM attachment_blobs",
    )
    .fetch_one(pool)
    .await)?;
    Ok(totals)
}

/// The attachments of one message, in order.
pub async fn of_message(store: &Store, message_id: i64) -> Result<Vec<AttachmentView>> {
    let rows = on_pool!(store, pool => sqlx::query_as(
        "SELECT message_id, id, filename, content_type, size, inline, content_id, sha256,
                rejected_reason
         FROM attachments WHERE message_id = $1 ORDER BY id",
    )
    .bind(message_id)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// The media type of a file, judged by its name's extension; for files agents attach.
pub fn content_type_for(filename: &str) -> &'static str {
    let extension = filename
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "zip" => "application/zip",
        "json" => "application/json",
        "eml" => "message/rfc822",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_content_is_stored_once_under_its_hash() {
        let dir = tempfile::tempdir().expect("temp dir");
        let blobs = BlobStore::new(dir.path());
        let first = blobs.put(b"invoice").expect("stored");
        let second = blobs.put(b"invoice").expect("stored again");
        assert_eq!(first, second);
        assert_eq!(
            first,
            "52d6e3de4fa0dcc29946695f93940c3e7f26f30e1e39f4b1a49ad98839112786"
        );
        assert_eq!(blobs.get(&first).expect("readable"), b"invoice");
        let path = blobs.path_of(&first);
        assert!(path.starts_with(dir.path().join(&first[..2]).join(&first[2..4])));
        let files: Vec<_> = walk(dir.path());
        assert_eq!(files.len(), 1, "no temporary files left: {files:?}");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).expect("readable dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                found.extend(walk(&path));
            } else {
                found.push(path);
            }
        }
        found
    }
}
