//! `book.q.zst.remote.json`: the local stub of a partition whose archive lives in the object
//! store (the object storage move protocol, `docs/tiers.md`). Object storage has no atomic rename,
//! so the stub, written atomically and durably after both uploads are verified, is the commit
//! point of a Cold → RemoteCold move; readers treat its presence as the RemoteCold tier.
//! Layout and rules: `docs/formats/remote-stub.md`.

use crate::remote::Receipt;
use crate::ArchiveError;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

pub const STUB_FILE: &str = "book.q.zst.remote.json";
/// The only version this build reads and writes.
pub const STUB_VERSION: u64 = 1;
/// A stub is a few hundred bytes; anything much larger is not one.
pub const MAX_STUB_BYTES: u64 = 64 << 10;

/// What a reader needs to read a partition from the object store and to check what it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStub {
    /// `book.q.zst` (top-level `remote_uri`, `etag`, `size`, `sha256`).
    pub data: Receipt,
    /// `book.q.zst.idx` (`index`).
    pub index: Receipt,
    /// The `book.q` the archive decompresses to.
    pub uncompressed_size: u64,
    pub uncompressed_sha256: [u8; 32],
}

/// The JSON document, field for field (see the format doc).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StubJson {
    version: u64,
    remote_uri: String,
    etag: String,
    size: u64,
    #[serde(with = "sha256_hex")]
    sha256: [u8; 32],
    index: ObjectJson,
    uncompressed_size: u64,
    #[serde(with = "sha256_hex")]
    uncompressed_sha256: [u8; 32],
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectJson {
    remote_uri: String,
    etag: String,
    size: u64,
    #[serde(with = "sha256_hex")]
    sha256: [u8; 32],
}

impl From<&Receipt> for ObjectJson {
    fn from(r: &Receipt) -> Self {
        Self {
            remote_uri: r.uri.clone(),
            etag: r.etag.clone(),
            size: r.size,
            sha256: r.sha256,
        }
    }
}

impl From<ObjectJson> for Receipt {
    fn from(o: ObjectJson) -> Self {
        Self {
            uri: o.remote_uri,
            etag: o.etag,
            size: o.size,
            sha256: o.sha256,
        }
    }
}

/// SHA-256 digests as 64 lowercase hex digits.
mod sha256_hex {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(digest: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(digest))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let lower = text.bytes().all(|c| !c.is_ascii_uppercase());
        let mut out = [0u8; 32];
        match hex::decode_to_slice(&text, &mut out) {
            Ok(()) if lower => Ok(out),
            _ => Err(D::Error::custom(format!(
                "{text:?} is not a SHA-256 (64 lowercase hex digits)"
            ))),
        }
    }
}

impl RemoteStub {
    /// The stub's path in a partition directory.
    pub fn path_in(partition_dir: &Path) -> PathBuf {
        partition_dir.join(STUB_FILE)
    }

    /// The JSON text (pretty, ending in a newline).
    pub fn to_json(&self) -> String {
        let doc = StubJson {
            version: STUB_VERSION,
            remote_uri: self.data.uri.clone(),
            etag: self.data.etag.clone(),
            size: self.data.size,
            sha256: self.data.sha256,
            index: (&self.index).into(),
            uncompressed_size: self.uncompressed_size,
            uncompressed_sha256: self.uncompressed_sha256,
        };
        let mut text = serde_json::to_string_pretty(&doc).expect("plain structs serialize");
        text.push('\n');
        text
    }

    /// Parses and validates `text`; errors name `path` and the field.
    pub fn from_json(path: &Path, text: &str) -> Result<Self, ArchiveError> {
        let err = |field: &str, reason: String| ArchiveError::Stub {
            path: path.to_owned(),
            field: field.into(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| err("(document)", format!("not JSON: {e}")))?;
        // The version first: a newer stub may have other fields, and must say so as such.
        match value.get("version") {
            None => return Err(err("version", "missing".into())),
            Some(v) if v.as_u64() == Some(STUB_VERSION) => {}
            Some(v) => {
                return Err(err(
                    "version",
                    format!("unsupported version {v} (this build reads {STUB_VERSION})"),
                ))
            }
        }
        let doc: StubJson = serde_path_to_error::deserialize(value).map_err(|e| {
            let reason = e.inner().to_string();
            err(&field_of(&e.path().to_string(), &reason), reason)
        })?;
        let stub = Self {
            data: Receipt {
                uri: doc.remote_uri,
                etag: doc.etag,
                size: doc.size,
                sha256: doc.sha256,
            },
            index: doc.index.into(),
            uncompressed_size: doc.uncompressed_size,
            uncompressed_sha256: doc.uncompressed_sha256,
        };
        for (prefix, r) in [("", &stub.data), ("index.", &stub.index)] {
            let key = r
                .uri
                .strip_prefix("s3://")
                .and_then(|rest| rest.split_once('/'));
            if !matches!(key, Some((bucket, key)) if !bucket.is_empty() && !key.is_empty()) {
                return Err(err(
                    &format!("{prefix}remote_uri"),
                    format!("{:?} is not s3://bucket/key", r.uri),
                ));
            }
            if r.etag.is_empty() {
                return Err(err(&format!("{prefix}etag"), "empty".into()));
            }
        }
        Ok(stub)
    }

    /// Writes the stub atomically and durably (temporary file, fsync, rename, fsync dir):
    /// after a crash there is either no stub or a whole one.
    pub fn write(&self, path: &Path) -> Result<(), ArchiveError> {
        Ok(chronicle_storage::fsutil::write_atomic(
            path,
            self.to_json().as_bytes(),
        )?)
    }

    /// Reads and validates the stub at `path`.
    pub fn read(path: &Path) -> Result<Self, ArchiveError> {
        let io = |source| ArchiveError::Io {
            path: path.to_owned(),
            source,
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(io)?
            .take(MAX_STUB_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(io)?;
        if text.len() as u64 > MAX_STUB_BYTES {
            return Err(ArchiveError::Stub {
                path: path.to_owned(),
                field: "(document)".into(),
                reason: format!("larger than {MAX_STUB_BYTES} bytes"),
            });
        }
        Self::from_json(path, &text)
    }
}

/// The dotted field a serde error is about: its path, plus the name a "missing field `x`"
/// error gives (serde reports a missing field at the enclosing object, an unknown one at
/// itself).
fn field_of(path: &str, reason: &str) -> String {
    let missing = reason
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(name)) => name.into(),
        (".", None) => "(document)".into(),
        (p, Some(name)) => format!("{p}.{name}"),
        (p, None) => p.into(),
    }
}
