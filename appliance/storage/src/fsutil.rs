//! Durable file operations: what ALICE (OSDI '14) says a crash-safe update needs.

use crate::error::io_at;
use crate::StorageError;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// fsyncs a directory so that entries created or renamed in it survive a crash.
pub fn fsync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

/// Replaces `path` with `bytes` atomically and durably: write a temporary sibling, fsync it,
/// rename it over `path`, fsync the directory. A crash leaves the old or the new file whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    write_atomic_then(path, bytes, || Ok(()))
}

/// [`write_atomic`] that runs `before_rename` once the new content is durable but not yet
/// visible (to record it elsewhere first, so nothing visible is ever unrecorded).
pub fn write_atomic_then(
    path: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce() -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| StorageError::Invalid {
            path: path.to_owned(),
            reason: "not a file path".into(),
        })?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_at(&tmp))?;
    f.write_all(bytes).map_err(io_at(&tmp))?;
    f.sync_all().map_err(io_at(&tmp))?;
    before_rename()?;
    std::fs::rename(&tmp, path).map_err(io_at(path))?;
    fsync_dir(dir)
}

/// Creates `dir` and its missing parents, fsyncing each parent that gained an entry.
pub fn create_dir_durable(dir: &Path) -> Result<(), StorageError> {
    // The parent of a relative path with one component (`data`) is `""`: the current
    // directory, which exists.
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_dir_durable(parent)?;
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(StorageError::io(dir, e)),
    }
    fsync_dir(parent)
}
