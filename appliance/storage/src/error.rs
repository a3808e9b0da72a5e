use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Damage before the tail: never skipped, never repaired silently.
    #[error("{}: corrupt at byte offset {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{}: bad file header: {reason}", path.display())]
    BadHeader { path: PathBuf, reason: String },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    /// A lock file another process holds ([`crate::fsutil::lock_file`]).
    #[error("{}: in use by another process ({holder}); one at a time", path.display())]
    Locked { path: PathBuf, holder: String },
}

impl StorageError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// A sync asked of a sealed writer: its file is written by its owner (the appliance's flush
    /// writer), never by it.
    pub(crate) fn sealed(path: &std::path::Path) -> Self {
        Self::Invalid {
            path: path.to_owned(),
            reason: "a sealed writer has no file to sync; its owner writes it".into(),
        }
    }
}

/// `.map_err(io_at(&path))` for any `io::Result`.
pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |e| StorageError::io(path, e)
}
