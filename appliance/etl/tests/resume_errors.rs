//! `resume` decides the next tick id from what is on disk: a log it cannot read completely
//! must be an error naming the file (and offset), never a fresh start that reuses tick ids.

mod common;
use chronicle_etl::resume::resume;
use chronicle_etl::LatePolicy;
use chronicle_storage::segment::Segment;
use chronicle_storage::StorageError;
use common::{refinery, trade};
use std::path::Path;

const TS: u64 = 1_723_161_600_000_000_000; // 2024-08-09T00:00:00Z

/// Writes `n` trades of symbol `abc` on one day; returns the day's segment.
fn write_trades(data: &Path, n: u64) -> std::path::PathBuf {
    let mut r = refinery(data, LatePolicy::Reject);
    for id in 1..=n {
        r.push(1, TS + id, TS + id, trade(id), &mut |_| {}).unwrap();
    }
    r.finish().unwrap();
    data.join("v1/testvenue/abc/2024-08-09/book.q")
}

#[test]
fn no_symbol_directory_is_a_first_run() {
    let dir = tempfile::tempdir().unwrap();
    let r = resume(dir.path(), "testvenue", "abc", None).unwrap();
    assert_eq!(r.next_tick, 1);
}

#[test]
fn an_unreadable_symbol_directory_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let symbol_dir = dir.path().join("v1/testvenue/abc");
    std::fs::create_dir_all(symbol_dir.parent().unwrap()).unwrap();
    std::fs::write(&symbol_dir, b"not a directory").unwrap();
    let err = resume(dir.path(), "testvenue", "abc", None).unwrap_err();
    assert!(
        matches!(&err, StorageError::Io { path, .. } if *path == symbol_dir),
        "{err}"
    );
}

#[test]
fn damage_before_valid_frames_is_an_error_naming_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let seg_path = write_trades(dir.path(), 4);
    let clean = resume(dir.path(), "testvenue", "abc", None).unwrap();
    let offsets: Vec<u64> = Segment::open(&seg_path)
        .unwrap()
        .frames()
        .map(|f| f.offset)
        .collect();
    assert!(offsets.len() >= 3, "frames at {offsets:?}");
    assert!(clean.next_tick > offsets.len() as u64 - 1, "{clean:?}");

    // Flip a byte inside the second frame: valid frames follow it.
    let mut bytes = std::fs::read(&seg_path).unwrap();
    bytes[offsets[1] as usize + 8] ^= 0xff;
    std::fs::write(&seg_path, &bytes).unwrap();
    let err = resume(dir.path(), "testvenue", "abc", None).unwrap_err();
    assert!(
        matches!(&err, StorageError::Corrupt { path, offset, .. }
            if *path == seg_path && *offset == offsets[1]),
        "{err}"
    );
}
