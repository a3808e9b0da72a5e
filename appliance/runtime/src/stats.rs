//! Per-stage latency histograms (TSC clock, no atomics: each shard owns its own) and the
//! run summary.

use hdrhistogram::Histogram;

/// One stage's latencies in ns.
pub struct Stage {
    pub name: &'static str,
    pub hist: Histogram<u64>,
}

impl Stage {
    pub fn new(name: &'static str) -> Self {
        // 1 ns .. 100 s at 3 significant digits: allocated once, recording never allocates.
        Self {
            name,
            hist: Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds"),
        }
    }

    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.hist.saturating_record(ns.max(1));
    }

    pub fn line(&self) -> String {
        let h = &self.hist;
        if h.is_empty() {
            return format!("{:<28} (no samples)", self.name);
        }
        format!(
            "{:<28} n={:<10} p50={:>10} p99={:>10} p99.9={:>10} max={:>10}",
            self.name,
            h.len(),
            fmt_ns(h.value_at_quantile(0.50)),
            fmt_ns(h.value_at_quantile(0.99)),
            fmt_ns(h.value_at_quantile(0.999)),
            fmt_ns(h.max())
        )
    }
}

pub fn fmt_ns(ns: u64) -> String {
    match ns {
        0..=9_999 => format!("{ns} ns"),
        10_000..=9_999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        _ => format!("{:.2} ms", ns as f64 / 1e6),
    }
}

/// A shard's stages.
pub struct ShardStats {
    /// Ring read → decode → refinery (tick id, book, append to the flush buffer) → engine.
    pub hot_path: Stage,
    pub engine_update: Stage,
    pub flush_duration: Stage,
    /// Time between flush starts (target 250 ms): the deadline schedule's jitter.
    pub flush_cadence: Stage,
    pub snapshot_write: Stage,
}

impl Default for ShardStats {
    fn default() -> Self {
        Self {
            hot_path: Stage::new("hot path (ring→buffer)"),
            engine_update: Stage::new("engine update"),
            flush_duration: Stage::new("flush duration"),
            flush_cadence: Stage::new("flush cadence"),
            snapshot_write: Stage::new("snapshot write"),
        }
    }
}

impl ShardStats {
    pub fn stages(&self) -> [&Stage; 5] {
        [
            &self.hot_path,
            &self.engine_update,
            &self.flush_duration,
            &self.flush_cadence,
            &self.snapshot_write,
        ]
    }
}
