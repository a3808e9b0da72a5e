//! Deriving the real capture's largest partition (imported from `shared/data` in the setup;
//! without it the bench skips), interleaved in the same run with two references on the
//! same `book.q`, all from the page cache:
//! - `scan`: the reader's walk of every frame with each body decoded (what any consumer pays);
//! - `zstd -3`: the zstd CLI compressing the same bytes single-threaded to /dev/null (the cold
//!   move's transcode costs about this).
//!
//! Wall-clock median and range over the runs, and the Deriver's CPU time (this thread's, from
//! `/proc/thread-self/schedstat`), which other processes on a busy machine do not inflate.
//! Sizes: `book.q`, the Parquet file, and the zstd stream. Run:
//! `cargo bench -p chronicle-derive --bench derive`.

use chronicle_derive::derive_partition;
use chronicle_reader::{Partition, TimeRange};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const RUNS: usize = 11;
const CAPTURE: &str = "binance-usdm-btcusdt-20240808.gz";

fn thread_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    s.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn import(dir: &Path) -> Option<PathBuf> {
    let capture = chronicle_testkit::shared_data(CAPTURE)?;
    let data = dir.join("data");
    let mut sink = chronicle_import::PartitionSink::new(
        &data,
        chronicle_storage::meta::Source {
            kind: "import".into(),
            format: "binance-capture".into(),
            file: None,
        },
    )
    .unwrap();
    chronicle_import::binance::import(&capture, "binance-usdm", &mut sink).unwrap();
    sink.finish().unwrap();
    Some(data.join("v1/binance-usdm/btcusdt/2024-08-08"))
}

fn stats(name: &str, ns: &mut [u64], rows: u64) {
    ns.sort_unstable();
    let ms = |v: u64| v as f64 / 1e6;
    let med = ns[ns.len() / 2];
    println!(
        "| {name} | {:.1} | {:.1} .. {:.1} | {:.2} |",
        ms(med),
        ms(ns[0]),
        ms(ns[ns.len() - 1]),
        rows as f64 / (med as f64 / 1e9) / 1e6
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; this harness has no tests.
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let Some(part) = import(dir.path()) else {
        return;
    };
    let q = part.join("book.q");
    let out = part.join(chronicle_derive::DERIVED_FILE);
    let zstd = Command::new("zstd").arg("--version").output().is_ok();
    if !zstd {
        eprintln!(
            "*** no zstd CLI on PATH: the zstd reference is left out (apt-get install zstd) ***"
        );
    }
    let (mut derive, mut cpu, mut scan, mut comp) = (vec![], vec![], vec![], vec![]);
    let mut rows = 0;
    let mut bytes = 0;
    for _ in 0..RUNS {
        let (t, c) = (Instant::now(), thread_cpu_ns());
        let s = derive_partition(&part, &out).unwrap();
        derive.push(t.elapsed().as_nanos() as u64);
        cpu.push(thread_cpu_ns() - c);
        (rows, bytes) = (s.rows, s.bytes);

        let t = Instant::now();
        let p = Partition::open(&part).unwrap();
        let mut n = 0u64;
        p.scan(TimeRange::ALL, |f| {
            n += f.record.decode().is_ok() as u64;
            ControlFlow::Continue(())
        })
        .unwrap();
        scan.push(t.elapsed().as_nanos() as u64);
        assert_eq!(n, rows);

        if zstd {
            let t = Instant::now();
            let st = Command::new("zstd")
                .args(["-3", "--single-thread", "-q", "-c"])
                .arg(&q)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            comp.push(t.elapsed().as_nanos() as u64);
            assert!(st.success());
        }
    }
    let q_len = std::fs::metadata(&q).unwrap().len();
    println!(
        "\n## chronicle-derive: {} ({q_len} bytes, {rows} records), {RUNS} runs",
        q.display()
    );
    println!("| what | median ms | range ms | M records/s at the median |\n|---|---|---|---|");
    stats("derive_partition (wall)", &mut derive, rows);
    stats("derive_partition (thread CPU)", &mut cpu, rows);
    stats("reader scan + decode (wall)", &mut scan, rows);
    if zstd {
        stats("zstd -3 --single-thread book.q (wall)", &mut comp, rows);
        let z = Command::new("zstd")
            .args(["-3", "--single-thread", "-q", "-c"])
            .arg(&q)
            .output()
            .unwrap();
        println!(
            "\nsizes: book.q {q_len}, book.parquet {bytes} ({:.3}× book.q), zstd -3 of book.q {} (parquet {:.3}× of it)",
            bytes as f64 / q_len as f64,
            z.stdout.len(),
            bytes as f64 / z.stdout.len() as f64
        );
    } else {
        println!("\nsizes: book.q {q_len}, book.parquet {bytes}");
    }
}
