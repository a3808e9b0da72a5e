//! Per-stage latency histograms (TSC clock, no atomics: each shard owns its own) and the
//! run summary.

use hdrhistogram::Histogram;

/// One stage's latencies in ns.
pub struct Stage {
    /// The `stage` label on `/metrics`.
    pub key: &'static str,
    pub name: &'static str,
    pub hist: Histogram<u64>,
}

impl Stage {
    pub fn new(key: &'static str, name: &'static str) -> Self {
        // 1 ns .. 100 s at 3 significant digits: allocated once, recording never allocates.
        Self {
            key,
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
    /// The refinery's part of the hot path: late check, book, tick id, encode and frame into
    /// the partition's flush buffer (the engine update inside it excluded).
    pub buffer_append: Stage,
    pub engine_update: Stage,
    pub flush_duration: Stage,
    /// Time between flush starts (target 250 ms): the deadline schedule's jitter.
    pub flush_cadence: Stage,
    pub snapshot_write: Stage,
    /// Per flush: from the shard's ring read of the oldest record the flush made durable to
    /// the end of its `fdatasync` (the worst record of that flush; the feed's receive time is
    /// not carried through the ring).
    pub read_to_durable: Stage,
}

impl Default for ShardStats {
    fn default() -> Self {
        Self {
            hot_path: Stage::new("hot_path", "hot path (ring→buffer)"),
            buffer_append: Stage::new("buffer_append", "buffer append (refinery)"),
            engine_update: Stage::new("engine_update", "engine update"),
            flush_duration: Stage::new("flush_duration", "flush duration"),
            flush_cadence: Stage::new("flush_cadence", "flush cadence"),
            snapshot_write: Stage::new("snapshot_write", "snapshot write"),
            read_to_durable: Stage::new("read_to_durable", "ring read → durable"),
        }
    }
}

impl ShardStats {
    pub fn stages(&self) -> [&Stage; 7] {
        [
            &self.hot_path,
            &self.buffer_append,
            &self.engine_update,
            &self.flush_duration,
            &self.flush_cadence,
            &self.snapshot_write,
            &self.read_to_durable,
        ]
    }

    /// Adds `other`'s samples to these (same bounds: never fails).
    pub fn add(&mut self, other: &ShardStats) {
        for (a, b) in self.stages_mut().into_iter().zip(other.stages()) {
            let _ = a.hist.add(&b.hist);
        }
    }

    fn stages_mut(&mut self) -> [&mut Stage; 7] {
        [
            &mut self.hot_path,
            &mut self.buffer_append,
            &mut self.engine_update,
            &mut self.flush_duration,
            &mut self.flush_cadence,
            &mut self.snapshot_write,
            &mut self.read_to_durable,
        ]
    }

    /// The histograms by `/metrics` stage label, moved out.
    pub fn into_stages(self) -> Vec<(&'static str, Histogram<u64>)> {
        [
            self.hot_path,
            self.buffer_append,
            self.engine_update,
            self.flush_duration,
            self.flush_cadence,
            self.snapshot_write,
            self.read_to_durable,
        ]
        .into_iter()
        .map(|s| (s.key, s.hist))
        .collect()
    }
}
