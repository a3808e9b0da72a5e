//! Sends a [`ReplaySource`] to a [`Target`] on a [`Schedule`], measuring the pacing error.
//!
//! The unit of delivery is the **message**: the records due at the same instant (the levels
//! of one depth message, the copies of a fan-out) become visible together, as a real feed
//! delivers them. The player stages messages into the target ahead of their due time (a
//! ring: frames written behind the published `head`; UDP: datagrams built), up to
//! `lookahead_ns` ahead of the oldest unpublished one, and publishes each at its due time:
//! one Release store of each touched ring's `head` (up to the end of that message), or its
//! prepared datagrams sent back to back. Staging ahead matters: in the BTCUSDT capture half
//! of the messages arrive within 5 µs of the previous one, less than staging a 600-level
//! depth message takes. As fast as possible, messages are `max_batch` records.
//!
//! The wait is spin-then-sleep on `CLOCK_MONOTONIC` (the clock of the ring's publish stamps,
//! `chronicle_feed::clock`): while more than `spin_ns` remain the thread sleeps (with a 1 ns
//! timer slack, so the kernel does not round the wake-up up by its default 50 µs), then it
//! spins to the due time. The default spin is 1 s, so a capture's gaps are spun, not slept:
//! on the development VM (a Firecracker guest) a vCPU that went idle sometimes wakes
//! milliseconds late. The player pins itself to a core when asked.
//!
//! Pacing error = visible time − intended time, per event, the intended time from the
//! schedule (not from the previous send): a sender that falls behind keeps being measured
//! against where it should be, so a stall is charged to every event it delayed (no
//! coordinated omission). The visible time is the clock read just before the ring publish
//! (the time the ring stamps on the publication) or before the `send` of the record's
//! datagram. Declarations are not paced.

use crate::pacing::{Pacing, Schedule};
use crate::source::ReplaySource;
use crate::Error;
use chronicle_feed::clock::monotonic_ns;
use chronicle_feed::{Access, DatagramWriter, Producer, Pushed, RingError, ShardMap};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What [`Target::stage`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staged {
    /// Taken: staged, or — when the target has no room even with nothing of its own staged —
    /// dropped and counted (a feed never blocks).
    Taken,
    /// Not taken: what the target staged fills its room. Publish the oldest message, then
    /// stage the record again.
    Full,
}

/// Where records go. Records are staged into messages (groups due at the same time); a
/// message is published as a whole, oldest first, while later ones are already staged.
pub trait Target {
    /// Stages one event record behind everything staged so far, into the open message.
    fn stage(&mut self, token_id: u32, record: &[u8]) -> Result<Staged, Error>;
    /// Closes the open message: what is staged from now on belongs to the next one.
    fn end_message(&mut self);
    /// Makes the oldest closed message visible. Calls `visible(records, t)` for each step
    /// that makes records visible (a ring publication, a datagram), `t` the
    /// `CLOCK_MONOTONIC` time (`chronicle_feed::clock::monotonic_ns`) read just before it.
    fn publish(&mut self, visible: &mut dyn FnMut(u64, u64)) -> Result<(), Error>;
    /// Sends a declaration now, on its own (the player publishes everything staged first);
    /// a ring target retries it rather than drop it while the ring is full.
    fn declare(&mut self, token_id: u32, record: &[u8]) -> Result<(), Error>;
    /// End of the replay (everything published): announce pending losses.
    fn finish(&mut self) -> Result<(), Error> {
        Ok(())
    }
    /// Records lost so far (ring overruns, failed datagram sends).
    fn dropped(&self) -> u64;
    /// For the report.
    fn describe(&self) -> String;
}

/// How long a declaration waits for room in a full ring before it is dropped like any
/// record (the appliance would then never learn the token: a replay into a stalled ring).
const CONTROL_RETRY: Duration = Duration::from_secs(1);

/// One ring per shard (`/dev/shm` files or in-memory rings); token → shard by the
/// [`ShardMap`]. The ring never blocks: a record that does not fit is dropped and counted,
/// and the consumer finds a gap marker where it went missing.
pub struct RingTarget {
    rings: Vec<Producer>,
    map: ShardMap,
    paths: Vec<PathBuf>,
    /// The open message: records staged into it, and the rings they went to (a bit each).
    open: (u64, u64),
    /// Closed messages not yet published, oldest first: (records, rings touched)...
    messages: VecDeque<(u64, u64)>,
    /// ... and, per ring, where each of them ends in that ring (for the rings it touched).
    ends: Vec<VecDeque<u64>>,
}

impl RingTarget {
    /// Rings the caller made (tests: `chronicle_feed::mem_ring`); `ShardMap::modulo`; at
    /// most `chronicle_feed::feed::MAX_SHARDS` (64) rings.
    pub fn new(rings: Vec<Producer>) -> Result<Self, Error> {
        let map = ShardMap::modulo(rings.len()).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(Self {
            ends: rings.iter().map(|_| VecDeque::new()).collect(),
            rings,
            map,
            paths: Vec::new(),
            open: (0, 0),
            messages: VecDeque::new(),
        })
    }

    /// The ring files of `shards` shards at `path`: `path` itself for one shard, else
    /// `path-0`, `path-1`, ...
    pub fn ring_paths(path: &Path, shards: usize) -> Vec<PathBuf> {
        if shards == 1 {
            return vec![path.to_owned()];
        }
        (0..shards)
            .map(|i| {
                let mut p = path.as_os_str().to_owned();
                p.push(format!("-{i}"));
                PathBuf::from(p)
            })
            .collect()
    }

    /// Creates the ring files (`chronicle_feed::create`, mode 0600): a consumer (the
    /// appliance, `examples/drain.rs`) attaches to them. `replace` first removes a ring left
    /// at those paths by a process that is gone (`chronicle_feed::remove_stale`); a ring a
    /// live process produces into is refused, never taken from under it.
    pub fn create_shm(
        path: &Path,
        shards: usize,
        capacity: usize,
        replace: bool,
    ) -> Result<Self, Error> {
        let paths = Self::ring_paths(path, shards);
        let mut rings = Vec::with_capacity(shards);
        for p in &paths {
            if replace {
                chronicle_feed::remove_stale(p)?;
            }
            match chronicle_feed::create(p, capacity, Access::Owner) {
                Ok(r) => rings.push(r),
                Err(e) => {
                    // Do not leave the rings already made for this run behind.
                    for made in &paths[..rings.len()] {
                        let _ = std::fs::remove_file(made);
                    }
                    return Err(match e {
                        RingError::AlreadyExists { .. } => {
                            Error::Invalid(format!("{e} (or pass --replace if no process uses it)"))
                        }
                        e => e.into(),
                    });
                }
            }
        }
        let mut t = Self::new(rings)?;
        t.paths = paths;
        Ok(t)
    }

    pub fn producers(&self) -> &[Producer] {
        &self.rings
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

impl Target for RingTarget {
    #[inline]
    fn stage(&mut self, token_id: u32, record: &[u8]) -> Result<Staged, Error> {
        let shard = self.map.shard_of(token_id);
        let ring = &mut self.rings[shard];
        let written = if ring.try_stage(record)? {
            true
        } else if ring.staged_bytes() > 0 {
            // Our own staged records fill the ring: the consumer can only make room once they
            // are published.
            return Ok(Staged::Full);
        } else {
            // The consumer is behind: drop and count; the consumer finds a gap marker here.
            ring.stage(record)? == Pushed::Written
        };
        if written {
            self.open.0 += 1;
            self.open.1 |= 1 << shard;
        }
        Ok(Staged::Taken)
    }

    fn end_message(&mut self) {
        let (_, touched) = self.open;
        for_each_bit(touched, |shard| {
            self.ends[shard].push_back(self.rings[shard].position())
        });
        self.messages.push_back(std::mem::take(&mut self.open));
    }

    /// One index store per ring the message touched, all stamped with the same time.
    #[inline]
    fn publish(&mut self, visible: &mut dyn FnMut(u64, u64)) -> Result<(), Error> {
        let (records, touched) = self
            .messages
            .pop_front()
            .expect("the player publishes closed messages only");
        if touched == 0 {
            return Ok(()); // every record of it was dropped
        }
        let t = monotonic_ns();
        for_each_bit(touched, |shard| {
            let end = self.ends[shard]
                .pop_front()
                .expect("an end per touched ring");
            self.rings[shard].publish_to(end, t);
        });
        visible(records, t);
        Ok(())
    }

    fn declare(&mut self, token_id: u32, record: &[u8]) -> Result<(), Error> {
        assert!(
            self.messages.is_empty() && self.open.1 == 0,
            "the player publishes before a declaration"
        );
        let ring = &mut self.rings[self.map.shard_of(token_id)];
        let start = Instant::now();
        while !ring.try_push(record)? {
            if start.elapsed() > CONTROL_RETRY {
                ring.push(record)?;
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        // A loss at the very end is announced once the consumer makes room for its marker.
        let start = Instant::now();
        for ring in &mut self.rings {
            while !ring.flush_gap() && start.elapsed() < CONTROL_RETRY {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        Ok(())
    }

    fn dropped(&self) -> u64 {
        self.rings.iter().map(|r| r.stats().dropped).sum()
    }

    fn describe(&self) -> String {
        let capacity = self.rings.first().map_or(0, |r| r.capacity());
        let size = if capacity >= 1 << 20 {
            format!("{} MiB", capacity >> 20)
        } else {
            format!("{} KiB", capacity >> 10)
        };
        let what = format!(
            "{} ring{} of {size}",
            self.rings.len(),
            if self.rings.len() == 1 { "" } else { "s" },
        );
        match self.paths.as_slice() {
            [] => format!("memory ({what})"),
            [one] => format!("shm:{} ({what})", one.display()),
            [first, .., last] => format!("shm:{} .. {} ({what})", first.display(), last.display()),
        }
    }
}

/// Calls `f` with the index of every bit set in `mask`, lowest first.
#[inline]
fn for_each_bit(mut mask: u64, mut f: impl FnMut(usize)) {
    while mask != 0 {
        f(mask.trailing_zeros() as usize);
        mask &= mask - 1;
    }
}

/// Bytes of datagrams a UDP target prepares ahead of their due times; a message larger than
/// that is sent in parts.
const MAX_STAGED_DATAGRAM_BYTES: usize = 8 << 20;
/// How often a UDP target sends every declaration again: a receiver that lost one (a dropped
/// datagram, a daemon started after the sender) learns the token within this time.
pub const REDECLARE_EVERY: Duration = Duration::from_secs(1);

/// Feed datagrams (`chronicle_feed::DatagramWriter`: a 16-byte header with a sequence number
/// that grows by one per datagram, then whole records) to one UDP address. A message's
/// records are built into datagrams of at most `max_datagram` bytes (a datagram never holds
/// two messages) ahead of its due time; they are sent back to back when it comes.
pub struct UdpTarget {
    socket: UdpSocket,
    addr: SocketAddr,
    /// Staged datagrams, oldest first; the last one still fills unless `sealed`.
    staged: VecDeque<DatagramWriter>,
    sealed: bool,
    /// Datagrams of each closed message not yet sent, and of the open one.
    messages: VecDeque<usize>,
    open: usize,
    /// Writers for reuse; with `staged`, at most `MAX_STAGED_DATAGRAM_BYTES / max_datagram`.
    spare: Vec<DatagramWriter>,
    max_datagram: usize,
    /// This run's sender session (a receiver tells a restarted sender by it) and the next
    /// datagram's number in it.
    session: u64,
    sequence: u64,
    /// Every declaration sent, by token (the newest), and when they all go again.
    declarations: Vec<(u32, Vec<u8>)>,
    next_redeclare_ns: u64,
    datagrams: u64,
    dropped: u64,
    send_errors: u64,
    last_error: Option<String>,
}

impl UdpTarget {
    /// `max_datagram`: bytes a datagram may carry, header included (1472 fits a 1500-byte
    /// Ethernet MTU; loopback takes up to 65507). A record larger than that goes alone.
    pub fn connect(addr: SocketAddr, max_datagram: usize) -> Result<Self, Error> {
        let io = |what: &str, source| Error::Io {
            what: format!("{what} udp:{addr}"),
            source,
        };
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).map_err(|e| io("binding a socket for", e))?;
        socket.connect(addr).map_err(|e| io("connecting to", e))?;
        let first = DatagramWriter::with_limit(max_datagram);
        Ok(Self {
            socket,
            addr,
            max_datagram: first.limit(),
            staged: VecDeque::new(),
            sealed: true,
            messages: VecDeque::new(),
            open: 0,
            spare: vec![first],
            session: chronicle_feed::feed::new_session(),
            sequence: 0,
            declarations: Vec::new(),
            next_redeclare_ns: 0,
            datagrams: 0,
            dropped: 0,
            send_errors: 0,
            last_error: None,
        })
    }

    pub fn datagrams(&self) -> u64 {
        self.datagrams
    }

    /// Sends a finished datagram, numbered even if the send fails: the receiver then sees
    /// the loss as a jump.
    fn send(&mut self, w: &mut DatagramWriter, visible: &mut dyn FnMut(u64, u64)) {
        let records = w.count() as u64;
        let t = monotonic_ns();
        w.set_session(self.session);
        let datagram = w.finish(self.sequence);
        self.sequence += 1;
        self.datagrams += 1;
        match self.socket.send(datagram) {
            Ok(_) => visible(records, t),
            Err(e) => {
                self.send_errors += 1;
                self.dropped += records;
                self.last_error = Some(e.to_string());
            }
        }
    }

    /// Sends every declaration again, one datagram each (not counted as stream records).
    fn redeclare(&mut self) {
        let mut w = self
            .spare
            .pop()
            .unwrap_or_else(|| DatagramWriter::with_limit(self.max_datagram));
        let declarations = std::mem::take(&mut self.declarations);
        for (_, record) in &declarations {
            w.clear();
            if w.push(record) {
                self.send(&mut w, &mut |_, _| {});
            }
        }
        self.declarations = declarations;
        self.spare.push(w);
        self.next_redeclare_ns = monotonic_ns() + REDECLARE_EVERY.as_nanos() as u64;
    }

    pub fn send_errors(&self) -> u64 {
        self.send_errors
    }
}

impl Target for UdpTarget {
    fn stage(&mut self, _token_id: u32, record: &[u8]) -> Result<Staged, Error> {
        if !self.sealed {
            if let Some(w) = self.staged.back_mut() {
                if w.push(record) {
                    return Ok(Staged::Taken);
                }
            }
        }
        let mut w = match self.spare.pop() {
            Some(w) => w,
            None if self.staged.len() < (MAX_STAGED_DATAGRAM_BYTES / self.max_datagram).max(1) => {
                DatagramWriter::with_limit(self.max_datagram)
            }
            None => return Ok(Staged::Full),
        };
        w.clear();
        if !w.push(record) {
            return Err(Error::Invalid(format!(
                "a record of {} bytes does not fit a datagram",
                record.len()
            )));
        }
        self.staged.push_back(w);
        self.sealed = false;
        self.open += 1;
        Ok(Staged::Taken)
    }

    fn end_message(&mut self) {
        self.messages.push_back(std::mem::take(&mut self.open));
        self.sealed = true;
    }

    fn publish(&mut self, visible: &mut dyn FnMut(u64, u64)) -> Result<(), Error> {
        let n = self
            .messages
            .pop_front()
            .expect("the player publishes closed messages only");
        if !self.declarations.is_empty() && monotonic_ns() >= self.next_redeclare_ns {
            self.redeclare();
        }
        for _ in 0..n {
            let mut w = self
                .staged
                .pop_front()
                .expect("a message's datagrams are staged");
            self.send(&mut w, visible);
            self.spare.push(w);
        }
        Ok(())
    }

    fn declare(&mut self, token_id: u32, record: &[u8]) -> Result<(), Error> {
        assert!(
            self.staged.is_empty(),
            "the player publishes before a declaration"
        );
        match self.declarations.iter_mut().find(|(t, _)| *t == token_id) {
            Some((_, r)) => *r = record.to_vec(),
            None => self.declarations.push((token_id, record.to_vec())),
        }
        if self.next_redeclare_ns == 0 {
            self.next_redeclare_ns = monotonic_ns() + REDECLARE_EVERY.as_nanos() as u64;
        }
        self.stage(token_id, record)?;
        self.end_message();
        self.publish(&mut |_, _| {})
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "udp:{} ({} datagrams of at most {} bytes",
            self.addr, self.datagrams, self.max_datagram
        );
        if self.send_errors > 0 {
            s.push_str(&format!(
                ", {} failed sends, last: {}",
                self.send_errors,
                self.last_error.as_deref().unwrap_or("")
            ));
        }
        s.push(')');
        s
    }
}

/// Sends nothing: each message "becomes visible" when the player publishes it. A replay into
/// it measures the pacing floor of this machine — the player's waits and bookkeeping with no
/// ring or socket work — against which a real target's pacing error is read.
#[derive(Debug, Default)]
pub struct NullTarget {
    /// Records of the open message, then of each closed one not yet published.
    open: u64,
    messages: VecDeque<u64>,
}

impl Target for NullTarget {
    fn stage(&mut self, _token_id: u32, _record: &[u8]) -> Result<Staged, Error> {
        self.open += 1;
        Ok(Staged::Taken)
    }

    fn end_message(&mut self) {
        self.messages.push_back(std::mem::take(&mut self.open));
    }

    fn publish(&mut self, visible: &mut dyn FnMut(u64, u64)) -> Result<(), Error> {
        let records = self
            .messages
            .pop_front()
            .expect("the player publishes closed messages only");
        visible(records, monotonic_ns());
        Ok(())
    }

    fn declare(&mut self, _token_id: u32, _record: &[u8]) -> Result<(), Error> {
        Ok(())
    }

    fn dropped(&self) -> u64 {
        0
    }

    fn describe(&self) -> String {
        "null (nothing sent: the pacing floor)".into()
    }
}

/// How to play.
#[derive(Debug, Clone)]
pub struct PlayOptions {
    pub pacing: Pacing,
    /// Below this much time to wait the player spins instead of sleeping.
    pub spin_ns: u64,
    /// Pin the sending thread to this core (ignored if pinning fails).
    pub core: Option<usize>,
    /// As fast as possible: records made visible together at most (a ring publication, or
    /// the datagrams sent back to back). Paced replays publish each same-time group whole.
    pub max_batch: usize,
    /// Paced replays stage messages due up to this long after the oldest unpublished one.
    pub lookahead_ns: u64,
    /// Set to stop early ([`stop_on_sigint`]).
    pub stop: Option<&'static AtomicBool>,
}

impl PlayOptions {
    pub fn new(pacing: Pacing) -> Self {
        Self {
            pacing,
            spin_ns: 1_000_000_000,
            max_batch: 16,
            lookahead_ns: 1_000_000,
            core: None,
            stop: None,
        }
    }
}

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

/// Asks the kernel to wake sleepers on time rather than within its default 50 µs slack.
fn tighten_timer_slack() {
    // SAFETY: prctl(PR_SET_TIMERSLACK) takes an integer and affects only this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

fn histogram() -> Histogram<u64> {
    // 1 ns to a day at 3 significant digits (errors beyond a day are recorded as a day).
    Histogram::<u64>::new_with_bounds(1, 86_400_000_000_000, 3).expect("valid histogram bounds")
}

/// A message staged and not yet published.
struct Message {
    /// Ns after the start; `None`: as fast as possible.
    due: Option<u64>,
}

/// The player's state: the clock, the messages staged ahead, what it measured.
struct Player {
    /// `CLOCK_MONOTONIC` at the start of the schedule.
    start: u64,
    spin_ns: u64,
    /// Closed messages not yet published, oldest first.
    queue: VecDeque<Message>,
    /// The open message: its due time, records staged into it since its last part, in all,
    /// and whether a part of it was already closed.
    due: Option<u64>,
    pending: u64,
    size: u64,
    parted: bool,
    /// Records staged in all (paces the checks for staged messages that came due).
    staged: u64,
    hist: Histogram<u64>,
    publications: Histogram<u64>,
    wakeup: Histogram<u64>,
    sends: u64,
    groups: u64,
    largest_group: u64,
    late_groups: u64,
    split_groups: u64,
}

/// How often (in records staged) the player checks whether a staged message came due.
const READY_CHECK: u64 = 8;

impl Player {
    /// Ns since the start.
    #[inline(always)]
    fn now(&self) -> u64 {
        monotonic_ns().saturating_sub(self.start)
    }

    /// Spin-then-sleep until `due`; returns the time it was reached.
    #[inline]
    fn wait_until(&self, due: u64) -> u64 {
        loop {
            let t = self.now();
            if t >= due {
                return t;
            }
            let left = due - t;
            if left > self.spin_ns {
                std::thread::sleep(Duration::from_nanos(left - self.spin_ns));
            } else {
                core::hint::spin_loop();
            }
        }
    }

    /// Waits for the oldest staged message's due time (if it has not passed) and makes it
    /// visible, recording each of its events' pacing error.
    fn publish_oldest(&mut self, target: &mut dyn Target) -> Result<(), Error> {
        let m = self.queue.pop_front().expect("a staged message");
        if let Some(due) = m.due {
            if self.now() < due {
                let woke = self.wait_until(due);
                self.wakeup.saturating_record(woke - due);
            }
        }
        let start = self.start;
        let (hist, publications, sends) = (&mut self.hist, &mut self.publications, &mut self.sends);
        target.publish(&mut |records, t| {
            *sends += 1;
            if let Some(due) = m.due {
                let error = t.saturating_sub(start).saturating_sub(due);
                hist.saturating_record_n(error, records);
                publications.saturating_record(error);
            }
        })
    }

    /// Publishes the staged messages whose due time has come (as fast as possible: all).
    fn publish_ready(&mut self, target: &mut dyn Target) -> Result<(), Error> {
        let now = self.now();
        while self
            .queue
            .front()
            .is_some_and(|m| m.due.is_none_or(|d| d <= now))
        {
            self.publish_oldest(target)?;
        }
        Ok(())
    }

    /// Publishes every closed message, each at its due time.
    fn publish_closed(&mut self, target: &mut dyn Target) -> Result<(), Error> {
        while !self.queue.is_empty() {
            self.publish_oldest(target)?;
        }
        Ok(())
    }

    /// Closes the open message and publishes everything, each message at its due time.
    fn drain(&mut self, target: &mut dyn Target) -> Result<(), Error> {
        self.close(target);
        self.publish_closed(target)
    }

    /// Closes what is staged of the open message (all of it, or a part) into the queue.
    fn close_part(&mut self, target: &mut dyn Target) {
        if !self.parted && self.due.is_some_and(|d| self.now() > d) {
            self.late_groups += 1;
        }
        target.end_message();
        self.queue.push_back(Message { due: self.due });
        self.pending = 0;
        self.parted = true;
    }

    /// Closes the open message: the next event starts another.
    fn close(&mut self, target: &mut dyn Target) {
        if self.pending > 0 {
            self.close_part(target);
        }
        if self.size > 0 {
            self.groups += 1;
            self.largest_group = self.largest_group.max(self.size);
        }
        self.size = 0;
        self.parted = false;
    }

    /// Stages one event of the open message. A full target first publishes the oldest
    /// message (at its due time); when the open message alone fills it, what is staged of it
    /// goes out as a part.
    #[inline]
    fn stage(
        &mut self,
        target: &mut dyn Target,
        token_id: u32,
        record: &[u8],
    ) -> Result<(), Error> {
        while target.stage(token_id, record)? == Staged::Full {
            if self.queue.is_empty() {
                assert!(self.pending > 0, "a target is full only of what it staged");
                if !self.parted {
                    self.split_groups += 1;
                }
                self.close_part(target);
            }
            self.publish_oldest(target)?;
        }
        self.pending += 1;
        self.size += 1;
        self.staged += 1;
        if self.staged % READY_CHECK == 0 {
            self.publish_ready(target)?;
        }
        Ok(())
    }
}

/// Plays `source` (from where its cursor is) into `target` on `opts.pacing`'s schedule.
///
/// Events due at the same time form a message, staged as they come and closed by the next
/// event (due later), a declaration or the end. Staged messages are published oldest first,
/// each at its due time (at once if that has passed); the player stages ahead until the next
/// event is due more than `lookahead_ns` after the oldest staged message, then waits for
/// that one. As fast as possible, a message is `max_batch` events, published when closed.
pub fn play(
    source: &mut ReplaySource,
    target: &mut dyn Target,
    opts: &PlayOptions,
) -> Result<Report, Error> {
    play_with_progress(source, target, opts, &|_, _| {})
}

/// Events between two calls of a progress callback: rare enough to cost nothing per event.
const PROGRESS_EVERY: u64 = 1 << 14;

/// [`play`], telling `progress(done, total)` the events played every
/// [`PROGRESS_EVERY`] events and at the end.
pub fn play_with_progress(
    source: &mut ReplaySource,
    target: &mut dyn Target,
    opts: &PlayOptions,
    progress: &dyn Fn(u64, u64),
) -> Result<Report, Error> {
    let total = source.total_events();
    let pinned = opts
        .core
        .filter(|&c| core_affinity::set_for_current(core_affinity::CoreId { id: c }));
    tighten_timer_slack();
    let mut schedule = Schedule::new(opts.pacing);
    let max_batch = opts.max_batch.max(1) as u64;
    let (mut events, mut declarations) = (0u64, 0u64);
    let mut stopped = false;
    let mut p = Player {
        start: monotonic_ns(),
        spin_ns: opts.spin_ns,
        queue: VecDeque::new(),
        due: None,
        pending: 0,
        size: 0,
        parted: false,
        staged: 0,
        hist: histogram(),
        publications: histogram(),
        wakeup: histogram(),
        sends: 0,
        groups: 0,
        largest_group: 0,
        late_groups: 0,
        split_groups: 0,
    };
    while let Some(item) = source.next() {
        if let Some(stop) = opts.stop {
            if stop.load(Ordering::Relaxed) {
                stopped = true;
                break;
            }
        }
        if item.declaration {
            // After everything staged before it, on its own.
            p.drain(target)?;
            target.declare(item.token_id, item.record)?;
            declarations += 1;
            continue;
        }
        events += 1;
        if events.is_multiple_of(PROGRESS_EVERY) {
            progress(events, total);
        }
        // The schedule starts one lookahead after the player, so that its first messages
        // are staged ahead of their due time like every later one (staged cold, at once, the
        // first ones went out 120 µs late).
        let due = schedule
            .next(item.capture_receive_ns)
            .map(|d| d + opts.lookahead_ns);
        if p.size > 0 && (due != p.due || (due.is_none() && p.size >= max_batch)) {
            p.close(target);
        }
        match due {
            None => p.publish_closed(target)?,
            // Stage no further ahead than the lookahead: publish (waiting for their time)
            // the messages that are due well before this event.
            Some(d) => {
                while p
                    .queue
                    .front()
                    .is_some_and(|m| m.due.is_some_and(|md| d > md + opts.lookahead_ns))
                {
                    p.publish_oldest(target)?;
                }
            }
        }
        p.due = due;
        p.stage(target, item.token_id, item.record)?;
    }
    p.drain(target)?;
    target.finish()?;
    progress(events, total);
    let duration_ns = p.now();
    let paced = opts.pacing != Pacing::AsFastAsPossible;
    Ok(Report {
        events,
        dropped: target.dropped(),
        declarations,
        sends: p.sends,
        groups: p.groups,
        largest_group: p.largest_group,
        late_groups: p.late_groups,
        split_groups: p.split_groups,
        duration_ns,
        pacing: opts.pacing,
        pacing_error_ns: paced.then_some(p.hist),
        publication_error_ns: paced.then_some(p.publications),
        wakeup_error_ns: paced.then_some(p.wakeup),
        pinned,
        stopped,
        target: target.describe(),
    })
}

/// The core a sender pins to by default: the last one (the first is where the kernel and
/// most other work land).
pub fn default_core() -> Option<usize> {
    core_affinity::get_core_ids()?.iter().map(|c| c.id).max()
}

static SIGINT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // Async-signal-safe: one atomic store.
    SIGINT.store(true, Ordering::Relaxed);
}

/// A flag that the first Ctrl-C (SIGINT) sets, so that a replay stops and still reports;
/// a second Ctrl-C terminates as usual.
pub fn stop_on_sigint() -> &'static AtomicBool {
    // SAFETY: installs a handler that only stores to an atomic; SA_RESETHAND restores the
    // default action after the first signal.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        sa.sa_flags = libc::SA_RESETHAND;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
    }
    &SIGINT
}
