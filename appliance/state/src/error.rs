use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StateError {
    #[error(transparent)]
    Storage(#[from] chronicle_storage::StorageError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A record of another token in this token's log, or a tick id out of order: the log
    /// itself is damaged, which no snapshot can repair.
    #[error("{}: byte offset {offset}: {reason}", path.display())]
    Log {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{}: line {line}: {reason}", path.display())]
    Manifest {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}
