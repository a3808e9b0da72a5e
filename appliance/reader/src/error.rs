use chronicle_archive::ArchiveError;
use chronicle_storage::StorageError;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReadError {
    /// A `.q` problem: its file (or archived object) and byte offset are named.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A `.q.zst`, `.idx`, remote object or stub problem.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("partition {key} is in no tier (looked in: {searched})")]
    NotFound { key: String, searched: String },
    #[error("{}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
}

impl ReadError {
    /// The partition's files were not there when opened: a tier move may have just finished,
    /// so the caller resolves again.
    pub fn is_vanished(&self) -> bool {
        match self {
            ReadError::Storage(StorageError::Io { source, .. }) => {
                source.kind() == std::io::ErrorKind::NotFound
            }
            ReadError::Archive(e) => e.is_not_found(),
            _ => false,
        }
    }
}
