//! Positional reads of an immutable byte object: a local file (`pread`) here, a remote object
//! (ranged GET) in [`crate::remote`]. The seekable reader only ever asks for exact ranges it
//! found in a table, so a short answer is always an error, never a partial read.

use crate::ArchiveError;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An immutable object that serves exact byte ranges. Object-safe, `Send + Sync`: a reader may
/// hold a `Box<dyn ReadAt>` and be moved between threads.
pub trait ReadAt: Send + Sync {
    /// The object's length in bytes (fixed for the object's lifetime).
    fn size(&self) -> u64;
    /// Fills `buf` with the bytes at `offset..offset + buf.len()`; fails (naming the object and
    /// the range) if any of them is missing.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ArchiveError>;
    /// The path or URI, for errors.
    fn describe(&self) -> String;
}

/// Smart pointers and references to a [`ReadAt`] are one (`Box<dyn ReadAt>`, `Arc<LocalFile>`).
macro_rules! forward_read_at {
    ($($ptr:ty),*) => {$(
        impl<T: ReadAt + ?Sized> ReadAt for $ptr {
            fn size(&self) -> u64 {
                (**self).size()
            }
            fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ArchiveError> {
                (**self).read_exact_at(offset, buf)
            }
            fn describe(&self) -> String {
                (**self).describe()
            }
        }
    )*};
}
forward_read_at!(Box<T>, Arc<T>, &T);

/// The `Truncated` error when `offset..offset + len` is not inside an object of `size` bytes;
/// every [`ReadAt`] calls it before reading so that "too short" reads the same everywhere.
pub fn check_range(object: &dyn ReadAt, offset: u64, len: usize) -> Result<(), ArchiveError> {
    let size = object.size();
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        end => Err(ArchiveError::Truncated {
            object: object.describe(),
            offset,
            end: end.unwrap_or(u64::MAX),
            size,
        }),
    }
}

/// A local file read with `pread` (no shared cursor, so `&self` reads from many threads).
/// Its size is taken once at open: archive files are immutable once written.
#[derive(Debug)]
pub struct LocalFile {
    file: File,
    path: PathBuf,
    size: u64,
}

impl LocalFile {
    pub fn open(path: &Path) -> Result<Self, ArchiveError> {
        let io = |source| ArchiveError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        Ok(Self {
            file,
            path: path.to_owned(),
            size,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl ReadAt for LocalFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ArchiveError> {
        check_range(self, offset, buf.len())?;
        self.file.read_exact_at(buf, offset).map_err(|source| {
            // Shorter than at open: someone truncated an immutable file under us.
            if source.kind() == std::io::ErrorKind::UnexpectedEof {
                let size = self.file.metadata().map_or(0, |m| m.len());
                ArchiveError::Truncated {
                    object: self.describe(),
                    offset,
                    end: offset + buf.len() as u64,
                    size,
                }
            } else {
                ArchiveError::ReadAt {
                    object: self.describe(),
                    offset,
                    len: buf.len() as u64,
                    source,
                }
            }
        })
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}
