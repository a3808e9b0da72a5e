//! Where a token's log continues after a restart or for a new import: the next tick id (tick
//! ids stay strictly increasing across runs) and the largest exchange time already written.

use chronicle_storage::fsutil::sorted_entries;
use chronicle_storage::partition::PartitionPaths;
use chronicle_storage::segment::Segment;
use chronicle_storage::StorageError;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resume {
    pub next_tick: u64,
    pub watermark_ns: u64,
    /// The latest two date directories (oldest first): what a restart may append to.
    pub latest_days: Vec<PathBuf>,
    /// The venue ids of the records in them (what a restarted sender may send again).
    pub stored: crate::stored::Stored,
}

/// Reads the two latest date partitions of `{data_dir}/v1/{venue}/{symbol_code}` (and their
/// late streams): around midnight both days receive records.
/// With `before_tick`, only records below that tick id count (the state an earlier run
/// started from).
pub fn resume(
    data_dir: &Path,
    venue: &str,
    symbol_code: &str,
    before_tick: Option<u64>,
) -> Result<Resume, StorageError> {
    let dir = data_dir.join("v1").join(venue).join(symbol_code);
    let mut r = Resume {
        next_tick: 1,
        watermark_ns: 0,
        latest_days: Vec::new(),
        stored: Default::default(),
    };
    // Date directories (YYYY-MM-DD) sort chronologically as text; none: a first run. An
    // entry that cannot be listed could be the latest day: resuming without it would reuse
    // tick ids, so that is an error.
    let mut dates = Vec::new();
    for p in sorted_entries(&dir)? {
        if std::fs::metadata(&p)
            .map_err(|e| StorageError::io(&p, e))?
            .is_dir()
        {
            dates.push(p);
        }
    }
    r.latest_days = dates[dates.len().saturating_sub(2)..].to_vec();
    for d in dates.iter().rev().take(2) {
        for seg_path in [
            PartitionPaths::new(d).segment,
            PartitionPaths::new(&d.join(crate::refinery::LATE_DIR)).segment,
        ] {
            if !seg_path
                .try_exists()
                .map_err(|e| StorageError::io(&seg_path, e))?
            {
                continue;
            }
            let seg = Segment::open(&seg_path)?;
            let mut frames = seg.frames();
            for f in frames
                .by_ref()
                .filter(|f| before_tick.is_none_or(|b| f.record.meta.global_tick_id < b))
            {
                r.next_tick = r.next_tick.max(f.record.meta.global_tick_id + 1);
                r.watermark_ns = r.watermark_ns.max(f.record.meta.exchange_ts_ns);
                if let Ok(rec) = f.record.decode() {
                    r.stored.note(&rec.body);
                }
            }
            // A torn tail is the writer's to cut; damage before valid frames would hide
            // tick ids already written.
            frames
                .end()
                .map_err(|(offset, reason)| seg.corrupt(offset, reason))?;
        }
    }
    Ok(r)
}
