//! Time-range seeks through the index: a range reads only the index blocks it overlaps (a
//! damaged block elsewhere goes unnoticed), a range no block overlaps reads none, inverted
//! and empty ranges, exchange times out of order (blocks carry min and max), a partition
//! without its index or with a damaged one falls back to a scan and says why, index entries
//! past a torn tail are not used, and the cold `.q.zst` gives the warm bytes for every range.
//! Every answer is checked against a plain walk of the segment's frames.

mod common;
use chronicle_reader::{Partition, TimeRange};
use chronicle_storage::index::{IndexBuilder, IndexEntry, DEFAULT_BLOCK_BYTES};
use chronicle_storage::segment::{frame_len, ScanEnd, Segment, HEADER_LEN};
use chronicle_testkit::data::{partition, record, DAY_START_NS};
use common::*;
use proptest::prelude::*;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const N: u64 = 12_000;
/// A pause in the day's records, where one index block ends and the next begins.
const GAP_NS: u64 = 10_000_000_000;

/// The first record of the first index block that starts past the middle: the gap goes
/// before it, so that no block spans the gap. (A record's size, hence where blocks end, does
/// not depend on its time.)
fn gap_at() -> u64 {
    let mut blocks = IndexBuilder::new(DEFAULT_BLOCK_BYTES);
    let mut at = HEADER_LEN as u64;
    (0..N)
        .find(|&i| {
            let len = frame_len(record(i, 0).len()) as u32;
            let closed = blocks.note(at, len, 0).is_some();
            at += u64::from(len);
            closed && i + 1 >= N / 2
        })
        .unwrap()
        + 1
}

/// The exchange time of record `i`: one a millisecond, up to 3 ms early or late (a venue's
/// exchange times are not in arrival order), [`GAP_NS`] later from record `gap` on.
fn time(i: u64, gap: u64) -> u64 {
    let jitter = i.wrapping_mul(2_654_435_761) % 6_000_000;
    let pause = if i >= gap { GAP_NS } else { 0 };
    DAY_START_NS + 10_000_000 + i * 1_000_000 + jitter - 3_000_000 + pause
}

/// A frame as stored: offset, record bytes, exchange time.
type Stored = (u64, Vec<u8>, u64);

struct Fixture {
    _tmp: tempfile::TempDir,
    warm: PathBuf,
    cold: PathBuf,
    /// Every frame, from a plain walk of `book.q` (no index).
    frames: Vec<Stored>,
    index: Vec<IndexEntry>,
    /// The first record after the gap.
    gap: u64,
}

/// The generated partition, warm and cold, built once per test binary (tests that damage it
/// work on a [`copy`]).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let gap = gap_at();
        let warm = partition(
            &tmp.path().join("warm").join(KEY),
            (0..N).map(|i| time(i, gap)),
        );
        let cold = cold(&warm, &tmp.path().join("cold"));
        let seg = Segment::open(&warm.join("book.q")).unwrap();
        let frames = seg
            .frames()
            .map(|f| {
                let r = f.record;
                (f.offset, r.bytes.to_vec(), r.meta.exchange_ts_ns)
            })
            .collect();
        let index = Partition::open(&warm).unwrap().index;
        assert!(index.len() >= 10, "{} index blocks", index.len());
        Fixture {
            _tmp: tmp,
            warm,
            cold,
            frames,
            index,
            gap,
        }
    })
}

impl Fixture {
    /// What a scan of `range` must visit.
    fn expected(&self, range: TimeRange) -> Vec<(u64, Vec<u8>)> {
        (self.frames.iter())
            .filter(|(_, _, ts)| range.contains(*ts))
            .map(|(o, b, _)| (*o, b.clone()))
            .collect()
    }

    /// The index blocks `range` overlaps, by position.
    fn overlapping(&self, range: TimeRange) -> Vec<usize> {
        (0..self.index.len())
            .filter(|&i| self.index[i].overlaps(range.from, range.to))
            .collect()
    }

    /// Ten ms around the middle frame of block `b`.
    fn inside(&self, b: usize) -> TimeRange {
        let e = &self.index[b];
        let mid = (self.frames.iter())
            .filter(|(o, _, _)| (e.offset..e.end()).contains(o))
            .nth(e.records as usize / 2)
            .unwrap()
            .2;
        TimeRange {
            from: mid - 5_000_000,
            to: mid + 5_000_000,
        }
    }
}

/// A copy of the warm partition in `tmp`, so that a test may damage it.
fn copy(tmp: &Path) -> PathBuf {
    let dir = tmp.join("copy");
    std::fs::create_dir_all(dir.join("index")).unwrap();
    for f in ["book.q", "meta.json", "index/time.idx"] {
        std::fs::copy(fixture().warm.join(f), dir.join(f)).unwrap();
    }
    dir
}

/// Flips a bit inside the first record of each block in `blocks`; returns their offsets.
fn damage_blocks(dir: &Path, blocks: &[usize]) -> Vec<u64> {
    let seg = dir.join("book.q");
    let mut bytes = std::fs::read(&seg).unwrap();
    let offsets: Vec<u64> = blocks.iter().map(|&b| fixture().index[b].offset).collect();
    for &o in &offsets {
        bytes[o as usize + 16] ^= 0x08;
    }
    std::fs::write(&seg, &bytes).unwrap();
    offsets
}

#[test]
fn a_range_reads_only_the_index_blocks_it_overlaps() {
    let f = fixture();
    let last = f.index.len() - 1;
    let middle = last / 2;
    // A range inside the first, a middle and the last block; the blocks damaged are others.
    for (block, damaged) in [(0, vec![last]), (middle, vec![0, last]), (last, vec![0])] {
        let range = f.inside(block);
        assert_eq!(f.overlapping(range), [block], "{range:?}");
        let expected = f.expected(range);
        assert!(expected.len() > 5, "{}", expected.len());
        let tmp = tempfile::tempdir().unwrap();
        let dir = copy(tmp.path());
        let offsets = damage_blocks(&dir, &damaged);
        let part = Partition::open(&dir).unwrap();
        assert_eq!(visited(&part, range).unwrap(), expected, "block {block}");
        // The whole partition does read the damaged block.
        let err = visited(&part, TimeRange::ALL).unwrap_err().to_string();
        assert!(
            err.contains("book.q")
                && err.contains(&format!("corrupt at byte offset {}", offsets[0])),
            "{err}"
        );
    }
}

#[test]
fn ranges_outside_every_block_inverted_or_empty_find_nothing_they_should_not() {
    let f = fixture();
    let (first_half, second_half) = f.frames.split_at(f.gap as usize);
    let max = |s: &[Stored]| s.iter().map(|x| x.2).max().unwrap();
    let min = |s: &[Stored]| s.iter().map(|x| x.2).min().unwrap();
    let outside = [
        TimeRange {
            from: 0,
            to: min(&f.frames) - 1,
        },
        TimeRange {
            from: max(first_half) + 1,
            to: min(second_half) - 1,
        },
        TimeRange {
            from: max(&f.frames) + 1,
            to: u64::MAX,
        },
    ];
    // Every block damaged: a range that overlaps none must not read any.
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy(tmp.path());
    damage_blocks(&dir, &(0..f.index.len()).collect::<Vec<_>>());
    let damaged = Partition::open(&dir).unwrap();
    for range in outside {
        assert!(f.overlapping(range).is_empty(), "{range:?}");
        assert_eq!(visited(&damaged, range).unwrap(), [], "{range:?}");
    }

    let part = Partition::open(&f.warm).unwrap();
    let t = f.frames[100].2;
    let inverted = TimeRange {
        from: t + 1_000_000,
        to: t - 1_000_000,
    };
    assert_eq!(visited(&part, inverted).unwrap(), []);
    // A one-instant range: the records at exactly that time, and none between two.
    let at = TimeRange { from: t, to: t };
    let exact = visited(&part, at).unwrap();
    assert!(!exact.is_empty() && exact == f.expected(at));
    let between = TimeRange {
        from: max(first_half) + 1,
        to: max(first_half) + 1,
    };
    assert_eq!(visited(&part, between).unwrap(), []);
}

#[test]
fn without_an_index_or_with_a_damaged_one_a_scan_falls_back_and_says_why() {
    let f = fixture();
    let ranges = [TimeRange::ALL, f.inside(0), f.inside(f.index.len() / 2)];
    let entry = |i: usize| chronicle_storage::index::HEADER_LEN + i * 40;
    type Damage = fn(&mut Vec<u8>, usize);
    let cases: [(&str, Option<Damage>, &str); 3] = [
        ("missing", None, "time.idx"),
        ("bad header", Some(|b, _| b[20] ^= 1), "checksum"),
        (
            "bad entry",
            Some(|b, e| b[e + 3] ^= 1),
            "damaged entry before valid entries",
        ),
    ];
    for (what, damage, why) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = copy(tmp.path());
        let idx = dir.join("index/time.idx");
        match damage {
            None => std::fs::remove_file(&idx).unwrap(),
            Some(d) => {
                let mut b = std::fs::read(&idx).unwrap();
                d(&mut b, entry(2));
                std::fs::write(&idx, &b).unwrap();
            }
        }
        let part = Partition::open(&dir).unwrap();
        assert!(part.index.is_empty(), "{what}");
        let problem = part.index_problem.clone().unwrap_or_default();
        assert!(problem.contains(why), "{what}: {problem:?}");
        for range in ranges {
            assert_eq!(visited(&part, range).unwrap(), f.expected(range), "{what}");
        }
    }

    // A torn last entry (an interrupted append) is no problem: the entries before it are
    // used and the scan walks the rest.
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy(tmp.path());
    let idx = dir.join("index/time.idx");
    let len = std::fs::metadata(&idx).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&idx)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let part = Partition::open(&dir).unwrap();
    assert_eq!(part.index_problem, None);
    assert_eq!(part.index, f.index[..f.index.len() - 1]);
    for range in ranges.into_iter().chain([f.inside(f.index.len() - 1)]) {
        assert_eq!(visited(&part, range).unwrap(), f.expected(range));
    }
}

#[test]
fn index_entries_past_a_torn_tail_are_not_used() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy(tmp.path());
    // Cut in the middle of a frame of the last block (a write that never finished).
    let last = *f.index.last().unwrap();
    let (cut_frame, _, _) = (f.frames.iter())
        .find(|(o, _, _)| *o > last.offset + u64::from(last.len) / 2)
        .unwrap();
    let cut = cut_frame + 11;
    std::fs::File::options()
        .write(true)
        .open(dir.join("book.q"))
        .unwrap()
        .set_len(cut)
        .unwrap();
    let part = Partition::open(&dir).unwrap();
    assert_eq!(part.index, f.index[..f.index.len() - 1]);
    let durable = |range: TimeRange| {
        (f.expected(range).into_iter())
            .filter(|(o, b)| o + frame_len(b.len()) as u64 <= cut)
            .collect::<Vec<_>>()
    };
    for range in [TimeRange::ALL, f.inside(f.index.len() - 1)] {
        let mut got = Vec::new();
        let end = part
            .scan(range, |fr| {
                got.push((fr.offset, fr.record.bytes.to_vec()));
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(got, durable(range));
        assert!(
            matches!(end, ScanEnd::TornTail { valid_end, .. } if valid_end == *cut_frame),
            "{end:?}"
        );
    }
}

#[test]
fn the_cold_archive_reads_the_warm_bytes_for_every_range() {
    let f = fixture();
    let warm = Partition::open(&f.warm).unwrap();
    let cold = Partition::open(&f.cold).unwrap();
    assert!(cold.body.origin().ends_with("book.q.zst"));
    assert_eq!(cold.index, warm.index);
    // The whole day, every block's own span and its first instant, and the gap.
    let mut ranges = vec![TimeRange::ALL];
    for e in &f.index {
        ranges.push(TimeRange {
            from: e.min_exchange_ts,
            to: e.max_exchange_ts,
        });
        ranges.push(TimeRange {
            from: e.min_exchange_ts,
            to: e.min_exchange_ts,
        });
    }
    for range in ranges {
        let expected = f.expected(range);
        assert_eq!(visited(&warm, range).unwrap(), expected, "warm {range:?}");
        assert_eq!(visited(&cold, range).unwrap(), expected, "cold {range:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any range, warm or cold, visits exactly the frames whose exchange time is in it.
    #[test]
    fn any_range_visits_exactly_its_frames(a in 0u64..(N + 20), len in 0u64..3_000) {
        let f = fixture();
        let from = DAY_START_NS + a * 1_000_000 + if a >= f.gap { GAP_NS } else { 0 };
        let range = TimeRange { from, to: from + len * 1_000_000 };
        let expected = f.expected(range);
        for dir in [&f.warm, &f.cold] {
            let part = Partition::open(dir).unwrap();
            prop_assert_eq!(&visited(&part, range).unwrap(), &expected, "{}", dir.display());
        }
    }
}
