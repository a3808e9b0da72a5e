//! Where a partition's files are in each tier, and the deterministic walk of a root.
//!
//! A **unit** is one segment directory: the partition `v1/{venue}/{symbol}/{date}/` or its late
//! stream `{date}/late/`. Each unit moves on its own with the same protocol; a partition's
//! late stream moves right after it, in the same pass.

use crate::TierError;
use chronicle_storage::partition::{INDEX_DIR, INDEX_FILE, SEGMENT_FILE};
use chronicle_storage::utc;
use std::path::{Path, PathBuf};
use time::Date;

pub const LATE_DIR: &str = "late";
pub const META_FILE: &str = chronicle_storage::meta::FILE_NAME;
pub const ZST_FILE: &str = "book.q.zst";
pub const IDX_FILE: &str = "book.q.zst.idx";
pub const STUB_FILE: &str = "book.q.zst.remote.json";
pub const DERIVED_DIR: &str = "derived";
pub const PARQUET_FILE: &str = "book.parquet";
/// Written before the first upload, removed once the stub is durable: tells a restart that
/// remote objects may exist without a stub.
pub const INTENT_FILE: &str = ".book.q.zst.uploading";
/// Suffix of the tier manager's temporary files (`.{name}.tier-tmp`, beside their target).
pub const TMP_SUFFIX: &str = ".tier-tmp";

/// One segment directory, by its path relative to a tier root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unit {
    /// `v1/{venue}/{symbol}/{date}` or `.../{date}/late`.
    pub rel: PathBuf,
    /// The partition's UTC date.
    pub date: Date,
    pub late: bool,
}

impl Unit {
    pub fn main(rel: PathBuf, date: Date) -> Self {
        Self {
            rel,
            date,
            late: false,
        }
    }

    pub fn late_of(&self) -> Self {
        Self {
            rel: self.rel.join(LATE_DIR),
            date: self.date,
            late: true,
        }
    }

    /// `venue/symbol`, the key of "newest partitions of a symbol".
    pub fn symbol_key(&self) -> PathBuf {
        let date_dir = if self.late {
            self.rel.parent().expect("late units are below their date")
        } else {
            &self.rel
        };
        date_dir
            .parent()
            .expect("units are v1/{venue}/{symbol}/{date}")
            .to_owned()
    }

    /// ns since the epoch at the end of the partition's UTC date.
    pub fn day_end_ns(&self) -> u64 {
        utc::midnight_ns(self.date) + 86_400_000_000_000
    }
}

/// A unit's files in the warm tier.
#[derive(Debug, Clone)]
pub struct WarmFiles {
    pub dir: PathBuf,
    pub segment: PathBuf,
    pub meta: PathBuf,
    pub index: PathBuf,
}

impl WarmFiles {
    pub fn new(root: &Path, unit: &Unit) -> Self {
        let dir = root.join(&unit.rel);
        Self {
            segment: dir.join(SEGMENT_FILE),
            meta: dir.join(META_FILE),
            index: dir.join(INDEX_DIR).join(INDEX_FILE),
            dir,
        }
    }

    /// Any of the unit's own files is present (its late stream is another unit).
    pub fn any(&self) -> bool {
        [&self.segment, &self.meta, &self.index]
            .iter()
            .any(|p| p.exists())
    }
}

/// A unit's files in the cold tier (the stub and intent live here too).
#[derive(Debug, Clone)]
pub struct ColdFiles {
    pub dir: PathBuf,
    pub zst: PathBuf,
    pub idx: PathBuf,
    pub meta: PathBuf,
    pub index: PathBuf,
    pub parquet: PathBuf,
    pub stub: PathBuf,
    pub intent: PathBuf,
}

impl ColdFiles {
    pub fn new(root: &Path, unit: &Unit) -> Self {
        let dir = root.join(&unit.rel);
        Self {
            zst: dir.join(ZST_FILE),
            idx: dir.join(IDX_FILE),
            meta: dir.join(META_FILE),
            index: dir.join(INDEX_DIR).join(INDEX_FILE),
            parquet: dir.join(DERIVED_DIR).join(PARQUET_FILE),
            stub: dir.join(STUB_FILE),
            intent: dir.join(INTENT_FILE),
            dir,
        }
    }

    /// The copies a warm → cold move writes, `.idx` and the derived file before the
    /// `.zst`: the `.zst` is renamed last, so its presence means the copy is whole.
    pub fn copies(&self) -> [&PathBuf; 5] {
        [&self.meta, &self.index, &self.parquet, &self.idx, &self.zst]
    }

    /// Temporary files left in the unit's directories (the tier manager's and the durable
    /// writers' `.{name}.tmp`), sorted.
    pub fn temps(&self) -> Result<Vec<PathBuf>, TierError> {
        let mut out = Vec::new();
        for dir in [
            self.dir.clone(),
            self.dir.join(INDEX_DIR),
            self.dir.join(DERIVED_DIR),
        ] {
            for p in sorted_entries(&dir)? {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                if name.starts_with('.')
                    && (name.ends_with(TMP_SUFFIX) || name.ends_with(".tmp"))
                    && p.is_file()
                {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }
}

/// The temporary sibling a copy is written to before its rename.
pub fn tmp_of(path: &Path) -> PathBuf {
    let name = path.file_name().expect("a file path").to_string_lossy();
    path.with_file_name(format!(".{name}{TMP_SUFFIX}"))
}

/// The entries of `dir` in sorted order (none if it does not exist).
pub fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, TierError> {
    Ok(chronicle_storage::fsutil::sorted_entries(dir)?)
}

/// The partitions (main units) of a root, `v1/{venue}/{symbol}/{YYYY-MM-DD}` in sorted
/// order. Directories whose name is not a date are not partitions (`v1/runs/` holds run
/// ledgers) and are skipped.
pub fn partitions(root: &Path) -> Result<Vec<Unit>, TierError> {
    let mut out = Vec::new();
    for venue in sorted_entries(&root.join("v1"))? {
        if !venue.is_dir() {
            continue;
        }
        for symbol in sorted_entries(&venue)? {
            if !symbol.is_dir() {
                continue;
            }
            for date_dir in sorted_entries(&symbol)? {
                let name = date_dir.file_name().unwrap_or_default().to_string_lossy();
                let Some(date) = utc::parse_iso_date(&name) else {
                    continue;
                };
                if date_dir.is_dir() {
                    let rel = date_dir
                        .strip_prefix(root)
                        .expect("walked below root")
                        .to_owned();
                    out.push(Unit::main(rel, date));
                }
            }
        }
    }
    Ok(out)
}

/// A partition's units present under any of `roots`: itself, then its late stream.
pub fn units_of(partition: &Unit, roots: &[&Path]) -> Vec<Unit> {
    let late = partition.late_of();
    let mut out = vec![partition.clone()];
    if roots.iter().any(|r| r.join(&late.rel).is_dir()) {
        out.push(late);
    }
    out
}
