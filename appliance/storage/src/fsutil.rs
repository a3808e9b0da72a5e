//! Durable file operations: what ALICE (OSDI '14) says a crash-safe update needs.

use crate::error::io_at;
use crate::StorageError;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// fsyncs a directory so that entries created or renamed in it survive a crash.
pub fn fsync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

/// The file whose lock marks a data directory as in use by a writer.
pub const LOCK_FILE: &str = "chronicle.lock";

/// An exclusive `flock` on a file, released when dropped or when the process dies: one
/// writer per data directory (`chronicle run`, `import`, `engine run`: [`lock_dir`]), one tier
/// manager per cold root. The file names the holder while it is held and is emptied on
/// release, so a line left in it is either the holder's or that of a process that died
/// holding it (the next holder replaces it).
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Still locked here: no other holder can have written its line yet.
        let _ = self.file.set_len(0);
    }
}

/// Takes the lock file `path` for `what` (written into it as `pid N: what`); fails at once
/// with [`StorageError::Locked`], naming the holder, if another process holds it.
pub fn lock_file(path: &Path, what: &str) -> Result<FileLock, StorageError> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_at(path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(path).unwrap_or_default();
            return Err(StorageError::Locked {
                path: path.to_owned(),
                holder: holder.trim().to_owned(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(StorageError::io(path, e)),
    }
    file.set_len(0).map_err(io_at(path))?;
    writeln!(file, "pid {}: {what}", std::process::id()).map_err(io_at(path))?;
    Ok(FileLock { file })
}

/// Takes the data directory `dir` (created if missing) for `what`: its [`LOCK_FILE`].
pub fn lock_dir(dir: &Path, what: &str) -> Result<FileLock, StorageError> {
    create_dir_durable(dir)?;
    lock_file(&dir.join(LOCK_FILE), what)
}

/// Entries a directory listing may hold before [`sorted_entries`] refuses it.
pub const MAX_DIR_ENTRIES: usize = 10_000_000;

/// The entries of `dir`, sorted; none if `dir` does not exist. Any other failure, of the
/// listing or of one entry, is an error naming `dir`: an entry skipped could be a day of data.
pub fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io(dir, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        out.push(e.map_err(io_at(dir))?.path());
        if out.len() > MAX_DIR_ENTRIES {
            return Err(StorageError::Invalid {
                path: dir.to_owned(),
                reason: format!("more than {MAX_DIR_ENTRIES} entries"),
            });
        }
    }
    out.sort();
    Ok(out)
}

/// Makes everything written to the filesystem that holds `dir` (an open file or directory
/// there; `path` names it in errors) durable, data and metadata, with one journal commit
/// (`syncfs(2)`): for many small files at once, where an fsync each is a commit each. It
/// reports a writeback error on that filesystem since `dir` was opened, or since the last
/// `syncfs` through `dir`, even one another process's sync saw first (Linux ≥ 5.8): keep
/// `dir` open across the writes it covers.
pub fn syncfs(dir: &File, path: &Path) -> Result<(), StorageError> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs on a descriptor that `dir` keeps open for the duration of the call.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(io_at(path)(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically and durably: write a temporary sibling, fsync it,
/// rename it over `path`, fsync the directory. A crash leaves the old or the new file whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let (tmp, f) = write_temp(path, bytes)?;
    f.sync_all().map_err(io_at(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_at(path))?;
    fsync_dir(parent_dir(path))
}

/// The directory holding `path`: `.` for a bare relative name, whose parent is `""`.
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Whether `path` is a temporary of [`write_temp`] (`.{name}.tmp`): a leftover, once no
/// write is in flight.
pub fn is_temp(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
}

/// Writes `bytes` to the temporary sibling of `path`, `.{name}.tmp` (replacing a leftover),
/// not synced: the first step of an atomic replace. Returns its path and the open file.
pub fn write_temp(path: &Path, bytes: &[u8]) -> Result<(PathBuf, File), StorageError> {
    let name = path.file_name().ok_or_else(|| StorageError::Invalid {
        path: path.to_owned(),
        reason: "not a file path".into(),
    })?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_at(&tmp))?;
    f.write_all(bytes).map_err(io_at(&tmp))?;
    Ok((tmp, f))
}

/// Creates `dir` and its missing parents, fsyncing each parent that gained an entry.
pub fn create_dir_durable(dir: &Path) -> Result<(), StorageError> {
    // `""` (the parent a bare relative name reports) is the current directory.
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let parent = parent_dir(dir);
    create_dir_durable(parent)?;
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(StorageError::io(dir, e)),
    }
    fsync_dir(parent)
}
