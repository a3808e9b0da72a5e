//! Per-stage latency histograms (TSC clock, no atomics: each shard owns its own) and the
//! run summary.

use chronicle_feed::clock::monotonic_ns;
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
        Self {
            key,
            name,
            hist: chronicle_metrics::stage_histogram(),
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

/// The largest age a publication stamp may show (the histograms' range): anything older, or
/// later than the read, is counted as out of range rather than recorded.
pub const MAX_STAMP_AGE_NS: u64 = 100_000_000_000;
/// How long the shard's TSC reading may run from its CLOCK_MONOTONIC anchor.
const REANCHOR_NS: u64 = 100_000;

/// Times "ring publish → shard read". Publication stamps are `CLOCK_MONOTONIC`
/// (`chronicle_feed::clock`, written by another process); the shard's reads are TSC (quanta).
/// Rather than a `clock_gettime` per record, a read is placed on `CLOCK_MONOTONIC` by its TSC
/// distance from an anchor pair (both clocks read back to back) renewed every 100 µs: NTP
/// slews `CLOCK_MONOTONIC` by at most 500 ppm, so the error stays under 50 ns.
#[derive(Default)]
pub struct PublishClock {
    /// The anchor: `CLOCK_MONOTONIC` ns and the TSC reading taken with it (0: none yet).
    mono: u64,
    raw: u64,
    /// Stamps later than the read (a broken or hostile producer: one clock cannot run
    /// backwards) or more than [`MAX_STAMP_AGE_NS`] old: counted, not recorded.
    pub out_of_range: u64,
}

impl PublishClock {
    /// Records into `stage` how long before the read at TSC `read_raw` the record was
    /// published (`published_ns`, the ring's untrusted stamp).
    #[inline]
    pub fn record(
        &mut self,
        stage: &mut Stage,
        clock: &quanta::Clock,
        published_ns: u64,
        read_raw: u64,
    ) {
        if self.mono == 0
            || read_raw < self.raw
            || clock.delta_as_nanos(self.raw, read_raw) > REANCHOR_NS
        {
            self.raw = clock.raw();
            self.mono = monotonic_ns();
        }
        // `read_raw` may precede an anchor just taken.
        let read = if read_raw >= self.raw {
            self.mono + clock.delta_as_nanos(self.raw, read_raw)
        } else {
            self.mono
                .saturating_sub(clock.delta_as_nanos(read_raw, self.raw))
        };
        match read.checked_sub(published_ns) {
            Some(age) if age <= MAX_STAMP_AGE_NS => stage.record(age),
            _ => self.out_of_range += 1,
        }
    }
}

/// A shard's stages.
pub struct ShardStats {
    /// The feed's ring publication → the shard's read of the record (cross-process: the
    /// ring's `CLOCK_MONOTONIC` stamp against the shard's clock, see [`PublishClock`]).
    pub publish_to_read: Stage,
    /// One ring read that found a record → the next read, with no empty read between: pop,
    /// decode, refinery (tick id, book, append to the flush buffer), engine, and the loop's
    /// own checks; any pause of the loop while records waited shows here. One clock read per
    /// record.
    pub hot_path: Stage,
    /// The refinery's part of the hot path: late check, book, tick id, encode and frame into
    /// the partition's flush buffer (the engine update inside it excluded). Sampled.
    pub buffer_append: Stage,
    /// Sampled.
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
            publish_to_read: Stage::new("publish_to_read", "ring publish → shard read"),
            hot_path: Stage::new("hot_path", "hot path (read→next read)"),
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
    pub fn stages(&self) -> [&Stage; 8] {
        [
            &self.publish_to_read,
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

    fn stages_mut(&mut self) -> [&mut Stage; 8] {
        [
            &mut self.publish_to_read,
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
            self.publish_to_read,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publication_stamps_are_aged_on_one_clock_and_impossible_ones_counted() {
        let clock = quanta::Clock::new();
        let mut pc = PublishClock::default();
        let mut stage = Stage::new("publish_to_read", "ring publish → shard read");
        let published = monotonic_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        pc.record(&mut stage, &clock, published, clock.raw());
        assert_eq!(stage.hist.len(), 1);
        let age = stage.hist.max();
        assert!((1_990_000..10_000_000_000).contains(&age), "{age} ns");

        // Untrusted stamps: later than the read, or older than the histograms hold.
        let now = monotonic_ns();
        pc.record(&mut stage, &clock, now + 1_000_000_000, clock.raw());
        pc.record(&mut stage, &clock, u64::MAX, clock.raw());
        let mut impossible = 2;
        if now > MAX_STAMP_AGE_NS + 1_000 {
            pc.record(&mut stage, &clock, 1, clock.raw());
            impossible += 1;
        }
        assert_eq!(pc.out_of_range, impossible);
        assert_eq!(stage.hist.len(), 1, "nothing recorded for them");
    }
}
