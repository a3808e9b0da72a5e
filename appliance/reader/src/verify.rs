//! `chronicle verify`: on any tier, every frame of every partition, every index entry against
//! the frames it claims, meta.json against the segment, and for an archive its seek table,
//! `.idx` and checksums. The first problem names the file (or object) and offset.

use crate::body::Body;
use crate::partition::Partition;
use crate::ReadError;
use chronicle_archive::remote::{RemoteConfig, RemoteStore};
use chronicle_archive::seekable;
use chronicle_archive::stub::RemoteStub;
use chronicle_archive::zidx::ZstIndex;
use chronicle_archive::{ARCHIVE_FILE, ARCHIVE_INDEX_FILE, STUB_FILE};
use chronicle_storage::meta::PartitionMeta;
use chronicle_storage::partition::SEGMENT_FILE;
use chronicle_storage::segment::{frame_len, ScanEnd, HEADER_LEN};
use chronicle_storage::StorageError;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// The result of verifying one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok {
        records: u64,
        bytes: u64,
    },
    /// Valid up to `valid_end`; the rest is an interrupted append that the next writer
    /// (or `chronicle repair`) cuts back. No acknowledged record is lost.
    TornTail {
        records: u64,
        valid_end: u64,
        file_len: u64,
        reason: String,
    },
}

#[derive(Debug, Default)]
pub struct Report {
    pub files: Vec<(PathBuf, Verdict)>,
}

impl Report {
    pub fn torn(&self) -> impl Iterator<Item = &(PathBuf, Verdict)> {
        self.files
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::TornTail { .. }))
    }
}

/// Verifies a `book.q` or `book.q.zst` file, a partition directory of any tier, or every
/// partition below a directory (RemoteCold ones need `remote`). Stops at the first
/// corruption, which is the error.
pub fn verify(path: &Path, remote: Option<&RemoteConfig>) -> Result<Report, ReadError> {
    verify_with_progress(path, remote, &|_, _| {})
}

/// [`verify`], telling `progress(done, total)` the partitions verified so far.
pub fn verify_with_progress(
    path: &Path,
    remote: Option<&RemoteConfig>,
    progress: &dyn Fn(u64, u64),
) -> Result<Report, ReadError> {
    let mut units = Vec::new();
    collect(path, &mut units)?;
    let total = units.len() as u64;
    let mut report = Report::default();
    for (done, unit) in (0..).zip(units) {
        progress(done, total);
        let verdict = verify_unit(&unit, remote)?;
        report.files.push((unit, verdict));
    }
    progress(total, total);
    Ok(report)
}

/// Whether `dir` holds a partition on some tier.
fn is_partition(dir: &Path) -> bool {
    [SEGMENT_FILE, ARCHIVE_FILE, STUB_FILE]
        .iter()
        .any(|f| dir.join(f).is_file())
}

/// Partitions below `path` (directories, or `path` itself if it is a file), in sorted
/// (deterministic) order.
fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), ReadError> {
    if path.is_file() || is_partition(path) {
        out.push(path.to_owned());
    }
    if path.is_file() {
        return Ok(());
    }
    let io = |e| StorageError::io(path, e);
    // An entry that cannot be listed is an error: verify must not pass what it never saw.
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.retain(|p| p.is_dir());
    entries.sort();
    for p in entries {
        collect(&p, out)?;
    }
    Ok(())
}

/// An archive is checked as an archive first (seek table against `.idx`, every zstd frame,
/// SHA-256 of the decoded bytes), then frame by frame like any segment.
fn verify_unit(path: &Path, remote: Option<&RemoteConfig>) -> Result<Verdict, ReadError> {
    let part = if path.is_dir() {
        Partition::open_dir(path, remote)?
    } else {
        Partition::open(path)?
    };
    if let Body::Seekable { origin, .. } = &part.body {
        let dir = &part.paths.dir;
        let stub = dir.join(STUB_FILE);
        if origin.starts_with(dir) {
            seekable::verify_files(origin, &dir.join(ARCHIVE_INDEX_FILE))?;
        } else {
            // Only a stub names a remote origin, and open_dir needed `remote` to open it.
            let store = RemoteStore::connect(remote.expect("a remote body was opened with it"))?;
            let stub = RemoteStub::read(&stub)?;
            let idx = ZstIndex::read_from(&store.open_recorded(&stub.index)?)?;
            let report = seekable::verify(store.open_recorded(&stub.data)?, &idx)?;
            if report.source_sha256 != stub.uncompressed_sha256 {
                return Err(ReadError::Unreadable {
                    path: stub.data.uri.into(),
                    reason: "the decoded archive's SHA-256 is not the one its stub recorded".into(),
                });
            }
        }
    }
    verify_segment(part)
}

fn verify_segment(part: Partition) -> Result<Verdict, ReadError> {
    let file_len = part.body.len();
    let mut records = 0u64;
    // Walk the index beside the frames: each entry must describe exactly its block.
    let mut entries = part.index.iter().peekable();
    let mut block = (0u64, 0u32, u64::MAX, 0u64); // (bytes, records, min ts, max ts)
    let mut mismatch = None;
    let end = part.walk(HEADER_LEN as u64, |f| {
        records += 1;
        let Some(e) = entries.peek() else {
            return ControlFlow::Continue(());
        };
        let ts = f.record.meta.exchange_ts_ns;
        block = (
            block.0 + frame_len(f.record.bytes.len()) as u64,
            block.1 + 1,
            block.2.min(ts),
            block.3.max(ts),
        );
        if f.offset + frame_len(f.record.bytes.len()) as u64 == e.end() {
            if block
                != (
                    e.len as u64,
                    e.records,
                    e.min_exchange_ts,
                    e.max_exchange_ts,
                )
            {
                mismatch = Some(StorageError::Corrupt {
                    path: part.paths.index.clone(),
                    offset: e.offset,
                    reason: format!("index entry {e:?} does not match its frames {block:?}"),
                });
                return ControlFlow::Break(());
            }
            entries.next();
            block = (0, 0, u64::MAX, 0);
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = mismatch {
        return Err(e.into());
    }
    if let Some(e) = entries.next() {
        return Err(StorageError::Corrupt {
            path: part.paths.index.clone(),
            offset: e.offset,
            reason: "index entry covers bytes that are not valid frames".into(),
        }
        .into());
    }
    if part.paths.meta.exists() && matches!(end, ScanEnd::Clean { .. }) {
        let meta = PartitionMeta::read(&part.paths.meta)?;
        if meta.records != records {
            return Err(StorageError::Invalid {
                path: part.paths.meta.clone(),
                reason: format!(
                    "meta.json says {} records, the segment holds {records}",
                    meta.records
                ),
            }
            .into());
        }
    }
    Ok(match end {
        ScanEnd::Clean { end } => Verdict::Ok {
            records,
            bytes: end,
        },
        ScanEnd::TornTail { valid_end, reason } => Verdict::TornTail {
            records,
            valid_end,
            file_len,
            reason,
        },
    })
}
