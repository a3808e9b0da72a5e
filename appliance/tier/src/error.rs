use chronicle_archive::ArchiveError;
use chronicle_reader::ReadError;
use chronicle_storage::StorageError;
use std::path::{Path, PathBuf};

/// Every error names the file or object it is about.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Derive(#[from] chronicle_derive::DeriveError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A unit the manager will not move as it is (torn tail, not closed, a copy that does not
    /// match): it stays where it is and is counted as a failed move.
    #[error("{}: not moved: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
    /// A leftover that reconciliation cannot resolve without risking the only copy: left as
    /// it is for an operator.
    #[error("{}: left for an operator: {reason}", path.display())]
    Unresolved { path: PathBuf, reason: String },
    /// A failure injected at a fail point (tests, feature `failpoints`).
    #[error("fail point {0}")]
    Injected(&'static str),
    /// The daemon is stopping: the move stops between two steps (a restart reconciles).
    #[error("stopped between two steps")]
    Stopped,
    #[error("{}: another tier manager holds this cold root", path.display())]
    Locked { path: PathBuf },
    #[error("tiers: {0}")]
    Config(String),
}

impl TierError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}
