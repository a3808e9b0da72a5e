//! Sends a [`ReplaySource`] to a [`Target`] on a [`Schedule`], measuring the pacing error.
//!
//! The wait is spin-then-sleep on a monotonic clock (`quanta`: the TSC where it is
//! invariant, else `clock_gettime(CLOCK_MONOTONIC)`): while more than `spin_ns` remain the
//! thread sleeps (with a 1 ns timer slack, so the kernel does not round the wake-up up by its
//! default 50 µs), then it spins to the due time. The default spin is 2 ms: on the
//! development VM a sleeping vCPU sometimes wakes milliseconds late, so the last stretch is
//! never slept. The player pins itself to a core when asked.
//!
//! Pacing error = actual send time − intended send time, per event, the intended time from
//! the schedule (not from the previous send): a sender that falls behind keeps being measured
//! against where it should be, so a stall is charged to every event it delayed (no
//! coordinated omission). The actual send time is when the record became visible: the clock
//! read just before the ring publish (or the datagram `send`) of its batch. Declarations are
//! not paced.

use crate::pacing::{Pacing, Schedule};
use crate::source::ReplaySource;
use crate::Error;
use chronicle_feed::feed::DATAGRAM_HEADER_LEN;
use chronicle_feed::{Access, DatagramWriter, Producer, RingError, ShardMap};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Where records go.
pub trait Target {
    /// Hands one record over. `control`: a declaration, which a ring target retries rather
    /// than drop.
    fn send(&mut self, token_id: u32, record: &[u8], control: bool) -> Result<(), Error>;
    /// Whether the target holds records back until [`flush`](Self::flush) (rings stage,
    /// datagrams fill). A target that does not sends each record within `send`.
    fn buffers(&self) -> bool {
        false
    }
    /// Records handed over and still held back.
    fn held(&self) -> usize {
        0
    }
    /// Whether a record of `len` bytes still fits what is held (a datagram's size limit).
    fn room_for(&self, _len: usize) -> bool {
        true
    }
    /// Sends whatever is held.
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
    /// End of the replay: flush, announce pending losses.
    fn finish(&mut self) -> Result<(), Error> {
        self.flush()
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
    /// Records staged and not yet published, and the shards they went to (a bit each).
    held: usize,
    touched: u64,
}

impl RingTarget {
    /// Rings the caller made (tests: `chronicle_feed::mem_ring`); `ShardMap::modulo`; at
    /// most `chronicle_feed::feed::MAX_SHARDS` (64) rings.
    pub fn new(rings: Vec<Producer>) -> Result<Self, Error> {
        let map = ShardMap::modulo(rings.len()).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(Self {
            rings,
            map,
            paths: Vec::new(),
            held: 0,
            touched: 0,
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
    /// appliance, `examples/drain.rs`) attaches to them. `replace` removes existing files at
    /// those paths first (a stale ring of an earlier run).
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
                match std::fs::remove_file(p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(Error::Io {
                            what: format!("removing {}", p.display()),
                            source,
                        })
                    }
                }
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
    /// Stages the record; it becomes visible at the next [`flush`](Target::flush) (one
    /// index store per ring for a whole batch, as the feed handler does per datagram).
    #[inline]
    fn send(&mut self, token_id: u32, record: &[u8], control: bool) -> Result<(), Error> {
        let shard = self.map.shard_of(token_id);
        if !control {
            self.rings[shard].stage(record)?;
            self.touched |= 1 << shard;
            self.held += 1;
            return Ok(());
        }
        // A declaration is published with everything staged before it, and retried rather
        // than dropped while the ring is full.
        self.flush()?;
        let ring = &mut self.rings[shard];
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

    fn buffers(&self) -> bool {
        true
    }

    fn held(&self) -> usize {
        self.held
    }

    #[inline]
    fn flush(&mut self) -> Result<(), Error> {
        let mut touched = self.touched;
        while touched != 0 {
            let shard = touched.trailing_zeros() as usize;
            self.rings[shard].publish();
            touched &= touched - 1;
        }
        self.touched = 0;
        self.held = 0;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.flush()?;
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

/// Feed datagrams (`chronicle_feed::DatagramWriter`: a 16-byte header with a sequence number
/// that grows by one per datagram, then whole records) to one UDP address. Records due at
/// the same time (a message's levels, a fan-out's copies) share datagrams up to
/// `max_datagram` bytes; a datagram leaves as soon as the next record is not yet due.
pub struct UdpTarget {
    socket: UdpSocket,
    addr: SocketAddr,
    writer: DatagramWriter,
    max_datagram: usize,
    bytes: usize,
    held: usize,
    sequence: u64,
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
        Ok(Self {
            socket,
            addr,
            writer: DatagramWriter::new(),
            max_datagram: max_datagram.clamp(
                DATAGRAM_HEADER_LEN + 32,
                chronicle_feed::feed::MAX_DATAGRAM_LEN,
            ),
            bytes: DATAGRAM_HEADER_LEN,
            held: 0,
            sequence: 0,
            datagrams: 0,
            dropped: 0,
            send_errors: 0,
            last_error: None,
        })
    }

    pub fn datagrams(&self) -> u64 {
        self.datagrams
    }

    pub fn send_errors(&self) -> u64 {
        self.send_errors
    }
}

impl Target for UdpTarget {
    fn send(&mut self, _token_id: u32, record: &[u8], _control: bool) -> Result<(), Error> {
        if self.held > 0 && self.bytes + record.len() > self.max_datagram {
            self.flush()?;
        }
        if !self.writer.push(record) {
            self.flush()?;
            if !self.writer.push(record) {
                return Err(Error::Invalid(format!(
                    "a record of {} bytes does not fit a datagram",
                    record.len()
                )));
            }
        }
        self.bytes += record.len();
        self.held += 1;
        Ok(())
    }

    fn buffers(&self) -> bool {
        true
    }

    fn held(&self) -> usize {
        self.held
    }

    fn room_for(&self, len: usize) -> bool {
        self.bytes + len <= self.max_datagram
    }

    fn flush(&mut self) -> Result<(), Error> {
        if self.held == 0 {
            return Ok(());
        }
        let n = self.held as u64;
        let datagram = self.writer.finish(self.sequence);
        // Numbered even if the send fails: the receiver then sees the loss as a jump.
        self.sequence += 1;
        self.datagrams += 1;
        if let Err(e) = self.socket.send(datagram) {
            self.send_errors += 1;
            self.dropped += n;
            self.last_error = Some(e.to_string());
        }
        self.held = 0;
        self.bytes = DATAGRAM_HEADER_LEN;
        Ok(())
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

/// How to play.
#[derive(Debug, Clone)]
pub struct PlayOptions {
    pub pacing: Pacing,
    /// Below this much time to wait the player spins instead of sleeping.
    pub spin_ns: u64,
    /// Pin the sending thread to this core (ignored if pinning fails).
    pub core: Option<usize>,
    /// Records handed over before they are published (a ring) or sent (a datagram) at the
    /// latest: a burst (records due at the same time, or already late) leaves in batches of
    /// at most this many, each made visible at once. 1: every record on its own.
    pub max_batch: usize,
    /// Set to stop early ([`stop_on_sigint`]).
    pub stop: Option<&'static AtomicBool>,
}

impl PlayOptions {
    pub fn new(pacing: Pacing) -> Self {
        Self {
            pacing,
            spin_ns: 2_000_000,
            max_batch: 16,
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
    /// Sends: ring publications (one index store per batch) or datagrams.
    pub sends: u64,
    /// From the start of the schedule to the last record out.
    pub duration_ns: u64,
    pub pacing: Pacing,
    /// Pacing error of every event, ns: when it was sent (published, or its datagram sent)
    /// minus when the schedule meant it to leave. `None` when nothing is paced.
    pub pacing_error_ns: Option<Histogram<u64>>,
    /// How late the player woke for each record it had to wait for (the scheduler's own
    /// precision, without the time spent sending the burst ahead of an event).
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
                "pacing error:    p50 {}, p99 {}, p99.9 {}, max {} (over {} events; actual - intended send time)",
                us(h.value_at_quantile(0.50)),
                us(h.value_at_quantile(0.99)),
                us(h.value_at_quantile(0.999)),
                us(h.max()),
                h.len()
            )?,
            _ => writeln!(f, "pacing error:    n/a (not paced)")?,
        }
        if let Some(h) = self.wakeup_error_ns.as_ref().filter(|h| !h.is_empty()) {
            writeln!(
                f,
                "wake-up error:   p50 {}, p99 {}, p99.9 {}, max {} (over {} waits)",
                us(h.value_at_quantile(0.50)),
                us(h.value_at_quantile(0.99)),
                us(h.value_at_quantile(0.999)),
                us(h.max()),
                h.len()
            )?;
        }
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

/// Nanoseconds since `start` on `clock`.
struct Elapsed {
    clock: quanta::Clock,
    start: u64,
}

impl Elapsed {
    fn start() -> Self {
        let clock = quanta::Clock::new();
        let start = clock.raw();
        Self { clock, start }
    }

    #[inline(always)]
    fn now(&self) -> u64 {
        self.clock.delta_as_nanos(self.start, self.clock.raw())
    }

    /// Spin-then-sleep until `due`; returns the time it was reached. On starting to spin,
    /// reads `warm` (the bytes the next records are copied from) into the cache.
    #[inline]
    fn wait_until(&self, due: u64, spin_ns: u64, warm: &[u8]) -> u64 {
        let mut warmed = false;
        loop {
            let t = self.now();
            if t >= due {
                return t;
            }
            let left = due - t;
            if left > spin_ns {
                std::thread::sleep(Duration::from_nanos(left - spin_ns));
            } else if !warmed {
                touch(warm);
                warmed = true;
            } else {
                core::hint::spin_loop();
            }
        }
    }
}

/// Reads one byte of every cache line of `bytes`.
#[inline(never)]
fn touch(bytes: &[u8]) {
    let mut x = 0u8;
    for line in bytes.chunks(64) {
        x ^= line[0];
    }
    std::hint::black_box(x);
}

/// Records handed to the target and not yet out, as runs of equal due times (a burst is one
/// run).
#[derive(Default)]
struct Held {
    runs: VecDeque<(Option<u64>, u64)>,
    len: usize,
}

impl Held {
    #[inline(always)]
    fn push(&mut self, due: Option<u64>) {
        match self.runs.back_mut() {
            Some((d, n)) if *d == due => *n += 1,
            _ => self.runs.push_back((due, 1)),
        }
        self.len += 1;
    }

    /// The oldest records, beyond the `still_held` the target keeps, left at `t`: records
    /// their pacing error.
    #[inline(always)]
    fn left(&mut self, still_held: usize, t: u64, hist: &mut Histogram<u64>) {
        while self.len > still_held {
            let out = (self.len - still_held) as u64;
            let (due, n) = self.runs.front_mut().expect("len counts the runs' records");
            let k = (*n).min(out);
            if let Some(d) = *due {
                hist.saturating_record_n(t.saturating_sub(d), k);
            }
            *n -= k;
            self.len -= k as usize;
            if *n == 0 {
                self.runs.pop_front();
            }
        }
    }
}

fn histogram() -> Histogram<u64> {
    // 1 ns to a day at 3 significant digits (errors beyond a day are recorded as a day).
    Histogram::<u64>::new_with_bounds(1, 86_400_000_000_000, 3).expect("valid histogram bounds")
}

/// Plays `source` (from where its cursor is) into `target` on `opts.pacing`'s schedule.
///
/// Records are handed to the target as they come; a target that buffers (rings stage,
/// datagrams fill) sends what it holds before the player waits for a record that is not yet
/// due, when it holds `max_batch` records, when the next record would not fit its datagram,
/// and before a declaration. The clock is read when a record may be early, at every send,
/// and after every wait: a burst of records already due costs no clock reads.
pub fn play(
    source: &mut ReplaySource,
    target: &mut dyn Target,
    opts: &PlayOptions,
) -> Result<Report, Error> {
    let pinned = opts
        .core
        .filter(|&c| core_affinity::set_for_current(core_affinity::CoreId { id: c }));
    tighten_timer_slack();
    let mut schedule = Schedule::new(opts.pacing);
    let mut hist = histogram();
    let mut wakeup = histogram();
    let mut held = Held::default();
    let buffers = target.buffers();
    let max_batch = opts.max_batch.max(1);
    let (mut events, mut declarations, mut sends) = (0u64, 0u64, 0u64);
    let mut stopped = false;
    let clock = Elapsed::start();
    // The latest clock reading: time only moves forward, so a record due before it is late.
    let mut last_t = 0u64;
    while let Some(item) = source.next() {
        if let Some(stop) = opts.stop {
            if stop.load(Ordering::Relaxed) {
                stopped = true;
                break;
            }
        }
        let due = if item.declaration {
            declarations += 1;
            None
        } else {
            events += 1;
            schedule.next(item.capture_receive_ns)
        };
        let early = match due {
            Some(d) if d > last_t => {
                last_t = clock.now();
                d > last_t
            }
            _ => false,
        };
        let holding = target.held();
        if holding > 0
            && (early
                || holding >= max_batch
                || item.declaration
                || !target.room_for(item.record.len()))
        {
            last_t = clock.now();
            target.flush()?;
            sends += 1;
            held.left(target.held(), last_t, &mut hist);
        }
        if let (true, Some(d)) = (early, due) {
            last_t = clock.wait_until(d, opts.spin_ns, item.upcoming());
            wakeup.saturating_record(last_t - d);
        }
        if !buffers {
            last_t = clock.now();
        }
        held.push(due);
        target.send(item.token_id, item.record, item.declaration)?;
        if target.held() < held.len {
            // Left during `send`: a target that does not buffer, or a declaration.
            if buffers {
                sends += 1;
            }
            held.left(target.held(), last_t, &mut hist);
        }
    }
    last_t = clock.now();
    if target.held() > 0 {
        sends += 1;
    }
    target.finish()?;
    held.left(0, last_t, &mut hist);
    let duration_ns = clock.now();
    let paced = opts.pacing != Pacing::AsFastAsPossible;
    Ok(Report {
        events,
        dropped: target.dropped(),
        declarations,
        sends: if buffers {
            sends
        } else {
            events + declarations
        },
        duration_ns,
        pacing: opts.pacing,
        pacing_error_ns: paced.then_some(hist),
        wakeup_error_ns: paced.then_some(wakeup),
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
