//! A torn tail is cut back to exactly the valid prefix; damage before the tail is an error
//! that names its offset.

use chronicle_storage::segment::{scan, ScanEnd, Segment, SegmentWriter, HEADER_LEN};
use chronicle_storage::StorageError;
use chronicle_testkit::data::{record, segment};
use proptest::prelude::*;

fn ticks(bytes: &[u8]) -> Vec<u64> {
    chronicle_storage::segment::FrameIter::new(bytes, HEADER_LEN)
        .map(|f| f.record.meta.global_tick_id)
        .collect()
}

#[test]
fn truncating_the_last_record_at_every_byte_recovers_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes, offsets) = segment(dir.path(), 20);
    let last = *offsets.last().unwrap() as usize;
    for cut in last..bytes.len() {
        let b = &bytes[..cut];
        let expected_end = ScanEnd::TornTail {
            valid_end: last as u64,
            reason: String::new(),
        };
        match scan(b, HEADER_LEN).unwrap() {
            ScanEnd::Clean { end } => assert_eq!(
                (cut, end as usize),
                (last, last),
                "clean only at the boundary"
            ),
            ScanEnd::TornTail { valid_end, .. } => assert_eq!(
                ScanEnd::TornTail {
                    valid_end,
                    reason: String::new()
                },
                expected_end
            ),
        }
        assert_eq!(ticks(b), (1..=19).collect::<Vec<_>>(), "cut at {cut}");
    }
}

#[test]
fn flipping_any_bit_of_the_last_record_recovers_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes, offsets) = segment(dir.path(), 12);
    let last = *offsets.last().unwrap() as usize;
    for byte in last..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[byte] ^= 1 << bit;
            match scan(&b, HEADER_LEN) {
                Ok(ScanEnd::TornTail { valid_end, .. }) => assert_eq!(valid_end as usize, last),
                other => panic!("flip at {byte}.{bit}: {other:?}"),
            }
            assert_eq!(ticks(&b), (1..=11).collect::<Vec<_>>());
        }
    }
}

#[test]
fn open_append_cuts_a_torn_tail_keeps_it_aside_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, offsets) = segment(dir.path(), 10);
    let last = *offsets.last().unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let (mut w, repair) = SegmentWriter::open_append(&path).unwrap();
    let repair = repair.expect("a torn tail was cut");
    assert_eq!(repair.cut_at, last);
    assert_eq!(
        std::fs::read(&repair.saved_to).unwrap(),
        &bytes[last as usize..bytes.len() - 3]
    );
    w.append(&record(9, 1_009)).unwrap();
    w.sync().unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the re-appended record restores the same bytes"
    );
}

#[test]
fn zero_padding_after_the_last_frame_is_a_clean_end() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut bytes, _) = segment(dir.path(), 5);
    let end = bytes.len() as u64;
    bytes.resize(bytes.len() + 4096 - bytes.len() % 4096, 0);
    assert_eq!(scan(&bytes, HEADER_LEN).unwrap(), ScanEnd::Clean { end });
}

#[test]
fn a_bad_header_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut bytes, _) = segment(dir.path(), 3);
    bytes[20] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = Segment::open(&path).err().expect("checksum catches it");
    assert!(matches!(err, StorageError::BadHeader { .. }));
    assert!(
        err.to_string().contains("book.q") && err.to_string().contains("checksum"),
        "{err}"
    );
    std::fs::write(&path, b"").unwrap();
    assert!(Segment::open(&path).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Damage anywhere before the last frame is corruption, reported at the damaged frame.
    #[test]
    fn damage_in_the_middle_is_an_error_naming_the_offset(victim in 0usize..29, at in any::<usize>(), bit in 0u8..8) {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut bytes, offsets) = segment(dir.path(), 30);
        let start = offsets[victim] as usize;
        let end = offsets[victim + 1] as usize;
        bytes[start + at % (end - start)] ^= 1 << bit;
        std::fs::write(&path, &bytes).unwrap();
        let seg = Segment::open(&path).unwrap();
        match seg.scan() {
            Err(StorageError::Corrupt { offset, path: p, .. }) => {
                prop_assert_eq!(offset as usize, start);
                prop_assert_eq!(&p, &path);
            }
            other => prop_assert!(false, "expected corruption at {start}, got {other:?}"),
        }
        // Appending to such a file is refused: nothing is cut from the middle.
        prop_assert!(SegmentWriter::open_append(&path).is_err());
    }
}
