//! Loom model of the ring (the same `ring.rs` logic, on an in-memory buffer): across
//! wrap-around, under every interleaving loom explores, nothing is lost, duplicated or
//! reordered, and on overrun the gap markers account exactly for the dropped records.
//! Record bytes (publication stamps included) live in `loom::cell::UnsafeCell`s there, so an
//! access not ordered by the head/tail Release/Acquire pair is reported as a data race.
//!
//! Not part of the default `cargo test`. Run (see docs/zone1.md):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p chronicle-feed --test loom --release \
//!     --target-dir target/loom
//! ```
#![cfg(loom)]

use chronicle_feed::{mem_ring_at, Pushed};
use chronicle_protocol::*;
use loom::thread;

/// 512-byte ring (the smallest), 96-byte frames (16-byte frame header, 80-byte records):
/// five frames fill it.
const CAPACITY: usize = 512;
/// Starting 104 bytes before the end: the second frame is behind a wrap marker, and later
/// ones wrap again.
const START: u64 = 512 * 1000 - 104;
/// Publish the consumer's tail every second frame only.
const COMMIT_EVERY: u64 = 192;

/// Record `seq` of the model's stream: a two-level book snapshot, 80 bytes.
fn record(seq: u64) -> Vec<u8> {
    let levels = [Level {
        price: seq as i64,
        quantity: 1,
    }; 2];
    let r = Record {
        meta: Meta {
            token_id: 1,
            global_tick_id: seq,
            exchange_ts_ns: seq,
            receive_ts_ns: seq,
        },
        body: Body::BookSnapshot(BookSnapshot {
            update_id: seq,
            chunk: 0,
            flags: BookSnapshot::FLAG_LAST_CHUNK,
            bid_count: 1,
            ask_count: 1,
            levels: Levels::Slice(&levels),
        }),
    }
    .to_vec()
    .unwrap();
    assert_eq!(r.len(), 80);
    r
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    // No preemption bound: these programs are small enough for loom to explore every
    // interleaving (seconds). `LOOM_MAX_PREEMPTIONS` still bounds it if set.
    loom::model::Builder::new().check(f);
}

/// Pops up to `polls` times (bounded: no spin loops in the model), checking each record
/// against the sequence; returns the next expected sequence and the records lost per gaps.
/// `stamped`: whether the producer publishes with a time (`publish`) or without (`push`,
/// `try_push`).
fn consume(
    c: &mut chronicle_feed::Consumer,
    polls: usize,
    mut next: u64,
    lost: &mut u64,
    stamped: bool,
) -> u64 {
    for _ in 0..polls {
        let Some(v) = c.pop().unwrap() else {
            thread::yield_now();
            continue;
        };
        if let Body::Gap(g) = v.decode().unwrap().body {
            assert_eq!(g.reason, GapReason::RingOverrun);
            assert_eq!(g.expected, next, "gap starts at the first missing record");
            assert!(g.lost > 0 && g.received == g.expected + g.lost, "{g:?}");
            *lost += g.lost;
            next = g.received;
        } else {
            assert_eq!(
                v.bytes,
                &record(next)[..],
                "record {next}: in order, intact, once"
            );
            next += 1;
        }
        // The stamp word is written before the head's Release store, like the record.
        assert_eq!(c.published_ns().is_some(), stamped, "publication stamp");
    }
    next
}

#[test]
fn lossless_across_wraparound() {
    // Four records from 104 bytes before the end of a lap: the second goes behind a wrap
    // marker, so the consumer crosses the wrap while the producer may still be writing.
    const N: u64 = 4;
    model(|| {
        let (mut p, mut c) = mem_ring_at(CAPACITY, START);
        let producer = thread::spawn(move || {
            for seq in 0..N {
                assert!(p.try_stage(&record(seq)).unwrap(), "four frames fit");
                p.publish();
            }
            p
        });
        let mut lost = 0;
        let next = consume(&mut c, 3, 0, &mut lost, true);
        let p = producer.join().unwrap();
        let next = consume(&mut c, N as usize + 1, next, &mut lost, true);
        assert_eq!((next, lost), (N, 0));
        assert_eq!(p.stats().written, N);
        assert!(c.pop().unwrap().is_none(), "nothing duplicated");
    });
}

#[test]
fn full_ring_reloads_tail_across_wraparound() {
    // Seven records through five slots: the producer finds the ring full, reloads the
    // consumer's (lazily published) tail and retries once; it stops at the first record that still does not
    // fit. Whatever prefix it wrote arrives whole, in order, once.
    const N: u64 = 7;
    model(|| {
        let (mut p, mut c) = mem_ring_at(CAPACITY, START);
        // Publish the tail every second frame only: the lazy path meets a full ring.
        c.set_commit_interval(COMMIT_EVERY);
        let producer = thread::spawn(move || {
            let mut written = 0;
            for seq in 0..N {
                let rec = record(seq);
                if !p.try_push(&rec).unwrap() {
                    thread::yield_now();
                    if !p.try_push(&rec).unwrap() {
                        break;
                    }
                }
                written += 1;
            }
            (p, written)
        });
        let mut lost = 0;
        let next = consume(&mut c, 3, 0, &mut lost, false);
        let (p, written) = producer.join().unwrap();
        let next = consume(&mut c, N as usize + 1, next, &mut lost, false);
        assert_eq!((next, lost), (written, 0));
        assert_eq!(p.stats().written, written);
        assert_eq!(p.stats().dropped, 0);
        assert!(c.pop().unwrap().is_none(), "nothing duplicated");
    });
}

#[test]
fn overrun_gaps_account_for_every_drop() {
    // The producer never waits: records that do not fit are dropped and the next one that
    // fits is preceded by a gap naming them. After both sides stop, the pending gap (if any)
    // is flushed; every record is then either delivered or inside exactly one gap.
    const N: u64 = 8;
    model(|| {
        let (mut p, mut c) = mem_ring_at(CAPACITY, START);
        c.set_commit_interval(COMMIT_EVERY);
        let producer = thread::spawn(move || {
            for seq in 0..N {
                let _: Pushed = p.push(&record(seq)).unwrap();
            }
            p
        });
        let mut lost = 0;
        let next = consume(&mut c, 3, 0, &mut lost, false);
        let mut p = producer.join().unwrap();
        let next = consume(&mut c, N as usize + 2, next, &mut lost, false);
        assert!(p.flush_gap(), "an empty ring has room for the final gap");
        let next = consume(&mut c, 2, next, &mut lost, false);
        let stats = p.stats();
        assert_eq!(next, N, "every record delivered or announced lost");
        assert_eq!(lost, stats.dropped, "gaps account exactly for the drops");
        assert_eq!(stats.written + stats.dropped, N);
        assert_eq!(stats.pending_lost, 0);
        assert!(c.pop().unwrap().is_none(), "nothing duplicated");
    });
}
