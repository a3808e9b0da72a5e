//! chronicle-archive: Zone 3 formats and stores (`docs/archive.md`).
//!
//! - [`source`]: positional reads of an immutable byte object, local file or remote object.
//! - [`zidx`]: the `book.q.zst.idx` jump table (`QZSTIDX1`).
//! - [`seekable`]: `.q` → `.q.zst` (standard zstd seekable format) and ranged reads back.
//! - [`remote`]: the S3-compatible object store (`object_store`), uploads verified by size and
//!   SHA-256, ranged GETs.
//! - [`stub`]: `book.q.zst.remote.json`, the local stub of a partition that lives remotely.

pub mod error;
pub mod remote;
pub mod seekable;
pub mod source;
pub mod stub;
#[cfg(feature = "testing")]
pub mod testing;
pub mod zidx;

pub use error::ArchiveError;
pub use stub::STUB_FILE;

/// A cold partition's files, beside its `meta.json` and `index/time.idx`
/// (`docs/formats/partition.md`).
pub const ARCHIVE_FILE: &str = "book.q.zst";
pub const ARCHIVE_INDEX_FILE: &str = "book.q.zst.idx";
pub use source::ReadAt;
