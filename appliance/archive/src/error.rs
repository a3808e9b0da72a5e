//! Every error of the crate names the file or object URI, and the offset and field when it
//! is about bytes on disk. Grouped by the module that raises it; add variants freely.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    // --- object store (remote.rs, stub.rs) ---
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A durable local write (chronicle-storage's fsutil) failed.
    #[error(transparent)]
    Storage(#[from] chronicle_storage::StorageError),
    /// The object-store configuration or its environment (credentials) is unusable.
    #[error("remote config: {field}: {reason}")]
    RemoteConfig { field: String, reason: String },
    /// An object-store request failed after `object_store`'s bounded retries.
    #[error("{uri}: {op} failed: {source}")]
    Remote {
        uri: String,
        op: &'static str,
        source: object_store::Error,
    },
    /// A ranged GET that failed or was answered wrongly (a range outside the object is
    /// `Truncated`; a remote object unlike the one uploaded or recorded is `Mismatch`).
    #[error("{uri}: bytes {start}..{end}: {reason}")]
    RemoteRange {
        uri: String,
        start: u64,
        end: u64,
        reason: String,
    },
    /// A `book.q.zst.remote.json` stub that cannot be trusted.
    #[error("{}: field `{field}`: {reason}", path.display())]
    Stub {
        path: std::path::PathBuf,
        field: String,
        reason: String,
    },
    // --- seekable zstd (source.rs, zidx.rs, seekable.rs) ---
    /// A positional read of an object failed.
    #[error("{object}: reading {len} bytes at offset {offset}: {source}")]
    ReadAt {
        object: String,
        offset: u64,
        len: u64,
        source: std::io::Error,
    },
    /// The object is shorter than a read its own tables ask for: it was truncated.
    #[error("{object}: truncated: bytes {offset}..{end} needed, the object has {size}")]
    Truncated {
        object: String,
        offset: u64,
        end: u64,
        size: u64,
    },
    /// A stored structure is malformed (bad magic, version, CRC, size, a limit exceeded).
    #[error("{object}: offset {offset}: {field}: {reason}")]
    Corrupt {
        object: String,
        offset: u64,
        field: String,
        reason: String,
    },
    /// A compressed frame does not decode, or decodes to something else than its table says.
    #[error("{object}: frame {frame} at offset {offset}: {reason}")]
    Frame {
        object: String,
        frame: u32,
        offset: u64,
        reason: String,
    },
    /// Two records of the same archive disagree (`.idx` vs seek table, SHA-256 vs recorded).
    #[error("{object}: {field}: found {found}, expected {expected}")]
    Mismatch {
        object: String,
        field: String,
        expected: String,
        found: String,
    },
    /// A request the archive cannot serve (a range outside it, bad options, empty source).
    #[error("{object}: {reason}")]
    Request { object: String, reason: String },
}

impl ArchiveError {
    /// A local file that is not there (a reader re-resolves: a tier move may have finished).
    pub fn is_not_found(&self) -> bool {
        let not_found = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        match self {
            ArchiveError::Io { source, .. } | ArchiveError::ReadAt { source, .. } => {
                not_found(source)
            }
            ArchiveError::Storage(chronicle_storage::StorageError::Io { source, .. }) => {
                not_found(source)
            }
            _ => false,
        }
    }
}
