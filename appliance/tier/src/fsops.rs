//! The file operations of a move, each durable on its own: fsync a file, copy to a
//! temporary sibling, rename, delete, remove emptied directories (each followed by an fsync
//! of the directory that changed, so that the step survives a power cut).

use crate::layout::tmp_of;
use crate::TierError;
use chronicle_storage::fsutil::fsync_dir;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

pub fn fsync_file(path: &Path) -> Result<(), TierError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| TierError::io(path, e))
}

pub fn parent(path: &Path) -> &Path {
    path.parent().expect("unit files live in a directory")
}

/// Copies `src` to the temporary sibling of `dst`; returns that temporary path.
pub fn copy_to_tmp(src: &Path, dst: &Path) -> Result<PathBuf, TierError> {
    let tmp = tmp_of(dst);
    std::fs::copy(src, &tmp).map_err(|e| TierError::io(&tmp, e))?;
    Ok(tmp)
}

/// Renames a temporary file onto its final name (the caller fsyncs the directory).
pub fn rename(tmp: &Path, dst: &Path) -> Result<(), TierError> {
    std::fs::rename(tmp, dst).map_err(|e| TierError::io(dst, e))
}

/// Deletes a file; an absent file is already deleted. Returns whether it existed.
pub fn remove_file(path: &Path) -> Result<bool, TierError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(TierError::io(path, e)),
    }
}

/// Deletes `files` in order, then fsyncs each directory that lost an entry.
pub fn remove_files_durable(files: &[&Path]) -> Result<(), TierError> {
    let mut dirs: Vec<&Path> = Vec::new();
    for f in files {
        if remove_file(f)? && !dirs.contains(&parent(f)) {
            dirs.push(parent(f));
        }
    }
    for d in dirs {
        fsync_dir(d)?;
    }
    Ok(())
}

/// Removes `dir` if it is empty, then its parents up to (excluding) `stop`, fsyncing each
/// parent that lost an entry. A directory that still holds something stays.
pub fn remove_empty_dirs(dir: &Path, stop: &Path) -> Result<(), TierError> {
    let mut d = dir;
    while d != stop && d.starts_with(stop) {
        match std::fs::remove_dir(d) {
            Ok(()) => fsync_dir(parent(d))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => return Ok(()),
            Err(e) => return Err(TierError::io(d, e)),
        }
        d = parent(d);
    }
    Ok(())
}

/// SHA-256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<[u8; 32], TierError> {
    let mut f = File::open(path).map_err(|e| TierError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| TierError::io(path, e))?;
        if n == 0 {
            return Ok(h.finalize().into());
        }
        h.update(&buf[..n]);
    }
}

/// Size and modification time: a file the appliance still appends to changes one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub len: u64,
    pub mtime: std::time::SystemTime,
}

pub fn stamp(path: &Path) -> Result<Stamp, TierError> {
    let m = std::fs::metadata(path).map_err(|e| TierError::io(path, e))?;
    Ok(Stamp {
        len: m.len(),
        mtime: m.modified().map_err(|e| TierError::io(path, e))?,
    })
}

/// One tier manager per cold root: the storage crate's file lock on the root's lock file.
pub struct RootLock {
    _lock: chronicle_storage::fsutil::FileLock,
}

impl RootLock {
    pub fn acquire(path: &Path) -> Result<Self, TierError> {
        match chronicle_storage::fsutil::lock_file(path, "chronicle tier manager") {
            Ok(lock) => Ok(Self { _lock: lock }),
            Err(chronicle_storage::StorageError::Locked { path, .. }) => {
                Err(TierError::Locked { path })
            }
            Err(e) => Err(e.into()),
        }
    }
}
