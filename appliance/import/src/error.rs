use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ImportError {
    /// Bad input: names the file, where in it (`line 55`, `record 3`, `byte 1024`) and why.
    #[error("{}: {at}: {msg}", path.display())]
    Input {
        path: PathBuf,
        at: String,
        msg: String,
    },
    /// A well-formed input that chronicle has no record kind for.
    #[error("{}: {msg}", path.display())]
    Unsupported { path: PathBuf, msg: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] chronicle_storage::StorageError),
    /// A value the protocol cannot carry (a symbol too long for its field, ...).
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error(transparent)]
    Refinery(#[from] chronicle_etl::EtlError),
}
