//! `book.q.zst.idx`: the jump table of a `book.q.zst`, so that a reader finds
//! the frames holding a byte range without reading the `.zst`'s tail first. Byte layout in
//! `docs/formats/seekable-zstd.md`:
//!
//! ```text
//! header (72 B): "QZSTIDX1", u16 version, u16 0, u32 block_size, u32 frame_count, u32 0,
//!                u64 uncompressed_len, u64 zst_len, [u8; 32] source_sha256
//! entries (24 B each): u64 uncompressed_offset, u64 compressed_offset,
//!                      u32 compressed_size, u32 uncompressed_size
//! trailer (4 B): u32 CRC32C of everything before it
//! ```
//!
//! All little-endian. [`FrameTable`] is the frame layout both this file and the seek table at
//! the end of the `.zst` describe; [`FrameTable::check`] holds the rules they both obey.

use crate::seekable::seek_table_len;
use crate::ArchiveError;
use chronicle_protocol::wire::{put_u16, put_u32, put_u64, tiles, u16_at, u32_at, u64_at};
use std::io::Write;
use std::ops::Range;
use std::path::Path;

pub const MAGIC: [u8; 8] = *b"QZSTIDX1";
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 72;
pub const ENTRY_LEN: usize = 24;
pub const TRAILER_LEN: usize = 4;
/// Frames per archive: 1 TiB of `.q` at the default 1 MiB block size, a 24 MiB `.idx`.
pub const MAX_FRAMES: u32 = 1 << 20;
/// Block (frame) size bounds: below 4 KiB frames cost more in headers than they save in
/// decoding; above 64 MiB a point lookup decodes too much and a frame buffer grows too large.
pub const MIN_BLOCK_SIZE: u32 = 4 << 10;
pub const MAX_BLOCK_SIZE: u32 = 64 << 20;
/// The largest valid `.idx` (so a file can be size-checked before it is read).
pub const MAX_IDX_LEN: u64 = (HEADER_LEN + ENTRY_LEN * MAX_FRAMES as usize + TRAILER_LEN) as u64;

// Header fields.
const MAGIC_AT: usize = 0;
const VERSION_AT: usize = 8;
const BLOCK_SIZE_AT: usize = 12;
const FRAME_COUNT_AT: usize = 16;
const UNCOMPRESSED_LEN_AT: usize = 24;
const ZST_LEN_AT: usize = 32;
const SOURCE_SHA256_AT: usize = 40;
/// `(offset, length)` of the header's zero bytes.
const RESERVED: [(usize, usize); 2] = [(10, 2), (20, 4)];

const _: () = assert!(tiles(
    &[
        (MAGIC_AT, MAGIC.len()),
        (VERSION_AT, 2),
        RESERVED[0],
        (BLOCK_SIZE_AT, 4),
        (FRAME_COUNT_AT, 4),
        RESERVED[1],
        (UNCOMPRESSED_LEN_AT, 8),
        (ZST_LEN_AT, 8),
        (SOURCE_SHA256_AT, 32),
    ],
    HEADER_LEN
));

// Entry fields.
const UNCOMPRESSED_OFFSET_AT: usize = 0;
const COMPRESSED_OFFSET_AT: usize = 8;
const COMPRESSED_SIZE_AT: usize = 16;
const UNCOMPRESSED_SIZE_AT: usize = 20;

const _: () = assert!(tiles(
    &[
        (UNCOMPRESSED_OFFSET_AT, 8),
        (COMPRESSED_OFFSET_AT, 8),
        (COMPRESSED_SIZE_AT, 4),
        (UNCOMPRESSED_SIZE_AT, 4),
    ],
    ENTRY_LEN
));

/// One frame: where its bytes sit in the `.q` and in the `.zst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameEntry {
    pub uncompressed_offset: u64,
    pub compressed_offset: u64,
    pub compressed_size: u32,
    pub uncompressed_size: u32,
}

impl FrameEntry {
    pub fn uncompressed_end(&self) -> u64 {
        self.uncompressed_offset + u64::from(self.uncompressed_size)
    }
    pub fn compressed_end(&self) -> u64 {
        self.compressed_offset + u64::from(self.compressed_size)
    }
}

/// The frames of one archive, every one `block_size` uncompressed bytes but the last
/// (shorter or equal), so that the frame holding an offset is a division away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameTable {
    pub block_size: u32,
    pub frames: Vec<FrameEntry>,
}

impl FrameTable {
    /// Frames laid end to end from offset 0 in both streams, from their sizes
    /// `(compressed, uncompressed)` (the seek table stores only sizes).
    pub fn from_sizes(block_size: u32, sizes: impl IntoIterator<Item = (u32, u32)>) -> Self {
        let (mut u, mut c) = (0u64, 0u64);
        let frames = sizes
            .into_iter()
            .map(|(compressed_size, uncompressed_size)| {
                let e = FrameEntry {
                    uncompressed_offset: u,
                    compressed_offset: c,
                    compressed_size,
                    uncompressed_size,
                };
                (u, c) = (e.uncompressed_end(), e.compressed_end());
                e
            })
            .collect();
        Self { block_size, frames }
    }

    pub fn frame_count(&self) -> u32 {
        self.frames.len() as u32
    }

    /// Length of the original `.q`.
    pub fn uncompressed_len(&self) -> u64 {
        self.frames.last().map_or(0, FrameEntry::uncompressed_end)
    }

    /// Where the frames end in the `.zst` (and the seek table starts).
    pub fn compressed_len(&self) -> u64 {
        self.frames.last().map_or(0, FrameEntry::compressed_end)
    }

    /// The frames that hold any byte of `start..end` (empty for an empty range). The caller
    /// keeps `start <= end <= uncompressed_len()`.
    pub fn frames_for(&self, start: u64, end: u64) -> Range<usize> {
        assert!(
            start <= end && end <= self.uncompressed_len(),
            "range {start}..{end}"
        );
        if start == end {
            return 0..0;
        }
        let bs = u64::from(self.block_size);
        (start / bs) as usize..end.div_ceil(bs) as usize
    }

    /// The rules every archive obeys, whichever table describes it: at most [`MAX_FRAMES`]
    /// frames, contiguous from 0, each `block_size` long but the last (1..=block_size), none
    /// compressed larger than zstd's bound for its size, the last ending at `frames_end`.
    /// `entry_offset(i)` is where entry `i` sits in `object`, for the error.
    pub fn check(
        &self,
        object: &str,
        frames_end: u64,
        entry_offset: impl Fn(usize) -> u64,
    ) -> Result<(), ArchiveError> {
        assert!(
            self.frames.len() <= MAX_FRAMES as usize,
            "caller checks the count first"
        );
        let corrupt = |i: usize, field: &str, reason: String| ArchiveError::Corrupt {
            object: object.to_owned(),
            offset: entry_offset(i),
            field: format!("frame {i} {field}"),
            reason,
        };
        if !(1..=MAX_BLOCK_SIZE).contains(&self.block_size) {
            return Err(corrupt(
                0,
                "block size",
                format!("{} is outside 1..={MAX_BLOCK_SIZE}", self.block_size),
            ));
        }
        let (mut u, mut c) = (0u64, 0u64);
        let last = self.frames.len().wrapping_sub(1);
        for (i, f) in self.frames.iter().enumerate() {
            if f.uncompressed_offset != u {
                return Err(corrupt(
                    i,
                    "uncompressed_offset",
                    format!("{} (the frames before end at {u})", f.uncompressed_offset),
                ));
            }
            if f.compressed_offset != c {
                return Err(corrupt(
                    i,
                    "compressed_offset",
                    format!("{} (the frames before end at {c})", f.compressed_offset),
                ));
            }
            let size_ok = if i == last {
                (1..=self.block_size).contains(&f.uncompressed_size)
            } else {
                f.uncompressed_size == self.block_size
            };
            if !size_ok {
                return Err(corrupt(
                    i,
                    "uncompressed_size",
                    format!(
                        "{} with block size {} ({} frames)",
                        f.uncompressed_size,
                        self.block_size,
                        self.frames.len()
                    ),
                ));
            }
            let bound = zstd::zstd_safe::compress_bound(f.uncompressed_size as usize) as u64;
            if f.compressed_size == 0 || u64::from(f.compressed_size) > bound {
                return Err(corrupt(
                    i,
                    "compressed_size",
                    format!(
                        "{} is outside 1..={bound} (zstd's bound for {} bytes)",
                        f.compressed_size, f.uncompressed_size
                    ),
                ));
            }
            (u, c) = (f.uncompressed_end(), f.compressed_end());
        }
        if c != frames_end {
            return Err(corrupt(
                last.min(self.frames.len()),
                "compressed end",
                format!("frames end at {c}, the seek table starts at {frames_end}"),
            ));
        }
        Ok(())
    }
}

/// A decoded, checked `book.q.zst.idx`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZstIndex {
    pub table: FrameTable,
    /// Length of the whole `.zst` (frames and seek table), checked against the object at open.
    pub zst_len: u64,
    /// SHA-256 of the original `.q` bytes, what [`crate::seekable::verify`] checks against.
    pub source_sha256: [u8; 32],
}

fn entry_offset(i: usize) -> u64 {
    (HEADER_LEN + i * ENTRY_LEN) as u64
}

impl ZstIndex {
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + ENTRY_LEN * self.table.frames.len() + TRAILER_LEN
    }

    pub fn encode(&self) -> Vec<u8> {
        let t = &self.table;
        let mut b = vec![0u8; self.encoded_len()];
        b[MAGIC_AT..MAGIC_AT + MAGIC.len()].copy_from_slice(&MAGIC);
        put_u16(&mut b, VERSION_AT, VERSION);
        put_u32(&mut b, BLOCK_SIZE_AT, t.block_size);
        put_u32(&mut b, FRAME_COUNT_AT, t.frame_count());
        put_u64(&mut b, UNCOMPRESSED_LEN_AT, t.uncompressed_len());
        put_u64(&mut b, ZST_LEN_AT, self.zst_len);
        b[SOURCE_SHA256_AT..HEADER_LEN].copy_from_slice(&self.source_sha256);
        for (i, f) in t.frames.iter().enumerate() {
            let o = entry_offset(i) as usize;
            put_u64(&mut b, o + UNCOMPRESSED_OFFSET_AT, f.uncompressed_offset);
            put_u64(&mut b, o + COMPRESSED_OFFSET_AT, f.compressed_offset);
            put_u32(&mut b, o + COMPRESSED_SIZE_AT, f.compressed_size);
            put_u32(&mut b, o + UNCOMPRESSED_SIZE_AT, f.uncompressed_size);
        }
        let crc_at = b.len() - TRAILER_LEN;
        let crc = crc32c::crc32c(&b[..crc_at]);
        put_u32(&mut b, crc_at, crc);
        b
    }

    /// Decodes and checks `bytes`, the `.idx` named `object`: magic, version, length, CRC,
    /// reserved zeros, limits, then the frame rules of [`FrameTable::check`].
    pub fn decode(bytes: &[u8], object: &str) -> Result<Self, ArchiveError> {
        let corrupt = |offset: usize, field: &str, reason: String| ArchiveError::Corrupt {
            object: object.to_owned(),
            offset: offset as u64,
            field: field.to_owned(),
            reason,
        };
        if bytes.len() < HEADER_LEN + TRAILER_LEN {
            return Err(corrupt(
                0,
                "length",
                format!(
                    "{} bytes, shorter than the {} of an empty index",
                    bytes.len(),
                    HEADER_LEN + TRAILER_LEN
                ),
            ));
        }
        let magic = &bytes[MAGIC_AT..MAGIC_AT + MAGIC.len()];
        if magic != MAGIC {
            return Err(corrupt(
                MAGIC_AT,
                "magic",
                format!("\"{}\", expected \"QZSTIDX1\"", magic.escape_ascii()),
            ));
        }
        let version = u16_at(bytes, VERSION_AT);
        if version != VERSION {
            return Err(corrupt(
                VERSION_AT,
                "version",
                format!("{version}, this build reads {VERSION}"),
            ));
        }
        let frame_count = u32_at(bytes, FRAME_COUNT_AT);
        if frame_count > MAX_FRAMES {
            return Err(corrupt(
                FRAME_COUNT_AT,
                "frame_count",
                format!("{frame_count} exceeds the limit {MAX_FRAMES}"),
            ));
        }
        let expected_len = HEADER_LEN + ENTRY_LEN * frame_count as usize + TRAILER_LEN;
        if bytes.len() != expected_len {
            return Err(corrupt(
                FRAME_COUNT_AT,
                "frame_count",
                format!(
                    "{frame_count} frames make a {expected_len}-byte index, the file has {}",
                    bytes.len()
                ),
            ));
        }
        let crc_at = expected_len - TRAILER_LEN;
        let (stored, computed) = (u32_at(bytes, crc_at), crc32c::crc32c(&bytes[..crc_at]));
        if stored != computed {
            return Err(corrupt(
                crc_at,
                "crc32c",
                format!("stored {stored:#010x}, computed {computed:#010x}"),
            ));
        }
        for (offset, len) in RESERVED {
            if bytes[offset..offset + len].iter().any(|&b| b != 0) {
                return Err(corrupt(offset, "reserved", "not zero".into()));
            }
        }
        let block_size = u32_at(bytes, BLOCK_SIZE_AT);
        if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
            return Err(corrupt(
                BLOCK_SIZE_AT,
                "block_size",
                format!("{block_size} is outside {MIN_BLOCK_SIZE}..={MAX_BLOCK_SIZE}"),
            ));
        }
        let table = FrameTable {
            block_size,
            frames: (0..frame_count as usize)
                .map(|i| {
                    let o = entry_offset(i) as usize;
                    FrameEntry {
                        uncompressed_offset: u64_at(bytes, o + UNCOMPRESSED_OFFSET_AT),
                        compressed_offset: u64_at(bytes, o + COMPRESSED_OFFSET_AT),
                        compressed_size: u32_at(bytes, o + COMPRESSED_SIZE_AT),
                        uncompressed_size: u32_at(bytes, o + UNCOMPRESSED_SIZE_AT),
                    }
                })
                .collect(),
        };
        let zst_len = u64_at(bytes, ZST_LEN_AT);
        let frames_end = zst_len
            .checked_sub(seek_table_len(frame_count))
            .ok_or_else(|| {
                corrupt(
                    ZST_LEN_AT,
                    "zst_len",
                    format!("{zst_len} is shorter than the seek table of {frame_count} frames"),
                )
            })?;
        table.check(object, frames_end, entry_offset)?;
        let uncompressed_len = u64_at(bytes, UNCOMPRESSED_LEN_AT);
        if uncompressed_len != table.uncompressed_len() {
            return Err(corrupt(
                UNCOMPRESSED_LEN_AT,
                "uncompressed_len",
                format!(
                    "{uncompressed_len}, the frames hold {}",
                    table.uncompressed_len()
                ),
            ));
        }
        Ok(Self {
            table,
            zst_len,
            source_sha256: bytes[SOURCE_SHA256_AT..HEADER_LEN].try_into().unwrap(),
        })
    }

    /// Reads and decodes a whole `.idx` object (a local file or a remote one).
    pub fn read_from(src: &dyn crate::ReadAt) -> Result<Self, ArchiveError> {
        let object = src.describe();
        if src.size() > MAX_IDX_LEN {
            return Err(ArchiveError::Corrupt {
                object,
                offset: 0,
                field: "length".into(),
                reason: format!(
                    "{} bytes exceeds the largest index ({MAX_IDX_LEN})",
                    src.size()
                ),
            });
        }
        let mut bytes = vec![0; src.size() as usize];
        src.read_exact_at(0, &mut bytes)?;
        Self::decode(&bytes, &object)
    }

    pub fn read_file(path: &Path) -> Result<Self, ArchiveError> {
        Self::read_from(&crate::source::LocalFile::open(path)?)
    }

    /// Creates (or truncates) `path`, writes the index and fsyncs the file; the caller renames
    /// it into place and fsyncs the directory.
    pub fn write_file(&self, path: &Path) -> Result<(), ArchiveError> {
        let io = |source| ArchiveError::Io {
            path: path.to_owned(),
            source,
        };
        let mut f = std::fs::File::create(path).map_err(io)?;
        f.write_all(&self.encode()).map_err(io)?;
        f.sync_all().map_err(io)
    }

    /// Fails with the first entry where this index (the file `object`) and `seek`, the seek
    /// table read from the `.zst`, disagree.
    pub fn check_matches(&self, seek: &FrameTable, object: &str) -> Result<(), ArchiveError> {
        let mismatch = |field: String, expected: String, found: String| ArchiveError::Mismatch {
            object: object.to_owned(),
            field,
            expected,
            found,
        };
        let (mine, theirs) = (&self.table.frames, &seek.frames);
        if mine.len() != theirs.len() {
            return Err(mismatch(
                format!("frame_count (offset {FRAME_COUNT_AT}) vs the seek table"),
                theirs.len().to_string(),
                mine.len().to_string(),
            ));
        }
        match mine.iter().zip(theirs).position(|(a, b)| a != b) {
            None => Ok(()),
            Some(i) => Err(mismatch(
                format!("entry {i} (offset {}) vs the seek table", entry_offset(i)),
                format!("{:?}", theirs[i]),
                format!("{:?}", mine[i]),
            )),
        }
    }
}
