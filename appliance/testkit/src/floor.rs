//! The platform's noise floor, for benchmarks that read latency against it: a thread pinned
//! to a core spins on the TSC; every read-to-read gap over 1 µs is time the core was taken
//! away (interrupts, the scheduler tick, the hypervisor). A latency figure is only as good as
//! the gaps of the core it ran on.

use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

pub struct Floor {
    pub core: usize,
    /// Share of the time lost to gaps over 1 µs, in percent.
    pub lost_pct: f64,
    /// The gaps over 1 µs, in ns.
    pub gaps: Histogram<u64>,
    /// p99 delay of a perfect sender due at random instants ([`ideal_delay_at`]), ns.
    pub ideal_p99: u64,
}

/// Spins on `core` (the calling thread is pinned there) for `secs`.
pub fn measure(core: usize, secs: f64) -> Floor {
    assert!(
        core_affinity::set_for_current(core_affinity::CoreId { id: core }),
        "cannot pin to core {core}"
    );
    let clock = quanta::Clock::new();
    let mut gaps = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let start = clock.raw();
    let mut last = start;
    let mut lost = 0u64;
    let mut i = 0u64;
    loop {
        i += 1;
        if i.is_multiple_of(4096) && Instant::now() > end {
            break;
        }
        let now = clock.raw();
        let d = clock.delta_as_nanos(last, now);
        if d > 1_000 {
            gaps.saturating_record(d);
            lost += d;
        }
        last = now;
    }
    let span = clock.delta_as_nanos(start, last).max(1);
    Floor {
        core,
        lost_pct: 100.0 * lost as f64 / span as f64,
        ideal_p99: ideal_delay_at(&gaps, span, 0.99),
        gaps,
    }
}

/// The delay a perfect sender on this core would see at quantile `q`, for a send due at a
/// uniformly random instant: one due inside a gap of length g waits out the rest of it, so
/// P(delay > x) = Σ over gaps g > x of (g − x) / span. Bisection on x.
pub fn ideal_delay_at(gaps: &Histogram<u64>, span: u64, q: f64) -> u64 {
    let tail = |x: u64| -> f64 {
        gaps.iter_recorded()
            .map(|v| {
                let g = v.value_iterated_to();
                g.saturating_sub(x) as f64 * v.count_at_value() as f64
            })
            .sum::<f64>()
            / span as f64
    };
    let (mut lo, mut hi) = (0u64, gaps.max());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if tail(mid) <= 1.0 - q {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// The floors as a markdown table (ns), with a header saying what they are.
pub fn table(floors: &[Floor], secs: f64) -> String {
    let mut s = format!(
        "Platform noise floor: a pinned thread spinning on the TSC for {secs} s; read-to-read\n\
         gaps over 1 us are time the core was taken away; \"ideal p99\": the p99 delay a\n\
         perfect consumer would see on this core for work due at random instants\n\n\
         | core | gaps > 1 us | time lost | gap p50 | gap p90 | gap p99 | gap max | ideal p99 |\n\
         |------|-------------|-----------|---------|---------|---------|---------|-----------|\n"
    );
    for f in floors {
        let h = &f.gaps;
        s.push_str(&format!(
            "| {:>4} | {:>11} | {:>8.2}% | {:>7} | {:>7} | {:>7} | {:>7} | {:>9} |\n",
            f.core,
            h.len(),
            f.lost_pct,
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.9),
            h.value_at_quantile(0.99),
            h.max(),
            f.ideal_p99
        ));
    }
    s
}
