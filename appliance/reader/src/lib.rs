//! chronicle-reader: the universal reader (`docs/reader.md`). It reads a partition from
//! whichever tier holds it — `book.q` mapped (Hot/Warm), seekable zstd on the cold disk, or the
//! same from object storage (RemoteCold) — with the same frames, errors and output.
//!
//! - [`tiers`]: the tier roots and resolution in priority order (Hot → Warm → Cold →
//!   RemoteCold), re-resolving when a move finishes under a reader.
//! - [`body`]: a partition's `.q` bytes: mapped, or decoded on demand from an archive.
//! - [`partition`]: open a partition, walk a time range through the index.
//! - [`render`]: records as JSON lines or CSV, prices as exact decimal strings.
//! - [`verify`]: check every frame, index entry and meta.json of a partition or a tree.

pub mod body;
mod error;
pub mod partition;
pub mod render;
pub mod tiers;
pub mod verify;

pub use error::ReadError;
pub use partition::{Partition, TimeRange};
pub use tiers::{Tier, TierRoots};
