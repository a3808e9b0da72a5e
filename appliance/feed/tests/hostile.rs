//! The consumer treats the producer (and anyone who can write the ring file) as hostile: a
//! corrupt header, index or length, a truncated file, a symlink, a FIFO, a wrong owner or
//! mode gives a clear error; never a panic, never a read outside the mapping.
#![cfg(not(loom))]

mod common;

use chronicle_feed::layout::*;
use chronicle_feed::*;
use common::*;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;

const CAP: usize = MIN_SHM_CAPACITY;

fn poke(path: &Path, offset: u64, value: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&value.to_le_bytes(), offset).unwrap();
}

fn poke_bytes(path: &Path, offset: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

/// File offset of ring position `pos`.
fn data_at(pos: u64) -> u64 {
    (HEADER_LEN as u64) + (pos & (CAP as u64 - 1))
}

fn attach_err(path: &Path) -> RingError {
    match attach(path, &AttachOptions::default()) {
        Ok(_) => panic!("attach of a hostile ring succeeded"),
        Err(e) => {
            // Every error names the file.
            assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
            e
        }
    }
}

/// A fresh ring (producer kept alive so the file stays as created).
fn ring(dir: &tempfile::TempDir, name: &str) -> (Producer, std::path::PathBuf) {
    let path = ring_path(dir, name);
    (create(&path, CAP, Access::Owner).unwrap(), path)
}

#[test]
fn bad_header_fields_are_refused_at_attach() {
    let dir = shm_dir();
    type Case = (usize, u64, fn(&RingError) -> bool);
    let cases: &[Case] = &[
        (OFF_MAGIC, 0x4141_4141_4141_4141, |e| {
            matches!(e, RingError::BadMagic { .. })
        }),
        (OFF_MAGIC, 0, |e| matches!(e, RingError::NotReady { .. })),
        // Version 1 (8-byte frame headers, no publication stamps) is not read as version 2.
        (OFF_VERSION, 1, |e| {
            matches!(e, RingError::BadVersion { found: 1, .. })
        }),
        (OFF_HEADER_LEN, 8192, |e| {
            matches!(
                e,
                RingError::BadHeader {
                    field: "header_len",
                    ..
                }
            )
        }),
        (OFF_ALIGN, 16, |e| {
            matches!(e, RingError::BadHeader { field: "align", .. })
        }),
        // Capacity not a power of two, too small, too large, or not the file's size.
        (OFF_CAPACITY, CAP as u64 + 8, |e| {
            matches!(e, RingError::BadCapacity { .. })
        }),
        (OFF_CAPACITY, 4096, |e| {
            matches!(e, RingError::BadCapacity { .. })
        }),
        (OFF_CAPACITY, 1 << 40, |e| {
            matches!(e, RingError::BadCapacity { .. })
        }),
        (OFF_CAPACITY, CAP as u64 * 2, |e| {
            matches!(e, RingError::SizeMismatch { .. })
        }),
        // Indices: misaligned, tail ahead of head, head more than a capacity ahead.
        (OFF_HEAD, 12, |e| matches!(e, RingError::BadIndices { .. })),
        (OFF_TAIL, 8, |e| matches!(e, RingError::BadIndices { .. })),
        (OFF_HEAD, CAP as u64 + 8, |e| {
            matches!(e, RingError::BadIndices { .. })
        }),
        (OFF_HEAD, u64::MAX - 7, |e| {
            matches!(e, RingError::BadIndices { .. })
        }),
    ];
    for (i, (offset, value, expect)) in cases.iter().enumerate() {
        let (_p, path) = ring(&dir, &format!("h{i}"));
        poke(&path, *offset as u64, *value);
        let e = attach_err(&path);
        assert!(
            expect(&e),
            "case {i} (offset {offset}, value {value:#x}): {e}"
        );
    }
}

#[test]
fn wrong_configured_capacity_is_refused() {
    let dir = shm_dir();
    let (_p, path) = ring(&dir, "c");
    let e = attach(
        &path,
        &AttachOptions {
            capacity: Some(CAP * 4),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(matches!(e, RingError::CapacityMismatch { .. }), "{e}");
}

#[test]
fn wrong_file_size_is_refused() {
    let dir = shm_dir();
    for (i, size) in [0u64, 100, (HEADER_LEN + CAP) as u64 + 4096]
        .into_iter()
        .enumerate()
    {
        let (_p, path) = ring(&dir, &format!("s{i}"));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(size)
            .unwrap();
        let e = attach_err(&path);
        if size == 0 {
            assert!(matches!(e, RingError::NotReady { .. }), "{e}");
        } else {
            assert!(matches!(e, RingError::SizeMismatch { .. }), "{e}");
        }
    }
}

#[test]
fn symlink_fifo_mode_and_owner_are_checked() {
    let dir = shm_dir();
    let (_p, path) = ring(&dir, "real");

    let link = ring_path(&dir, "link");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert!(matches!(attach_err(&link), RingError::Symlink { .. }));
    // Creating through a symlink (even a dangling one) is refused by O_EXCL.
    let dangling = ring_path(&dir, "dangling");
    std::os::unix::fs::symlink(ring_path(&dir, "nowhere"), &dangling).unwrap();
    assert!(matches!(
        create(&dangling, CAP, Access::Owner),
        Err(RingError::AlreadyExists { .. })
    ));
    assert!(!ring_path(&dir, "nowhere").exists());

    let fifo = ring_path(&dir, "fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(matches!(
        attach_err(&fifo),
        RingError::NotRegularFile { .. }
    ));

    for mode in [0o644, 0o660, 0o666, 0o400, 0o4600, 0o700] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = match attach(&path, &AttachOptions::default()) {
            Ok(_) => panic!("mode {mode:o} accepted"),
            Err(e) => e,
        };
        // Without write permission a non-root open fails first; root reaches the mode check.
        assert!(
            matches!(e, RingError::WrongMode { .. } | RingError::Io { .. }),
            "mode {mode:o}: {e}"
        );
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    attach(&path, &AttachOptions::default()).unwrap();

    // Owner: the file is ours, so expecting someone else must fail...
    let e = attach(
        &path,
        &AttachOptions {
            owner_uid: 4242,
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(
        matches!(e, RingError::WrongOwner { expected: 4242, .. }),
        "{e}"
    );
    // ...and, where we may chown, a file given away is refused.
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        assert!(matches!(
            attach_err(&path),
            RingError::WrongOwner { uid: 65534, .. }
        ));
    }
}

/// Positions the ring at `pos` (both indices) before the consumer attaches.
fn ring_at(
    dir: &tempfile::TempDir,
    name: &str,
    pos: u64,
) -> (Producer, std::path::PathBuf, Consumer) {
    let (p, path) = ring(dir, name);
    poke(&path, OFF_HEAD as u64, pos);
    poke(&path, OFF_TAIL as u64, pos);
    let c = attach(&path, &AttachOptions::default()).unwrap();
    (p, path, c)
}

fn frame_word(len: u32, pos: u64) -> u64 {
    len as u64 | ((pos >> 3) as u32 as u64) << 32
}

/// Writes a frame header (and optionally a record) at `pos` and publishes `head`.
fn hostile_frame(path: &Path, pos: u64, word: u64, record: Option<&[u8]>, head: u64) {
    poke(path, data_at(pos), word);
    if let Some(r) = record {
        poke_bytes(path, data_at(pos + FRAME_HEADER as u64), r);
    }
    poke(path, OFF_HEAD as u64, head);
}

#[test]
fn corrupt_indices_and_lengths_fault_cleanly() {
    let dir = shm_dir();
    let rec = heartbeat(7);
    let end = CAP as u64; // first lap's end
    type Check = fn(&RingFault) -> bool;
    type Case = (&'static str, u64, u64, Option<Vec<u8>>, u64, Check);
    let cases: Vec<Case> = vec![
        // (name, start, frame word, record, head, expected fault)
        (
            "head misaligned",
            0,
            frame_word(40, 0),
            Some(rec.to_vec()),
            44,
            |f| matches!(f, RingFault::HeadOutOfRange { .. }),
        ),
        (
            "head past a lap",
            0,
            frame_word(40, 0),
            Some(rec.to_vec()),
            CAP as u64 + 48,
            |f| matches!(f, RingFault::HeadOutOfRange { .. }),
        ),
        ("head behind tail", 4096, 0, None, 8, |f| {
            matches!(f, RingFault::HeadOutOfRange { .. })
        }),
        (
            "stale stamp",
            0,
            frame_word(40, 4096),
            Some(rec.to_vec()),
            48,
            |f| matches!(f, RingFault::BadStamp { .. }),
        ),
        (
            "length not multiple of 8",
            0,
            frame_word(44, 0),
            Some(rec.to_vec()),
            56,
            |f| matches!(f, RingFault::BadLength { len: 44, .. }),
        ),
        (
            "length below a header",
            0,
            frame_word(24, 0),
            Some(rec.to_vec()),
            32,
            |f| matches!(f, RingFault::BadLength { .. }),
        ),
        (
            "length huge",
            0,
            frame_word(u32::MAX - 7, 0),
            Some(rec.to_vec()),
            48,
            |f| matches!(f, RingFault::BadLength { .. }),
        ),
        (
            "frame past end of data area",
            end - 16,
            frame_word(40, end - 16),
            None,
            end + 32,
            |f| matches!(f, RingFault::PastEnd { .. }),
        ),
        (
            "frame past head",
            0,
            frame_word(40, 0),
            Some(rec.to_vec()),
            24,
            |f| matches!(f, RingFault::PastHead { .. }),
        ),
        ("wrap at offset 0", 0, frame_word(WRAP, 0), None, 48, |f| {
            matches!(f, RingFault::BadWrap { .. })
        }),
        (
            "wrap past head",
            end - 64,
            frame_word(WRAP, end - 64),
            None,
            end - 32,
            |f| matches!(f, RingFault::BadWrap { .. }),
        ),
        (
            "record length disagrees with frame",
            0,
            frame_word(48, 0),
            Some({
                let mut r = rec.to_vec();
                r.extend_from_slice(&[0; 8]);
                r
            }),
            64,
            |f| {
                matches!(
                    f,
                    RingFault::LengthMismatch {
                        frame_len: 48,
                        record_len: 40,
                        ..
                    }
                )
            },
        ),
        (
            "record header invalid",
            0,
            frame_word(40, 0),
            Some({
                let mut r = rec.to_vec();
                r[2] = 41;
                r
            }),
            56,
            |f| matches!(f, RingFault::BadRecord { .. }),
        ),
    ];
    for (i, (name, start, word, record, head, expect)) in cases.into_iter().enumerate() {
        let (_p, path, mut c) = ring_at(&dir, &format!("f{i}"), start);
        hostile_frame(&path, start, word, record.as_deref(), head);
        let fault = c.pop().err().unwrap_or_else(|| panic!("{name}: no fault"));
        assert!(expect(&fault), "{name}: {fault}");
        assert!(!fault.to_string().is_empty());
        // Stopped: the same fault again, until resync.
        assert_eq!(c.pop().err(), Some(fault.clone()), "{name}");
        assert_eq!(c.stats().faults, 1);
    }
}

#[test]
fn resync_skips_to_head_and_marks_the_loss() {
    let dir = shm_dir();
    let (mut p, path) = ring(&dir, "r");
    let mut c = attach(&path, &AttachOptions::default()).unwrap();
    for s in 0..3 {
        p.push(&heartbeat(s)).unwrap();
    }
    // Corrupt the second frame's length (frames of 16 + 40 bytes).
    poke(&path, data_at(56), frame_word(44, 56));
    assert_eq!(c.pop().unwrap().unwrap().meta.global_tick_id, 0);
    assert!(matches!(c.pop(), Err(RingFault::BadLength { pos: 56, .. })));
    assert_eq!(c.resync().unwrap(), 112);
    let g = gap_of(&c.pop().unwrap().unwrap()).expect("synthesized gap");
    assert_eq!(g.lost, 0, "unknown loss");
    assert!(c.pop().unwrap().is_none());
    p.push(&heartbeat(3)).unwrap();
    assert_eq!(c.pop().unwrap().unwrap().meta.global_tick_id, 3);
    assert_eq!(c.stats().resyncs, 1);

    // A head that is itself out of range cannot be resynced to: stays stopped.
    poke(&path, OFF_HEAD as u64, u64::MAX - 7);
    assert!(matches!(c.pop(), Err(RingFault::HeadOutOfRange { .. })));
    assert!(matches!(c.resync(), Err(RingFault::HeadOutOfRange { .. })));
    assert!(c.pop().is_err());
}

#[test]
fn truncated_while_mapped_is_caught_not_fatal() {
    let dir = shm_dir();
    for (i, new_len) in [HEADER_LEN as u64, 0, (HEADER_LEN + 4096) as u64]
        .into_iter()
        .enumerate()
    {
        let (mut p, path) = ring(&dir, &format!("t{i}"));
        let mut c = attach(&path, &AttachOptions::default()).unwrap();
        // Fill past the first data page so that the records to read are beyond the cut.
        for s in 0..200 {
            p.push(&heartbeat(s)).unwrap();
        }
        for s in 0..100 {
            assert_eq!(c.pop().unwrap().unwrap().meta.global_tick_id, s);
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(new_len)
            .unwrap();
        let fault = c.pop().expect_err("truncation detected");
        assert_eq!(fault, RingFault::Truncated, "cut to {new_len}");
        assert!(fault.to_string().contains("truncated"));
        assert!(matches!(c.resync(), Err(RingFault::Truncated)));
        // The producer's writes land in a dead page instead of killing the process.
        for s in 200..300 {
            let _ = p.push(&heartbeat(s));
        }
        assert!(p.truncated());
    }
}

#[test]
fn publication_stamps_are_untrusted_data_never_a_fault() {
    let dir = shm_dir();
    let (mut p, path) = ring(&dir, "s");
    let mut c = attach(&path, &AttachOptions::default()).unwrap();
    // Four publications of one record each (frames of 16 + 40 bytes at 0, 56, 112, 168),
    // then their stamps overwritten: far future, 1 ns after boot, 0 (= "same publication as
    // the record before") and UNSTAMPED.
    for s in 0..4 {
        p.push(&heartbeat(s)).unwrap();
    }
    for (pos, stamp) in [(0u64, UNSTAMPED - 1), (56, 1), (112, 0), (168, UNSTAMPED)] {
        poke(&path, data_at(pos + FRAME_PUBLISHED), stamp);
    }
    let mut seen = Vec::new();
    while let Some(v) = c.pop().unwrap() {
        let tick = v.meta.global_tick_id;
        seen.push((tick, c.published_ns()));
    }
    assert_eq!(
        seen,
        [
            (0, Some(UNSTAMPED - 1)),
            (1, Some(1)),
            (2, Some(1)),
            (3, None)
        ],
        "passed through as written, a 0 continues the publication before"
    );
    assert_eq!(c.stats().faults, 0);

    // An honest publication is stamped with the producer's CLOCK_MONOTONIC, once, on its
    // first frame (at 224); the frames after it in the same publication carry 0.
    let before = clock::monotonic_ns();
    p.stage(&heartbeat(4)).unwrap();
    p.stage(&heartbeat(5)).unwrap();
    p.publish();
    let after = clock::monotonic_ns();
    let first = c.pop().unwrap().map(|v| v.meta.global_tick_id);
    let stamp = c.published_ns().unwrap();
    assert_eq!(first, Some(4));
    assert!(
        (before..=after).contains(&stamp),
        "{before} <= {stamp} <= {after}"
    );
    c.pop().unwrap().unwrap();
    assert_eq!(
        c.published_ns(),
        Some(stamp),
        "the second record's frame says 0: same"
    );

    // `push` publishes without a time: nothing is known for it.
    p.push(&heartbeat(6)).unwrap();
    assert_eq!(c.pop().unwrap().unwrap().meta.global_tick_id, 6);
    assert_eq!(c.published_ns(), None, "an unstamped publication");

    // After a resync nothing is known until the next publication: record 7 (at 392) is
    // stamped, record 8 (at 448) damaged.
    p.stage(&heartbeat(7)).unwrap();
    p.stage(&heartbeat(8)).unwrap();
    p.publish();
    poke(&path, data_at(448), frame_word(44, 448));
    c.pop().unwrap().unwrap();
    assert!(c.published_ns().is_some());
    assert!(c.pop().is_err());
    c.resync().unwrap();
    c.pop().unwrap().unwrap(); // the synthesized gap
    assert_eq!(c.published_ns(), None);
}

#[test]
fn random_garbage_never_panics() {
    // xorshift: deterministic, no dependency.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let dir = shm_dir();
    let (mut p, path) = ring(&dir, "g");
    let mut c = attach(&path, &AttachOptions::default()).unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let mut outcomes = [0u64; 3];
    for round in 0..3000u64 {
        // Honest traffic, then damage: random words in the data area, sometimes a random or
        // nearly-right head.
        for s in 0..(rnd() % 8) {
            let _ = p.push(&heartbeat(round * 8 + s));
        }
        for _ in 0..(rnd() % 4) {
            let at = HEADER_LEN as u64 + (rnd() % (CAP as u64 / 8)) * 8;
            f.write_all_at(&rnd().to_le_bytes(), at).unwrap();
        }
        if rnd() % 8 == 0 {
            let head = match rnd() % 3 {
                0 => rnd(),
                1 => rnd() % (CAP as u64 * 2),
                _ => (rnd() % (CAP as u64 / 8)) * 8,
            };
            f.write_all_at(&head.to_le_bytes(), OFF_HEAD as u64)
                .unwrap();
        }
        for _ in 0..16 {
            match c.pop() {
                Ok(Some(v)) => {
                    assert!(v.bytes.len() >= 32 && v.bytes.len() % 8 == 0);
                    outcomes[0] += 1;
                }
                Ok(None) => break,
                Err(_) => {
                    outcomes[1] += 1;
                    if c.resync().is_err() {
                        outcomes[2] += 1;
                        // A hopeless head: start over with a fresh, honest ring.
                        drop(c);
                        drop(p);
                        std::fs::remove_file(&path).unwrap();
                        p = create(&path, CAP, Access::Owner).unwrap();
                        c = attach(&path, &AttachOptions::default()).unwrap();
                        f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                        break;
                    }
                }
            }
        }
    }
    // The run exercised records, faults and unrecoverable heads.
    assert!(outcomes.iter().all(|&n| n > 0), "{outcomes:?}");
}
