//! The hot path — ring read → decode → refinery (late check, book, tick id, encode and frame
//! into the partition's flush buffer) → engine update — allocates nothing once a token's
//! partition is open and its buffer has grown to a flush's worth. Counted by a global
//! allocator over 200,000 records of a realistic book-and-trades stream, with the shard's
//! latency recording on (TSC reads into the stage histograms exactly as `shard.rs` does, the
//! ring's publication stamps timed by `PublishClock` included, after a hand-off to the metrics
//! thread swapped fresh histograms in).

use chronicle_engine::TokenEngine;
use chronicle_etl::{Refinery, RefineryConfig};
use chronicle_protocol::{
    Bbo, Body, BookSnapshot, Definition, FixedStr, Level, LevelUpdate, Levels, Meta, Record, Side,
    Trade, UNDEF,
};
use chronicle_runtime::stats::{PublishClock, ShardStats};
use chronicle_storage::meta::Source;
use chronicle_storage::symbols::DimSymbol;
use chronicle_testkit::alloc::{allocations, CountingAllocator};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const T0: u64 = 1_723_118_400_000_000_000; // 2024-08-08T12:00:00Z: no day change in the run

/// The i-th event of a deterministic stream: level updates around a moving mid, quotes,
/// trades, every one 1 ms apart (so minute boundaries, and book injections, are crossed).
fn event(i: u64) -> (u64, Body<'static>) {
    let mid = 618_000 + (i / 97 % 40) as i64;
    let ts = T0 + i * 1_000_000;
    let body = match i % 5 {
        0 | 1 => Body::LevelUpdate(LevelUpdate {
            side: if i % 2 == 0 { Side::Bid } else { Side::Ask },
            flags: 1,
            price: if i % 2 == 0 {
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

#[test]
fn ring_to_buffer_and_engine_allocates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut symbols = DimSymbol::load(dir.path()).unwrap();
    symbols
        .resolve_or_register("binance-usdm", "BTCUSDT", 0)
        .unwrap();
    symbols.save().unwrap();
    let mut cfg = RefineryConfig::new(
        dir.path().to_owned(),
        Source {
            kind: "feed".into(),
            format: "test".into(),
            file: None,
        },
    );
    cfg.sync_every_bytes = None;
    let mut refinery = Refinery::new(cfg).unwrap();
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
    refinery.declare(1, def, None).unwrap();
    let mut engine = TokenEngine::new(1);
    let (mut producer, mut consumer) = chronicle_feed::mem_ring(1 << 20);

    // A venue snapshot syncs the book, so injections happen at minute boundaries.
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
    let snapshot = Body::BookSnapshot(BookSnapshot {
        update_id: 0,
        chunk: 0,
        flags: BookSnapshot::FLAG_LAST_CHUNK,
        bid_count: 200,
        ask_count: 200,
        levels: Levels::Slice(&levels),
    });

    let mut encoded = vec![0u8; 65536];
    let clock = quanta::Clock::new();
    let mut oldest_pending: Option<u64> = None;
    let mut publish_clock = PublishClock::default();
    let mut run = |refinery: &mut Refinery,
                   engine: &mut TokenEngine,
                   stats: &mut ShardStats,
                   from: u64,
                   to: u64| {
        for i in from..to {
            let (ts, body) = if i == 0 { (T0, snapshot) } else { event(i) };
            let n = Record {
                meta: Meta {
                    token_id: 1,
                    global_tick_id: 0,
                    exchange_ts_ns: ts,
                    receive_ts_ns: ts,
                },
                body,
            }
            .encode(&mut encoded)
            .unwrap();
            assert!(producer.try_stage(&encoded[..n]).unwrap());
            producer.publish();
            // --- the shard's hot path, recording on ---
            let t0 = clock.raw();
            let view = consumer.pop().unwrap().expect("just pushed");
            if oldest_pending.is_none() {
                oldest_pending = Some(t0);
            }
            let rec = view.decode().unwrap();
            let engine_stage = &mut stats.engine_update;
            let mut engine_ns = 0;
            let t_push = clock.raw();
            refinery
                .push(
                    rec.meta.token_id,
                    rec.meta.exchange_ts_ns,
                    rec.meta.receive_ts_ns,
                    rec.body,
                    &mut |a| {
                        let t = clock.raw();
                        engine.apply(a.record).unwrap();
                        let ns = clock.delta_as_nanos(t, clock.raw());
                        engine_ns += ns;
                        engine_stage.record(ns);
                    },
                )
                .unwrap();
            stats.buffer_append.record(
                clock
                    .delta_as_nanos(t_push, clock.raw())
                    .saturating_sub(engine_ns),
            );
            stats.hot_path.record(clock.delta_as_nanos(t0, clock.raw()));
            if let Some(published) = consumer.published_ns() {
                publish_clock.record(&mut stats.publish_to_read, &clock, published, t0);
            }
        }
    };
    let mut stats = ShardStats::default();
    let mut total = ShardStats::default();
    // Warm-up: opens the partition, grows the flush buffer to a flush's worth.
    run(&mut refinery, &mut engine, &mut stats, 0, 200_000);
    for w in refinery.partitions_mut() {
        w.sync().unwrap(); // the flush: buffer written, capacity kept
    }
    // The hand-off at a flush: the window goes to the metrics thread, fresh histograms in.
    let window = std::mem::take(&mut stats);
    total.add(&window);
    let handed = window.into_stages();
    assert!(handed
        .iter()
        .any(|(k, h)| *k == "hot_path" && h.len() == 200_000));
    let n = allocations(|| run(&mut refinery, &mut engine, &mut stats, 200_000, 400_000));
    assert_eq!(stats.hot_path.hist.len(), 200_000, "recording was on");
    assert!(stats.engine_update.hist.len() >= 200_000);
    assert_eq!(stats.buffer_append.hist.len(), 200_000);
    assert_eq!(
        stats.publish_to_read.hist.len(),
        200_000,
        "every record stamped"
    );
    assert!(
        refinery.counters.injected_snapshots >= 6,
        "minute boundaries crossed: {:?}",
        refinery.counters
    );
    assert_eq!(n, 0, "allocations on the hot path");
}
