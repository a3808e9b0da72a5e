//! Test-only helpers shared by the workspace's test suites; crates take it as a
//! dev-dependency only.

pub mod alloc;
pub mod floor;
