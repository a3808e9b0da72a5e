use chronicle_reader::ReadError;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DeriveError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: parquet: {source}", path.display())]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("{}: arrow: {source}", path.display())]
    Arrow {
        path: PathBuf,
        source: arrow_schema::ArrowError,
    },
    /// A record the schema cannot hold exactly (a field that does not decode, a value with
    /// more digits than its column): never skipped, never rounded. `path` is the output.
    #[error("{}: record with global_tick_id {global_tick_id}: {reason}", path.display())]
    Record {
        path: PathBuf,
        global_tick_id: u64,
        reason: String,
    },
    /// A [`DeriveError::Record`] placed in the partition it was read from.
    #[error("{}: frame at byte offset {offset}: {source}", path.display())]
    Frame {
        path: PathBuf,
        offset: u64,
        source: Box<DeriveError>,
    },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Storage(#[from] chronicle_storage::StorageError),
}

impl DeriveError {
    /// `.map_err(DeriveError::io(path))`.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// `.map_err(DeriveError::parquet(path))`.
    pub(crate) fn parquet(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> Self + '_ {
        move |source| Self::Parquet {
            path: path.to_owned(),
            source,
        }
    }
}
