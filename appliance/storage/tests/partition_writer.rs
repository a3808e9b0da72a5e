//! The partition writer's rules: reopening cuts a torn tail (found by its checksum or its
//! length) and rebuilds the index and counts over what is left; corruption in the middle is an
//! error naming the file and offset, and nothing is cut; index entries only ever cover whole
//! frames already durable (page-cache writer) or already handed over (sealed writer).
//! (`tail_damage.rs` has the same rules for a bare segment.)

use chronicle_storage::index::{IndexBuilder, IndexEntry, TimeIndex};
use chronicle_storage::meta::PartitionMeta;
use chronicle_storage::partition::{PartitionPaths, PartitionWriter};
use chronicle_storage::segment::{frame_len, ScanEnd, Segment, HEADER_LEN};
use chronicle_storage::StorageError;
use chronicle_testkit::data::{header, meta, record};
use proptest::prelude::*;
use std::path::Path;

/// Appends records `from..to` (record `i` at exchange time `1_000_000 + i`).
fn append(w: &mut PartitionWriter, from: u64, to: u64) -> Vec<u64> {
    (from..to)
        .map(|i| w.append(&record(i, 1_000_000 + i)).unwrap())
        .collect()
}

/// The index on disk against the segment on disk: entries contiguous from the first frame,
/// each over whole frames with their count and min/max exchange times, none past the
/// segment's valid frames. Returns the entries and where the valid frames end.
fn check_index(dir: &Path) -> (Vec<IndexEntry>, u64) {
    let paths = PartitionPaths::new(dir);
    let seg = Segment::open(&paths.segment).unwrap();
    let end = match seg.scan().unwrap() {
        ScanEnd::Clean { end } | ScanEnd::TornTail { valid_end: end, .. } => end,
    };
    let frames: Vec<(u64, u64, u64)> = seg
        .frames()
        .map(|f| {
            let len = frame_len(f.record.bytes.len()) as u64;
            (f.offset, f.offset + len, f.record.meta.exchange_ts_ns)
        })
        .collect();
    let index = TimeIndex::read(&paths.index).unwrap();
    let mut at = HEADER_LEN as u64;
    for e in &index.entries {
        assert_eq!(e.offset, at, "contiguous: {e:?}");
        let inside: Vec<_> = (frames.iter())
            .filter(|(o, _, _)| (e.offset..e.end()).contains(o))
            .collect();
        assert!(
            inside.last().is_some_and(|(_, fe, _)| *fe == e.end()),
            "{e:?} does not end on a frame boundary"
        );
        assert_eq!(inside.len() as u32, e.records, "{e:?}");
        let ts = inside.iter().map(|(_, _, t)| *t);
        assert_eq!(
            (ts.clone().min().unwrap(), ts.max().unwrap()),
            (e.min_exchange_ts, e.max_exchange_ts),
            "{e:?}"
        );
        at = e.end();
    }
    assert!(at <= end, "the index reaches {at}, the frames end at {end}");
    (index.entries, end)
}

/// A partition of `n` records written and synced but never closed (the process died).
fn unclosed(dir: &Path, n: u64) -> Vec<u64> {
    let mut w = PartitionWriter::open(dir, header(), meta()).unwrap();
    let offsets = append(&mut w, 0, n);
    w.sync().unwrap();
    offsets
}

#[test]
fn reopening_cuts_a_torn_tail_and_rebuilds_index_and_counts() {
    const N: u64 = 3_000;
    type Tear = fn(&mut Vec<u8>, usize);
    let tears: [(&str, Tear); 2] = [
        // The last frame whole in length, one bit of its record wrong: only the checksum
        // tells.
        ("checksum", |b, last| b[last + 20] ^= 0x01),
        ("length", |b, _| b.truncate(b.len() - 5)),
    ];
    for (how, tear) in tears {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        let offsets = unclosed(&dir, N);
        let last = *offsets.last().unwrap();
        let seg = dir.join("book.q");
        let mut bytes = std::fs::read(&seg).unwrap();
        tear(&mut bytes, last as usize);
        std::fs::write(&seg, &bytes).unwrap();

        let mut w = PartitionWriter::open(&dir, header(), meta()).unwrap();
        assert_eq!(
            w.end_offset(),
            last,
            "{how}: cut back to the last whole frame"
        );
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), last, "{how}");
        let aside = dir.join(format!("book.q.torn-{last}"));
        assert_eq!(
            std::fs::read(&aside).unwrap(),
            bytes[last as usize..],
            "{how}"
        );
        let (entries, end) = check_index(&dir);
        assert_eq!((entries.last().unwrap().end(), end), (last, last), "{how}");

        // Appends go on after the cut; the counts are the records that survived plus these.
        append(&mut w, N - 1, N + 10);
        let closing = w.close().unwrap();
        assert_eq!(closing.meta.records, N + 10, "{how}");
        assert_eq!(
            PartitionMeta::read(&dir.join("meta.json")).unwrap(),
            closing.meta
        );
        let (entries, end) = check_index(&dir);
        assert_eq!(
            entries.last().unwrap().end(),
            end,
            "{how}: closed, all indexed"
        );
        assert_eq!(end, std::fs::metadata(&seg).unwrap().len(), "{how}");
    }
}

#[test]
fn corruption_in_the_middle_is_an_error_naming_file_and_offset_and_nothing_is_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let offsets = unclosed(&dir, 2_000);
    let seg = dir.join("book.q");
    let idx = dir.join("index/time.idx");
    let mut bytes = std::fs::read(&seg).unwrap();
    let victim = offsets[1_000];
    bytes[victim as usize + 12] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let index_before = std::fs::read(&idx).unwrap();

    let err = PartitionWriter::open(&dir, header(), meta())
        .err()
        .expect("damage in the middle is not a torn tail");
    match &err {
        StorageError::Corrupt { path, offset, .. } => {
            assert_eq!((path, *offset), (&seg, victim));
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&*seg.to_string_lossy())
            && msg.contains(&format!("corrupt at byte offset {victim}")),
        "{msg}"
    );
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "nothing cut");
    assert_eq!(
        std::fs::read(&idx).unwrap(),
        index_before,
        "index untouched"
    );
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("torn")), "{names:?}");
}

#[test]
fn index_entries_cover_only_durable_whole_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let mut w = PartitionWriter::open(&dir, header(), meta()).unwrap();
    let seg = dir.join("book.q");
    let mut n = 0;
    for round in 1..=5 {
        // Appended, not synced: nothing new on disk, in the segment or the index.
        let indexed_before = check_index(&dir).0;
        append(&mut w, n, n + 1_500);
        n += 1_500;
        let (indexed, end) = check_index(&dir);
        assert_eq!(
            indexed, indexed_before,
            "round {round}: entries before their frames"
        );
        assert!(end < w.end_offset());
        // Synced: the frames are on disk, and the full blocks among them indexed.
        w.sync().unwrap();
        let (indexed, end) = check_index(&dir);
        assert_eq!(end, w.end_offset(), "round {round}");
        assert!(indexed.len() > indexed_before.len(), "round {round}");
        assert!(
            indexed.last().unwrap().end() < end,
            "the open block is not indexed"
        );
    }
    let closing = w.close().unwrap();
    let (indexed, end) = check_index(&dir);
    assert_eq!(indexed.last().unwrap().end(), end);
    assert_eq!(end, std::fs::metadata(&seg).unwrap().len());
    assert_eq!(closing.meta.records, n);
    assert_eq!(indexed.iter().map(|e| u64::from(e.records)).sum::<u64>(), n);
}

#[test]
fn a_sealed_writer_hands_over_entries_only_for_frames_it_sealed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    std::fs::create_dir_all(dir.join("index")).unwrap();
    let mut w = PartitionWriter::create_sealed(&dir, header(), meta());
    let paths = w.paths().clone();
    let (mut segment, mut index) = (Vec::new(), Vec::new());
    let mut entries = Vec::new();
    let mut n = 0;
    // As the appliance's flush writer does: take the sealed bytes, write them, then the
    // entries; each seal's entries stop at or before the bytes it handed over.
    for _ in 0..4 {
        append(&mut w, n, n + 1_700);
        n += 1_700;
        let sealed = w.seal(Vec::new(), &mut entries);
        assert_eq!(sealed.start, segment.len() as u64);
        segment.extend_from_slice(&sealed.bytes);
        index.extend_from_slice(&entries);
        std::fs::write(&paths.segment, &segment).unwrap();
        std::fs::write(&paths.index, &index).unwrap();
        let (indexed, end) = check_index(&dir);
        assert_eq!(end, segment.len() as u64);
        assert!(!indexed.is_empty() && indexed.last().unwrap().end() < end);
    }
    append(&mut w, n, n + 10);
    let sealed = w.seal(Vec::new(), &mut entries);
    segment.extend_from_slice(&sealed.bytes);
    index.extend_from_slice(&entries);
    let closing = w.close().unwrap();
    index.extend_from_slice(&closing.index_tail);
    std::fs::write(&paths.segment, &segment).unwrap();
    std::fs::write(&paths.index, &index).unwrap();
    let (indexed, end) = check_index(&dir);
    assert_eq!(indexed.last().unwrap().end(), end);
    assert_eq!(closing.meta.records, n + 10);
}

proptest! {
    /// Whatever the frame sizes, blocks are contiguous runs of whole frames that close on
    /// the first frame that fills them; only the last (closed by `finish`) may be short.
    #[test]
    fn index_blocks_are_whole_frames(
        lens in prop::collection::vec((5usize..130).prop_map(|w| 8 * w), 1..400),
        block in 64u32..4_096,
    ) {
        let mut b = IndexBuilder::new(block);
        let (mut at, mut entries) = (HEADER_LEN as u64, Vec::new());
        for (i, len) in lens.iter().enumerate() {
            entries.extend(b.note(at, *len as u32, i as u64));
            at += *len as u64;
        }
        entries.extend(b.finish());
        let (mut pos, mut frame) = (HEADER_LEN as u64, 0usize);
        for (k, e) in entries.iter().enumerate() {
            prop_assert_eq!(e.offset, pos);
            let n = e.records as usize;
            let sizes = &lens[frame..frame + n];
            prop_assert_eq!(sizes.iter().sum::<usize>() as u64, u64::from(e.len));
            let before_last = e.len - *sizes.last().unwrap() as u32;
            prop_assert!(before_last < block, "{:?} went on past full", e);
            if k + 1 < entries.len() {
                prop_assert!(e.len >= block, "{:?} closed short", e);
            }
            prop_assert_eq!((e.min_exchange_ts, e.max_exchange_ts), (frame as u64, (frame + n - 1) as u64));
            pos = e.end();
            frame += n;
        }
        prop_assert_eq!((pos, frame), (at, lens.len()));
    }
}
