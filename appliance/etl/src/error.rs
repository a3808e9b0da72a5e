use thiserror::Error;

#[derive(Debug, Error)]
pub enum EtlError {
    #[error(transparent)]
    Storage(#[from] chronicle_storage::StorageError),
    #[error("record of token {0}, which was never declared by a definition")]
    UnknownToken(u32),
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error("{0}")]
    Identity(String),
    /// Imports never append to a partition that exists: a re-run must not duplicate data.
    #[error("{}: partition already exists; remove it or import into another data dir", .0.display())]
    Exists(std::path::PathBuf),
}
