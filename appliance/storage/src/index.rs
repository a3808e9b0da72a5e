//! The sparse time index, `index/time.idx`: the segment cut into contiguous blocks of
//! frames, each entry giving a block's byte range and the min/max exchange time inside it.
//! Min and max (not just a first timestamp) keep seeks exact when a venue's timestamps are
//! not monotonic in arrival order. The index is derived data: it can always be rebuilt from
//! the segment, and it never points past the segment's durable end.

use crate::error::io_at;
use crate::segment::HEADER_LEN as SEGMENT_HEADER_LEN;
use crate::StorageError;
use chronicle_protocol::wire::{put_u16, put_u32, put_u64, tiles, u16_at, u32_at, u64_at};
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

// Header fields (`docs/formats/index.md`).
const MAGIC_AT: usize = 0;
const VERSION_AT: usize = 8;
const ENTRY_LEN_AT: usize = 10;
const BLOCK_BYTES_AT: usize = 12;
const HEADER_CRC_AT: usize = 28;

const _: () = assert!(tiles(
    &[
        (MAGIC_AT, MAGIC.len()),
        (VERSION_AT, 2),
        (ENTRY_LEN_AT, 2),
        (BLOCK_BYTES_AT, 4),
        (16, 12), // zero
        (HEADER_CRC_AT, 4),
    ],
    HEADER_LEN
));

// Entry fields.
const OFFSET_AT: usize = 0;
const LEN_AT: usize = 8;
const RECORDS_AT: usize = 12;
const MIN_EXCHANGE_TS_AT: usize = 16;
const MAX_EXCHANGE_TS_AT: usize = 24;
const ZERO_AT: usize = 32;
const ENTRY_CRC_AT: usize = 36;

const _: () = assert!(tiles(
    &[
        (OFFSET_AT, 8),
        (LEN_AT, 4),
        (RECORDS_AT, 4),
        (MIN_EXCHANGE_TS_AT, 8),
        (MAX_EXCHANGE_TS_AT, 8),
        (ZERO_AT, 4),
        (ENTRY_CRC_AT, 4),
    ],
    ENTRY_LEN
));

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
        put_u64(&mut b, OFFSET_AT, self.offset);
        put_u32(&mut b, LEN_AT, self.len);
        put_u32(&mut b, RECORDS_AT, self.records);
        put_u64(&mut b, MIN_EXCHANGE_TS_AT, self.min_exchange_ts);
        put_u64(&mut b, MAX_EXCHANGE_TS_AT, self.max_exchange_ts);
        let crc = crc32c::crc32c(&b[..ENTRY_CRC_AT]);
        put_u32(&mut b, ENTRY_CRC_AT, crc);
        b
    }

    fn decode(b: &[u8]) -> Option<Self> {
        if u32_at(b, ENTRY_CRC_AT) != crc32c::crc32c(&b[..ENTRY_CRC_AT]) || u32_at(b, ZERO_AT) != 0
        {
            return None;
        }
        Some(Self {
            offset: u64_at(b, OFFSET_AT),
            len: u32_at(b, LEN_AT),
            records: u32_at(b, RECORDS_AT),
            min_exchange_ts: u64_at(b, MIN_EXCHANGE_TS_AT),
            max_exchange_ts: u64_at(b, MAX_EXCHANGE_TS_AT),
        })
    }
}

fn encode_header(block_bytes: u32) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[MAGIC_AT..MAGIC_AT + MAGIC.len()].copy_from_slice(&MAGIC);
    put_u16(&mut b, VERSION_AT, VERSION);
    put_u16(&mut b, ENTRY_LEN_AT, ENTRY_LEN as u16);
    put_u32(&mut b, BLOCK_BYTES_AT, block_bytes);
    let crc = crc32c::crc32c(&b[..HEADER_CRC_AT]);
    put_u32(&mut b, HEADER_CRC_AT, crc);
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
        if b.len() < HEADER_LEN || b[MAGIC_AT..MAGIC_AT + MAGIC.len()] != MAGIC {
            return Err(bad("not a chronicle time index (magic)".into()));
        }
        if u32_at(&b, HEADER_CRC_AT) != crc32c::crc32c(&b[..HEADER_CRC_AT]) {
            return Err(bad("header checksum mismatch".into()));
        }
        let version = u16_at(&b, VERSION_AT);
        let entry_len = u16_at(&b, ENTRY_LEN_AT) as usize;
        if version != VERSION || entry_len != ENTRY_LEN {
            return Err(bad(format!(
                "version {version} / entry length {entry_len} not supported"
            )));
        }
        let block_bytes = u32_at(&b, BLOCK_BYTES_AT);
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
