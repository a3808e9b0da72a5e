use std::path::PathBuf;

/// Why a replay could not be prepared or run. Every variant says which file, ring or
/// address it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Decoding the input (names the file and line / record).
    #[error(transparent)]
    Import(#[from] chronicle_import::ImportError),
    /// A stored partition or `dim_symbol` (names the file and offset).
    #[error(transparent)]
    Storage(#[from] chronicle_storage::StorageError),
    /// A stored partition on any tier (names the file and offset).
    #[error(transparent)]
    Read(#[from] chronicle_reader::ReadError),
    /// Creating a `/dev/shm` ring (names the file).
    #[error(transparent)]
    Ring(#[from] chronicle_feed::RingError),
    /// A record a ring refuses (a bug: records come from the encoder).
    #[error(transparent)]
    Push(#[from] chronicle_feed::PushError),
    #[error("{}: record: {source}", path.display())]
    Decode {
        path: PathBuf,
        source: chronicle_protocol::DecodeError,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}
