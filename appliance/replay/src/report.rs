//! What a replay did: counts, and the pacing error per event, per publication and of the
//! wake-ups, as HDR percentiles.

use crate::pacing::Pacing;
use hdrhistogram::Histogram;

/// What a replay did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Stream records handed to the target (declarations excluded).
    pub events: u64,
    /// Of those (and of the declarations), lost by the target.
    pub dropped: u64,
    pub declarations: u64,
    /// Steps that made records visible: ring publications (one index store per touched
    /// ring) or datagrams.
    pub sends: u64,
    /// Groups of events due at the same time (as fast as possible: batches).
    pub groups: u64,
    /// Records in the largest group.
    pub largest_group: u64,
    /// Groups whose staging ended after their due time (the sender was behind).
    pub late_groups: u64,
    /// Groups larger than the target's room (the ring's free space), published in parts:
    /// the first part at the due time, the rest as soon as it was staged.
    pub split_groups: u64,
    /// From the start of the player (one lookahead before the schedule's) to the last
    /// record out.
    pub duration_ns: u64,
    pub pacing: Pacing,
    /// Pacing error of every event that became visible, ns: when it did (its ring
    /// publication, its datagram's send) minus when the schedule meant it to. `None` when
    /// nothing is paced.
    pub pacing_error_ns: Option<Histogram<u64>>,
    /// The same error once per publication (a ring publication or a datagram) rather than
    /// once per event: the per-event figures weigh a 1,000-record message a thousand times.
    pub publication_error_ns: Option<Histogram<u64>>,
    /// How late the player woke for each group it had to wait for (the scheduler's own
    /// precision).
    pub wakeup_error_ns: Option<Histogram<u64>>,
    /// The core the sender ran pinned to.
    pub pinned: Option<usize>,
    /// Stopped early by the stop flag.
    pub stopped: bool,
    pub target: String,
}

impl Report {
    /// Events that reached the target.
    pub fn sent(&self) -> u64 {
        self.events.saturating_sub(self.dropped)
    }

    /// Events handed over per second of the run.
    pub fn achieved_rate(&self) -> f64 {
        if self.duration_ns == 0 {
            return 0.0;
        }
        self.events as f64 * 1e9 / self.duration_ns as f64
    }

    /// The pacing error at quantile `q` (0..=1), ns.
    pub fn pacing_error_at(&self, q: f64) -> Option<u64> {
        self.pacing_error_ns
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| h.value_at_quantile(q))
    }
}

fn us(ns: u64) -> String {
    format!("{:.2} µs", ns as f64 / 1e3)
}

/// `p50 .., p99 .., p99.9 .., max ..` of a histogram of ns.
fn percentiles(h: &Histogram<u64>) -> String {
    format!(
        "p50 {}, p99 {}, p99.9 {}, max {}",
        us(h.value_at_quantile(0.50)),
        us(h.value_at_quantile(0.99)),
        us(h.value_at_quantile(0.999)),
        us(h.max()),
    )
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "target:          {}", self.target)?;
        writeln!(f, "pacing:          {}", self.pacing)?;
        writeln!(f, "events sent:     {}", self.sent())?;
        writeln!(f, "events dropped:  {}", self.dropped)?;
        writeln!(f, "declarations:    {}", self.declarations)?;
        writeln!(f, "duration:        {:.3} s", self.duration_ns as f64 / 1e9)?;
        writeln!(f, "achieved rate:   {:.1} events/s", self.achieved_rate())?;
        match &self.pacing_error_ns {
            Some(h) if !h.is_empty() => writeln!(
                f,
                "pacing error:    {} (over {} events; visible - intended time)",
                percentiles(h),
                h.len()
            )?,
            _ => writeln!(f, "pacing error:    n/a (not paced)")?,
        }
        if let Some(h) = self.publication_error_ns.as_ref().filter(|h| !h.is_empty()) {
            writeln!(
                f,
                "per publication: {} (over {} publications)",
                percentiles(h),
                h.len()
            )?;
        }
        if let Some(h) = self.wakeup_error_ns.as_ref().filter(|h| !h.is_empty()) {
            writeln!(
                f,
                "wake-up error:   {} (over {} waits)",
                percentiles(h),
                h.len()
            )?;
        }
        writeln!(
            f,
            "groups:          {} (largest {} records; {} staged after their due time; {} published in parts)",
            self.groups, self.largest_group, self.late_groups, self.split_groups
        )?;
        writeln!(f, "sends:           {}", self.sends)?;
        match self.pinned {
            Some(c) => writeln!(f, "pinned:          core {c}")?,
            None => writeln!(f, "pinned:          no")?,
        }
        if self.stopped {
            writeln!(f, "stopped early:   yes")?;
        }
        Ok(())
    }
}
