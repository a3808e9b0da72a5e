//! chronicle-reader: reads partitions back (seed 004's universal reader, `.q` tier for now).
//!
//! - [`partition`]: open a partition, iterate a time range through the index.
//! - [`render`]: records as JSON lines or CSV, prices as exact decimal strings.
//! - [`verify`]: check every frame, index entry and meta.json of a file or a tree.

pub mod partition;
pub mod render;
pub mod verify;

pub use partition::{Partition, TimeRange};
