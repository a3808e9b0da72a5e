//! The snapshot store: `{data_dir}/snapshots/{token_id}/{YYYY-MM-DD_HH-MM-SS-mmm}.snap`.
//!
//! The name is the engine clock (exchange time, UTC) of the snapshot, to the millisecond, so
//! names sort chronologically (to the millisecond, not the minute: snapshots are taken at flush
//! boundaries, which can be closer than a minute).
//!
//! Snapshots are written in batches (a shard's flush snapshots every token that crossed the
//! cadence, often all of them at once): temporary files → `syncfs` → append their hashes to
//! the day's audit manifest, one write and one fsync → rename each → prune → `syncfs`. So every
//! visible snapshot is listed in a manifest; a crash can only leave a listed hash whose file
//! never appeared, which audit reports as pruned. `syncfs` makes a whole batch durable with
//! one journal commit, where an fsync per file and per directory made three commits per token
//! (a file on another filesystem than the store's root, a mount inside it, gets its own fsync).

use crate::audit::Manifest;
use crate::{io, StateError};
use chronicle_engine::SNAPSHOT_LEN;
use chronicle_storage::fsutil::{create_dir_durable, is_temp, sorted_entries, syncfs, write_temp};
use chronicle_storage::utc;
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub const DIR: &str = "snapshots";
pub const EXTENSION: &str = "snap";

/// Snapshots made durable together; a larger batch goes in chunks of this.
pub const BATCH_MAX: usize = 512;

/// One snapshot to write: the token, its 336 bytes, the engine clock it was taken at.
#[derive(Clone)]
pub struct Pending {
    pub token_id: u64,
    pub bytes: [u8; SNAPSHOT_LEN],
    pub clock_ns: u64,
}

pub struct SnapshotStore {
    root: PathBuf,
    /// Snapshots kept per token; older ones are deleted after each write.
    retain: usize,
    /// `root`, opened before the first write and kept open: `syncfs` through it reports
    /// every writeback error since, even one another shard's sync saw first.
    root_dir: OnceCell<File>,
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

/// A manifest line to append: token, snapshot file name, its bytes.
type ManifestLine<'a> = (u64, &'a str, &'a [u8]);

impl SnapshotStore {
    pub fn new(data_dir: &Path, retain: usize) -> Self {
        assert!(
            retain >= 2,
            "keep at least two snapshots so a damaged newest one has a fallback"
        );
        Self {
            root: data_dir.join(DIR),
            retain,
            root_dir: OnceCell::new(),
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
        let one = Pending {
            token_id,
            bytes: *bytes,
            clock_ns,
        };
        Ok(self.write_batch(&[one])?.remove(0))
    }

    /// Writes snapshots of distinct tokens durably, lists them in the manifests of their UTC
    /// days, prunes (module docs: the order, and why it is batched). Returns their paths.
    pub fn write_batch(&self, batch: &[Pending]) -> Result<Vec<PathBuf>, StateError> {
        let mut tokens: Vec<u64> = batch.iter().map(|p| p.token_id).collect();
        tokens.sort_unstable();
        tokens.dedup();
        assert_eq!(
            tokens.len(),
            batch.len(),
            "one snapshot per token in a batch"
        );
        let mut paths = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(BATCH_MAX) {
            paths.extend(self.write_chunk(chunk)?);
        }
        Ok(paths)
    }

    fn write_chunk(&self, batch: &[Pending]) -> Result<Vec<PathBuf>, StateError> {
        let root = self.root_dir()?;
        let dirs: Vec<PathBuf> = batch.iter().map(|p| self.token_dir(p.token_id)).collect();
        let names: Vec<String> = batch.iter().map(|p| file_name(p.clock_ns)).collect();
        let mut temps = Vec::with_capacity(batch.len());
        for ((p, dir), name) in batch.iter().zip(&dirs).zip(&names) {
            create_dir_durable(dir)?;
            temps.push(write_temp(&dir.join(name), &p.bytes)?.0);
        }
        self.sync_batch(root, &temps)?;
        // Listed before visible: a manifest per UTC day, one append each.
        let mut days: BTreeMap<PathBuf, Vec<ManifestLine<'_>>> = BTreeMap::new();
        for (p, name) in batch.iter().zip(&names) {
            days.entry(Manifest::path_for(&self.root, utc::date_of(p.clock_ns)))
                .or_default()
                .push((p.token_id, name, &p.bytes));
        }
        for (manifest, entries) in &days {
            Manifest::append_all(manifest, entries)?;
        }
        let mut paths = Vec::with_capacity(batch.len());
        for ((tmp, dir), name) in temps.iter().zip(&dirs).zip(&names) {
            let path = dir.join(name);
            std::fs::rename(tmp, &path).map_err(io(&path))?;
            paths.push(path);
        }
        for dir in &dirs {
            self.prune(dir)?;
        }
        // The renames and the deletions, durable together.
        self.sync_batch(root, &dirs)?;
        Ok(paths)
    }

    /// Makes the files (or directories) at `paths` durable: one `syncfs` of the store's
    /// filesystem, and an `fsync` each for those on another one.
    fn sync_batch(&self, root_dir: &File, paths: &[PathBuf]) -> Result<(), StateError> {
        let dev = |p: &Path| p.metadata().map(|m| m.dev()).map_err(io(p));
        let root = root_dir.metadata().map_err(io(&self.root))?.dev();
        for p in paths {
            if dev(p)? != root {
                File::open(p).and_then(|f| f.sync_all()).map_err(io(p))?;
            }
        }
        Ok(syncfs(root_dir, &self.root)?)
    }

    /// The store's root, created and opened once.
    fn root_dir(&self) -> Result<&File, StateError> {
        if let Some(f) = self.root_dir.get() {
            return Ok(f);
        }
        create_dir_durable(&self.root)?;
        let f = File::open(&self.root).map_err(io(&self.root))?;
        Ok(self.root_dir.get_or_init(|| f))
    }

    /// The token's snapshot files, newest first.
    pub fn list(&self, token_id: u64) -> Result<Vec<PathBuf>, StateError> {
        let mut v = snapshots_in(&self.token_dir(token_id))?;
        v.reverse();
        Ok(v)
    }

    /// Deletes all but the newest `retain` snapshots of a token directory, and the
    /// temporaries that interrupted writes left there (this batch's are renamed by now; one
    /// writer per token). Not fsynced: the batch syncs the directory once, after its rename.
    fn prune(&self, dir: &Path) -> Result<(), StateError> {
        let (temps, files): (Vec<PathBuf>, Vec<PathBuf>) = sorted_entries(dir)?
            .into_iter()
            .filter(|p| is_temp(p) || is_snapshot(p))
            .partition(|p| is_temp(p));
        let old = &files[..files.len().saturating_sub(self.retain)];
        for f in temps.iter().chain(old) {
            std::fs::remove_file(f).map_err(io(f))?;
        }
        Ok(())
    }
}

/// The snapshot files of a token directory, oldest first (none if it does not exist).
fn snapshots_in(dir: &Path) -> Result<Vec<PathBuf>, StateError> {
    let mut v = sorted_entries(dir)?;
    v.retain(|p| is_snapshot(p));
    Ok(v)
}

fn is_snapshot(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == EXTENSION) && !is_temp(p)
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
