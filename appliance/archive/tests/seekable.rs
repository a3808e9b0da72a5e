//! The seekable zstd archive end to end: `.q` → `.q.zst` + `.idx` → the zstd CLI and ranged
//! reads give back the same bytes; the seek table and `.idx` agree; every kind of damage is a
//! clear error naming the file, the frame or field, and the offset.
//!
//! `.q` inputs: a segment of synthetic records written with `chronicle_storage`'s writer
//! (always), and the real BTCUSDT capture of `shared/data` imported with `chronicle_import`
//! (skips when absent). The CLI comes from `tests/zstd_cli.sh` (installs the Debian package
//! when missing, else the CLI tests skip). Skips go through `chronicle_testkit::skip`.

use chronicle_archive::seekable::{
    is_zstd, read_seek_table, seek_table_len, transcode, verify_files, SeekableReader,
    TranscodeOptions, TranscodeStats,
};
use chronicle_archive::source::LocalFile;
use chronicle_archive::zidx::{self, ZstIndex};
use chronicle_archive::ArchiveError;
use chronicle_protocol::*;
use chronicle_storage::segment::{SegmentHeader, SegmentWriter};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const CAPTURE: &str = "binance-usdm-btcusdt-20240808.gz";
/// The smallest block size: many frames from a small synthetic `.q`.
const SMALL_BLOCK: u32 = zidx::MIN_BLOCK_SIZE;

/// A tiny deterministic generator, so that failures reproduce.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A `.q` of `n` synthetic records of every kind, written by the segment writer.
fn synthetic_q(dir: &Path, n: u64) -> PathBuf {
    let path = dir.join("book.q");
    let header = SegmentHeader {
        price_exponent: -1,
        quantity_exponent: -3,
        symbol_id: 7,
        token_id: 7,
        date: 20240808,
        venue: FixedStr::new("venue", "binance-usdm").unwrap(),
        symbol_code: FixedStr::new("symbol_code", "btcusdt").unwrap(),
    };
    let mut w = SegmentWriter::create(&path, header).unwrap();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let levels: Vec<Level> = (0..8)
        .map(|i| Level {
            price: 618_000 + i,
            quantity: 1 + i,
        })
        .collect();
    for i in 0..n {
        let r = rng.next();
        let price = 618_000 + (r % 500) as i64;
        let meta = Meta {
            token_id: 7,
            global_tick_id: i + 1,
            exchange_ts_ns: 1_723_075_200_000_000_000 + i * 1_000_000 + r % 1000,
            receive_ts_ns: 1_723_075_201_000_000_000 + i * 1_000_000,
        };
        let body = match r % 7 {
            0 => Body::Trade(Trade {
                aggressor: Side::Bid,
                flags: 0,
                price,
                quantity: (r >> 20) as i64 % 1000,
                trade_id: i,
            }),
            1 | 2 => Body::Bbo(Bbo {
                bid_price: price,
                bid_quantity: (r >> 30) as i64 % 5000,
                ask_price: price + 1,
                ask_quantity: (r >> 40) as i64 % 5000,
                update_id: i,
            }),
            3..=5 => Body::LevelUpdate(LevelUpdate {
                side: if r & 1 == 0 { Side::Bid } else { Side::Ask },
                flags: 0,
                price,
                quantity: (r >> 24) as i64 % 3000,
                first_update_id: i,
                last_update_id: i,
                prev_update_id: i.saturating_sub(1),
            }),
            _ => Body::BookSnapshot(BookSnapshot {
                update_id: i,
                chunk: 0,
                flags: 1,
                bid_count: 4,
                ask_count: 4,
                levels: Levels::Slice(&levels),
            }),
        };
        w.append(&Record { meta, body }.to_vec().unwrap()).unwrap();
    }
    w.sync().unwrap();
    path
}

/// One archived `.q` and its files.
struct Archive {
    _dir: tempfile::TempDir,
    q: PathBuf,
    zst: PathBuf,
    idx: PathBuf,
    original: Vec<u8>,
    stats: TranscodeStats,
}

fn archive(q: PathBuf, dir: tempfile::TempDir, opts: &TranscodeOptions) -> Archive {
    let zst = dir.path().join("book.q.zst");
    let idx = dir.path().join("book.q.zst.idx");
    let stats = transcode(&q, &zst, &idx, opts).unwrap();
    let original = std::fs::read(&q).unwrap();
    Archive {
        _dir: dir,
        q,
        zst,
        idx,
        original,
        stats,
    }
}

/// The synthetic `.q` (≈ 1.9 MB, 476 frames of 4 KiB), archived once for the whole file.
fn synthetic() -> &'static Archive {
    static A: OnceLock<Archive> = OnceLock::new();
    A.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let q = synthetic_q(dir.path(), 20_000);
        let opts = TranscodeOptions {
            block_size: SMALL_BLOCK,
            level: 3,
        };
        archive(q, dir, &opts)
    })
}

/// The real capture imported, its largest `book.q` archived with the defaults; `None` (after
/// a skip) when `shared/data` is absent.
fn real() -> Option<&'static Archive> {
    let capture = chronicle_testkit::shared_data(CAPTURE)?;
    static A: OnceLock<Archive> = OnceLock::new();
    Some(A.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let source = chronicle_storage::meta::Source {
            kind: "import".into(),
            format: "binance-capture".into(),
            file: None,
        };
        let mut sink = chronicle_import::PartitionSink::new(dir.path(), source).unwrap();
        chronicle_import::binance::import(&capture, "binance-usdm", &mut sink).unwrap();
        sink.finish().unwrap();
        let dates = dir.path().join("v1/binance-usdm/btcusdt");
        let q = std::fs::read_dir(&dates)
            .unwrap()
            .map(|d| d.unwrap().path().join("book.q"))
            .max_by_key(|q| std::fs::metadata(q).unwrap().len())
            .unwrap();
        archive(q, dir, &TranscodeOptions::default())
    }))
}

/// The zstd CLI, or `None` after a skip (the `zstd -d` round trips do not run).
fn zstd_cli() -> Option<PathBuf> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/zstd_cli.sh");
    let out = Command::new("bash")
        .arg(script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    chronicle_testkit::require(
        (out.status.success()).then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())),
        "the zstd CLI",
        "tests/zstd_cli.sh installs the Debian package zstd (as root, with apt)",
    )
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Everything a correct archive shows: stats true, `zstd -d` gives back the `.q`, seek table
/// and `.idx` equal, verify passes, both ways of opening read the whole `.q` back.
fn check_archive(a: &Archive, zstd: Option<&Path>) {
    let zst_bytes = std::fs::read(&a.zst).unwrap();
    assert_eq!(a.stats.bytes_in, a.original.len() as u64);
    assert_eq!(a.stats.bytes_out, zst_bytes.len() as u64);
    assert_eq!(a.stats.source_sha256, sha256(&a.original));
    assert_eq!(a.stats.zst_sha256, sha256(&zst_bytes));
    assert_eq!(a.stats.idx_len, std::fs::metadata(&a.idx).unwrap().len());
    assert!(
        is_zstd(&zst_bytes) && !is_zstd(&a.original),
        "magic tells .q.zst from .q"
    );

    let idx = ZstIndex::read_file(&a.idx).unwrap();
    let seek = read_seek_table(&LocalFile::open(&a.zst).unwrap()).unwrap();
    assert_eq!(idx.table, seek, "the .idx and the seek table agree");
    assert_eq!(idx.table.frame_count(), a.stats.frames);
    let bs = u64::from(idx.table.block_size);
    assert_eq!(
        u64::from(a.stats.frames),
        a.original.len() as u64 / bs + u64::from(!(a.original.len() as u64).is_multiple_of(bs))
    );
    assert_eq!(idx.source_sha256, a.stats.source_sha256);

    let report = verify_files(&a.zst, &a.idx).unwrap();
    assert_eq!(
        (report.frames, report.uncompressed_len),
        (a.stats.frames, a.stats.bytes_in)
    );

    for with_idx in [Some(&idx), None] {
        let mut r = SeekableReader::open(LocalFile::open(&a.zst).unwrap(), with_idx).unwrap();
        let mut all = Vec::new();
        r.read_range(0, r.uncompressed_len(), &mut all).unwrap();
        assert!(all == a.original, "whole read equals the .q");
        assert_eq!(r.frames_decoded(), u64::from(a.stats.frames));
    }

    if let Some(zstd) = zstd {
        let out = Command::new(zstd)
            .arg("-d")
            .arg("-c")
            .arg(&a.zst)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "zstd -d: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout == a.original,
            "zstd -d gives back the .q bytes exactly"
        );
    }
}

#[test]
fn synthetic_archive_round_trips() {
    check_archive(synthetic(), zstd_cli().as_deref());
    assert!(synthetic().stats.frames > 300);
}

#[test]
fn real_capture_round_trips() {
    let Some(a) = real() else { return };
    check_archive(a, zstd_cli().as_deref());
    assert!(
        a.stats.frames > 1,
        "the real book.q spans several 1 MiB frames"
    );
    assert!(
        a.stats.bytes_out * 3 < a.stats.bytes_in,
        "market data compresses"
    );
}

/// Reads `start..end` through a fresh reader; checks bytes and that exactly the overlapping
/// frames were decoded.
fn check_range(a: &Archive, idx: Option<&ZstIndex>, start: u64, end: u64) {
    let mut r = SeekableReader::open(LocalFile::open(&a.zst).unwrap(), idx).unwrap();
    let mut out = b"prefix".to_vec();
    r.read_range(start, end, &mut out).unwrap();
    assert_eq!(&out[..6], b"prefix", "read_range appends");
    assert!(
        out[6..] == a.original[start as usize..end as usize],
        "range {start}..{end}"
    );
    let bs = u64::from(r.table().block_size);
    let overlapping = if start == end {
        0
    } else {
        end.div_ceil(bs) - start / bs
    };
    assert_eq!(
        r.frames_decoded(),
        overlapping,
        "range {start}..{end} decodes only its frames"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn ranged_reads_equal_the_slice_and_decode_only_their_frames(
        start in 0u64..1 << 21, len in prop_oneof![0u64..64, 0u64..20_000], use_idx in any::<bool>()
    ) {
        let a = synthetic();
        let n = a.original.len() as u64;
        let start = start % n;
        let end = (start + len).min(n);
        let idx = ZstIndex::read_file(&a.idx).unwrap();
        check_range(a, use_idx.then_some(&idx), start, end);
    }
}

#[test]
fn ranges_at_frame_boundaries_decode_exactly_their_frames() {
    let a = synthetic();
    let idx = ZstIndex::read_file(&a.idx).unwrap();
    let (bs, n) = (u64::from(SMALL_BLOCK), a.original.len() as u64);
    for k in [1, 2, 100, n / bs] {
        let b = k * bs;
        for (start, end) in [
            (b - bs, b),
            (b - 1, b),
            (b, b),
            (b - 1, (b + 1).min(n)),
            (b, (b + bs).min(n)),
            (0, b),
            (b - bs, n),
        ] {
            for with_idx in [Some(&idx), None] {
                check_range(a, with_idx, start, end);
            }
        }
    }
}

#[test]
fn real_capture_random_ranges() {
    let Some(a) = real() else { return };
    let idx = ZstIndex::read_file(&a.idx).unwrap();
    let n = a.original.len() as u64;
    let mut rng = XorShift(42);
    for i in 0..100 {
        let start = rng.next() % n;
        let len = [64, 4096, 65_536, 3 << 20][i % 4];
        check_range(a, (i % 2 == 0).then_some(&idx), start, (start + len).min(n));
    }
}

#[test]
fn sequential_reads_decode_each_frame_once() {
    let a = synthetic();
    let mut r = SeekableReader::open(LocalFile::open(&a.zst).unwrap(), None).unwrap();
    let (mut out, mut at) = (Vec::new(), 0);
    while at < r.uncompressed_len() {
        let end = (at + 1000).min(r.uncompressed_len());
        r.read_range(at, end, &mut out).unwrap();
        at = end;
    }
    assert!(out == a.original);
    assert_eq!(
        r.frames_decoded(),
        u64::from(a.stats.frames),
        "the last frame is cached"
    );
}

#[test]
fn a_q_of_whole_blocks_has_no_empty_frame() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("book.q");
    let original: Vec<u8> = (0..3 * SMALL_BLOCK).map(|i| (i % 251) as u8).collect();
    std::fs::write(&q, &original).unwrap();
    let opts = TranscodeOptions {
        block_size: SMALL_BLOCK,
        level: 1,
    };
    let a = archive(q, dir, &opts);
    assert_eq!(a.stats.frames, 3);
    check_archive(&a, zstd_cli().as_deref());
}

// --- errors ---------------------------------------------------------------------------

/// A scratch copy of the synthetic archive's files to damage.
fn damaged_copy() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let a = synthetic();
    let dir = tempfile::tempdir().unwrap();
    let (zst, idx) = (
        dir.path().join("book.q.zst"),
        dir.path().join("book.q.zst.idx"),
    );
    std::fs::copy(&a.zst, &zst).unwrap();
    std::fs::copy(&a.idx, &idx).unwrap();
    (dir, zst, idx)
}

fn expect_err<T: std::fmt::Debug>(r: Result<T, ArchiveError>, needles: &[&str]) -> ArchiveError {
    let e = r.expect_err("damage must be an error");
    let msg = e.to_string();
    eprintln!("expected error: {msg}");
    for n in needles {
        assert!(msg.contains(n), "error {msg:?} does not mention {n:?}");
    }
    e
}

#[test]
fn truncated_zst_is_an_error_every_way_it_is_read() {
    let (_d, zst, idx_path) = damaged_copy();
    let idx = ZstIndex::read_file(&idx_path).unwrap();
    let reader = || SeekableReader::open(LocalFile::open(&zst).unwrap(), Some(&idx));
    let mut opened = reader().unwrap();
    let full = std::fs::metadata(&zst).unwrap().len();
    let name = zst.display().to_string();
    for cut in [full - 1, full - 9, full / 2, 5] {
        std::fs::File::options()
            .write(true)
            .open(&zst)
            .unwrap()
            .set_len(cut)
            .unwrap();
        // From the seek table: the footer is gone.
        let e = expect_err(read_seek_table(&LocalFile::open(&zst).unwrap()), &[&name]);
        assert!(matches!(e, ArchiveError::Corrupt { .. }), "{e:?}");
        // From the .idx: the size is not the recorded one.
        let e = expect_err(reader(), &[&name, &full.to_string(), &cut.to_string()]);
        assert!(matches!(e, ArchiveError::Mismatch { .. }), "{e:?}");
        expect_err(verify_files(&zst, &idx_path), &[&name]);
    }
    // A reader opened before the cut reads past the new end: `Truncated`, with the range.
    let last = idx.table.frames.last().unwrap();
    let e = expect_err(
        opened.read_range(
            last.uncompressed_offset,
            last.uncompressed_end(),
            &mut Vec::new(),
        ),
        &[&name, "truncated"],
    );
    assert!(matches!(e, ArchiveError::Truncated { .. }), "{e:?}");
}

#[test]
fn a_flipped_byte_in_a_frame_names_the_frame_and_spares_the_others() {
    let (_d, zst, idx_path) = damaged_copy();
    let idx = ZstIndex::read_file(&idx_path).unwrap();
    let k = 17;
    let f = idx.table.frames[k];
    let name = zst.display().to_string();
    // Header, middle and checksum bytes of the frame.
    for at in [
        f.compressed_offset + 1,
        f.compressed_offset + u64::from(f.compressed_size) / 2,
        f.compressed_end() - 1,
    ] {
        let mut bytes = std::fs::read(&synthetic().zst).unwrap();
        bytes[at as usize] ^= 0x40;
        std::fs::write(&zst, &bytes).unwrap();
        for with_idx in [Some(&idx), None] {
            let mut r = SeekableReader::open(LocalFile::open(&zst).unwrap(), with_idx).unwrap();
            let e = expect_err(
                r.read_range(
                    f.uncompressed_offset + 10,
                    f.uncompressed_offset + 20,
                    &mut Vec::new(),
                ),
                &[
                    &name,
                    &format!("frame {k} at offset {}", f.compressed_offset),
                ],
            );
            assert!(matches!(e, ArchiveError::Frame { .. }), "{e:?}");
            // Frames are independent: the neighbours still read.
            let g = idx.table.frames[k + 1];
            let mut out = Vec::new();
            r.read_range(g.uncompressed_offset, g.uncompressed_end(), &mut out)
                .unwrap();
            assert!(
                out == synthetic().original
                    [g.uncompressed_offset as usize..g.uncompressed_end() as usize]
            );
        }
        expect_err(
            verify_files(&zst, &idx_path),
            &[&name, &format!("frame {k}")],
        );
    }
}

/// Rewrites the `.idx` with `edit` applied and its CRC recomputed (so that the check under
/// test, not the CRC, catches it).
fn rewrite_idx(idx: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut b = std::fs::read(&synthetic().idx).unwrap();
    edit(&mut b);
    let body = b.len() - zidx::TRAILER_LEN;
    let crc = crc32c::crc32c(&b[..body]);
    b[body..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(idx, b).unwrap();
}

#[test]
fn a_bad_idx_is_a_clear_error() {
    let (_d, zst, idx) = damaged_copy();
    let name = idx.display().to_string();
    let read = || ZstIndex::read_file(&idx);

    rewrite_idx(&idx, |b| b[0] = b'X');
    expect_err(read(), &[&name, "offset 0", "magic"]);

    rewrite_idx(&idx, |b| b[8] = 2);
    expect_err(read(), &[&name, "offset 8", "version", "2"]);

    let mut b = std::fs::read(&synthetic().idx).unwrap();
    b[zidx::HEADER_LEN + 5] ^= 1;
    std::fs::write(&idx, &b).unwrap();
    expect_err(
        read(),
        &[&name, &format!("offset {}", b.len() - 4), "crc32c"],
    );

    rewrite_idx(&idx, |b| b[21] = 1);
    expect_err(read(), &[&name, "offset 20", "reserved"]);

    rewrite_idx(&idx, |b| {
        b[16..20].copy_from_slice(&(zidx::MAX_FRAMES + 1).to_le_bytes())
    });
    expect_err(
        read(),
        &[&name, "offset 16", "frame_count", "exceeds the limit"],
    );

    rewrite_idx(&idx, |b| {
        b[12..16].copy_from_slice(&(zidx::MAX_BLOCK_SIZE * 2).to_le_bytes())
    });
    expect_err(read(), &[&name, "offset 12", "block_size"]);

    let mut b = std::fs::read(&synthetic().idx).unwrap();
    b.truncate(b.len() - 10);
    std::fs::write(&idx, &b).unwrap();
    expect_err(read(), &[&name, "frame_count", "the file has"]);

    // An entry that breaks the frame rules (frame 3 claims a shorter uncompressed size).
    let entry = |i: usize| zidx::HEADER_LEN + i * zidx::ENTRY_LEN;
    rewrite_idx(&idx, |b| b[entry(3) + 20] ^= 1);
    expect_err(
        read(),
        &[
            &name,
            &format!("offset {}", entry(3)),
            "frame 3 uncompressed_size",
        ],
    );

    // Consistent on its own but not with the seek table: frames 0 and 1 swap compressed sizes.
    rewrite_idx(&idx, |b| {
        let size = |b: &[u8], i: usize| {
            u32::from_le_bytes(b[entry(i) + 16..entry(i) + 20].try_into().unwrap())
        };
        let (s0, s1) = (size(b, 0), size(b, 1));
        assert_ne!(
            s0, s1,
            "the test needs frames of different compressed sizes"
        );
        b[entry(0) + 16..entry(0) + 20].copy_from_slice(&s1.to_le_bytes());
        b[entry(1) + 8..entry(1) + 16].copy_from_slice(&u64::from(s1).to_le_bytes());
        b[entry(1) + 16..entry(1) + 20].copy_from_slice(&s0.to_le_bytes());
    });
    let bad = read().expect("internally consistent");
    let e = expect_err(
        verify_files(&zst, &idx),
        &[
            &zst.display().to_string(),
            &format!("entry 0 (offset {})", entry(0)),
            "seek table",
        ],
    );
    assert!(matches!(e, ArchiveError::Mismatch { .. }), "{e:?}");
    // Read through the bad .idx without verify: the frame bytes do not match the table.
    let mut r = SeekableReader::open(LocalFile::open(&zst).unwrap(), Some(&bad)).unwrap();
    expect_err(r.read_range(0, 10, &mut Vec::new()), &["frame 0"]);

    // A good .idx recording another .q's SHA-256: verify catches it.
    rewrite_idx(&idx, |b| b[40] ^= 1);
    expect_err(
        verify_files(&zst, &idx),
        &["SHA-256", &hex::encode(synthetic().stats.source_sha256)],
    );
}

#[test]
fn seek_table_damage_and_limits_are_errors() {
    let (_d, zst, _) = damaged_copy();
    let name = zst.display().to_string();
    let original = std::fs::read(&synthetic().zst).unwrap();
    let n = original.len();
    let frames = synthetic().stats.frames;
    let table_at = n - seek_table_len(frames) as usize;
    let open = || read_seek_table(&LocalFile::open(&zst).unwrap());
    let damage = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = original.clone();
        edit(&mut b);
        std::fs::write(&zst, b).unwrap();
    };

    damage(&|b| b[n - 9..n - 5].copy_from_slice(&(zidx::MAX_FRAMES + 1).to_le_bytes()));
    expect_err(
        open(),
        &[&name, &format!("offset {}", n - 9), "exceeds the limit"],
    );

    damage(&|b| b[n - 9..n - 5].copy_from_slice(&u32::MAX.to_le_bytes()[..]));
    expect_err(open(), &[&name, "frame count"]);

    damage(&|b| b[table_at] ^= 1);
    expect_err(
        open(),
        &[&name, &format!("offset {table_at}"), "seek table"],
    );

    // Frame 2 claims 4095 uncompressed bytes: breaks the block rule.
    damage(&|b| {
        let at = table_at + 8 + 2 * 8 + 4;
        b[at..at + 4].copy_from_slice(&(SMALL_BLOCK - 1).to_le_bytes());
    });
    expect_err(
        open(),
        &[
            &name,
            &format!("offset {}", table_at + 8 + 16),
            "frame 2 uncompressed_size",
        ],
    );

    // Not a seekable zstd at all: the .q itself.
    expect_err(
        read_seek_table(&LocalFile::open(&synthetic().q).unwrap()),
        &["footer magic", "0x8f92eab1"],
    );
}

#[test]
fn bad_requests_are_errors() {
    let a = synthetic();
    let mut r = SeekableReader::open(LocalFile::open(&a.zst).unwrap(), None).unwrap();
    let len = r.uncompressed_len();
    for (s, e) in [(0, len + 1), (10, 5), (len + 1, len + 2)] {
        expect_err(
            r.read_range(s, e, &mut Vec::new()),
            &[&a.zst.display().to_string(), "range"],
        );
    }
    assert_eq!(r.frames_decoded(), 0);

    let dir = tempfile::tempdir().unwrap();
    let (zst, idx) = (dir.path().join("x.zst"), dir.path().join("x.idx"));
    let empty = dir.path().join("empty.q");
    std::fs::write(&empty, b"").unwrap();
    expect_err(
        transcode(&empty, &zst, &idx, &TranscodeOptions::default()),
        &["empty.q", "empty"],
    );
    let opts = |block_size, level| TranscodeOptions { block_size, level };
    expect_err(
        transcode(&a.q, &zst, &idx, &opts(100, 3)),
        &["block size 100"],
    );
    expect_err(
        transcode(&a.q, &zst, &idx, &opts(1 << 20, 99)),
        &["level 99"],
    );
    expect_err(
        transcode(&dir.path().join("missing.q"), &zst, &idx, &opts(1 << 20, 3)),
        &["missing.q"],
    );

    // A .idx from another archive: the object's size is not the recorded one.
    let other = ZstIndex::read_file(&a.idx).unwrap();
    std::fs::write(&zst, b"\x28\xb5\x2f\xfd short").unwrap();
    expect_err(
        SeekableReader::open(LocalFile::open(&zst).unwrap(), Some(&other)),
        &["x.zst", "zst_len"],
    );
}
