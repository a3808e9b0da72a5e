//! The ring carries records in order across wrap-around, in memory and in /dev/shm; when full
//! the producer drops, counts, and the consumer finds a gap marker exactly at the loss.
#![cfg(not(loom))]

mod common;

use chronicle_feed::layout::{MAX_SHM_CAPACITY, MIN_SHM_CAPACITY};
use chronicle_feed::*;
use chronicle_protocol::*;
use common::*;

/// Pushes varied records through a ring many times its size, popping as it goes, and checks
/// every byte arrives in order.
fn stream_through(mut p: Producer, mut c: Consumer, n: u64) {
    let mut sent = std::collections::VecDeque::new();
    let mut next_rx = 0u64;
    for seq in 0..n {
        let rec = match seq % 3 {
            0 => heartbeat(seq).to_vec(),
            1 => trade(5, seq),
            _ => snapshot(seq, (seq % 11) as usize),
        };
        loop {
            if p.try_push(&rec).unwrap() {
                sent.push_back(rec);
                break;
            }
            // Full: drain one and retry.
            let got = c
                .pop()
                .unwrap()
                .expect("a full ring is not empty")
                .bytes
                .to_vec();
            assert_eq!(got, sent.pop_front().unwrap(), "record {next_rx}");
            next_rx += 1;
        }
        if seq % 5 == 0 {
            if let Some(v) = c.pop().unwrap() {
                assert_eq!(v.bytes, &sent.pop_front().unwrap()[..], "record {next_rx}");
                next_rx += 1;
            }
        }
    }
    while let Some(v) = c.pop().unwrap() {
        assert_eq!(v.bytes, &sent.pop_front().unwrap()[..], "record {next_rx}");
        next_rx += 1;
    }
    assert!(sent.is_empty());
    assert_eq!(next_rx, n);
    assert_eq!(p.stats().dropped, 0);
}

#[test]
fn mem_ring_wraps_in_order() {
    let (p, c) = mem_ring(1024);
    stream_through(p, c, 5_000);
}

#[test]
fn stamps_survive_u32_truncation() {
    // Start just below the point where the 32-bit stamp (position / 8) wraps.
    let start = (1u64 << 35) - 512;
    let (p, c) = mem_ring_at(1024, start);
    stream_through(p, c, 500);
}

#[test]
fn shm_ring_wraps_in_order() {
    let dir = shm_dir();
    let path = ring_path(&dir, "ring0");
    let p = create(&path, MIN_SHM_CAPACITY, Access::Owner).unwrap();
    let c = attach(&path, &AttachOptions::default()).unwrap();
    assert_eq!(c.capacity(), MIN_SHM_CAPACITY as u64);
    stream_through(p, c, 50_000);
}

#[test]
fn largest_record_fits_smallest_shm_ring_behind_a_gap() {
    let dir = shm_dir();
    let path = ring_path(&dir, "big");
    let mut p = create(&path, MIN_SHM_CAPACITY, Access::Owner).unwrap();
    let mut c = attach(&path, &AttachOptions::default()).unwrap();
    // The largest length the framing allows (a type newer than this build: the ring passes
    // it on by its length, as readers do).
    let mut big = vec![0xA5u8; MAX_RECORD_LEN];
    big[0..2].copy_from_slice(&0x7001u16.to_le_bytes());
    big[2..4].copy_from_slice(&(MAX_RECORD_LEN as u16).to_le_bytes());
    // Fill until a drop, drain, then the big record must go in behind its gap.
    let mut pushed = 0;
    while p.push(&big).unwrap() == Pushed::Written {
        pushed += 1;
    }
    for _ in 0..pushed {
        assert_eq!(c.pop().unwrap().unwrap().bytes.len(), MAX_RECORD_LEN);
    }
    assert_eq!(p.push(&big).unwrap(), Pushed::Written);
    let g = gap_of(&c.pop().unwrap().unwrap()).expect("gap first");
    assert_eq!((g.expected, g.received, g.lost), (pushed, pushed + 1, 1));
    assert_eq!(c.pop().unwrap().unwrap().bytes, &big[..]);
    assert!(c.pop().unwrap().is_none());
}

#[test]
fn overrun_drops_count_and_gap_marks_the_spot() {
    let (mut p, mut c) = mem_ring(512);
    // Fill: 40-byte records, 56-byte frames.
    let mut seq = 0u64;
    while p.push(&heartbeat(seq)).unwrap() == Pushed::Written {
        seq += 1;
    }
    let first_lost = seq;
    // Three more lost.
    for _ in 0..3 {
        seq += 1;
        assert_eq!(p.push(&heartbeat(seq)).unwrap(), Pushed::Dropped);
    }
    assert_eq!(p.stats().dropped, 4);
    assert_eq!(p.stats().pending_lost, 4);
    assert_eq!(c.producer_dropped(), 4);
    // Drain what was written.
    for s in 0..first_lost {
        let v = c.pop().unwrap().unwrap();
        assert_eq!(v.meta.global_tick_id, s);
    }
    assert!(c.pop().unwrap().is_none());
    // The next record goes in behind a gap naming exactly the lost records.
    seq += 1;
    assert_eq!(p.push(&heartbeat(seq)).unwrap(), Pushed::Written);
    let v = c.pop().unwrap().unwrap();
    let g = gap_of(&v).expect("a gap precedes the next record");
    assert_eq!(g.reason, GapReason::RingOverrun);
    assert_eq!(
        (g.expected, g.received, g.lost),
        (first_lost, first_lost + 4, 4)
    );
    // The gap is stamped with the first lost record's times, and no token.
    assert_eq!(v.meta.token_id, 0);
    assert_eq!(v.meta.exchange_ts_ns, 1_000 + first_lost);
    assert_eq!(c.pop().unwrap().unwrap().meta.global_tick_id, seq);
    assert_eq!(p.stats().overrun_gaps, 1);
    assert_eq!(p.stats().pending_lost, 0);
}

#[test]
fn try_push_counts_nothing_and_flush_gap_announces_a_loss() {
    let (mut p, mut c) = mem_ring(512);
    let mut n = 0;
    while p.try_push(&heartbeat(n)).unwrap() {
        n += 1;
    }
    assert_eq!(p.stats().dropped, 0);
    assert_eq!(p.push(&heartbeat(n)).unwrap(), Pushed::Dropped);
    assert!(!p.flush_gap(), "no room for the gap yet");
    while c.pop().unwrap().is_some() {}
    assert!(p.flush_gap());
    let g = gap_of(&c.pop().unwrap().unwrap()).unwrap();
    assert_eq!((g.expected, g.received, g.lost), (n, n + 1, 1));
    assert!(c.pop().unwrap().is_none());
}

#[test]
fn staged_records_are_invisible_until_published() {
    let (mut p, mut c) = mem_ring(1024);
    p.stage(&heartbeat(1)).unwrap();
    p.stage(&heartbeat(2)).unwrap();
    assert!(c.pop().unwrap().is_none());
    p.publish();
    assert_eq!(c.pop().unwrap().unwrap().meta.global_tick_id, 1);
    assert_eq!(c.pop().unwrap().unwrap().meta.global_tick_id, 2);
}

#[test]
fn invalid_records_are_refused_not_written() {
    let (mut p, mut c) = mem_ring(512);
    let mut bad = heartbeat(1);
    bad[2] = 48; // header says 48, slice is 40
    assert!(matches!(
        p.push(&bad),
        Err(PushError::BadRecord { len: 40 })
    ));
    assert!(matches!(
        p.push(&[0u8; 12]),
        Err(PushError::BadRecord { .. })
    ));
    assert!(matches!(
        p.push(&snapshot(1, 8)),
        Err(PushError::TooLarge { .. })
    ));
    assert!(c.pop().unwrap().is_none());
    assert_eq!(p.stats().dropped, 0);
}

#[test]
fn create_is_exclusive_and_checks_capacity() {
    let dir = shm_dir();
    let path = ring_path(&dir, "r");
    let _p = create(&path, MIN_SHM_CAPACITY, Access::Owner).unwrap();
    assert!(matches!(
        create(&path, MIN_SHM_CAPACITY, Access::Owner),
        Err(RingError::AlreadyExists { .. })
    ));
    for bad in [
        MIN_SHM_CAPACITY / 2,
        MIN_SHM_CAPACITY + 8,
        MAX_SHM_CAPACITY * 2,
    ] {
        let e = create(&ring_path(&dir, "x"), bad, Access::Owner)
            .err()
            .unwrap();
        assert!(matches!(e, RingError::BadCapacity { .. }), "{e}");
        assert!(!ring_path(&dir, "x").exists());
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);
}

#[test]
fn group_rings_are_0640() {
    let dir = shm_dir();
    let path = ring_path(&dir, "g");
    // SAFETY: getegid cannot fail.
    let gid = unsafe { libc::getegid() };
    let _p = create(&path, MIN_SHM_CAPACITY, Access::Group(gid)).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = std::fs::metadata(&path).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o640);
    assert_eq!(md.gid(), gid);
    attach(&path, &AttachOptions::default()).unwrap();
}

#[test]
fn one_consumer_at_a_time_and_a_restarted_consumer_resumes() {
    let dir = shm_dir();
    let path = ring_path(&dir, "r");
    let mut p = create(&path, MIN_SHM_CAPACITY, Access::Owner).unwrap();
    for s in 0..10 {
        p.push(&heartbeat(s)).unwrap();
    }
    {
        let mut c = attach(&path, &AttachOptions::default()).unwrap();
        assert!(matches!(
            attach(&path, &AttachOptions::default()),
            Err(RingError::Busy { .. })
        ));
        for s in 0..4 {
            assert_eq!(c.pop().unwrap().unwrap().meta.global_tick_id, s);
        }
    }
    let mut c = attach(&path, &AttachOptions::default()).unwrap();
    for s in 4..10 {
        assert_eq!(c.pop().unwrap().unwrap().meta.global_tick_id, s);
    }
    assert!(c.pop().unwrap().is_none());
    drop(c);
    let e = attach(
        &path,
        &AttachOptions {
            capacity: Some(MIN_SHM_CAPACITY * 2),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(matches!(e, RingError::CapacityMismatch { .. }), "{e}");
}
