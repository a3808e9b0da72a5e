//! chronicle-tier: the tier manager. Warm → Cold (seekable zstd on the archive disk)
//! and Cold → RemoteCold (object storage) by partition age, with moves that a crash at any
//! step cannot make lose a copy, and a reconciliation of the leftovers at every pass.
//! The protocol and the crash matrix: `docs/tiers.md`.
//!
//! - [`config`]: `[tiers]` of the appliance's TOML.
//! - [`layout`]: a unit's files in each tier, the sorted walk of a root.
//! - [`steps`]: the pass context and the named steps (fail points with feature `failpoints`).
//! - [`fsops`]: the durable file operations a move is made of.
//! - [`warm_to_cold`], [`cold_to_remote`]: the two moves.
//! - [`reconcile`]: the crash matrix, resolved.
//! - [`manager`]: one pass (reconcile, then the moves that are due) and its counters.
//! - [`not_moved`]: why a pass left a unit where it is.

pub mod cold_to_remote;
pub mod config;
mod error;
pub mod fsops;
pub mod layout;
pub mod manager;
pub mod not_moved;
pub mod reconcile;
pub mod steps;
pub mod warm_to_cold;

pub use config::TierConfig;
pub use error::TierError;
pub use manager::{MoveKind, PassReport, TierCounters, TierManager};
pub use not_moved::{Held, NotMoved};
pub use steps::FAIL_POINTS;
