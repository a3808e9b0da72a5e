//! A partition opened for reading on any tier, and its frames in a time range.

use crate::body::Body;
use crate::ReadError;
use chronicle_archive::remote::{RemoteConfig, RemoteStore};
use chronicle_archive::seekable::{is_zstd, SeekableReader};
use chronicle_archive::source::LocalFile;
use chronicle_archive::stub::RemoteStub;
use chronicle_archive::zidx::ZstIndex;
use chronicle_archive::{ReadAt, ARCHIVE_FILE, ARCHIVE_INDEX_FILE, STUB_FILE};
use chronicle_storage::index::{IndexEntry, TimeIndex};
use chronicle_storage::partition::{PartitionPaths, SEGMENT_FILE};
use chronicle_storage::segment::{Frame, FrameIter, ScanEnd, Segment, HEADER_LEN};
use chronicle_storage::StorageError;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Inclusive exchange-time bounds, ns since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: u64,
    pub to: u64,
}

impl TimeRange {
    pub const ALL: TimeRange = TimeRange {
        from: 0,
        to: u64::MAX,
    };

    pub fn contains(&self, ts: u64) -> bool {
        self.from <= ts && ts <= self.to
    }
}

/// A `.q` or `.q.zst` file, by its first bytes; a `.zst` is opened with its `.idx` when that
/// exists (no read of the seek table), else from the seek table.
fn open_file(path: &Path, idx: &Path) -> Result<Body, ReadError> {
    let file = LocalFile::open(path)?;
    let mut magic = [0u8; 4];
    if file.size() >= 4 {
        file.read_exact_at(0, &mut magic)?;
    }
    if !is_zstd(&magic) {
        return Ok(Body::Mapped(Segment::open(path)?));
    }
    let idx = match idx.is_file() {
        true => Some(ZstIndex::read_file(idx)?),
        false => None,
    };
    let reader = SeekableReader::open(Box::new(file) as Box<dyn ReadAt>, idx.as_ref())?;
    Body::seekable(path.to_owned(), reader)
}

/// A RemoteCold partition: the stub says which objects hold it and what they must be.
fn open_remote(stub_path: &Path, remote: Option<&RemoteConfig>) -> Result<Body, ReadError> {
    let stub = RemoteStub::read(stub_path)?;
    let Some(config) = remote else {
        return Err(ReadError::Unreadable {
            path: stub_path.to_owned(),
            reason: format!(
                "the partition lives in object storage ({}); reading it needs the remote store's configuration ([tiers.remote])",
                stub.data.uri
            ),
        });
    };
    let store = RemoteStore::connect(config)?;
    let idx = ZstIndex::read_from(&store.open_recorded(&stub.index)?)?;
    let data = store.open_recorded(&stub.data)?;
    let origin = PathBuf::from(data.uri());
    let reader = SeekableReader::open(Box::new(data) as Box<dyn ReadAt>, Some(&idx))?;
    Body::seekable(origin, reader)
}

/// Bytes of `.q` decoded at a time when walking an archive without the index's blocks:
/// far above the largest frame (64 KiB), so a frame never needs more than two windows.
const WINDOW: u64 = 4 << 20;

/// A partition opened for reading: its body (mapped `book.q`, or seekable zstd local or
/// remote) and, when valid, its time index.
pub struct Partition {
    pub paths: PartitionPaths,
    pub body: Body,
    /// Index entries that lie within the body's bytes.
    pub index: Vec<IndexEntry>,
    /// Why the index is not used, if it is not (missing or damaged: it is derived data,
    /// so reading falls back to a scan).
    pub index_problem: Option<String>,
}

impl Partition {
    /// Opens a partition directory of any local tier, or a bare `book.q` / `book.q.zst`
    /// file. A RemoteCold partition needs [`Partition::open_dir`] with the store's config.
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        if path.is_dir() {
            return Self::open_dir(path, None);
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let body = open_file(path, &dir.join(ARCHIVE_INDEX_FILE))?;
        Ok(Self::with_body(PartitionPaths::new(dir), body))
    }

    /// Opens the partition in `dir`, whatever the tier: `book.q` (mapped), `book.q.zst`
    /// (decoded on demand) or `book.q.zst.remote.json` (ranged GETs to `remote`). Files are
    /// told apart by their magic, not only their names.
    pub fn open_dir(dir: &Path, remote: Option<&RemoteConfig>) -> Result<Self, ReadError> {
        let paths = PartitionPaths::new(dir);
        let archive = dir.join(ARCHIVE_FILE);
        let stub = dir.join(STUB_FILE);
        let body = if paths.segment.is_file() {
            open_file(&paths.segment, &dir.join(ARCHIVE_INDEX_FILE))?
        } else if archive.is_file() {
            open_file(&archive, &dir.join(ARCHIVE_INDEX_FILE))?
        } else if stub.is_file() {
            open_remote(&stub, remote)?
        } else {
            return Err(StorageError::io(
                &paths.segment,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no {SEGMENT_FILE}, {ARCHIVE_FILE} or {STUB_FILE} here"),
                ),
            )
            .into());
        };
        Ok(Self::with_body(paths, body))
    }

    /// A partition whose `.q` bytes come from `body`; `paths.dir` holds its index and meta.
    pub fn with_body(paths: PartitionPaths, body: Body) -> Self {
        let (index, index_problem) = match TimeIndex::read(&paths.index) {
            Ok(ix) => {
                let len = body.len();
                let ok: Vec<IndexEntry> = ix
                    .entries
                    .iter()
                    .copied()
                    .take_while(|e| e.end() <= len)
                    .collect();
                (ok, None)
            }
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        Self {
            paths,
            body,
            index,
            index_problem,
        }
    }

    /// Calls `visit` with each frame whose exchange time is in `range`, in file order, until
    /// it breaks. Only index blocks whose [min, max] overlaps the range are read (on an
    /// archive: only the zstd frames holding them are decoded), plus the tail the index does
    /// not cover. Corruption is an error naming the file and offset; a torn tail (only a
    /// `book.q` being appended can have one) ends the walk and is returned.
    pub fn scan(
        &self,
        range: TimeRange,
        mut visit: impl FnMut(Frame<'_>) -> ControlFlow<()>,
    ) -> Result<ScanEnd, ReadError> {
        let mut scratch = Vec::new();
        let mut in_range = |f: Frame<'_>| {
            if range.contains(f.record.meta.exchange_ts_ns) {
                visit(f)
            } else {
                ControlFlow::Continue(())
            }
        };
        for e in self
            .index
            .iter()
            .filter(|e| e.overlaps(range.from, range.to))
        {
            let buf = self.body.range(e.offset, e.end(), &mut scratch)?;
            let mut frames = FrameIter::window(buf, e.offset);
            for f in frames.by_ref() {
                if in_range(f).is_break() {
                    return Ok(ScanEnd::Clean { end: f.offset });
                }
            }
            // The index covers only durable frames: each block must be whole frames.
            let problem = match frames.end() {
                Ok(ScanEnd::Clean { end }) if end == e.end() => None,
                Ok(ScanEnd::Clean { end }) => Some((end, "ends early".to_owned())),
                Ok(ScanEnd::TornTail { valid_end, reason }) => Some((valid_end, reason)),
                Err(damage) => Some(damage),
            };
            if let Some((offset, reason)) = problem {
                return Err(self.body.corrupt(
                    offset,
                    format!("indexed block [{}, {}): {reason}", e.offset, e.end()),
                ));
            }
        }
        let indexed_end = self.index.last().map_or(HEADER_LEN as u64, |e| e.end());
        self.walk(indexed_end, in_range)
    }

    /// Every frame from `start` (a frame boundary) to the end of the body, ignoring the index.
    pub fn walk(
        &self,
        start: u64,
        mut visit: impl FnMut(Frame<'_>) -> ControlFlow<()>,
    ) -> Result<ScanEnd, ReadError> {
        let corrupt = |(offset, reason)| self.body.corrupt(offset, reason);
        if let Body::Mapped(seg) = &self.body {
            let mut frames = seg.frames_from(start);
            for f in frames.by_ref() {
                if visit(f).is_break() {
                    return Ok(ScanEnd::Clean { end: f.offset });
                }
            }
            return frames.end().map_err(corrupt);
        }
        // An archive is decoded a window at a time; a frame cut by a window's end is read
        // again at the start of the next window.
        let len = self.body.len();
        let mut scratch = Vec::new();
        let mut pos = start;
        loop {
            let end = (pos + WINDOW).min(len);
            let buf = self.body.range(pos, end, &mut scratch)?;
            let mut frames = FrameIter::window(buf, pos);
            for f in frames.by_ref() {
                if visit(f).is_break() {
                    return Ok(ScanEnd::Clean { end: f.offset });
                }
            }
            match frames.end() {
                Ok(ScanEnd::Clean { end: e }) if e == end && end < len => pos = e,
                Ok(ScanEnd::Clean { end: e }) => {
                    return self.zeros_after(e, end).map(|()| ScanEnd::Clean { end: e })
                }
                Ok(ScanEnd::TornTail { valid_end, .. }) | Err((valid_end, _))
                    if valid_end > pos && end < len =>
                {
                    pos = valid_end
                }
                Ok(torn @ ScanEnd::TornTail { .. }) if end == len => return Ok(torn),
                Ok(ScanEnd::TornTail { valid_end, reason }) => {
                    return Err(corrupt((valid_end, reason)))
                }
                Err(damage) => return Err(corrupt(damage)),
            }
        }
    }

    /// Frames ended at `end` inside a window that reaches `window_end`, the rest of which is
    /// zero: the rest of the body must be zero padding too.
    fn zeros_after(&self, end: u64, window_end: u64) -> Result<(), ReadError> {
        let mut scratch = Vec::new();
        let mut pos = window_end;
        while pos < self.body.len() {
            let next = (pos + WINDOW).min(self.body.len());
            let buf = self.body.range(pos, next, &mut scratch)?;
            if let Some(i) = buf.iter().position(|&b| b != 0) {
                return Err(self.body.corrupt(
                    pos + i as u64,
                    format!("data after the zero padding that ends the frames at {end}"),
                ));
            }
            pos = next;
        }
        Ok(())
    }
}
