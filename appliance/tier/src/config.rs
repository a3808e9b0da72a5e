//! `[tiers]` of the appliance's TOML (`docs/config.md`): where the cold root is, when
//! partitions move, how they are compressed, and the object store. Every field has a default.

use chronicle_archive::remote::RemoteConfig;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Bounds that keep a typo from meaning "never" or "always".
const MAX_AGE_DAYS: u64 = 100 * 365;
const MAX_BLOCK_BYTES: u32 = 64 << 20;
const MIN_BLOCK_BYTES: u32 = 4 << 10;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TierConfig {
    /// The cold root (the archive disk). No cold root: the tier manager is off.
    pub cold_dir: Option<PathBuf>,
    /// Run passes in the appliance (`chronicle run`); `chronicle tier run` ignores it.
    pub in_appliance: bool,
    /// Warm → Cold once this long after the end of the partition's UTC date (never before
    /// the day's late window has passed, whatever this says).
    pub warm_to_cold_after_hours: u64,
    /// Cold → RemoteCold once this long after the end of the partition's UTC date.
    pub cold_to_remote_after_days: u64,
    /// Pause between two passes in the appliance.
    pub scan_interval_s: u64,
    /// Each symbol's newest partitions stay warm whatever their age: the refinery resumes its
    /// tick ids (and the engine its log) from the newest two days of the warm root.
    pub keep_newest_per_symbol: usize,
    /// At most this many moves per pass, so that one pass (and a clean stop) stays short.
    pub max_moves_per_pass: usize,
    pub zstd_level: i32,
    /// Uncompressed bytes per independent zstd frame of `book.q.zst`.
    pub block_bytes: u32,
    /// Write `derived/book.parquet` during the cold move.
    pub derive_parquet: bool,
    /// The object store for RemoteCold; none: partitions stay cold.
    pub remote: Option<RemoteConfig>,
}

impl Default for TierConfig {
    fn default() -> Self {
        Self {
            cold_dir: None,
            in_appliance: true,
            warm_to_cold_after_hours: 24,
            cold_to_remote_after_days: 365,
            scan_interval_s: 300,
            keep_newest_per_symbol: 2,
            max_moves_per_pass: 100,
            zstd_level: 3,
            block_bytes: 1 << 20,
            derive_parquet: false,
            remote: None,
        }
    }
}

impl TierConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.warm_to_cold_after_hours > MAX_AGE_DAYS * 24 {
            return Err(format!(
                "tiers.warm_to_cold_after_hours must be at most {}",
                MAX_AGE_DAYS * 24
            ));
        }
        if self.cold_to_remote_after_days > MAX_AGE_DAYS {
            return Err(format!(
                "tiers.cold_to_remote_after_days must be at most {MAX_AGE_DAYS}"
            ));
        }
        if self.cold_to_remote_after_days * 24 < self.warm_to_cold_after_hours {
            return Err(
                "tiers.cold_to_remote_after_days must not be shorter than warm_to_cold_after_hours"
                    .into(),
            );
        }
        if self.scan_interval_s == 0 {
            return Err("tiers.scan_interval_s must be positive".into());
        }
        if self.max_moves_per_pass == 0 {
            return Err("tiers.max_moves_per_pass must be positive".into());
        }
        if !(1..=22).contains(&self.zstd_level) {
            return Err(format!(
                "tiers.zstd_level {} is not a zstd level (1..=22)",
                self.zstd_level
            ));
        }
        if !(MIN_BLOCK_BYTES..=MAX_BLOCK_BYTES).contains(&self.block_bytes) {
            return Err(format!(
                "tiers.block_bytes {} must be within {MIN_BLOCK_BYTES}..={MAX_BLOCK_BYTES}",
                self.block_bytes
            ));
        }
        Ok(())
    }

    pub fn warm_to_cold_after(&self) -> Duration {
        Duration::from_secs(self.warm_to_cold_after_hours * 3600)
    }

    pub fn cold_to_remote_after(&self) -> Duration {
        Duration::from_secs(self.cold_to_remote_after_days * 86_400)
    }

    pub fn scan_interval(&self) -> Duration {
        Duration::from_secs(self.scan_interval_s)
    }
}
