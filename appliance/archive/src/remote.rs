//! The S3-compatible object store of the RemoteCold tier (`docs/archive.md`), on `object_store`.
//!
//! The API is **synchronous**: the tier manager and the reader are plain threads, so a
//! [`RemoteStore`] owns a small tokio current-thread runtime and blocks on it. Never call it
//! from inside an async runtime (tokio panics: "Cannot start a runtime from within a runtime").
//!
//! - [`RemoteStore::upload`] streams a local file (one PUT up to one part, multipart above it,
//!   at most [`PARTS_IN_FLIGHT`] parts in memory) and then [`RemoteStore::verify`]s it.
//! - Verification reads the stored bytes back with ranged GETs pinned to the ETag and compares
//!   size and SHA-256 with the local file's. S3 checksum headers are not used: a multipart
//!   object's checksum is a checksum of part checksums (not the file's SHA-256), servers differ
//!   in what they honour, and reading back proves the bytes a later reader will get.
//! - [`RemoteStore::open`] gives a [`RemoteObject`]: [`ReadAt`] by ranged GETs, each pinned to
//!   the ETag seen at open (`If-Match`, and the answer's ETag is checked), so an object replaced
//!   behind the reader's back is an error, never a mix of two versions.
//!
//! Every request is bounded: `request_timeout_secs` per HTTP request (a whole part or ranged
//! GET), `object_store`'s retries (`max_retries`, `retry_timeout_secs`, exponential backoff) for
//! transient failures and broken bodies. Credentials come from environment variables named in
//! the config, never from a file.

use crate::source::check_range;
use crate::{ArchiveError, ReadAt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path};
use std::sync::Arc;
use std::time::Duration;

/// Part limits: S3's smallest part (for all but the last), ours largest, S3's most parts.
pub const MIN_PART_BYTES: u64 = 5 << 20;
pub const MAX_PART_BYTES: u64 = 1 << 30;
pub const MAX_PARTS: u64 = 10_000;
/// Parts uploading at once: bounds memory to this many parts plus the one being read.
pub const PARTS_IN_FLIGHT: usize = 2;
/// Bytes fetched per ranged GET when verifying an upload (bounds memory and request time).
const VERIFY_CHUNK_BYTES: usize = 8 << 20;

/// Where the RemoteCold tier lives and how hard to try. Embedded in the tier configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// `https://host[:port]`; `http://` only with `allow_http` and a loopback host.
    pub endpoint: String,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Prepended to every key (`{prefix}/v1/...`); empty for none; no leading or trailing `/`.
    #[serde(default)]
    pub prefix: String,
    /// Plain HTTP, allowed only to a loopback endpoint (tests, a local gateway).
    #[serde(default)]
    pub allow_http: bool,
    /// Names of the environment variables that hold the credentials.
    #[serde(default = "default_access_key_env")]
    pub access_key_id_env: String,
    #[serde(default = "default_secret_key_env")]
    pub secret_access_key_env: String,
    /// Bound on one HTTP request, body included: must cover one part or one ranged GET.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Retries of one request on transient failures (5xx, connection, broken body).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Bound on one request including all its retries.
    #[serde(default = "default_retry_timeout")]
    pub retry_timeout_secs: u64,
    /// Multipart part size; a file larger than one part is uploaded in parts.
    #[serde(default = "default_part_bytes")]
    pub part_bytes: u64,
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_access_key_env() -> String {
    "AWS_ACCESS_KEY_ID".into()
}
fn default_secret_key_env() -> String {
    "AWS_SECRET_ACCESS_KEY".into()
}
fn default_request_timeout() -> u64 {
    120
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_max_retries() -> u32 {
    5
}
fn default_retry_timeout() -> u64 {
    300
}
fn default_part_bytes() -> u64 {
    16 << 20
}

impl RemoteConfig {
    /// A config with every optional field at its default.
    pub fn new(endpoint: impl Into<String>, bucket: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            bucket: bucket.into(),
            region: default_region(),
            prefix: String::new(),
            allow_http: false,
            access_key_id_env: default_access_key_env(),
            secret_access_key_env: default_secret_key_env(),
            request_timeout_secs: default_request_timeout(),
            connect_timeout_secs: default_connect_timeout(),
            max_retries: default_max_retries(),
            retry_timeout_secs: default_retry_timeout(),
            part_bytes: default_part_bytes(),
        }
    }

    /// Checks every field against its limits (called by [`RemoteStore::connect`]).
    pub fn validate(&self) -> Result<(), ArchiveError> {
        let bad = |field: &str, reason: String| {
            Err(ArchiveError::RemoteConfig {
                field: field.into(),
                reason,
            })
        };
        let url = match url::Url::parse(&self.endpoint) {
            Ok(u) => u,
            Err(e) => return bad("endpoint", format!("{:?} is not a URL: {e}", self.endpoint)),
        };
        match url.scheme() {
            "https" => {}
            "http" if !self.allow_http => {
                return bad("endpoint", "plain http needs allow_http = true".into())
            }
            "http" if !is_loopback(&url) => {
                return bad(
                    "allow_http",
                    "plain http is allowed only to a loopback host".into(),
                )
            }
            "http" => {}
            s => return bad("endpoint", format!("scheme {s:?} is not http(s)")),
        }
        let b = &self.bucket;
        let bucket_ok = (3..=63).contains(&b.len())
            && b.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.');
        if !bucket_ok {
            return bad(
                "bucket",
                format!("{b:?} is not an S3 bucket name (3-63 of a-z 0-9 . -)"),
            );
        }
        if !self.prefix.is_empty() && ObjectPath::parse(&self.prefix).is_err()
            || self.prefix.starts_with('/')
            || self.prefix.ends_with('/')
        {
            return bad(
                "prefix",
                format!("{:?}: segments joined by single '/'", self.prefix),
            );
        }
        for (field, v) in [
            ("request_timeout_secs", self.request_timeout_secs),
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("retry_timeout_secs", self.retry_timeout_secs),
        ] {
            if !(1..=3600).contains(&v) {
                return bad(field, format!("{v} is outside 1..=3600"));
            }
        }
        if self.max_retries > 20 {
            return bad("max_retries", format!("{} is above 20", self.max_retries));
        }
        if !(MIN_PART_BYTES..=MAX_PART_BYTES).contains(&self.part_bytes) {
            return bad(
                "part_bytes",
                format!(
                    "{} is outside {MIN_PART_BYTES}..={MAX_PART_BYTES}",
                    self.part_bytes
                ),
            );
        }
        Ok(())
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

/// An access key pair. `Debug` does not show the secret.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <secret>)", self.access_key_id)
    }
}

impl Credentials {
    /// Reads the two variables the config names.
    pub fn from_env(config: &RemoteConfig) -> Result<Self, ArchiveError> {
        let var = |field: &str, name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ArchiveError::RemoteConfig {
                    field: field.into(),
                    reason: format!("environment variable {name} is not set"),
                })
        };
        Ok(Self {
            access_key_id: var("access_key_id_env", &config.access_key_id_env)?,
            secret_access_key: var("secret_access_key_env", &config.secret_access_key_env)?,
        })
    }
}

/// What an object holds, as verified: the stub records two of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// `s3://{bucket}/{key}`.
    pub uri: String,
    /// The ETag exactly as the server gives it (quotes included).
    pub etag: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// A HEAD answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub etag: String,
}

struct Inner {
    rt: tokio::runtime::Runtime,
    s3: AmazonS3,
    bucket: String,
    prefix: String,
    part_bytes: u64,
}

/// A bucket (and key prefix) of an S3-compatible store. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct RemoteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteStore({})", self.inner.s3)
    }
}

impl RemoteStore {
    /// Validates the config, reads the credentials from the environment, builds the client.
    /// Makes no request: a wrong endpoint shows at the first operation.
    pub fn connect(config: &RemoteConfig) -> Result<Self, ArchiveError> {
        Self::connect_with(config, Credentials::from_env(config)?)
    }

    /// [`connect`](Self::connect) with explicit credentials.
    pub fn connect_with(config: &RemoteConfig, creds: Credentials) -> Result<Self, ArchiveError> {
        config.validate()?;
        let secs = Duration::from_secs;
        let client = ClientOptions::new()
            .with_timeout(secs(config.request_timeout_secs))
            .with_connect_timeout(secs(config.connect_timeout_secs))
            .with_allow_http(config.allow_http);
        let retry = RetryConfig {
            max_retries: config.max_retries as usize,
            retry_timeout: secs(config.retry_timeout_secs),
            ..RetryConfig::default()
        };
        let s3 = AmazonS3Builder::new()
            .with_endpoint(&config.endpoint)
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(creds.access_key_id)
            .with_secret_access_key(creds.secret_access_key)
            .with_client_options(client)
            .with_retry(retry)
            .build()
            .map_err(|e| ArchiveError::RemoteConfig {
                field: "endpoint".into(),
                reason: e.to_string(),
            })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ArchiveError::RemoteConfig {
                field: "(runtime)".into(),
                reason: format!("cannot start the I/O runtime: {e}"),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                rt,
                s3,
                bucket: config.bucket.clone(),
                prefix: config.prefix.clone(),
                part_bytes: config.part_bytes,
            }),
        })
    }

    /// The key of a file given by its path relative to a tier root, mirroring the local
    /// layout: `v1/{venue}/{symbol}/{date}/book.q.zst` → `{prefix}/v1/…/book.q.zst`.
    pub fn key_for(&self, relative: &Path) -> Result<String, ArchiveError> {
        let bad = |reason: &str| ArchiveError::RemoteConfig {
            field: "key".into(),
            reason: format!("{}: {reason}", relative.display()),
        };
        let mut parts: Vec<&str> = Vec::new();
        if !self.inner.prefix.is_empty() {
            parts.push(&self.inner.prefix);
        }
        for c in relative.components() {
            match c {
                Component::Normal(s) => parts.push(s.to_str().ok_or_else(|| bad("not UTF-8"))?),
                _ => return Err(bad("only plain names, relative to the tier root")),
            }
        }
        if relative.components().next() != Some(Component::Normal("v1".as_ref())) {
            return Err(bad("does not start with the layout version v1/"));
        }
        let key = parts.join("/");
        object_path(&key)?;
        Ok(key)
    }

    /// `s3://{bucket}/{key}`.
    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.inner.bucket)
    }

    /// The key of a `s3://{bucket}/{key}` URI of this store's bucket.
    pub fn key_of_uri<'u>(&self, uri: &'u str) -> Result<&'u str, ArchiveError> {
        let key = uri
            .strip_prefix("s3://")
            .and_then(|rest| rest.strip_prefix(self.inner.bucket.as_str()))
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ArchiveError::RemoteConfig {
                field: "bucket".into(),
                reason: format!("{uri} is not an object of s3://{}", self.inner.bucket),
            })?;
        object_path(key)?;
        Ok(key)
    }

    /// Uploads `local` to `key` (replacing it), then verifies the stored object against the
    /// bytes read: size, and SHA-256 of the bytes read back.
    pub fn upload(&self, local: &Path, key: &str) -> Result<Receipt, ArchiveError> {
        let inner = &self.inner;
        let uri = self.uri(key);
        let location = object_path(key)?;
        let mut file = File::open(local).map_err(io_at(local))?;
        let size = file.metadata().map_err(io_at(local))?.len();
        let part = inner.part_bytes;
        if size.div_ceil(part) > MAX_PARTS {
            return Err(ArchiveError::RemoteConfig {
                field: "part_bytes".into(),
                reason: format!(
                    "{}: {size} bytes need over {MAX_PARTS} parts of {part}",
                    local.display()
                ),
            });
        }
        let mut hasher = Sha256::new();
        let mut read_chunk = |len: u64| -> Result<bytes::Bytes, ArchiveError> {
            let mut buf = vec![0u8; len as usize];
            file.read_exact(&mut buf).map_err(io_at(local))?;
            hasher.update(&buf);
            Ok(buf.into())
        };
        let put = inner.rt.block_on(async {
            if size <= part {
                let body = PutPayload::from_bytes(read_chunk(size)?);
                return (inner.s3.put(&location, body).await)
                    .map_err(|e| remote_err(uri.clone(), "PUT", e));
            }
            let upload = (inner.s3.put_multipart(&location).await)
                .map_err(|e| remote_err(uri.clone(), "multipart create", e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, part as usize);
            let streamed = async {
                let mut sent = 0;
                while sent < size {
                    (writer.wait_for_capacity(PARTS_IN_FLIGHT).await)
                        .map_err(|e| remote_err(uri.clone(), "multipart part", e))?;
                    let chunk = read_chunk(part.min(size - sent))?;
                    sent += chunk.len() as u64;
                    writer.put(chunk);
                }
                Ok(())
            }
            .await;
            match streamed {
                Ok(()) => (writer.finish().await)
                    .map_err(|e| remote_err(uri.clone(), "multipart complete", e)),
                Err(e) => {
                    // Best effort: the parts would otherwise linger (stored, invisible).
                    let _ = writer.abort().await;
                    Err(e)
                }
            }
        })?;
        let sha256: [u8; 32] = hasher.finalize().into();
        let receipt = self.verify(key, size, &sha256)?;
        if let Some(etag) = put.e_tag {
            if etag != receipt.etag {
                return Err(mismatch(&uri, "etag", etag, receipt.etag));
            }
        }
        Ok(receipt)
    }

    /// Checks that `key` holds `size` bytes whose SHA-256 is `sha256`, reading them back
    /// (ranged GETs pinned to the ETag of the HEAD). Also how a restart re-checks an upload
    /// that finished before its stub was written.
    pub fn verify(&self, key: &str, size: u64, sha256: &[u8; 32]) -> Result<Receipt, ArchiveError> {
        let obj = self.open(key)?;
        if obj.size != size {
            return Err(mismatch(&obj.uri, "size", size, obj.size));
        }
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; VERIFY_CHUNK_BYTES.min(size as usize)];
        let mut at = 0;
        while at < size {
            let n = buf.len().min((size - at) as usize);
            obj.read_exact_at(at, &mut buf[..n])?;
            hasher.update(&buf[..n]);
            at += n as u64;
        }
        let found: [u8; 32] = hasher.finalize().into();
        if &found != sha256 {
            return Err(mismatch(
                &obj.uri,
                "sha256",
                hex::encode(sha256),
                hex::encode(found),
            ));
        }
        Ok(Receipt {
            uri: obj.uri,
            etag: obj.etag,
            size,
            sha256: found,
        })
    }

    /// Size and ETag of `key`, or None when there is no such object.
    pub fn head(&self, key: &str) -> Result<Option<ObjectInfo>, ArchiveError> {
        match self.stat(key) {
            Err(ArchiveError::Remote {
                source: object_store::Error::NotFound { .. },
                ..
            }) => Ok(None),
            other => other.map(Some),
        }
    }

    /// Size and ETag of `key`; an absent object is an error (naming the URI).
    fn stat(&self, key: &str) -> Result<ObjectInfo, ArchiveError> {
        let uri = self.uri(key);
        let meta = (self
            .inner
            .rt
            .block_on(self.inner.s3.head(&object_path(key)?)))
        .map_err(|e| remote_err(uri.clone(), "HEAD", e))?;
        let etag = meta.e_tag.filter(|e| !e.is_empty());
        Ok(ObjectInfo {
            size: meta.size,
            etag: etag.ok_or_else(|| mismatch(&uri, "etag", "an ETag", "none"))?,
        })
    }

    /// Deletes `key`; deleting an absent object succeeds (S3 semantics).
    pub fn delete(&self, key: &str) -> Result<(), ArchiveError> {
        let location = object_path(key)?;
        self.inner
            .rt
            .block_on(self.inner.s3.delete(&location))
            .map_err(|e| remote_err(self.uri(key), "DELETE", e))
    }

    /// Opens `key` for ranged reads, pinned to its current ETag. Absent → an error.
    pub fn open(&self, key: &str) -> Result<RemoteObject, ArchiveError> {
        let info = self.stat(key)?;
        Ok(RemoteObject {
            inner: self.inner.clone(),
            location: object_path(key)?,
            uri: self.uri(key),
            size: info.size,
            etag: info.etag,
        })
    }

    /// Opens the object a stub recorded: its URI must be in this bucket and its size and ETag
    /// must still be those recorded (the object was not replaced).
    pub fn open_recorded(&self, recorded: &Receipt) -> Result<RemoteObject, ArchiveError> {
        let obj = self.open(self.key_of_uri(&recorded.uri)?)?;
        if obj.size != recorded.size {
            return Err(mismatch(&obj.uri, "size", recorded.size, obj.size));
        }
        if obj.etag != recorded.etag {
            return Err(mismatch(&obj.uri, "etag", &recorded.etag, &obj.etag));
        }
        Ok(obj)
    }
}

/// One remote object read by ranged GETs, every one pinned to the ETag seen at open.
pub struct RemoteObject {
    inner: Arc<Inner>,
    location: ObjectPath,
    uri: String,
    size: u64,
    etag: String,
}

impl std::fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RemoteObject({}, {} bytes, etag {})",
            self.uri, self.size, self.etag
        )
    }
}

impl RemoteObject {
    pub fn uri(&self) -> &str {
        &self.uri
    }
    pub fn etag(&self) -> &str {
        &self.etag
    }
}

impl ReadAt for RemoteObject {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ArchiveError> {
        check_range(self, offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset + buf.len() as u64;
        let range_err = |reason: String| ArchiveError::RemoteRange {
            uri: self.uri.clone(),
            start: offset,
            end,
            reason,
        };
        let options = GetOptions {
            if_match: Some(self.etag.clone()),
            range: Some(GetRange::Bounded(offset..end)),
            ..GetOptions::default()
        };
        let got = self.inner.rt.block_on(async {
            let res = self.inner.s3.get_opts(&self.location, options).await?;
            let etag = res.meta.e_tag.clone();
            Ok::<_, object_store::Error>((etag, res.range.clone(), res.bytes().await?))
        });
        let (etag, range, bytes) = got.map_err(|e| range_err(format!("GET failed: {e}")))?;
        // If-Match makes the server refuse a replaced object; check the answer too, in case
        // a server ignores the header.
        if etag.as_deref() != Some(self.etag.as_str()) {
            return Err(range_err(format!(
                "object changed: ETag {etag:?}, opened as {}",
                self.etag
            )));
        }
        if range != (offset..end) || bytes.len() != buf.len() {
            return Err(range_err(format!(
                "server answered bytes {range:?} ({} bytes)",
                bytes.len()
            )));
        }
        buf.copy_from_slice(&bytes);
        Ok(())
    }

    fn describe(&self) -> String {
        self.uri.clone()
    }
}

fn object_path(key: &str) -> Result<ObjectPath, ArchiveError> {
    ObjectPath::parse(key).map_err(|e| ArchiveError::RemoteConfig {
        field: "key".into(),
        reason: format!("{key:?}: {e}"),
    })
}

fn remote_err(uri: String, op: &'static str, source: object_store::Error) -> ArchiveError {
    ArchiveError::Remote { uri, op, source }
}

/// A remote object unlike the one uploaded or recorded: `Mismatch` naming the URI.
fn mismatch(
    uri: &str,
    field: &str,
    expected: impl std::fmt::Display,
    found: impl std::fmt::Display,
) -> ArchiveError {
    ArchiveError::Mismatch {
        object: uri.into(),
        field: field.into(),
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    }
}
