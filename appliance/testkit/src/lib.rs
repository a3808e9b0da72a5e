//! Test-only helpers shared by the workspace's test suites; crates take it as a
//! dev-dependency only.

pub mod alloc;
pub mod data;
pub mod floor;
pub mod skip;

pub use skip::{require, shared_data, shared_data_dir, skip};
