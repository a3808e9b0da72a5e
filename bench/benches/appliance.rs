//! One shard at full speed with persistence: the BTCUSDT capture's venue events (looped with
//! shifted timestamps) pushed from memory into the shard's /dev/shm ring by a pinned feed
//! thread, refined, engined, flushed every 250 ms with O_DIRECT. Reports sustained events/s
//! (zero drops: the feed waits on a full ring and says how often), the shard's stage
//! histograms (the hot path is read → next read, so its tail is the longest pause between two
//! ring reads, seals and flush completions included) against the noise floor of the shard's
//! core in the same run, flush cadence, a batch of 1,000 tokens' snapshots, and disk bytes/s
//! against `fio` writing the same volume sequentially with O_DIRECT through io_uring in the
//! same run (if fio is installed).

use chronicle_bench::{imported_capture, records};
use chronicle_etl::RefineryConfig;
use chronicle_feed::clock::monotonic_ns;
use chronicle_protocol::{Body, BookSnapshot, Declaration, Record, RecordView};
use chronicle_runtime::shard::{self, ShardSettings};
use chronicle_runtime::stats::{PublishClock, Stage};
use chronicle_storage::meta::Source;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LOOPS: u64 = 20;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    chronicle_runtime::tune_allocator();
    let Some((_dir, data)) = imported_capture() else {
        return;
    };
    let all = records(&data);
    // The venue's events only: the shard's refinery makes its own definitions and injections.
    let events: Vec<Vec<u8>> = all
        .iter()
        .filter(|b| match Record::decode(b).unwrap().body {
            Body::Definition(_) => false,
            Body::BookSnapshot(s) => s.flags & BookSnapshot::FLAG_INJECTED == 0,
            _ => true,
        })
        .cloned()
        .collect();
    let declaration = all
        .iter()
        .find_map(|b| match Record::decode(b).unwrap() {
            Record {
                meta,
                body: Body::Definition(d),
            } => Some(Declaration::live(d).record(meta.token_id).to_vec().unwrap()),
            _ => None,
        })
        .unwrap();
    let first = RecordView::parse(&events[0]).unwrap().meta;
    let last = RecordView::parse(events.last().unwrap()).unwrap().meta;
    let span = last.exchange_ts_ns.max(last.receive_ts_ns)
        - first.exchange_ts_ns.min(first.receive_ts_ns)
        + 1_000_000;

    let out = tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")).unwrap();
    // The shard resolves the token's symbol from dim_symbol.
    std::fs::create_dir_all(out.path().join("v1")).unwrap();
    std::fs::copy(
        data.join("v1/dim_symbol.json"),
        out.path().join("v1/dim_symbol.json"),
    )
    .unwrap();
    let ring = format!("/dev/shm/chronicle-bench-{}", std::process::id());
    let mut producer =
        chronicle_feed::create(ring.as_ref(), 64 << 20, chronicle_feed::Access::Owner).unwrap();
    let consumer = chronicle_feed::attach(ring.as_ref(), &Default::default()).unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut refinery = RefineryConfig::new(
        out.path().to_owned(),
        Source {
            kind: "feed".into(),
            format: "bench".into(),
            file: None,
        },
    );
    refinery.append_existing = true;
    refinery.backend = chronicle_etl::Backend::Sealed;
    let settings = ShardSettings {
        index: 0,
        cpu: cores - 1,
        shard_cpus: vec![cores - 1],
        refinery,
        flush_interval: Duration::from_millis(250),
        snapshot_every_ns: 60_000_000_000,
        retain: 4,
        io_memory_bytes: 2 << 20,
        metrics: None,
    };
    let done = Arc::new(AtomicBool::new(false));
    let handle = shard::spawn(
        settings,
        consumer,
        done.clone(),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    chronicle_feed::feed::pin_current_thread(0);

    let mut buf = vec![0u8; 65536];
    // Each record its own publication, stamped (as `chronicle run`'s bounded feed does), so
    // the shard records ring publish → read.
    let mut push = |bytes: &[u8], waits: &mut u64| {
        while !producer.try_stage(bytes).unwrap() {
            *waits += 1;
            std::hint::spin_loop();
        }
        producer.publish();
    };
    let mut waits = 0u64;
    push(&declaration, &mut waits);
    let start = Instant::now();
    let mut n = 0u64;
    for l in 0..LOOPS {
        for e in &events {
            let b = &mut buf[..e.len()];
            b.copy_from_slice(e);
            let mut m = RecordView::parse(b).unwrap().meta;
            m.global_tick_id = 0;
            m.exchange_ts_ns += l * span;
            m.receive_ts_ns += l * span;
            m.write_into(b);
            push(b, &mut waits);
            n += 1;
        }
    }
    let fed = start.elapsed();
    done.store(true, Ordering::Release);
    let report = handle.join().unwrap().unwrap();
    let elapsed = start.elapsed();
    let _ = std::fs::remove_file(&ring);

    println!(
        "\n## one shard, BTCUSDT capture x{LOOPS} ({n} events), feed on core 0, shard on core {}\n",
        cores - 1
    );
    println!("sustained ingest with persistence: {:.2} M events/s ({} events in {:.2} s; feed done after {:.2} s; ring drops 0, feed waited on a full ring {waits} times)",
        n as f64 / elapsed.as_secs_f64() / 1e6, n, elapsed.as_secs_f64(), fed.as_secs_f64());
    println!(
        "O_DIRECT verified: {}; {} flushes, {} missed deadlines, {} deadlines that waited for the flush in flight, {} waits for the token's declaration (its hold full at the start), {} O_DIRECT writes\n",
        report.o_direct_verified,
        report.flushes,
        report.missed_deadlines,
        report.flush_waits,
        report.declaration_waits,
        report.direct_writes
    );
    println!("| stage | n | p50 | p99 | p99.9 | max |\n|---|---|---|---|---|---|");
    for st in report.stats.stages() {
        let h = &st.hist;
        if !h.is_empty() {
            println!(
                "| {} | {} | {} ns | {} ns | {} ns | {} ns |",
                st.name,
                h.len(),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max()
            );
        }
    }
    let disk = report.direct_bytes as f64 / elapsed.as_secs_f64() / (1 << 20) as f64;
    println!(
        "\nsegment bytes written with O_DIRECT: {} ({disk:.1} MiB/s over the run)",
        report.direct_bytes
    );
    fio(out.path(), report.direct_bytes);
    let floor = chronicle_testkit::floor::measure(cores - 1, FLOOR_SECS);
    let hot = &report.stats.hot_path.hist;
    println!(
        "\nlongest pauses between two ring reads with records waiting (hot path tail): p99.9 {} ns, max {} ns; the shard core's own gaps: p99.9 {} ns, max {} ns\n",
        hot.value_at_quantile(0.999),
        hot.max(),
        floor.gaps.value_at_quantile(0.999),
        floor.gaps.max()
    );
    print!("{}", chronicle_testkit::floor::table(&[floor], FLOOR_SECS));
    snapshot_batches(out.path());
    recording_cost();
}

/// Seconds of the noise-floor measurement on the shard's core, after the run.
const FLOOR_SECS: f64 = 3.0;

/// A batch of 1,000 tokens' snapshots written by the store (files, manifest, syncs), as the
/// snapshot writer thread does after a flush: five batches, on the real disk.
fn snapshot_batches(dir: &std::path::Path) {
    let store = chronicle_state::store::SnapshotStore::new(&dir.join("snapshot-bench"), 2);
    let mut ns = Vec::new();
    for round in 0..5u64 {
        let batch: Vec<_> = (1..=1_000u64)
            .map(|t| chronicle_state::store::Pending {
                token_id: t,
                bytes: chronicle_engine::TokenEngine::new(t).snapshot(round),
                clock_ns: 1_723_075_200_000_000_000 + round * 60_000_000_000,
            })
            .collect();
        let t = Instant::now();
        store.write_batch(&batch).unwrap();
        ns.push(t.elapsed().as_nanos() as u64);
    }
    ns.sort_unstable();
    println!(
        "\nsnapshot batch of 1,000 tokens (snapshot writer thread, off the shard core): p50 {:.1} ms, max {:.1} ms over {} batches",
        ns[ns.len() / 2] as f64 / 1e6,
        ns[ns.len() - 1] as f64 / 1e6,
        ns.len()
    );
}

/// What latency recording adds per event on the hot path: two TSC reads and an HDR record,
/// the exact sequence the shard runs, against the same loop without it; then the two Zone 1
/// stages, each against the same loop without its recording.
fn recording_cost() {
    let clock = quanta::Clock::new();
    let mut h = Stage::new("hot_path", "hot path (ring→buffer)").hist;
    const N: u64 = 20_000_000;
    let mut acc = 0u64;
    let per_iteration = |t: Instant| t.elapsed().as_nanos() as f64 / N as f64;
    let t = Instant::now();
    for i in 0..N {
        acc = acc.wrapping_add(std::hint::black_box(i));
    }
    let base = per_iteration(t);
    let t = Instant::now();
    for i in 0..N {
        let t0 = clock.raw();
        acc = acc.wrapping_add(std::hint::black_box(i));
        h.saturating_record(clock.delta_as_nanos(t0, clock.raw()).max(1));
    }
    let with = per_iteration(t);
    println!("\nrecording cost: {:.1} ns per event (TSC pair + HDR record: {with:.1} ns/iteration vs {base:.1} ns without)", with - base);

    // Ring publish → shard read, per record: the shard's TSC read at the pop is taken anyway
    // (hot path); recording places it on CLOCK_MONOTONIC (PublishClock, an anchor every
    // 100 µs) and records the age of the ring's stamp.
    let mut stage = Stage::new("publish_to_read", "ring publish → shard read");
    let mut publish_clock = PublishClock::default();
    let published = monotonic_ns();
    let t = Instant::now();
    for i in 0..N {
        let t0 = clock.raw();
        acc = acc.wrapping_add(std::hint::black_box(i) ^ t0);
    }
    let base = per_iteration(t);
    let t = Instant::now();
    for i in 0..N {
        let t0 = clock.raw();
        acc = acc.wrapping_add(std::hint::black_box(i) ^ t0);
        publish_clock.record(&mut stage, &clock, published, t0);
    }
    let with = per_iteration(t);
    assert_eq!(stage.hist.len(), N, "every record recorded");
    println!("recording cost, ring publish → shard read: {:.1} ns per record ({with:.1} ns/iteration vs {base:.1} ns with only the TSC read)", with - base);

    // Feed receive → ring publish, per datagram: the publication reads CLOCK_MONOTONIC for
    // its stamp anyway; recording adds the read at receive and one HDR record (of all the
    // datagram's records for a shard at once).
    let t = Instant::now();
    for i in 0..N {
        acc = acc.wrapping_add(std::hint::black_box(i) ^ monotonic_ns());
    }
    let base = per_iteration(t);
    let t = Instant::now();
    for i in 0..N {
        let received = monotonic_ns();
        let stamp = monotonic_ns();
        acc = acc.wrapping_add(std::hint::black_box(i) ^ stamp);
        h.saturating_record_n(stamp.saturating_sub(received).max(1), 17);
    }
    let with = per_iteration(t);
    std::hint::black_box(acc);
    println!("recording cost, feed receive → ring publish: {:.1} ns per datagram, {:.2} ns per record at 17 records a datagram ({with:.1} ns/iteration vs {base:.1} ns with only the publication's clock read)", with - base, (with - base) / 17.0);
}

/// fio writing the same volume sequentially with O_DIRECT through io_uring, 1 MiB blocks.
fn fio(dir: &std::path::Path, bytes: u64) {
    let size = bytes.div_ceil(1 << 20).max(1) << 20;
    let file = dir.join("fio.bin");
    let out = std::process::Command::new("fio")
        .args([
            "--name=seq",
            "--rw=write",
            "--bs=1M",
            "--direct=1",
            "--ioengine=io_uring",
            "--end_fsync=1",
            "--output-format=json",
        ])
        .arg(format!("--filename={}", file.display()))
        .arg(format!("--size={size}"))
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            // "bw_bytes" of the write job, without a JSON dependency for one number.
            let bw = text
                .split("\"bw_bytes\" : ")
                .nth(2)
                .and_then(|s| s.split(',').next())
                .and_then(|s| s.trim().parse::<f64>().ok());
            match bw {
                Some(b) => println!(
                    "fio (same {size} bytes, sequential, O_DIRECT, io_uring, 1 MiB): {:.1} MiB/s",
                    b / (1 << 20) as f64
                ),
                None => println!("fio ran but its bandwidth could not be read"),
            }
        }
        _ => println!("fio: not installed (apt-get install fio) — no disk reference in this run"),
    }
    let _ = std::fs::remove_file(file);
}
