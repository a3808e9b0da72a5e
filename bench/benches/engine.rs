//! Tick engine on the real BTCUSDT capture: update ns/event (TSC per event, p50/p99/p99.9/max
//! over 5 passes after a warm-up pass), snapshot encode/decode ns, and recovery (newest
//! snapshot + tail replay) against a full replay of the same log, and the snapshot store's
//! durable writes of many tokens at once: one batch against one write per token, interleaved,
//! on the real disk (`target/`). Prints markdown tables.

use chronicle_bench::{imported_capture, records, row};
use chronicle_engine::TokenEngine;
use chronicle_protocol::Record;
use chronicle_state::log::TokenLog;
use chronicle_state::recovery::{catch_up, Cadence};
use chronicle_state::store::{Pending, SnapshotStore};
use hdrhistogram::Histogram;
use std::hint::black_box;
use std::time::Instant;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; this harness has no tests.
    }
    let Some((_dir, data)) = imported_capture() else {
        return;
    };
    let recs = records(&data);
    let decoded: Vec<Record<'_>> = recs.iter().map(|b| Record::decode(b).unwrap()).collect();
    let clock = quanta::Clock::new();
    let mut update = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    let mut pass_ns = Vec::new();
    for pass in 0..6 {
        let mut e = TokenEngine::new(1);
        let t = Instant::now();
        for r in &decoded {
            let t0 = clock.raw();
            black_box(e.apply(black_box(r)).unwrap());
            let ns = clock.delta_as_nanos(t0, clock.raw());
            if pass > 0 {
                update.saturating_record(ns.max(1));
            }
        }
        if pass > 0 {
            pass_ns.push(t.elapsed().as_nanos() as f64 / decoded.len() as f64);
        }
    }
    pass_ns.sort_by(|a, b| a.partial_cmp(b).unwrap());

    // Snapshot encode and decode of the final state.
    let mut e = TokenEngine::new(1);
    for r in &decoded {
        e.apply(r).unwrap();
    }
    let mut enc = Histogram::<u64>::new(3).unwrap();
    let mut dec = Histogram::<u64>::new(3).unwrap();
    let snap = e.snapshot(12345);
    for _ in 0..200_000 {
        let t0 = clock.raw();
        black_box(black_box(&e).snapshot(12345));
        enc.saturating_record(clock.delta_as_nanos(t0, clock.raw()).max(1));
        let t0 = clock.raw();
        black_box(TokenEngine::restore(black_box(&snap)).unwrap());
        dec.saturating_record(clock.delta_as_nanos(t0, clock.raw()).max(1));
    }

    // Recovery: snapshots every 60 s of exchange time (the newest ~1 s before the end of the
    // 2024-08-08 partition), then catch up the tail; against a full replay.
    let log = TokenLog::new(vec![data.join("v1/binance-usdm/btcusdt")]);
    let store = SnapshotStore::new(&data, 16);
    catch_up(
        &store,
        &log,
        1,
        Some(Cadence {
            every_ns: 60_000_000_000,
            at_end: true,
        }),
    )
    .unwrap();
    // Drop the final snapshot so recovery has a tail to replay.
    let newest = store.list(1).unwrap().remove(0);
    std::fs::remove_file(newest).unwrap();
    let mut rec_ms = Vec::new();
    let mut full_ms = Vec::new();
    let mut tail = 0;
    for _ in 0..7 {
        let t = Instant::now();
        let (r, _) = catch_up(&store, &log, 1, None).unwrap();
        rec_ms.push(t.elapsed().as_secs_f64() * 1e3);
        tail = r.replayed;
        let empty = SnapshotStore::new(&data.join("no-snapshots"), 2);
        let t = Instant::now();
        black_box(catch_up(&empty, &log, 1, None).unwrap());
        full_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    rec_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    full_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());

    println!(
        "\n## chronicle-engine on the BTCUSDT capture ({} records)\n",
        decoded.len()
    );
    println!("| stage (ns) | n | p50 | p99 | p99.9 | max |");
    println!("|---|---|---|---|---|---|");
    println!(
        "{}",
        row("engine update, per event (TSC around apply)", &update)
    );
    println!("{}", row("snapshot encode (336 B)", &enc));
    println!("{}", row("snapshot decode + validate", &dec));
    println!("\nwhole-pass mean per event: median {:.1} ns over 5 passes (includes the loop, no TSC reads excluded)", pass_ns[2]);
    println!(
        "recovery: newest snapshot + {tail}-record tail {:.2} ms (median of 7) vs full replay of {} records {:.2} ms: {:.1}x faster",
        rec_ms[3],
        decoded.len(),
        full_ms[3],
        full_ms[3] / rec_ms[3]
    );
    snapshot_store(&e);
}

/// A flush that snapshots `TOKENS` tokens at once (they all crossed the cadence): one
/// `write_batch` against `TOKENS` calls of `write`, in interleaved rounds.
fn snapshot_store(e: &TokenEngine) {
    const TOKENS: u64 = 1_000;
    const ROUNDS: u64 = 7;
    let dir = tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")).unwrap();
    let store = SnapshotStore::new(dir.path(), 4);
    let bytes = e.snapshot(12345);
    let batch = |round: u64| -> Vec<Pending> {
        (1..=TOKENS)
            .map(|token_id| Pending {
                token_id,
                bytes,
                // A second per round: distinct file names.
                clock_ns: 1_723_075_200_000_000_000 + round * 1_000_000_000,
            })
            .collect()
    };
    // The first round creates the token directories; not timed.
    store.write_batch(&batch(0)).unwrap();
    let (mut batched_ms, mut single_ms) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let b = batch(2 * round);
        let t = Instant::now();
        store.write_batch(&b).unwrap();
        batched_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let b = batch(2 * round + 1);
        let t = Instant::now();
        for p in &b {
            store.write(p.token_id, &p.bytes, p.clock_ns).unwrap();
        }
        single_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    for v in [&mut batched_ms, &mut single_ms] {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    }
    let show = |v: &[f64]| {
        format!(
            "{:.1} / {:.1} / {:.1}",
            v[0],
            v[v.len() / 2],
            v[v.len() - 1]
        )
    };
    println!("\n## snapshot store: {TOKENS} tokens snapshotted durably by one flush ({ROUNDS} interleaved rounds)\n");
    println!("| write | min / median / max ms | per snapshot (median) |");
    println!("|---|---|---|");
    println!(
        "| one batch (`write_batch`) | {} | {:.1} µs |",
        show(&batched_ms),
        batched_ms[ROUNDS as usize / 2] * 1e3 / TOKENS as f64
    );
    println!(
        "| one `write` per token (reference) | {} | {:.1} µs |",
        show(&single_ms),
        single_ms[ROUNDS as usize / 2] * 1e3 / TOKENS as f64
    );
    println!(
        "\nbatched / one by one, medians: {:.3}x",
        batched_ms[ROUNDS as usize / 2] / single_ms[ROUNDS as usize / 2]
    );
}
