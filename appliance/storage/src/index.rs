//! The sparse time index, `index/time.idx`: the segment cut into contiguous blocks of
//! frames, each entry giving a block's byte range and the min/max exchange time inside it.
//! Min and max (not just a first timestamp) keep seeks exact when a venue's timestamps are
//! not monotonic in arrival order. The index is derived data: it can always be rebuilt from
//! the segment, and it never points past the segment's durable end.

use crate::error::io_at;
use crate::segment::HEADER_LEN as SEGMENT_HEADER_LEN;
use crate::StorageError;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const MAGIC: [u8; 8] = *b"CHRQIDX\0";
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 32;
pub const ENTRY_LEN: usize = 40;
/// Bytes of frames per block: small enough that a seek decodes little, large enough that
/// the index stays ~0.06% of the segment.
pub const DEFAULT_BLOCK_BYTES: u32 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Segment offset of the block's first frame.
    pub offset: u64,
    /// Bytes of frames in the block.
    pub len: u32,
    pub records: u32,
    pub min_exchange_ts: u64,
    pub max_exchange_ts: u64,
}

impl IndexEntry {
    pub fn end(&self) -> u64 {
        self.offset + self.len as u64
    }

    pub fn overlaps(&self, from: u64, to: u64) -> bool {
        self.max_exchange_ts >= from && self.min_exchange_ts <= to
    }

    fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..8].copy_from_slice(&self.offset.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b[12..16].copy_from_slice(&self.records.to_le_bytes());
        b[16..24].copy_from_slice(&self.min_exchange_ts.to_le_bytes());
        b[24..32].copy_from_slice(&self.max_exchange_ts.to_le_bytes());
        let crc = crc32c::crc32c(&b[..36]);
        b[36..40].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
        let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4"));
        if u32_at(36) != crc32c::crc32c(&b[..36]) || u32_at(32) != 0 {
            return None;
        }
        Some(Self {
            offset: u64_at(0),
            len: u32_at(8),
            records: u32_at(12),
            min_exchange_ts: u64_at(16),
            max_exchange_ts: u64_at(24),
        })
    }
}

fn encode_header(block_bytes: u32) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[0..8].copy_from_slice(&MAGIC);
    b[8..10].copy_from_slice(&VERSION.to_le_bytes());
    b[10..12].copy_from_slice(&(ENTRY_LEN as u16).to_le_bytes());
    b[12..16].copy_from_slice(&block_bytes.to_le_bytes());
    let crc = crc32c::crc32c(&b[..28]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Groups appended frames into blocks and emits an entry when a block is full.
#[derive(Debug, Clone)]
pub struct IndexBuilder {
    block_bytes: u32,
    open: Option<IndexEntry>,
}

impl IndexBuilder {
    pub fn new(block_bytes: u32) -> Self {
        assert!(block_bytes > 0, "index block size must be positive");
        Self {
            block_bytes,
            open: None,
        }
    }

    /// Notes a frame appended at `offset`; returns the entry of a block it completed.
    pub fn note(&mut self, offset: u64, frame_len: u32, exchange_ts: u64) -> Option<IndexEntry> {
        let e = self.open.get_or_insert(IndexEntry {
            offset,
            len: 0,
            records: 0,
            min_exchange_ts: exchange_ts,
            max_exchange_ts: exchange_ts,
        });
        assert_eq!(e.end(), offset, "frames must be noted contiguously");
        e.len += frame_len;
        e.records += 1;
        e.min_exchange_ts = e.min_exchange_ts.min(exchange_ts);
        e.max_exchange_ts = e.max_exchange_ts.max(exchange_ts);
        if e.len >= self.block_bytes {
            self.open.take()
        } else {
            None
        }
    }

    /// Closes the partial block (at a writer's close).
    pub fn finish(&mut self) -> Option<IndexEntry> {
        self.open.take()
    }
}

/// A validated index: its entries are contiguous from the segment's first frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeIndex {
    pub block_bytes: u32,
    pub entries: Vec<IndexEntry>,
    /// Bytes at the end of the file that were not a valid entry (a torn append).
    pub torn_bytes: usize,
}

impl TimeIndex {
    pub fn read(path: &Path) -> Result<Self, StorageError> {
        let b = std::fs::read(path).map_err(io_at(path))?;
        let bad = |reason: String| StorageError::BadHeader {
            path: path.to_owned(),
            reason,
        };
        if b.len() < HEADER_LEN || b[0..8] != MAGIC {
            return Err(bad("not a chronicle time index (magic)".into()));
        }
        if u32::from_le_bytes(b[28..32].try_into().expect("4")) != crc32c::crc32c(&b[..28]) {
            return Err(bad("header checksum mismatch".into()));
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        let entry_len = u16::from_le_bytes([b[10], b[11]]) as usize;
        if version != VERSION || entry_len != ENTRY_LEN {
            return Err(bad(format!(
                "version {version} / entry length {entry_len} not supported"
            )));
        }
        let block_bytes = u32::from_le_bytes(b[12..16].try_into().expect("4"));
        let mut entries: Vec<IndexEntry> = Vec::with_capacity((b.len() - HEADER_LEN) / ENTRY_LEN);
        let mut at = HEADER_LEN;
        let mut expect_offset = SEGMENT_HEADER_LEN as u64;
        while at + ENTRY_LEN <= b.len() {
            let Some(e) = IndexEntry::decode(&b[at..at + ENTRY_LEN]) else {
                break;
            };
            if e.offset != expect_offset || e.records == 0 || e.min_exchange_ts > e.max_exchange_ts
            {
                return Err(StorageError::Corrupt {
                    path: path.to_owned(),
                    offset: at as u64,
                    reason: format!(
                        "entry for offset {} breaks contiguity (expected {expect_offset})",
                        e.offset
                    ),
                });
            }
            expect_offset = e.end();
            entries.push(e);
            at += ENTRY_LEN;
        }
        let torn_bytes = b.len() - at;
        // Only the last entry may be damaged (a torn append); a bad entry with valid ones
        // after it is corruption.
        if torn_bytes >= ENTRY_LEN
            && b[at + ENTRY_LEN..]
                .chunks_exact(ENTRY_LEN)
                .any(|c| IndexEntry::decode(c).is_some())
        {
            return Err(StorageError::Corrupt {
                path: path.to_owned(),
                offset: at as u64,
                reason: "damaged entry before valid entries".into(),
            });
        }
        Ok(Self {
            block_bytes,
            entries,
            torn_bytes,
        })
    }

    /// Where the indexed blocks end (the segment's first frame if there are none).
    pub fn indexed_end(&self) -> u64 {
        self.entries
            .last()
            .map_or(SEGMENT_HEADER_LEN as u64, |e| e.end())
    }
}

/// Appends entries to `index/time.idx`.
pub struct IndexFile {
    path: PathBuf,
    /// None: sealed, the entries go to the file's owner through `take_encoded`.
    file: Option<File>,
    /// A sealed index of a new partition: its header goes out with the first entries.
    header_due: Option<u32>,
    /// Entries not yet written, in segment order.
    pending: Vec<IndexEntry>,
    /// The most entries one `take_encoded` handed over.
    most_taken: usize,
    scratch: Vec<u8>,
}

impl IndexFile {
    pub fn create(path: &Path, block_bytes: u32) -> Result<Self, StorageError> {
        // Append mode, as for a rewritten index: the appliance's flush writer appends to the
        // same file through a descriptor of its own.
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(path)
            .map_err(io_at(path))?;
        file.write_all(&encode_header(block_bytes))
            .map_err(io_at(path))?;
        Ok(Self {
            path: path.to_owned(),
            file: Some(file),
            header_due: None,
            pending: Vec::new(),
            most_taken: 0,
            scratch: Vec::new(),
        })
    }

    /// The index of a new partition, not created yet (no disk access): its owner creates the
    /// file with the first bytes `take_encoded` hands over, header first.
    pub fn sealed_new(path: &Path, block_bytes: u32) -> Self {
        Self {
            path: path.to_owned(),
            file: None,
            header_due: Some(block_bytes),
            pending: Vec::new(),
            most_taken: 0,
            scratch: Vec::new(),
        }
    }

    /// Gives up the descriptor: from now on the entries go out through `take_encoded` only.
    pub fn into_sealed(mut self) -> Self {
        self.file = None;
        self
    }

    /// Rewrites the index with `entries` (after a repair or a rebuild) and keeps it open.
    pub fn rewrite(
        path: &Path,
        block_bytes: u32,
        entries: &[IndexEntry],
    ) -> Result<Self, StorageError> {
        let mut b = encode_header(block_bytes).to_vec();
        for e in entries {
            b.extend_from_slice(&e.encode());
        }
        crate::fsutil::write_atomic(path, &b)?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_at(path))?;
        Ok(Self {
            path: path.to_owned(),
            file: Some(file),
            header_due: None,
            pending: Vec::new(),
            most_taken: 0,
            scratch: Vec::new(),
        })
    }

    pub fn push(&mut self, e: &IndexEntry) {
        self.pending.push(*e);
    }

    /// Call only after the segment bytes the pending entries cover are durable.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        let mut buf = std::mem::take(&mut self.scratch);
        self.take_encoded(&mut buf);
        let Some(file) = self.file.as_mut() else {
            return Err(StorageError::sealed(&self.path));
        };
        let written = file.write_all(&buf).map_err(io_at(&self.path));
        self.scratch = buf;
        written?;
        file.sync_data().map_err(io_at(&self.path))
    }

    /// Hands the pending entries, encoded, to another writer (the appliance's flush writer,
    /// which appends them to the file once the frames they cover are durable), into `out`;
    /// for a new sealed index, its header first.
    pub fn take_encoded(&mut self, out: &mut Vec<u8>) {
        out.clear();
        if let Some(block_bytes) = self.header_due.take() {
            out.extend_from_slice(&encode_header(block_bytes));
        }
        self.most_taken = self.most_taken.max(self.pending.len());
        for e in self.pending.drain(..) {
            out.extend_from_slice(&e.encode());
        }
        // Room for twice the most ever handed over: pushes on the hot path then never grow
        // the list (the segment's buffer is reserved the same way).
        self.pending.reserve(2 * self.most_taken);
    }

    /// The index file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
