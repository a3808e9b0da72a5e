use super::frame::{FrameIter, ScanEnd};
use super::header::{SegmentHeader, HEADER_LEN};
use crate::error::io_at;
use crate::StorageError;
use memmap2::Mmap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// A `.q` segment opened for reading (memory-mapped; Zone 2 is read with mmap).
pub struct Segment {
    path: PathBuf,
    map: Option<Mmap>,
    pub header: SegmentHeader,
}

impl Segment {
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let file = File::open(path).map_err(io_at(path))?;
        let len = file.metadata().map_err(io_at(path))?.len();
        // An empty file cannot be mapped; it fails header validation below all the same.
        let map = if len == 0 {
            None
        } else {
            // SAFETY: segments are append-only and never truncated below a reader's view
            // except by repair, which the appliance runs before readers start.
            Some(unsafe { Mmap::map(&file) }.map_err(io_at(path))?)
        };
        let bytes = map.as_deref().unwrap_or(&[]);
        let header = SegmentHeader::decode(bytes).map_err(|reason| StorageError::BadHeader {
            path: path.to_owned(),
            reason,
        })?;
        Ok(Self {
            path: path.to_owned(),
            map,
            header,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Frames from the first record on.
    pub fn frames(&self) -> FrameIter<'_> {
        FrameIter::new(self.bytes(), HEADER_LEN)
    }

    /// Frames from `start` (a frame boundary) to wherever they end.
    pub fn frames_from(&self, start: u64) -> FrameIter<'_> {
        FrameIter::new(self.bytes(), start as usize)
    }

    /// Frames in `[start, end)`, two frame boundaries (an index block).
    pub fn frames_in(&self, start: u64, end: u64) -> FrameIter<'_> {
        FrameIter::bounded(self.bytes(), start as usize, end as usize)
    }

    /// Checks every frame. Corruption before the tail is an error naming the offset.
    pub fn scan(&self) -> Result<ScanEnd, StorageError> {
        self.frames()
            .end()
            .map_err(|(offset, reason)| self.corrupt(offset, reason))
    }

    pub fn corrupt(&self, offset: u64, reason: String) -> StorageError {
        StorageError::Corrupt {
            path: self.path.clone(),
            offset,
            reason,
        }
    }
}
