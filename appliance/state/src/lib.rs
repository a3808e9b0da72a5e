//! chronicle-state: where the tick engine's state lives between runs (`docs/state.md`).
//!
//! - [`position`]: a record's place in a token's event log (its partitions), packed into the
//!   snapshot's 64-bit EventLogOffset.
//! - [`store`]: `snapshots/{token}/{time}.snap` files, written atomically after a flush, with
//!   retention, and appended to the day's audit manifest.
//! - [`log`]: a token's event log read back in GlobalTickId order across its partitions.
//! - [`recovery`]: newest valid snapshot (falling back past damaged ones), then the log tail.
//! - [`audit`]: per-day manifests of snapshot hashes and their Merkle root.

pub mod audit;
mod error;
pub mod log;
pub mod position;
pub mod recovery;
pub mod store;

pub(crate) use error::io;
pub use error::StateError;
