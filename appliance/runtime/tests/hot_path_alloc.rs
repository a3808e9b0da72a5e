//! The real shard loop allocates nothing once warm: `shard::spawn` runs its executor, ring
//! read → decode → refinery (late check, book, tick id, encode and frame into the partition's
//! flush buffer) → engine update, with its latency recording, snapshot points, a whole-shard
//! gap and the flush hand-offs between drains. A counting global allocator is armed on the
//! shard's thread at the start of each drain of its ring and read at its end (the shard's
//! drain probe), over 300,000 records of a realistic book-and-trades stream after as many of
//! warm-up.

use chronicle_etl::{Backend, RefineryConfig};
use chronicle_protocol::{
    Bbo, Body, BookSnapshot, Declaration, Definition, FixedStr, Gap, GapReason, Level, LevelUpdate,
    Levels, Meta, Record, Side, Trade, UNDEF,
};
use chronicle_runtime::shard::{self, ShardSettings};
use chronicle_storage::meta::Source;
use chronicle_testkit::alloc::{arm, disarm, CountingAllocator};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Set once the warm-up is over: drains that start after it are counted.
static WARM: AtomicBool = AtomicBool::new(false);
/// Allocations of each counted drain, in order.
static COUNTS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn probe(entering: bool) {
    if entering && WARM.load(Ordering::Acquire) {
        arm();
        COUNTING.with(|c| c.set(true));
    } else if !entering && COUNTING.with(|c| c.replace(false)) {
        let n = disarm();
        COUNTS.lock().unwrap().push(n);
    }
}

const T0: u64 = 1_723_118_400_000_000_000; // 2024-08-08T12:00:00Z: no day change in the run

/// The i-th event of a deterministic stream: level updates around a moving mid, quotes,
/// trades, every one 1 ms apart (so minute boundaries, and book injections, are crossed).
fn event(i: u64) -> (u64, Body<'static>) {
    let mid = 618_000 + (i / 97 % 40) as i64;
    let ts = T0 + i * 1_000_000;
    let body = match i % 5 {
        0 | 1 => Body::LevelUpdate(LevelUpdate {
            side: if i.is_multiple_of(2) {
                Side::Bid
            } else {
                Side::Ask
            },
            flags: 1,
            price: if i.is_multiple_of(2) {
                mid - 1 - (i % 50) as i64
            } else {
                mid + 1 + (i % 50) as i64
            },
            quantity: (i % 7) as i64,
            first_update_id: i,
            last_update_id: i,
            prev_update_id: i - 1,
        }),
        2 | 3 => Body::Bbo(Bbo {
            bid_price: mid - 1,
            bid_quantity: 5,
            ask_price: mid + 1,
            ask_quantity: 6,
            update_id: i,
        }),
        _ => Body::Trade(Trade {
            aggressor: Side::Bid,
            flags: 0,
            price: mid + 1,
            quantity: 3,
            trade_id: i,
        }),
    };
    (ts, body)
}

fn encode(rec: &Record<'_>, buf: &mut [u8]) -> usize {
    rec.encode(buf).unwrap()
}

/// A venue book snapshot of 200 levels a side at `ts`, encoded into `buf`.
fn book_snapshot(ts: u64, buf: &mut [u8]) -> usize {
    let levels: Vec<Level> = (1..=200)
        .map(|k| Level {
            price: 618_000 - k,
            quantity: 1_000,
        })
        .chain((1..=200).map(|k| Level {
            price: 618_000 + k,
            quantity: 1_000,
        }))
        .collect();
    let rec = Record {
        meta: Meta {
            token_id: 1,
            global_tick_id: 0,
            exchange_ts_ns: ts,
            receive_ts_ns: ts,
        },
        body: Body::BookSnapshot(BookSnapshot {
            update_id: 0,
            chunk: 0,
            flags: BookSnapshot::FLAG_LAST_CHUNK,
            bid_count: 200,
            ask_count: 200,
            levels: Levels::Slice(&levels),
        }),
    };
    encode(&rec, buf)
}

/// Pushes a record, waiting while the ring is full (the shard drains it).
fn push(p: &mut chronicle_feed::Producer, bytes: &[u8]) {
    while !p.try_push(bytes).unwrap() {
        std::thread::yield_now();
    }
}

/// Events `from..to`, a whole-shard gap in the middle; `paced`: in chunks of 2,000 with a
/// pause after each (a steady feed), else as fast as the shard takes them (a burst: the
/// largest flush interval there can be).
fn feed(p: &mut chronicle_feed::Producer, buf: &mut [u8], from: u64, to: u64, paced: bool) {
    for i in from..to {
        let (ts, body) = event(i);
        let meta = Meta {
            token_id: 1,
            global_tick_id: 0,
            exchange_ts_ns: ts,
            receive_ts_ns: ts,
        };
        let n = encode(&Record { meta, body }, buf);
        push(p, &buf[..n]);
        if i == (from + to) / 2 {
            // A ring overrun upstream: token 0, every token of the shard marked.
            let gap = Record {
                meta: Meta {
                    token_id: 0,
                    ..meta
                },
                body: Body::Gap(Gap {
                    reason: GapReason::RingOverrun,
                    expected: 0,
                    received: 0,
                    lost: 1,
                }),
            };
            let n = encode(&gap, buf);
            push(p, &buf[..n]);
            // The gap unsynced the book; a venue snapshot syncs it again.
            let n = book_snapshot(ts, buf);
            push(p, &buf[..n]);
        }
        if paced && i % 2_000 == 1_999 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn the_real_shard_loop_allocates_nothing_once_warm() {
    shard::set_drain_probe(probe);
    let dir = tempfile::tempdir().unwrap();
    let mut refinery = RefineryConfig::new(
        dir.path().to_owned(),
        Source {
            kind: "feed".into(),
            format: "test".into(),
            file: None,
        },
    );
    refinery.append_existing = true;
    refinery.backend = Backend::Sealed;
    let settings = ShardSettings {
        index: 0,
        cpu: 0,
        shard_cpus: vec![0],
        refinery,
        flush_interval: Duration::from_millis(100),
        snapshot_every_ns: 60_000_000_000,
        retain: 2,
        io_memory_bytes: 16 << 20,
        metrics: None,
    };
    let (mut producer, consumer) = chronicle_feed::mem_ring(1 << 22);
    let done = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicBool::new(false));
    let handle = shard::spawn(settings, consumer, done.clone(), failed.clone()).unwrap();

    let mut buf = vec![0u8; 65536];
    let def = Definition {
        venue: FixedStr::new("venue", "binance-usdm").unwrap(),
        raw_symbol: FixedStr::new("raw_symbol", "BTCUSDT").unwrap(),
        price_exponent: -1,
        quantity_exponent: -3,
        instrument_class: 0,
        tick_size: UNDEF,
        lot_size: UNDEF,
        symbol_id: 1,
        expiration_ns: 0,
    };
    let declare = Declaration::live(def).record(1);
    let n = encode(&declare, &mut buf);
    push(&mut producer, &buf[..n]);
    // A venue snapshot syncs the book, so injections happen at minute boundaries.
    let n = book_snapshot(T0, &mut buf);
    push(&mut producer, &buf[..n]);

    // Warm-up: the token installed, the partition opened, buffers grown (a burst among
    // them), flushes done.
    feed(&mut producer, &mut buf, 1, 200_000, true);
    feed(&mut producer, &mut buf, 200_000, 300_000, false);
    std::thread::sleep(Duration::from_millis(300));
    WARM.store(true, Ordering::Release);
    // The drain running now began before: counting starts with the next one.
    std::thread::sleep(Duration::from_millis(300));
    feed(&mut producer, &mut buf, 300_000, 600_000, true);
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::Release);
    let report = handle.join().unwrap().unwrap();
    assert!(!failed.load(Ordering::Acquire));

    let counts = COUNTS.lock().unwrap().clone();
    assert_eq!(
        report.events, 600_003,
        "the snapshots and every event refined"
    );
    assert!(
        report.stats.hot_path.hist.len() > 500_000,
        "recording was on"
    );
    assert!(
        report.counters.injected_snapshots >= 9,
        "minute boundaries crossed: {:?}",
        report.counters
    );
    assert!(report.snapshots >= 9, "snapshot points passed");
    assert_eq!(report.ring_gaps, 3, "every whole-shard gap handled");
    assert!(
        counts.len() >= 10,
        "drains counted after the warm-up (flushes every 100 ms): {counts:?}"
    );
    assert!(
        counts.iter().all(|&n| n == 0),
        "allocations per drain of the real loop after warm-up: {counts:?}"
    );
}
