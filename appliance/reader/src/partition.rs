use chronicle_storage::index::{IndexEntry, TimeIndex};
use chronicle_storage::partition::PartitionPaths;
use chronicle_storage::segment::{Frame, FrameIter, ScanEnd, Segment, HEADER_LEN};
use chronicle_storage::StorageError;
use std::path::Path;

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

/// A partition opened for reading: its segment and, when valid, its time index.
pub struct Partition {
    pub paths: PartitionPaths,
    pub segment: Segment,
    /// Index entries that lie within the segment's valid frames.
    pub index: Vec<IndexEntry>,
    /// Why the index is not used, if it is not (missing or damaged: it is derived data,
    /// so reading falls back to a scan).
    pub index_problem: Option<String>,
}

impl Partition {
    /// Opens a partition directory, or a bare `book.q` file.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let paths = if path.is_dir() {
            PartitionPaths::new(path)
        } else {
            PartitionPaths::new(path.parent().unwrap_or(Path::new(".")))
        };
        let segment = Segment::open(if path.is_dir() { &paths.segment } else { path })?;
        let (index, index_problem) = match TimeIndex::read(&paths.index) {
            Ok(ix) => {
                let len = segment.bytes().len() as u64;
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
        Ok(Self {
            paths,
            segment,
            index,
            index_problem,
        })
    }

    /// The frames whose exchange time is in `range`, in file order. Only index blocks whose
    /// [min, max] overlaps the range are decoded, plus the tail the index does not cover yet.
    pub fn frames(&self, range: TimeRange) -> RangeFrames<'_> {
        let indexed_end = self.index.last().map_or(HEADER_LEN as u64, |e| e.end());
        let blocks: Vec<Block> = self
            .index
            .iter()
            .filter(|e| e.overlaps(range.from, range.to))
            .map(|e| Block {
                start: e.offset,
                end: Some(e.end()),
            })
            .chain(std::iter::once(Block {
                start: indexed_end,
                end: None,
            }))
            .collect();
        RangeFrames {
            part: self,
            range,
            blocks,
            next_block: 0,
            current: None,
            error: None,
        }
    }
}

/// A stretch of frames to read: an indexed block (`end` known: its frames must fill it
/// exactly, since the index only covers durable frames) or the unindexed tail (`end: None`:
/// it may end in a torn append).
#[derive(Debug, Clone, Copy)]
struct Block {
    start: u64,
    end: Option<u64>,
}

/// Iterator behind [`Partition::frames`]. Stops at the first damage; `error()` then tells
/// whether it was corruption (an error) or a torn tail (the valid prefix was returned).
pub struct RangeFrames<'a> {
    part: &'a Partition,
    range: TimeRange,
    blocks: Vec<Block>,
    next_block: usize,
    current: Option<(Block, FrameIter<'a>)>,
    error: Option<StorageError>,
}

impl<'a> RangeFrames<'a> {
    /// Corruption met while iterating (a torn tail is not an error: reading stops there).
    pub fn take_error(&mut self) -> Option<StorageError> {
        self.error.take()
    }
}

impl<'a> Iterator for RangeFrames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        loop {
            if let Some((block, it)) = &mut self.current {
                for f in it.by_ref() {
                    if self.range.contains(f.record.meta.exchange_ts_ns) {
                        return Some(f);
                    }
                }
                let problem = match (it.end(), block.end) {
                    (Err(e), _) => Some(e),
                    (Ok(ScanEnd::Clean { end }), Some(block_end)) if end != block_end => Some((
                        end,
                        format!("indexed block [{}, {block_end}) ends early", block.start),
                    )),
                    (Ok(ScanEnd::TornTail { valid_end, reason }), Some(_)) => {
                        Some((valid_end, reason))
                    }
                    _ => None,
                };
                if let Some((offset, reason)) = problem {
                    self.error = Some(self.part.segment.corrupt(offset, reason));
                    self.next_block = self.blocks.len();
                }
                self.current = None;
            }
            let block = *self.blocks.get(self.next_block)?;
            self.next_block += 1;
            let it = match block.end {
                Some(end) => self.part.segment.frames_in(block.start, end),
                None => self.part.segment.frames_from(block.start),
            };
            self.current = Some((block, it));
        }
    }
}
