use super::frame::{encode_frame, ScanEnd};
use super::header::{SegmentHeader, HEADER_LEN};
use super::reader::Segment;
use crate::error::io_at;
use crate::fsutil::fsync_dir;
use crate::StorageError;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Initial capacity of the pending buffer: it grows only past a flush's worth of records.
const BUFFER_BYTES: usize = 1 << 20;

/// Appends framed records to a `.q` segment. `append` only encodes into memory (no syscall:
/// it is on the hot path); the bytes reach the file at `sync` (through the page cache, for
/// import and tools) or through the appliance's O_DIRECT writer, which takes them with
/// `seal()` and owns the file (a sealed writer holds no descriptor).
pub struct SegmentWriter {
    path: PathBuf,
    /// None: sealed, the bytes go to the file's owner through `seal`.
    file: Option<File>,
    buf: Vec<u8>,
    /// File offset where `buf` starts.
    written: u64,
    /// The most bytes one `seal` handed over.
    most_sealed: usize,
    pub header: SegmentHeader,
}

/// What `open_append` did to a damaged tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailRepair {
    pub cut_at: u64,
    pub cut_bytes: u64,
    /// Where the cut bytes were kept for inspection.
    pub saved_to: PathBuf,
    pub reason: String,
}

impl SegmentWriter {
    /// Creates a new segment; fails if the file exists.
    pub fn create(path: &Path, header: SegmentHeader) -> Result<Self, StorageError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io_at(path))?;
        file.write_all(&header.encode()).map_err(io_at(path))?;
        file.sync_all().map_err(io_at(path))?;
        fsync_dir(path.parent().unwrap_or(Path::new(".")))?;
        Ok(Self {
            path: path.to_owned(),
            file: Some(file),
            buf: Vec::with_capacity(BUFFER_BYTES),
            written: HEADER_LEN as u64,
            most_sealed: 0,
            header,
        })
    }

    /// A new segment that does not exist on disk yet, without touching the disk: its header is
    /// the first pending bytes (from offset 0), and whoever takes them with `seal` creates it.
    pub fn sealed_new(path: &Path, header: SegmentHeader) -> Self {
        let mut buf = Vec::with_capacity(BUFFER_BYTES);
        buf.extend_from_slice(&header.encode());
        Self {
            path: path.to_owned(),
            file: None,
            buf,
            written: 0,
            most_sealed: 0,
            header,
        }
    }

    /// Gives up the descriptor: from now on the bytes go out through `seal` only.
    pub fn into_sealed(mut self) -> Self {
        self.file = None;
        self
    }

    pub fn is_sealed(&self) -> bool {
        self.file.is_none()
    }

    /// Reopens a segment for appending. A torn tail is cut back to the last valid frame
    /// (the cut bytes are kept beside it); damage before the tail is an error.
    pub fn open_append(path: &Path) -> Result<(Self, Option<TailRepair>), StorageError> {
        let seg = Segment::open(path)?;
        let (end, repair) = match seg.scan()? {
            ScanEnd::Clean { end } => (end, None),
            ScanEnd::TornTail { valid_end, reason } => {
                let tail = &seg.bytes()[valid_end as usize..];
                let saved_to = PathBuf::from(format!("{}.torn-{valid_end}", path.display()));
                crate::fsutil::write_atomic(&saved_to, tail)?;
                (
                    valid_end,
                    Some(TailRepair {
                        cut_at: valid_end,
                        cut_bytes: tail.len() as u64,
                        saved_to,
                        reason,
                    }),
                )
            }
        };
        let header = seg.header.clone();
        drop(seg);
        let mut file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_at(path))?;
        // Cuts a torn tail and any zero padding, so appends continue at the last frame.
        file.set_len(end).map_err(io_at(path))?;
        file.sync_all().map_err(io_at(path))?;
        file.seek(SeekFrom::Start(end)).map_err(io_at(path))?;
        Ok((
            Self {
                path: path.to_owned(),
                file: Some(file),
                buf: Vec::with_capacity(BUFFER_BYTES),
                written: end,
                most_sealed: 0,
                header,
            },
            repair,
        ))
    }

    /// Appends one encoded record; returns the offset of its frame.
    pub fn append(&mut self, record: &[u8]) -> Result<u64, StorageError> {
        let offset = self.end_offset();
        encode_frame(record, &mut self.buf);
        Ok(offset)
    }

    /// The frames not yet written, and the file offset where they start.
    pub fn pending(&self) -> (u64, &[u8]) {
        (self.written, &self.buf)
    }

    /// Hands the frames not yet written (from offset `pending().0`) to another writer (the
    /// appliance's O_DIRECT flush, which tracks when they are durable); appends go on into
    /// `spare`, so the hot path never waits for that write. `spare` gets room for twice the
    /// most any seal handed over: appends then never grow it.
    pub fn seal(&mut self, mut spare: Vec<u8>) -> Vec<u8> {
        spare.clear();
        self.most_sealed = self.most_sealed.max(self.buf.len());
        spare.reserve(2 * self.most_sealed);
        self.written += self.buf.len() as u64;
        std::mem::replace(&mut self.buf, spare)
    }

    /// The offset just past the last appended frame.
    pub fn end_offset(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes everything appended so far and makes it durable (not for a sealed writer: its
    /// file's owner does that).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        let Some(file) = self.file.as_mut() else {
            return Err(StorageError::sealed(&self.path));
        };
        file.write_all(&self.buf).map_err(io_at(&self.path))?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        file.sync_data().map_err(io_at(&self.path))
    }
}
