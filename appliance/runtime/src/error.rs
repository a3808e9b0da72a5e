//! What can stop a run, each failure with the file, core, token or thread it concerns.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Etl(#[from] chronicle_etl::EtlError),
    #[error(transparent)]
    State(#[from] chronicle_state::StateError),
    #[error(transparent)]
    Storage(#[from] chronicle_storage::StorageError),
    #[error(transparent)]
    Direct(#[from] crate::direct::DirectError),
    /// The tier manager could not start (its roots, its lock).
    #[error(transparent)]
    Tier(#[from] chronicle_tier::TierError),
    /// A ring could not be created, replaced or attached (the error names its path).
    #[error(transparent)]
    Ring(#[from] chronicle_feed::RingError),
    /// The configuration refused; the message names the key.
    #[error("{0}")]
    Config(String),
    /// A core named by the configuration that this process may not run on.
    #[error("{key} = {cpu}: not a core this process may run on (available: {available:?})")]
    Core {
        key: String,
        cpu: usize,
        available: Vec<usize>,
    },
    /// The capture input cannot be opened.
    #[error("input {}: {source}", path.display())]
    Input {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A bounded input failed while it was being fed (the reason names file and line).
    #[error("feeding {input}: {reason}")]
    Feed { input: String, reason: String },
    /// The UDP feed socket could not be bound or set up, or failed while receiving.
    #[error("udp {bind}: {source}")]
    Socket {
        bind: String,
        source: std::io::Error,
    },
    /// A shard's ring stopped giving records (a hostile or broken producer); the position is
    /// in the fault.
    #[error("ring: {0}")]
    RingFault(#[from] chronicle_feed::RingFault),
    /// A record that does not decode: read from a shard's ring, or held for a declaration.
    #[error("{from}: undecodable record of {bytes} bytes: {source}")]
    Record {
        from: &'static str,
        bytes: usize,
        source: chronicle_protocol::DecodeError,
    },
    /// The engine refused a record of a token.
    #[error("engine of token {token}: {reason}")]
    Engine { token: u32, reason: String },
    /// A shard's glommio executor could not be built on its core.
    #[error("shard executor on core {cpu}: {reason}")]
    Executor { cpu: usize, reason: String },
    /// A thread of the run could not start, panicked, ended early or reported a failure.
    #[error("{name} thread {failure}")]
    Thread {
        name: String,
        failure: ThreadFailure,
    },
    #[error("shard {index} failed: {source}")]
    Shard {
        index: usize,
        source: Box<RuntimeError>,
    },
    /// The run stopped because a shard failed (the shard's own error is reported first).
    #[error("stopped: a shard failed")]
    ShardFailed,
}

/// How a thread of the run failed.
#[derive(Debug, thiserror::Error)]
pub enum ThreadFailure {
    #[error("could not start: {0}")]
    Spawn(String),
    #[error("panicked")]
    Panicked,
    #[error("ended while work was outstanding")]
    Ended,
    #[error("failed: {0}")]
    Failed(String),
}

impl RuntimeError {
    pub fn thread(name: impl Into<String>, failure: ThreadFailure) -> Self {
        Self::Thread {
            name: name.into(),
            failure,
        }
    }
}
