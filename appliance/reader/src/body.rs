//! A partition's `.q` bytes wherever they are: mapped from `book.q` (Hot/Warm), or decoded on
//! demand from seekable zstd (`book.q.zst` on the cold disk, or its object in RemoteCold).
//! Readers ask for byte ranges of the logical `.q`; only the zstd frames that hold a range are
//! fetched and decoded.

use crate::ReadError;
use chronicle_archive::seekable::SeekableReader;
use chronicle_archive::ReadAt;
use chronicle_storage::segment::{Segment, SegmentHeader, HEADER_LEN};
use chronicle_storage::StorageError;
use std::cell::RefCell;
use std::path::{Path, PathBuf};

pub enum Body {
    Mapped(Segment),
    Seekable {
        /// The `.zst` file or object URI: errors name it, with offsets into the `.q` bytes.
        origin: PathBuf,
        /// Decoding caches a frame, hence `&mut`; a `Partition` is read by one thread.
        reader: RefCell<SeekableReader<Box<dyn ReadAt>>>,
        header: SegmentHeader,
    },
}

impl Body {
    pub fn seekable(
        origin: PathBuf,
        reader: SeekableReader<Box<dyn ReadAt>>,
    ) -> Result<Self, ReadError> {
        let mut head = Vec::with_capacity(HEADER_LEN);
        let len = reader.uncompressed_len().min(HEADER_LEN as u64);
        let mut reader = reader;
        reader.read_range(0, len, &mut head)?;
        let header = SegmentHeader::decode(&head).map_err(|reason| StorageError::BadHeader {
            path: origin.clone(),
            reason,
        })?;
        Ok(Self::Seekable {
            origin,
            reader: RefCell::new(reader),
            header,
        })
    }

    pub fn header(&self) -> &SegmentHeader {
        match self {
            Body::Mapped(seg) => &seg.header,
            Body::Seekable { header, .. } => header,
        }
    }

    /// Length of the `.q` bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Mapped(seg) => seg.bytes().len() as u64,
            Body::Seekable { reader, .. } => reader.borrow().uncompressed_len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where the bytes come from (the `.q` path, or the `.zst` file or object).
    pub fn origin(&self) -> &Path {
        match self {
            Body::Mapped(seg) => seg.path(),
            Body::Seekable { origin, .. } => origin,
        }
    }

    /// The `.q` bytes `[start, end)` (`end` clamped to the length): borrowed from the map, or
    /// decoded into `scratch`.
    pub fn range<'a>(
        &'a self,
        start: u64,
        end: u64,
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], ReadError> {
        let end = end.min(self.len());
        if start > end {
            return Err(self.corrupt(start, format!("offset past the end ({end} bytes)")));
        }
        match self {
            Body::Mapped(seg) => Ok(&seg.bytes()[start as usize..end as usize]),
            Body::Seekable { reader, .. } => {
                scratch.clear();
                reader.borrow_mut().read_range(start, end, scratch)?;
                Ok(scratch)
            }
        }
    }

    /// Frames decoded so far from the archive (0 for a mapped `book.q`): what a point lookup
    /// cost.
    pub fn frames_decoded(&self) -> u64 {
        match self {
            Body::Mapped(_) => 0,
            Body::Seekable { reader, .. } => reader.borrow().frames_decoded(),
        }
    }

    pub fn corrupt(&self, offset: u64, reason: String) -> ReadError {
        StorageError::Corrupt {
            path: self.origin().to_owned(),
            offset,
            reason,
        }
        .into()
    }
}
