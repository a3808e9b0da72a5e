//! The schedule: when each event is meant to leave, as an offset from the start of the
//! replay. It depends only on the events (their capture receive times, their index), never
//! on when earlier events actually left: a sender that fell behind stays measured against
//! the schedule, so a stall shows up in the pacing error of every event it delayed (no
//! coordinated omission).

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// No waiting: every event is due at once.
    AsFastAsPossible,
    /// The capture's own inter-arrival times (receive time) divided by the factor: 1.0 is
    /// real time, 10.0 ten times faster.
    Speed(f64),
    /// A fixed rate, events per second, whatever the capture's timing.
    Rate(f64),
}

impl Pacing {
    /// Checks the factor or rate is a positive, finite number.
    pub fn validate(self) -> Result<Self, String> {
        match self {
            Pacing::Speed(x) | Pacing::Rate(x) if !(x.is_finite() && x > 0.0) => {
                Err(format!("{self} must be a positive number"))
            }
            p => Ok(p),
        }
    }
}

impl std::fmt::Display for Pacing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pacing::AsFastAsPossible => write!(f, "as fast as possible"),
            Pacing::Speed(x) => write!(f, "speed {x}x (capture inter-arrival / {x})"),
            Pacing::Rate(r) => write!(f, "rate {r} events/s"),
        }
    }
}

/// Intended send times of a stream of events.
///
/// - `Speed(x)`: event i is due at (R_i − R_0) / x, where R_i is the largest capture receive
///   time up to and including event i. The running maximum keeps the schedule monotonic
///   where a capture's receive times step back (the Binance importer emits the diffs it
///   buffered before the REST snapshot after it, with their earlier receive times): those
///   events are due at once, in capture order.
/// - `Rate(r)`: event i is due at i / r seconds.
/// - `AsFastAsPossible`: nothing is due later than now (`None`).
#[derive(Debug, Clone)]
pub struct Schedule {
    pacing: Pacing,
    first: Option<u64>,
    latest: u64,
    events: u64,
}

impl Schedule {
    pub fn new(pacing: Pacing) -> Self {
        Self {
            pacing,
            first: None,
            latest: 0,
            events: 0,
        }
    }

    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    /// The intended send offset (ns after the start) of the next event, whose capture
    /// receive time is `receive_ns`; `None` when pacing is as fast as possible.
    #[inline]
    pub fn next(&mut self, receive_ns: u64) -> Option<u64> {
        let i = self.events;
        self.events += 1;
        match self.pacing {
            Pacing::AsFastAsPossible => None,
            Pacing::Rate(r) => Some((i as f64 * 1e9 / r) as u64),
            Pacing::Speed(x) => {
                let first = *self.first.get_or_insert(receive_ns);
                self.latest = self.latest.max(receive_ns);
                Some(((self.latest - first) as f64 / x) as u64)
            }
        }
    }

    /// Events scheduled so far.
    pub fn events(&self) -> u64 {
        self.events
    }
}
