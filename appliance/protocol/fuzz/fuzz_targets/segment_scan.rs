//! The `.q` segment and its time index, fed hostile bytes.
//!
//! The first input byte picks what is fuzzed and how the harness helps the fuzzer past
//! the CRC32C checks (random bytes almost never carry a valid checksum, so without help
//! every input would stop at the first frame):
//!
//! - mode 0 (or 3) — frames: a valid 128-byte segment header, then the rest of the input as
//!   frames. Flag 0x04 rewrites the CRC of every plausible frame along the frame walk;
//!   flag 0x08 keeps walking past a bad frame (so valid frames can follow damage);
//!   flag 0x10 also opens the bytes as a file through `Segment::open` (mmap) and scans it.
//!   `FrameIter` and `scan` must never panic; every frame they return must lie in bounds,
//!   be contiguous from the header, carry a correct CRC and a parseable record of the
//!   frame's length; `Clean` must be followed by zeros only; `TornTail` must have no valid
//!   frame after it and an `Err` must have one (checked by an independent validator).
//!   `FrameIter::bounded` is run too for an end inside the buffer.
//! - mode 1 — `SegmentHeader::decode` of the raw input (flag 0x04: the harness sets magic,
//!   version, header length and CRC so the field checks are reached). A header that decodes
//!   re-encodes to itself.
//! - mode 2 — `TimeIndex::read` of a file holding the input (flag 0x04: a valid index
//!   header is put in front and entries are fixed up — CRC, reserved word, contiguous
//!   offsets — under a per-entry mask taken from the input). Accepted entries must be
//!   contiguous from the segment's first frame, non-empty, min ≤ max, and the torn-byte
//!   count must be exact.
//!
//! Files: one unnamed temporary file (`O_TMPFILE`) reached through `/proc/self/fd/N`, so
//! the storage code is fuzzed through its real path-taking API and nothing is left behind.
//! Linux only.

#![no_main]

use chronicle_protocol::{FixedStr, RecordView, MAX_RECORD_LEN};
use chronicle_storage::index::TimeIndex;
use chronicle_storage::segment::{
    scan, FrameIter, ScanEnd, Segment, SegmentHeader, FRAME_HEADER_LEN, HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

const INDEX_MAGIC: [u8; 8] = *b"CHRQIDX\0";
const INDEX_HEADER_LEN: usize = 32;
const INDEX_ENTRY_LEN: usize = 40;

thread_local! {
    static SCRATCH: RefCell<Option<File>> = const { RefCell::new(None) };
}

/// Replaces the scratch file's contents with `bytes` and returns a path that opens it.
fn with_file<T>(bytes: &[u8], f: impl FnOnce(&PathBuf) -> T) -> T {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let file = s.get_or_insert_with(|| tempfile::tempfile().expect("temp file"));
        file.set_len(0).expect("truncate");
        file.write_all_at(bytes, 0).expect("write");
        let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        f(&path)
    })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn frame_crc(b: &[u8], at: usize, len: usize) -> u32 {
    crc32c::crc32c_append(
        crc32c::crc32c(&b[at..at + 4]),
        &b[at + FRAME_HEADER_LEN..at + FRAME_HEADER_LEN + len],
    )
}

fn plausible_len(len: usize) -> bool {
    (32..=MAX_RECORD_LEN).contains(&len) && len % 8 == 0
}

/// An independent statement of "a valid frame starts at `at`" (what `FrameIter` yields).
fn valid_frame_at(b: &[u8], at: usize) -> bool {
    if at + FRAME_HEADER_LEN > b.len() {
        return false;
    }
    let len = u32_at(b, at) as usize;
    if !plausible_len(len) || at + FRAME_HEADER_LEN + len > b.len() {
        return false;
    }
    if u32_at(b, at + 4) != frame_crc(b, at, len) {
        return false;
    }
    matches!(RecordView::parse(&b[at + 8..at + 8 + len]), Ok(v) if v.bytes.len() == len)
}

fn segment_header() -> SegmentHeader {
    SegmentHeader {
        price_exponent: -1,
        quantity_exponent: -3,
        symbol_id: 1,
        token_id: 1,
        date: 20240808,
        venue: FixedStr::new("venue", "binance-usdm").unwrap(),
        symbol_code: FixedStr::new("symbol_code", "btcusdt").unwrap(),
    }
}

/// Walks `buf` as frames from `start` and rewrites the CRC of each plausible one.
fn fix_frame_crcs(buf: &mut [u8], start: usize, resync: bool) {
    let mut at = start;
    while at + FRAME_HEADER_LEN <= buf.len() {
        let len = u32_at(buf, at) as usize;
        if plausible_len(len) && at + FRAME_HEADER_LEN + len <= buf.len() {
            let crc = frame_crc(buf, at, len);
            buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
            at += FRAME_HEADER_LEN + len;
        } else if resync {
            at += 8;
        } else {
            break;
        }
    }
}

/// Checks one frame iteration over `buf` from `start` against the independent validator.
fn check_frames(buf: &[u8], start: usize, mut it: FrameIter<'_>) -> Result<ScanEnd, (u64, String)> {
    let mut expect = start;
    for f in it.by_ref() {
        let at = f.offset as usize;
        assert_eq!(at, expect, "frames are not contiguous");
        let len = u32_at(buf, at) as usize;
        assert!(
            at + FRAME_HEADER_LEN + len <= buf.len(),
            "frame out of bounds"
        );
        assert_eq!(f.record.bytes.len(), len, "record length != frame length");
        assert!(
            std::ptr::eq(
                f.record.bytes.as_ptr(),
                buf[at + FRAME_HEADER_LEN..].as_ptr()
            ),
            "record does not borrow the frame's bytes"
        );
        assert_eq!(
            u32_at(buf, at + 4),
            frame_crc(buf, at, len),
            "frame with a bad CRC returned"
        );
        assert!(valid_frame_at(buf, at));
        let _ = f.record.decode();
        expect = at + FRAME_HEADER_LEN + len;
    }
    let end = it.end();
    // A second call is the same answer.
    assert_eq!(it.end(), end);
    assert!(it.next().is_none());
    let valid_after = |from: usize| {
        (from + 8..buf.len())
            .step_by(8)
            .find(|&o| valid_frame_at(buf, o))
    };
    match &end {
        Ok(ScanEnd::Clean { end }) => {
            assert_eq!(*end as usize, expect);
            assert!(
                buf[expect..].iter().all(|&b| b == 0),
                "clean end followed by non-zero bytes"
            );
        }
        Ok(ScanEnd::TornTail { valid_end, .. }) => {
            assert_eq!(*valid_end as usize, expect);
            assert!(expect < buf.len());
            assert_eq!(
                valid_after(expect),
                None,
                "torn tail, yet a valid frame follows"
            );
        }
        Err((offset, _)) => {
            assert_eq!(*offset as usize, expect);
            assert!(
                valid_after(expect).is_some(),
                "corruption reported with no valid frame after it"
            );
        }
    }
    end
}

fn fuzz_frames(flags: u8, body: &[u8]) {
    let header = segment_header();
    let mut buf = header.encode().to_vec();
    buf.extend_from_slice(body);
    if flags & 0x04 != 0 {
        fix_frame_crcs(&mut buf, HEADER_LEN, flags & 0x08 != 0);
    }
    let end = check_frames(&buf, HEADER_LEN, FrameIter::new(&buf, HEADER_LEN));
    assert_eq!(scan(&buf, HEADER_LEN), end, "scan != FrameIter::end");

    // A bounded walk, as the reader does for an index block, ending anywhere in the buffer.
    if buf.len() > HEADER_LEN {
        let bound = HEADER_LEN + (body.len() * (flags as usize >> 5) / 7).min(body.len());
        let _ = check_frames(
            &buf[..bound],
            HEADER_LEN,
            FrameIter::bounded(&buf, HEADER_LEN, bound),
        );
    }

    if flags & 0x10 != 0 {
        with_file(&buf, |path| {
            let seg = Segment::open(path).expect("a valid header opens");
            assert_eq!(seg.header, header);
            assert_eq!(seg.bytes(), &buf[..]);
            match (seg.scan(), &end) {
                (Ok(a), Ok(b)) => assert_eq!(&a, b),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("Segment::scan {a:?} != scan {b:?}"),
            }
        });
    }
}

fn fuzz_header(flags: u8, body: &[u8]) {
    let mut b = body.to_vec();
    if flags & 0x04 != 0 {
        b.resize(b.len().max(HEADER_LEN), 0);
        b[0..8].copy_from_slice(b"CHRQSEG\0");
        b[8..10].copy_from_slice(&1u16.to_le_bytes());
        b[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        let crc = crc32c::crc32c(&b[..124]);
        b[124..128].copy_from_slice(&crc.to_le_bytes());
    }
    let Ok(h) = SegmentHeader::decode(&b) else {
        return;
    };
    let enc = h.encode();
    assert_eq!(
        SegmentHeader::decode(&enc).as_ref(),
        Ok(&h),
        "header does not round-trip"
    );
    // Canonical form: reserved bytes zero, text fields cut at their first NUL.
    let mut canon = b[..124].to_vec();
    canon[14..16].fill(0);
    canon[96..124].fill(0);
    for (from, to) in [(32, 56), (56, 96)] {
        if let Some(nul) = canon[from..to].iter().position(|&c| c == 0) {
            canon[from + nul..to].fill(0);
        }
    }
    assert_eq!(
        &enc[..124],
        &canon[..],
        "re-encoded header differs from its canonical form"
    );
}

fn entry_valid(c: &[u8]) -> bool {
    u32_at(c, 36) == crc32c::crc32c(&c[..36]) && u32_at(c, 32) == 0
}

fn fuzz_index(flags: u8, body: &[u8]) {
    let bytes = if flags & 0x04 != 0 && body.len() >= 12 {
        let block_bytes = u32_at(body, 0);
        let mask = u64_at(body, 4);
        let mut b = vec![0u8; INDEX_HEADER_LEN];
        b[0..8].copy_from_slice(&INDEX_MAGIC);
        b[8..10].copy_from_slice(&1u16.to_le_bytes());
        b[10..12].copy_from_slice(&(INDEX_ENTRY_LEN as u16).to_le_bytes());
        b[12..16].copy_from_slice(&block_bytes.to_le_bytes());
        let crc = crc32c::crc32c(&b[..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b.extend_from_slice(&body[12..]);
        let mut expect = HEADER_LEN as u64;
        let mut at = INDEX_HEADER_LEN;
        let mut i = 0;
        while at + INDEX_ENTRY_LEN <= b.len() {
            let e = &mut b[at..at + INDEX_ENTRY_LEN];
            if mask >> (i % 64) & 1 == 1 {
                if flags & 0x08 != 0 {
                    e[0..8].copy_from_slice(&expect.to_le_bytes());
                }
                e[32..36].fill(0);
                let crc = crc32c::crc32c(&e[..36]);
                e[36..40].copy_from_slice(&crc.to_le_bytes());
            }
            expect = u64_at(e, 0).wrapping_add(u32_at(e, 8) as u64);
            at += INDEX_ENTRY_LEN;
            i += 1;
        }
        b
    } else {
        body.to_vec()
    };
    let Ok(ix) = with_file(&bytes, |p| TimeIndex::read(p)) else {
        return;
    };
    assert_eq!(ix.block_bytes, u32_at(&bytes, 12));
    let mut expect = HEADER_LEN as u64;
    for e in &ix.entries {
        assert_eq!(
            e.offset, expect,
            "accepted index entries are not contiguous"
        );
        assert!(e.records > 0 && e.min_exchange_ts <= e.max_exchange_ts);
        expect = e.end();
    }
    assert_eq!(ix.indexed_end(), expect);
    let used = INDEX_HEADER_LEN + INDEX_ENTRY_LEN * ix.entries.len();
    assert_eq!(ix.torn_bytes, bytes.len() - used, "torn byte count");
    if ix.torn_bytes >= INDEX_ENTRY_LEN {
        assert!(!entry_valid(&bytes[used..used + INDEX_ENTRY_LEN]));
        assert!(
            !bytes[used + INDEX_ENTRY_LEN..]
                .chunks_exact(INDEX_ENTRY_LEN)
                .any(entry_valid),
            "damaged entry before valid ones accepted"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    match flags % 4 {
        0 | 3 => fuzz_frames(flags, body),
        1 => fuzz_header(flags, body),
        _ => fuzz_index(flags, body),
    }
});
