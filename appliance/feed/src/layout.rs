//! The on-`/dev/shm` layout of a ring file (`docs/formats/ring.md` is the normative text).
//!
//! ```text
//! 0      header page (4096 bytes)
//!        line 0 (0..128)    static: magic, version, header_len, capacity, align, creator
//!        line 1 (128..256)  producer-owned: head, dropped_records, overrun_gaps
//!        line 2 (256..384)  consumer-owned: tail
//! 4096   data area: `capacity` bytes (a power of two), a sequence of 8-byte aligned frames
//!        (a 16-byte frame header, then a record; a wrap marker is the first 8 bytes only)
//! ```
//!
//! All integers are little-endian `u64` words, read and written as atomics.

use chronicle_protocol::wire::tiles;

/// `b"CHRNRING"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"CHRNRING");
pub const VERSION: u64 = 2;
/// Bytes before the data area; one page, so the data area is page aligned.
pub const HEADER_LEN: usize = 4096;
/// Every frame starts on an 8-byte boundary; records are multiples of 8 long.
pub const ALIGN: usize = 8;
/// Spacing of the producer- and consumer-owned lines. 128, not 64: x86 prefetches cache-line
/// pairs, so two hot indices 64 bytes apart would still ping-pong.
pub const LINE: usize = 128;

// Byte offsets of header fields (each a u64 word).
pub const OFF_MAGIC: usize = 0;
pub const OFF_VERSION: usize = 8;
pub const OFF_HEADER_LEN: usize = 16;
pub const OFF_CAPACITY: usize = 24;
pub const OFF_ALIGN: usize = 32;
pub const OFF_CREATOR_PID: usize = 40;
pub const OFF_CREATED_UNIX_NS: usize = 48;
pub const OFF_HEAD: usize = LINE;
pub const OFF_DROPPED: usize = LINE + 8;
pub const OFF_OVERRUN_GAPS: usize = LINE + 16;
pub const OFF_TAIL: usize = 2 * LINE;

const _: () = assert!(tiles(
    &[
        (OFF_MAGIC, 8),
        (OFF_VERSION, 8),
        (OFF_HEADER_LEN, 8),
        (OFF_CAPACITY, 8),
        (OFF_ALIGN, 8),
        (OFF_CREATOR_PID, 8),
        (OFF_CREATED_UNIX_NS, 8),
        (56, 72), // zero: the rest of line 0
        (OFF_HEAD, 8),
        (OFF_DROPPED, 8),
        (OFF_OVERRUN_GAPS, 8),
        (152, 104), // zero: the rest of line 1
        (OFF_TAIL, 8),
        (264, 3832), // zero: the rest of the page
    ],
    HEADER_LEN
));

/// Bytes of the frame header in front of every record: `u32 len | u32 stamp`, then
/// `u64 published_ns` (the publication's `CLOCK_MONOTONIC` time on its first record frame, or
/// [`UNSTAMPED`]; 0 on the frames that follow it in the same publication).
pub const FRAME_HEADER: usize = 16;
/// Offset of `published_ns` in a frame.
pub const FRAME_PUBLISHED: u64 = 8;
/// `published_ns` of the first frame of a publication made without a time.
pub const UNSTAMPED: u64 = u64::MAX;
/// Frame `len` value of a wrap marker: the rest of the data area up to its end is padding.
pub const WRAP: u32 = u32::MAX;

// `len`, `stamp`, `published_ns`.
const _: () = assert!(tiles(
    &[(0, 4), (4, 4), (FRAME_PUBLISHED as usize, 8)],
    FRAME_HEADER
));

/// Smallest data area of a file-backed ring: every valid record (frame up to 16 + 65528 bytes)
/// is within `ring::max_frame` of it, so every record fits, even behind a gap marker.
pub const MIN_SHM_CAPACITY: usize = 1 << 18;
/// Largest data area of a file-backed ring (2 GiB): a limit on what an attacher maps.
pub const MAX_SHM_CAPACITY: usize = 1 << 31;
/// Smallest in-memory ring (tests and the loom model use tiny rings to force wrap-around):
/// room for an 80-byte gap frame plus small records (`ring::max_frame(512)` is 176 bytes).
pub const MIN_MEM_CAPACITY: usize = 512;

/// The stamp of a frame at absolute byte position `pos`: its 8-byte word index, truncated.
/// A stale or misplaced frame (a producer that advanced `head` without writing) shows up as a
/// stamp mismatch instead of as an old record read a second time.
#[inline(always)]
pub fn stamp(pos: u64) -> u32 {
    (pos >> 3) as u32
}

/// The frame header word.
#[inline(always)]
pub fn frame_word(len: u32, pos: u64) -> u64 {
    len as u64 | (stamp(pos) as u64) << 32
}
