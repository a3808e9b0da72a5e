//! Helpers shared by the reader's tests: generated partitions (`chronicle_testkit::data`) on
//! the warm and cold tiers, and what a scan visits.
#![allow(dead_code)] // each test file uses its own subset

use chronicle_reader::{Partition, ReadError, TimeRange};
use chronicle_testkit::data::{partition, DAY_START_NS};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// The generated partitions' key below a tier root.
pub const KEY: &str = "v1/binance-usdm/btcusdt/2024-08-08";
/// The archive's smallest zstd frames: a small partition still spans many.
pub const SMALL_FRAMES: u32 = chronicle_archive::zidx::MIN_BLOCK_SIZE;

/// `n` exchange times 1 ms apart from the day's start.
pub fn every_ms(n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(|i| DAY_START_NS + i * 1_000_000)
}

/// A closed partition of `n` records 1 ms apart at [`KEY`] below `root`; returns its dir.
pub fn warm(root: &Path, n: u64) -> PathBuf {
    partition(&root.join(KEY), every_ms(n))
}

/// The cold copy of the partition in `warm_dir` at [`KEY`] below `cold_root`.
pub fn cold(warm_dir: &Path, cold_root: &Path) -> PathBuf {
    let dir = cold_root.join(KEY);
    chronicle_archive::testing::cold_copy(warm_dir, &dir, SMALL_FRAMES);
    dir
}

/// Each frame a scan of `range` visits: its offset and record bytes.
pub fn visited(part: &Partition, range: TimeRange) -> Result<Vec<(u64, Vec<u8>)>, ReadError> {
    let mut out = Vec::new();
    part.scan(range, |f| {
        out.push((f.offset, f.record.bytes.to_vec()));
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// Records in the partition.
pub fn count(part: &Partition) -> usize {
    visited(part, TimeRange::ALL).unwrap().len()
}
