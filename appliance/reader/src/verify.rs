//! `chronicle verify`: every frame of every segment, every index entry against the frames
//! it claims, and meta.json against the segment. The first problem names file and offset.

use crate::partition::{Partition, TimeRange};
use chronicle_storage::meta::PartitionMeta;
use chronicle_storage::partition::SEGMENT_FILE;
use chronicle_storage::segment::{frame_len, ScanEnd};
use chronicle_storage::StorageError;
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

/// Verifies a `book.q` file, a partition directory, or every segment below a directory.
/// Stops at the first corruption, which is the error.
pub fn verify(path: &Path) -> Result<Report, StorageError> {
    let mut segments = Vec::new();
    collect(path, &mut segments)?;
    let mut report = Report::default();
    for seg in segments {
        let verdict = verify_segment(&seg)?;
        report.files.push((seg, verdict));
    }
    Ok(report)
}

/// Segments below `path`, in sorted (deterministic) order.
fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), StorageError> {
    if path.is_file() {
        out.push(path.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| StorageError::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.file_name().is_some_and(|n| n == SEGMENT_FILE) {
            out.push(p);
        }
    }
    Ok(())
}

fn verify_segment(path: &Path) -> Result<Verdict, StorageError> {
    let part = Partition::open(path)?;
    let seg = &part.segment;
    let file_len = seg.bytes().len() as u64;
    let mut records = 0u64;
    let mut frames = seg.frames();
    // Walk the index beside the frames: each entry must describe exactly its block.
    let mut entries = part.index.iter().peekable();
    let mut block = (0u64, 0u32, u64::MAX, 0u64); // (bytes, records, min ts, max ts)
    for f in frames.by_ref() {
        records += 1;
        if let Some(e) = entries.peek() {
            let ts = f.record.meta.exchange_ts_ns;
            block = (
                block.0 + frame_len(f.record.bytes.len()) as u64,
                block.1 + 1,
                block.2.min(ts),
                block.3.max(ts),
            );
            if f.offset + frame_len(f.record.bytes.len()) as u64 == e.end() {
                if (block.0, block.1, block.2, block.3)
                    != (
                        e.len as u64,
                        e.records,
                        e.min_exchange_ts,
                        e.max_exchange_ts,
                    )
                {
                    return Err(StorageError::Corrupt {
                        path: part.paths.index.clone(),
                        offset: e.offset,
                        reason: format!("index entry {e:?} does not match its frames {block:?}"),
                    });
                }
                entries.next();
                block = (0, 0, u64::MAX, 0);
            }
        }
    }
    let end = frames
        .end()
        .map_err(|(offset, reason)| seg.corrupt(offset, reason))?;
    if let Some(e) = entries.next() {
        return Err(StorageError::Corrupt {
            path: part.paths.index.clone(),
            offset: e.offset,
            reason: "index entry covers bytes that are not valid frames".into(),
        });
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
            });
        }
    }
    // The range iterator must agree with the plain scan (it is what `cat` uses).
    debug_assert_eq!(part.frames(TimeRange::ALL).count() as u64, records);
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
