//! The snapshot store: `{data_dir}/snapshots/{token_id}/{YYYY-MM-DD_HH-MM-SS-mmm}.snap`.
//!
//! The name is the engine clock (exchange time, UTC) of the snapshot, to the millisecond, so
//! names sort chronologically. (Seed 000's example names to the minute; chronicle snapshots at
//! flush boundaries, which can be closer than a minute.) A write is: temporary file → fsync →
//! append its hash to the day's audit manifest → rename → fsync the directory. So every visible
//! snapshot is listed in a manifest; a crash can only leave a listed hash whose file never
//! appeared, which audit reports as pruned.

use crate::audit::Manifest;
use crate::{io, StateError};
use chronicle_engine::SNAPSHOT_LEN;
use chronicle_storage::fsutil::{create_dir_durable, fsync_dir, write_atomic_then};
use chronicle_storage::utc;
use std::path::{Path, PathBuf};

pub const DIR: &str = "snapshots";
pub const EXTENSION: &str = "snap";

pub struct SnapshotStore {
    root: PathBuf,
    /// Snapshots kept per token; older ones are deleted after each write.
    retain: usize,
}

/// `2024-08-08_23-59-00-250.snap` for a clock of 2024-08-08T23:59:00.250Z.
pub fn file_name(clock_ns: u64) -> String {
    let t = utc::rfc3339(clock_ns); // 2024-08-08T23:59:00.250000000Z
    format!(
        "{}_{}-{}-{}-{}.{EXTENSION}",
        &t[0..10],
        &t[11..13],
        &t[14..16],
        &t[17..19],
        &t[20..23]
    )
}

impl SnapshotStore {
    pub fn new(data_dir: &Path, retain: usize) -> Self {
        assert!(
            retain >= 2,
            "keep at least two snapshots so a damaged newest one has a fallback"
        );
        Self {
            root: data_dir.join(DIR),
            retain,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn token_dir(&self, token_id: u64) -> PathBuf {
        self.root.join(token_id.to_string())
    }

    /// Writes one snapshot durably, lists it in the manifest of its UTC day, prunes.
    pub fn write(
        &self,
        token_id: u64,
        bytes: &[u8; SNAPSHOT_LEN],
        clock_ns: u64,
    ) -> Result<PathBuf, StateError> {
        let dir = self.token_dir(token_id);
        create_dir_durable(&dir)?;
        let name = file_name(clock_ns);
        let path = dir.join(&name);
        let manifest = Manifest::path_for(&self.root, utc::date_of(clock_ns));
        write_atomic_then(&path, bytes, || {
            Manifest::append(&manifest, token_id, &name, bytes).map_err(|e| match e {
                StateError::Storage(s) => s,
                other => chronicle_storage::StorageError::Invalid {
                    path: manifest.clone(),
                    reason: other.to_string(),
                },
            })
        })?;
        self.prune(&dir)?;
        Ok(path)
    }

    /// The token's snapshot files, newest first.
    pub fn list(&self, token_id: u64) -> Result<Vec<PathBuf>, StateError> {
        let dir = self.token_dir(token_id);
        let mut v: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == EXTENSION) && !is_temp(p))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&dir)(e)),
        };
        v.sort();
        v.reverse();
        Ok(v)
    }

    fn prune(&self, dir: &Path) -> Result<(), StateError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == EXTENSION) && !is_temp(p))
            .collect();
        if files.len() <= self.retain {
            return Ok(());
        }
        files.sort();
        for old in &files[..files.len() - self.retain] {
            std::fs::remove_file(old).map_err(io(old))?;
        }
        Ok(fsync_dir(dir)?)
    }
}

/// Leftovers of an interrupted write (`.{name}.tmp`).
fn is_temp(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_sort_by_time() {
        assert_eq!(
            super::file_name(1_723_161_540_250_000_000),
            "2024-08-08_23-59-00-250.snap"
        );
    }
}
