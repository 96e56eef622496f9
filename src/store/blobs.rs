//! Attachment contents, stored once per sha256 under `<prefix>ab/cd/<sha256>`: files under the
//! data directory (`fs`) or objects in S3-compatible storage (`s3`), both through `object_store`,
//! so every caller has one code path.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use sha2::{Digest, Sha256};

use crate::config::{BlobBackend, S3Settings};

/// Contents at least this large go up in parts of this size (S3 wants 5 MiB or more per part),
/// so neither side needs one request with the whole body.
const PART_BYTES: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
#[error("attachment store {store}: {key}: {source}")]
pub struct BlobError {
    pub store: String,
    pub key: String,
    pub source: object_store::Error,
}

impl BlobError {
    /// The content is not in the store (and will not come back by waiting); anything else may
    /// be an outage worth retrying.
    pub fn is_missing(&self) -> bool {
        matches!(self.source, object_store::Error::NotFound { .. })
    }
}

/// Content-addressed attachment contents.
#[derive(Debug, Clone)]
pub struct BlobStore {
    objects: Arc<dyn ObjectStore>,
    /// `""` or a folder ending in `/`.
    prefix: String,
    /// For messages: the directory or `s3://bucket/prefix`.
    name: Arc<str>,
}

impl BlobStore {
    /// The store the settings choose.
    pub fn from_settings(settings: &crate::config::Settings) -> Result<BlobStore, BlobError> {
        match settings.attachments.store {
            BlobBackend::Fs => BlobStore::local(&settings.attachments_dir()),
            BlobBackend::S3 => BlobStore::s3(&settings.attachments.s3),
        }
    }

    /// Files under `dir` (created if missing). Each is written under a temporary name and
    /// renamed, so a crash never leaves a half file under the final name.
    pub fn local(dir: &Path) -> Result<BlobStore, BlobError> {
        let name = dir.display().to_string();
        let fail = |source| BlobError {
            store: name.clone(),
            key: String::new(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|error| {
            fail(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(error),
            })
        })?;
        let objects = LocalFileSystem::new_with_prefix(dir).map_err(fail)?;
        Ok(BlobStore {
            objects: Arc::new(objects),
            prefix: String::new(),
            name: name.into(),
        })
    }

    /// Objects in an S3-compatible bucket. Unset settings fall back to the usual `AWS_*`
    /// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ENDPOINT`, …).
    pub fn s3(settings: &S3Settings) -> Result<BlobStore, BlobError> {
        let prefix = folder(&settings.prefix);
        let mut builder = AmazonS3Builder::from_env()
            .with_virtual_hosted_style_request(!settings.path_style)
            // Few quick retries: an outage is for the caller to wait out (the job queue, the
            // channel's source), not for a request held open for minutes.
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: 2,
                retry_timeout: Duration::from_secs(15),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    // A whole large download streams within this.
                    .with_timeout(Duration::from_secs(600)),
            );
        let set = |value: &str| (!value.is_empty()).then(|| value.to_owned());
        if let Some(bucket) = set(&settings.bucket) {
            builder = builder.with_bucket_name(bucket);
        }
        let bucket = builder
            .get_config_value(&object_store::aws::AmazonS3ConfigKey::Bucket)
            .unwrap_or_default();
        let name = format!("s3://{bucket}/{prefix}");
        if let Some(endpoint) = set(&settings.endpoint) {
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint);
        }
        if let Some(region) = set(&settings.region) {
            builder = builder.with_region(region);
        }
        if let Some(key) = set(&settings.access_key_id) {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = set(&settings.secret_access_key) {
            builder = builder.with_secret_access_key(secret);
        }
        let objects = builder.build().map_err(|source| BlobError {
            store: name.clone(),
            key: String::new(),
            source,
        })?;
        Ok(BlobStore {
            objects: Arc::new(objects),
            prefix,
            name: name.into(),
        })
    }

    /// Where the content with this hash is kept: `<prefix>ab/cd/<sha256>`.
    pub fn key_of(&self, sha256: &str) -> Key {
        let (first, rest) = sha256.split_at(2.min(sha256.len()));
        let second = rest.get(..2).unwrap_or(rest);
        Key::from(format!("{}{first}/{second}/{sha256}", self.prefix))
    }

    fn error(&self, sha256: &str, source: object_store::Error) -> BlobError {
        BlobError {
            store: self.name.to_string(),
            key: sha256.to_owned(),
            source,
        }
    }

    /// The sha256 of `content`, in hex: its name in the store.
    pub fn hash(content: &[u8]) -> String {
        hex::encode(Sha256::digest(content))
    }

    /// Writes `content` unless it is there already; returns its hash.
    pub async fn put(&self, content: &[u8]) -> Result<String, BlobError> {
        let sha256 = BlobStore::hash(content);
        self.put_hashed(&sha256, Bytes::copy_from_slice(content))
            .await?;
        Ok(sha256)
    }

    /// Writes `content`, whose hash is `sha256`, unless it is there already.
    pub async fn put_hashed(&self, sha256: &str, content: Bytes) -> Result<(), BlobError> {
        if self.contains(sha256).await? {
            return Ok(());
        }
        let key = self.key_of(sha256);
        let written = if content.len() < PART_BYTES {
            self.objects
                .put(&key, PutPayload::from_bytes(content))
                .await
                .map(drop)
        } else {
            let mut upload = self.start_upload(&key).await?;
            upload.put(content);
            upload.finish().await.map(drop)
        };
        written.map_err(|source| self.error(sha256, source))
    }

    async fn start_upload(&self, key: &Key) -> Result<WriteMultipart, BlobError> {
        let upload = self
            .objects
            .put_multipart(key)
            .await
            .map_err(|source| self.error(key.filename().unwrap_or_default(), source))?;
        Ok(WriteMultipart::new_with_chunk_size(upload, PART_BYTES))
    }

    /// Whether the content with this hash is stored.
    pub async fn contains(&self, sha256: &str) -> Result<bool, BlobError> {
        match self.objects.head(&self.key_of(sha256)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(source) => Err(self.error(sha256, source)),
        }
    }

    /// Whether the store answers within `timeout`, for /readyz: a look-up of a key that is
    /// never stored, so "not there" is the healthy answer (for S3 this needs the bucket's
    /// list permission, as `attachments migrate` does).
    pub async fn check(&self, timeout: std::time::Duration) -> Result<(), BlobError> {
        const PROBE: &str = "readiness-probe";
        match tokio::time::timeout(timeout, self.contains(PROBE)).await {
            Ok(answer) => answer.map(|_| ()),
            Err(_) => Err(self.error(
                PROBE,
                object_store::Error::Generic {
                    store: "attachments",
                    source: format!("no answer within {} ms", timeout.as_millis()).into(),
                },
            )),
        }
    }

    /// The whole content (for a mail, which is built in memory anyway).
    pub async fn get(&self, sha256: &str) -> Result<Vec<u8>, BlobError> {
        let read = async { self.objects.get(&self.key_of(sha256)).await?.bytes().await };
        read.await
            .map(Vec::from)
            .map_err(|source| self.error(sha256, source))
    }

    /// The content as a stream of chunks, with its size: for answers that must not hold a
    /// large file in memory. A missing content or an outage is an error here, before any byte.
    pub async fn stream(&self, sha256: &str) -> Result<(u64, BlobStream), BlobError> {
        let found = self
            .objects
            .get(&self.key_of(sha256))
            .await
            .map_err(|source| self.error(sha256, source))?;
        Ok((found.meta.size, found.into_stream()))
    }

    /// Every stored content's hash; names that are not a sha256 (temporary files) are left
    /// out.
    pub fn hashes(&self) -> BoxStream<'static, Result<String, BlobError>> {
        let prefix = (!self.prefix.is_empty()).then(|| Key::from(self.prefix.as_str()));
        let name = self.name.clone();
        self.objects
            .list(prefix.as_ref())
            .map_err(move |source| BlobError {
                store: name.to_string(),
                key: String::new(),
                source,
            })
            .try_filter_map(|meta| async move {
                let sha256 = meta.location.filename().unwrap_or_default();
                Ok(is_sha256(sha256).then(|| sha256.to_owned()))
            })
            .boxed()
    }

    /// Copies one content from `self` to `target` chunk by chunk (large ones in parts), unless
    /// `target` has it; returns whether it copied.
    pub async fn copy_to(&self, target: &BlobStore, sha256: &str) -> Result<bool, BlobError> {
        if target.contains(sha256).await? {
            return Ok(false);
        }
        let (size, mut chunks) = self.stream(sha256).await?;
        let fail = |source| self.error(sha256, source);
        if size < PART_BYTES as u64 {
            let mut whole = Vec::with_capacity(size as usize);
            while let Some(chunk) = chunks.next().await {
                whole.extend_from_slice(&chunk.map_err(fail)?);
            }
            target.put_hashed(sha256, Bytes::from(whole)).await?;
            return Ok(true);
        }
        let mut upload = target.start_upload(&target.key_of(sha256)).await?;
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) => {
                    upload.wait_for_capacity(2).await.map_err(fail)?;
                    upload.put(chunk);
                }
                Err(source) => {
                    upload.abort().await.ok();
                    return Err(fail(source));
                }
            }
        }
        upload.finish().await.map_err(fail)?;
        Ok(true)
    }

    /// Where the contents are, for messages: a directory or `s3://bucket/prefix`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What [`copy_all`] did.
#[derive(Debug, Default)]
pub struct Copied {
    pub copied: u64,
    /// Already in the target.
    pub present: u64,
    pub failures: Vec<BlobError>,
}

/// Copies every content of `source` that `target` lacks, `parallel` at a time; a failed one
/// is reported and the rest go on, so running it again copies what is left.
pub async fn copy_all(source: &BlobStore, target: &BlobStore, parallel: usize) -> Copied {
    let mut copies = source
        .hashes()
        .map(|sha256| async move {
            match sha256 {
                Ok(sha256) => source.copy_to(target, &sha256).await,
                Err(error) => Err(error),
            }
        })
        .buffer_unordered(parallel);
    let mut done = Copied::default();
    while let Some(copy) = copies.next().await {
        match copy {
            Ok(true) => done.copied += 1,
            Ok(false) => done.present += 1,
            Err(error) => done.failures.push(error),
        }
    }
    done
}

/// A content's chunks as they arrive.
pub type BlobStream = BoxStream<'static, object_store::Result<Bytes>>;

/// `""` stays empty; anything else becomes `a/b/`.
fn folder(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

fn is_sha256(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn same_content_is_stored_once_under_its_hash() {
        let dir = tempfile::tempdir().expect("temp dir");
        let blobs = BlobStore::local(dir.path()).expect("store opens");
        let first = blobs.put(b"invoice").await.expect("stored");
        let second = blobs.put(b"invoice").await.expect("stored again");
        assert_eq!(first, second);
        assert_eq!(
            first,
            "52d6e3de4fa0dcc29946695f93940c3e7f26f30e1e39f4b1a49ad98839112786"
        );
        assert_eq!(blobs.get(&first).await.expect("readable"), b"invoice");
        let path = dir.path().join(&first[..2]).join(&first[2..4]).join(&first);
        assert!(path.is_file(), "kept at {}", path.display());
        let files: Vec<_> = walk(dir.path());
        assert_eq!(files.len(), 1, "no temporary files left: {files:?}");
        let listed: Vec<String> = blobs.hashes().try_collect().await.expect("listed");
        assert_eq!(listed, vec![first]);
    }

    #[tokio::test]
    async fn a_missing_content_is_missing_not_an_outage() {
        let dir = tempfile::tempdir().expect("temp dir");
        let blobs = BlobStore::local(dir.path()).expect("store opens");
        let error = blobs.get(&"0".repeat(64)).await.expect_err("not there");
        assert!(error.is_missing(), "{error}");
        assert!(!blobs.contains(&"0".repeat(64)).await.expect("asked"));
    }

    #[test]
    fn keys_carry_the_prefix_as_a_folder() {
        assert_eq!(folder(""), "");
        assert_eq!(folder("/helpdesk/files/"), "helpdesk/files/");
        let blobs = BlobStore {
            objects: Arc::new(object_store::memory::InMemory::new()),
            prefix: folder("tenant-a"),
            name: "memory".into(),
        };
        let sha = "52d6e3de4fa0dcc29946695f93940c3e7f26f30e1e39f4b1a49ad98839112786";
        assert_eq!(blobs.key_of(sha).as_ref(), format!("tenant-a/52/d6/{sha}"));
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
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
