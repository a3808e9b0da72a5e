//! Where a token's log continues: global tick ids stay strictly increasing across imports.

use crate::ImportError;
use chronicle_storage::partition::PartitionPaths;
use chronicle_storage::segment::Segment;
use std::path::Path;

/// The tick id after the last record of the symbol's latest existing partition (1 if none).
pub fn next_tick(data_dir: &Path, venue: &str, symbol_code: &str) -> Result<u64, ImportError> {
    let dir = data_dir.join("v1").join(venue).join(symbol_code);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(1);
    };
    // Date directories (YYYY-MM-DD) sort chronologically as text.
    let latest = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| PartitionPaths::new(p).segment.exists())
        .max();
    let Some(latest) = latest else { return Ok(1) };
    let seg = Segment::open(&PartitionPaths::new(&latest).segment)?;
    Ok(seg
        .frames()
        .last()
        .map_or(1, |f| f.record.meta.global_tick_id + 1))
}
