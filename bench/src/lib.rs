//! chronicle-bench: benchmarks only (see `benches/`). Run with `cargo bench -p chronicle-bench`.
//!
//! - `decode`: decode throughput of a real `.q` segment (the Binance BTCUSDT capture in
//!   `shared/data/`, imported in the bench's setup) against the same events encoded as an
//!   uncompressed DBN stream and decoded with the `dbn` crate.
//! - `engine`: tick-engine update ns/event (p50/p99 on the real capture), snapshot encode and
//!   decode, recovery from a snapshot against a full replay.
//! - `appliance`: one shard fed from memory as fast as it takes records: sustained ingest
//!   with persistence, flush duration and cadence, disk bytes/s against `fio`.
//! - `archive`: cold-tier seekable zstd: transcode throughput and size against the `zstd` CLI,
//!   point-lookup latency on a cold file against decompressing the whole file.

use std::path::{Path, PathBuf};

pub const CAPTURE: &str = "binance-usdm-btcusdt-20240808.gz";

/// The BTCUSDT capture of `../shared/data` imported into a fresh directory on the real disk
/// (`target/`), or `None` after a skip (`chronicle_testkit::skip`) when it is absent.
pub fn imported_capture() -> Option<(tempfile::TempDir, PathBuf)> {
    let capture = chronicle_testkit::shared_data(CAPTURE)?;
    let dir = tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/../target"))
        .expect("scratch dir");
    let source = chronicle_storage::meta::Source {
        kind: "import".into(),
        format: "binance-capture".into(),
        file: None,
    };
    let mut sink = chronicle_import::PartitionSink::new(dir.path(), source).expect("sink");
    chronicle_import::binance::import(&capture, "binance-usdm", &mut sink).expect("import");
    sink.finish().expect("finish");
    let data = dir.path().to_owned();
    Some((dir, data))
}

/// Every record of the token's partitions, in tick order, as owned bytes.
pub fn records(data: &Path) -> Vec<Vec<u8>> {
    let log = chronicle_state::log::TokenLog::new(vec![data.join("v1/binance-usdm/btcusdt")]);
    let mut out = Vec::new();
    log.replay(None, 0, |_, rec| {
        out.push(rec.to_vec().expect("re-encodes"));
        Ok(())
    })
    .expect("log replays");
    out
}

/// Percentiles of a histogram of ns, as a table row.
pub fn row(name: &str, h: &hdrhistogram::Histogram<u64>) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {} |",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    )
}

/// CPU time of the calling thread, ns: a cross-check of wall-clock figures that other
/// processes on a busy machine cannot inflate by preempting the bench.
pub fn thread_cpu_ns() -> f64 {
    chronicle_feed::clock::now_ns(libc::CLOCK_THREAD_CPUTIME_ID) as f64
}
