//! `verify` and `cat` on damaged partitions, built from generated events (no shared data
//! needed): exit codes, named offsets, and the valid prefix of a torn tail.

mod common;
use common::*;
use std::path::Path;

fn frame_offsets(segment: &Path) -> Vec<u64> {
    let seg = chronicle_storage::segment::Segment::open(segment).unwrap();
    seg.frames().map(|f| f.offset).collect()
}

#[test]
fn clean_torn_and_corrupt() {
    let dir = scratch();
    let part = partition(&dir.path().join("data"), 5_000);
    let p = part.to_str().unwrap();
    let seg = part.join("book.q");
    let out = chronicle(&["verify", p]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("5001 records"),
        "definition + 5000"
    );

    let offsets = frame_offsets(&seg);
    let bytes = std::fs::read(&seg).unwrap();

    // Torn tail: exit 2, the offset named, cat prints the valid prefix.
    std::fs::write(&seg, &bytes[..bytes.len() - 5]).unwrap();
    let out = chronicle(&["verify", p]);
    assert_eq!(out.status.code(), Some(2));
    let last = offsets.last().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("torn tail at byte offset {last}"))
    );
    // cat prints the valid prefix, then says where and why it stopped, and exits 2.
    let out = chronicle(&["cat", p]);
    assert_eq!(out.status.code(), Some(2), "cat of a torn tail");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 5000);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("book.q") && err.contains(&format!("stopped at byte offset {last}")),
        "{err}"
    );

    // Damage in the middle: exit 1, file and offset named; cat fails rather than skip.
    let mut b = bytes.clone();
    let victim = offsets[2500] as usize;
    b[victim + 40] ^= 0x10;
    std::fs::write(&seg, &b).unwrap();
    for cmd in [&["verify", p][..], &["cat", p][..]] {
        let out = chronicle(cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("book.q") && err.contains(&format!("corrupt at byte offset {victim}")),
            "{cmd:?}: {err}"
        );
    }
}

#[test]
fn a_lying_index_entry_is_caught() {
    let dir = scratch();
    let part = partition(&dir.path().join("data"), 3_000);
    let idx = part.join("index/time.idx");
    let mut b = std::fs::read(&idx).unwrap();
    assert!(b.len() >= 32 + 2 * 40, "several blocks");
    // Rewrite the first entry's max timestamp and fix its CRC: well-formed, but false.
    let e = 32;
    b[e + 24..e + 32].copy_from_slice(&1u64.to_le_bytes());
    b[e + 16..e + 24].copy_from_slice(&0u64.to_le_bytes());
    let crc = crc32c_of(&b[e..e + 36]);
    b[e + 36..e + 40].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&idx, &b).unwrap();
    let out = chronicle(&["verify", part.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("time.idx"));
}

#[test]
fn cat_without_an_index_scans_and_says_so() {
    let dir = scratch();
    let part = partition(&dir.path().join("data"), 100);
    std::fs::remove_file(part.join("index/time.idx")).unwrap();
    let out = chronicle(&["cat", part.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 101);
    assert!(String::from_utf8_lossy(&out.stderr).contains("index not used"));
}

fn crc32c_of(b: &[u8]) -> u32 {
    // CRC-32C (Castagnoli), bitwise: an independent check of the index's checksum.
    let mut crc = !0u32;
    for &byte in b {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn nothing_to_verify_and_a_missing_path_are_errors() {
    let dir = scratch();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = empty.to_str().unwrap();
    let out = chronicle(&["verify", e]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an empty directory verifies nothing"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to verify"));
    assert!(chronicle_ok(&["verify", "--allow-empty", e]).contains("0 segments"));

    let missing = dir.path().join("no/such/dir");
    let out = chronicle(&["verify", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no such file or directory") && !err.contains("tier"),
        "a missing path is missing, not a key in no tier: {err}"
    );
}
