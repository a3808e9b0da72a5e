//! What every move shares: the roots, the clock, the stop flag, and the named steps at which
//! a move can be interrupted (fail points in tests, a stopping daemon in production).

use crate::config::TierConfig;
use crate::TierError;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

/// Every step of both moves, in protocol order. Each name is a `fail` point when the crate
/// is built with feature `failpoints`. Reconciliation passes the deletion steps again when it
/// finishes an interrupted move, so a crash during recovery is tested the same way.
pub const FAIL_POINTS: [&str; 17] = [
    // Warm → Cold (`docs/tiers.md`).
    "w2c.verified_warm",
    "w2c.transcoded",
    "w2c.copied",
    "w2c.fsynced_files",
    "w2c.verified_cold",
    "w2c.renamed_copies",
    "w2c.renamed",
    "w2c.fsynced_target_dir",
    "w2c.deleted_segment",
    "w2c.deleted_source",
    "w2c.fsynced_source_dir",
    // Cold → RemoteCold.
    "c2r.intent_written",
    "c2r.uploaded_zst",
    "c2r.uploaded_idx",
    "c2r.stub_written",
    "c2r.deleted_zst",
    "c2r.fsynced_dir",
];

/// The context of one pass.
pub struct Ctx<'a> {
    pub cfg: &'a TierConfig,
    pub warm: PathBuf,
    pub cold: PathBuf,
    /// The pass's clock (ages, and how long a segment has been left alone).
    pub now: SystemTime,
    /// How long after its day a partition still takes records (the refinery's grace).
    pub grace: std::time::Duration,
    pub stop: &'a AtomicBool,
}

impl Ctx<'_> {
    /// Passes the step `name`: a fail point, then the stop flag.
    pub fn step(&self, name: &'static str) -> Result<(), TierError> {
        debug_assert!(FAIL_POINTS.contains(&name), "{name} is not in FAIL_POINTS");
        fail::fail_point!(name, |_| Err(TierError::Injected(name)));
        if self.stop.load(Ordering::Relaxed) {
            return Err(TierError::Stopped);
        }
        Ok(())
    }

    /// ns since the epoch of the pass's clock.
    pub fn now_ns(&self) -> u64 {
        self.now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }
}
