//! chronicle-runtime: the appliance (Zone 2 and its shard-per-core io_uring runtime:
//! `docs/appliance.md`). A feed thread fills one /dev/shm ring per shard; each shard is a glommio
//! executor pinned to its core that refines and engines its tokens and flushes every 250 ms
//! with O_DIRECT, then snapshots. glommio stays behind [`direct`] and [`shard`].

pub mod config;
pub mod declarations;
pub mod direct;
mod error;
pub mod feed;
pub mod flush;
pub mod helper;
pub mod hold;
pub mod rings;
pub mod run;
pub mod shard;
pub mod snapshots;
pub mod stats;

pub use error::{RuntimeError, ThreadFailure};

/// Configures the fail points from `FAILPOINTS` for the rest of the process (`chronicle`'s
/// failure tests); does nothing unless built with feature `failpoints`.
pub fn fail_points_from_env() {
    #[cfg(feature = "failpoints")]
    std::mem::forget(fail::FailScenario::setup());
}

/// Sets the process's allocator up for the shard's flush buffers (glibc):
/// - allocations from 1 MiB up are mmapped (a fixed threshold instead of glibc's moving one,
///   which reaches 32 MiB), so a buffer that grows to a flush's worth in its first interval is
///   moved by `mremap` rather than copied (a copy of 32 MiB paused the shard for ~10 ms);
/// - heaps are not trimmed below 256 MiB of free top: trimming a thread's heap is a system
///   call on that thread, and the first one reads `/proc/sys/vm/overcommit_memory` (a file
///   read on a shard core, which `cli/tests/no_blocking_syscalls.rs` caught).
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets glibc malloc parameters; called before the shards start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}
