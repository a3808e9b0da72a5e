//! `meta.json`: a partition's provenance and completeness, written atomically
//! (`docs/formats/partition.md`).

use crate::fsutil::write_atomic;
use crate::StorageError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const FORMAT: &str = "chronicle.partition/1";
pub const FILE_NAME: &str = "meta.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// `import` or `feed`.
    pub kind: String,
    /// The capture format (`binance-capture`, `dbn`) or the feed's name.
    pub format: String,
    /// The file it came from, for an import.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub first_ns: u64,
    pub last_ns: u64,
    pub first: String,
    pub last: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Completeness {
    /// No gap marker in the partition and no late record turned away.
    pub complete: bool,
    pub gaps: u64,
    /// The distinct gap reasons seen, sorted.
    pub gap_flags: Vec<String>,
    pub late_records: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    pub format: String,
    pub venue: String,
    pub symbol_id: u64,
    pub symbol_version_id: u64,
    pub symbol_code: String,
    pub raw_symbol: String,
    pub token_id: u32,
    pub date: String,
    pub price_exponent: i8,
    pub quantity_exponent: i8,
    pub source: Source,
    /// When this meta was last written (wall clock; provenance only, never engine state).
    pub ingest_time: String,
    pub event_time_range: Option<TimeRange>,
    pub records: u64,
    pub segment_bytes: u64,
    /// Records per kind (`trade`, `bbo`, ...), sorted by name.
    pub counts: BTreeMap<String, u64>,
    pub completeness: Completeness,
    pub late_policy: String,
}

impl PartitionMeta {
    pub fn read(path: &Path) -> Result<Self, StorageError> {
        let b = std::fs::read(path).map_err(|e| StorageError::io(path, e))?;
        serde_json::from_slice(&b).map_err(|e| StorageError::Invalid {
            path: path.to_owned(),
            reason: format!("meta.json: {e}"),
        })
    }

    pub fn write(&self, path: &Path) -> Result<(), StorageError> {
        let mut b = serde_json::to_vec_pretty(self).expect("meta serializes");
        b.push(b'\n');
        write_atomic(path, &b)
    }
}
