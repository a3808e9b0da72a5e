//! One shard: a glommio executor pinned to its core, owning a token group. It polls its ring,
//! refines each record (tick id, book, partition buffer), applies the token's engine, and
//! every flush interval — by deadline, not by a repeating timer that drifts — seals the
//! buffered records for its flush writer (`flush`), which owns the partition files and writes
//! them with O_DIRECT while the shard goes on; the snapshots they make writable go to its
//! snapshot writer (`snapshots`), and a new token's disk work to its declaration worker
//! (`declarations`). Once its loop starts, the shard core makes no file system call.

use crate::declarations::{self, DeclarationWorker};
use crate::flush::{self, FlushWriter, InFlight, Job};
use crate::hold::Hold;
use crate::snapshots::SnapshotWriter;
use crate::stats::{PublishClock, ShardStats};
use crate::RuntimeError;
use chronicle_engine::TokenEngine;
use chronicle_etl::{Closed, Counters, Refinery, RefineryConfig, ReplayResume};
use chronicle_feed::Consumer;
use chronicle_protocol::{Body, Declaration, Gap, GapReason, Record};
use chronicle_state::position::LogPosition;
use chronicle_state::recovery::Cadence;
use chronicle_state::store::Pending;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records between two checks of the deadline and of the flush in flight.
const YIELD_EVERY: u64 = 64;
/// One record in this many has its refinery and engine shares timed (two more clock reads).
const SAMPLE_EVERY: u64 = 16;

/// Called on a shard's thread as each drain of its ring starts (true) and ends (false): a
/// test's counting allocator arms itself there to count what the real loop allocates
/// (tests/hot_path_alloc.rs). Unset in the appliance.
static DRAIN_PROBE: std::sync::OnceLock<fn(bool)> = std::sync::OnceLock::new();

/// Sets the drain probe for every shard of this process (once).
pub fn set_drain_probe(probe: fn(bool)) {
    assert!(
        DRAIN_PROBE.set(probe).is_ok(),
        "the drain probe is set once"
    );
}

/// Why the drain loop returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drained {
    Deadline,
    /// The in-flight flush ended: its completion can run now.
    FlushDone,
    /// The feed is done and the ring is empty.
    Finished,
}

pub struct ShardSettings {
    pub index: usize,
    pub cpu: usize,
    /// Every shard's core: the shard's helper threads run on the others.
    pub shard_cpus: Vec<usize>,
    pub refinery: RefineryConfig,
    pub flush_interval: Duration,
    pub snapshot_every_ns: u64,
    pub retain: usize,
    pub io_memory_bytes: usize,
    /// Where the shard hands its histograms and counters at each flush (`/metrics`).
    pub metrics: Option<chronicle_metrics::Reporter>,
}

struct Engine {
    engine: TokenEngine,
    /// Just past the last applied record in the token's log.
    position: Option<LogPosition>,
    /// The tick of its last snapshot (written or captured): nothing new, no snapshot.
    snapped_tick: u64,
}

impl Engine {
    /// The engine's state as a snapshot at `pos` (just past its last applied record), unless
    /// nothing was applied since its last one.
    fn capture(&mut self, token: u32, pos: LogPosition) -> Option<Pending> {
        let tick = self.engine.last_global_tick_id();
        if tick == self.snapped_tick {
            return None;
        }
        self.snapped_tick = tick;
        Some(Pending {
            token_id: token as u64,
            bytes: self.engine.snapshot(pos.pack()),
            clock_ns: self.engine.last_exchange_ts_ns(),
        })
    }
}

/// What a shard did, for the run summary.
pub struct ShardReport {
    pub index: usize,
    pub counters: Counters,
    pub stats: ShardStats,
    pub events: u64,
    pub ring_gaps: u64,
    pub flushes: u64,
    pub missed_deadlines: u64,
    pub direct_writes: u64,
    pub direct_bytes: u64,
    /// Segments were written, and every one's descriptor had O_DIRECT set (read back from
    /// /proc/self/fdinfo).
    pub o_direct_verified: bool,
    /// Segment files the flush opened with O_DIRECT.
    pub segments_opened: u64,
    /// Deadlines that found the previous flush still in flight: the shard waited for it
    /// without reading its ring (back-pressure).
    pub flush_waits: u64,
    pub snapshots: u64,
    /// Engine recoveries that skipped a damaged snapshot for an older one.
    pub snapshot_fallbacks: u64,
    /// Times the hold filled while declarations were being prepared: the shard waited for
    /// them without reading its ring (back-pressure).
    pub declaration_waits: u64,
    /// From its first record read to its last, ns: the ingest period (idle time before and
    /// after is not in it).
    pub ingest_ns: u64,
    /// Gap markers received from the ring (any reason).
    pub gap_markers: u64,
    pub closed: Vec<Closed>,
    pub engine_ticks: BTreeMap<u32, u64>,
}

struct Shard {
    refinery: Refinery,
    engines: BTreeMap<u32, Engine>,
    /// New tokens whose disk work runs on the declaration worker; per token, whether records
    /// of it came before its declaration (they get a gap marker when it is installed).
    declarations: DeclarationWorker,
    recovering: BTreeMap<u32, bool>,
    /// The thread that writes the sealed buffers with O_DIRECT, and a flush it finished that
    /// the drain loop saw.
    writer: FlushWriter,
    arrived: Option<flush::Done>,
    /// Sealed buffers back from the flush, for the next seal; the job list (reused).
    spare: Vec<Vec<u8>>,
    spare_index: Vec<Vec<u8>>,
    jobs: Vec<Job>,
    /// Segments opened whose descriptor had O_DIRECT set.
    segments_direct: u64,
    clock: quanta::Clock,
    /// Places the shard's TSC reads next to the ring's publication stamps.
    publish_clock: PublishClock,
    /// The stages since the last hand-off to the metrics thread (since the start without
    /// one); `total` takes them at each hand-off.
    stats: ShardStats,
    total: ShardStats,
    metrics: Option<chronicle_metrics::Reporter>,
    /// TSC instant of the first ring read since the last flush.
    oldest_pending: Option<u64>,
    /// TSC of the previous read, if it found a record: one clock read per record times the
    /// whole loop, read to read (`hot_path`), across a seal and a flush's completion too.
    previous_read: Option<u64>,
    /// TSC of the first and the latest record read (the ingest period).
    first_read: Option<u64>,
    last_read: u64,
    report: ShardReport,
    cadence: Cadence,
    /// Snapshots captured at their points (in order), written once the flush that follows
    /// has made the log they cover durable; and an emptied buffer for the next seal.
    snapshots_due: Vec<Pending>,
    snapshot_spare: Vec<Pending>,
    /// The most snapshot points one interval passed.
    most_points: usize,
    snapshot_writer: SnapshotWriter,
    /// Records of tokens not declared yet, and the buffer their release reuses.
    hold: Hold,
    released: Vec<u8>,
    /// Tokens a whole-shard gap marks (reused).
    gap_tokens: Vec<u32>,
    /// Tokens whose last declaration did not resolve (reported once each).
    unresolved: BTreeSet<u32>,
    declaration_failures: u64,
    /// The record being handled is one whose stages are timed (`SAMPLE_EVERY`).
    sampled: bool,
}

/// Starts the shard's executor on its core; it runs until `done` is set and its ring is empty
/// (or forever when `done` never is). A shard that fails sets `failed` at once, so that the
/// whole appliance stops (and its supervisor restarts it) rather than serve a dead shard;
/// its error, naming the shard, is what the handle returns.
pub fn spawn(
    settings: ShardSettings,
    mut consumer: Consumer,
    done: Arc<AtomicBool>,
    failed: Arc<AtomicBool>,
) -> Result<glommio::ExecutorJoinHandle<Result<ShardReport, RuntimeError>>, RuntimeError> {
    let builder = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(settings.cpu))
        .name(&format!("shard-{}", settings.index))
        .io_memory(settings.io_memory_bytes);
    let (index, cpu) = (settings.index, settings.cpu);
    builder
        // The shard is the executor's one task and never yields: it issues no I/O on its core
        // (its files are the flush writer's), so the reactor has nothing to reap here, and
        // each of its polls would allocate a preemption timer.
        .spawn(move || async move {
            let result = (|| {
                let mut shard = Shard::new(&settings)?;
                // Setup may touch the disk; from this line on the shard core makes no file
                // system call (cli/tests/no_blocking_syscalls.rs checks what follows it).
                say(format!(
                    "chronicle: shard {index} ingesting on core {}",
                    settings.cpu
                ));
                shard.run(&mut consumer, &done, settings.flush_interval)?;
                Ok(shard.report)
            })();
            result.map_err(|e| {
                failed.store(true, Ordering::Release);
                RuntimeError::Shard {
                    index,
                    source: Box::new(e),
                }
            })
        })
        .map_err(|e| RuntimeError::Executor {
            cpu,
            reason: e.to_string(),
        })
}

impl Shard {
    fn new(s: &ShardSettings) -> Result<Self, RuntimeError> {
        let cadence = Cadence {
            every_ns: s.snapshot_every_ns,
            at_end: true,
        };
        Ok(Self {
            refinery: Refinery::new(s.refinery.clone())?,
            engines: BTreeMap::new(),
            declarations: declarations::spawn(
                s.index,
                s.shard_cpus.clone(),
                s.refinery.clone(),
                s.retain,
                cadence,
            )?,
            recovering: BTreeMap::new(),
            writer: FlushWriter::spawn(s.index, &s.shard_cpus, s.io_memory_bytes)?,
            arrived: None,
            spare: Vec::new(),
            spare_index: Vec::new(),
            jobs: Vec::new(),
            segments_direct: 0,
            clock: quanta::Clock::new(),
            publish_clock: PublishClock::default(),
            stats: ShardStats::default(),
            total: ShardStats::default(),
            metrics: s.metrics.clone(),
            oldest_pending: None,
            previous_read: None,
            first_read: None,
            last_read: 0,
            report: ShardReport {
                index: s.index,
                counters: Counters::default(),
                stats: ShardStats::default(),
                events: 0,
                ring_gaps: 0,
                flushes: 0,
                missed_deadlines: 0,
                direct_writes: 0,
                direct_bytes: 0,
                o_direct_verified: false,
                segments_opened: 0,
                flush_waits: 0,
                snapshots: 0,
                snapshot_fallbacks: 0,
                declaration_waits: 0,
                ingest_ns: 0,
                gap_markers: 0,
                closed: Vec::new(),
                engine_ticks: BTreeMap::new(),
            },
            cadence,
            snapshots_due: Vec::new(),
            snapshot_spare: Vec::new(),
            most_points: 0,
            snapshot_writer: SnapshotWriter::spawn(
                &s.refinery.data_dir,
                s.retain,
                s.index,
                s.shard_cpus.clone(),
            )?,
            hold: Hold::new(),
            released: Vec::new(),
            gap_tokens: Vec::new(),
            unresolved: BTreeSet::new(),
            declaration_failures: 0,
            sampled: false,
        })
    }

    fn run(
        &mut self,
        ring: &mut Consumer,
        done: &AtomicBool,
        interval: Duration,
    ) -> Result<(), RuntimeError> {
        let start = Instant::now();
        let mut deadline = start + interval;
        let mut last_flush = start;
        let mut inflight: Option<InFlight> = None;
        loop {
            let probe = DRAIN_PROBE.get();
            probe.inspect(|p| p(true));
            let why = self.drain(ring, done, deadline, inflight.is_some());
            probe.inspect(|p| p(false));
            let why = why?;
            if let Some(f) = inflight.take() {
                let d = match self.arrived.take() {
                    Some(d) => d,
                    None => {
                        // The deadline (or the end) came with the last flush still in
                        // flight: wait for it, the ring not read meanwhile (back-pressure).
                        if why == Drained::Deadline {
                            self.report.flush_waits += 1;
                        }
                        self.writer.wait()?
                    }
                };
                self.complete(f, d, false)?;
                if why == Drained::FlushDone {
                    continue;
                }
            }
            if why == Drained::Finished {
                // Tokens still being prepared: installed, and their held records refined.
                while self.settle_next(true)? {}
                break;
            }
            let t = Instant::now();
            self.stats
                .flush_cadence
                .record((t - last_flush).as_nanos() as u64);
            last_flush = t;
            inflight = Some(self.seal(false)?);
            // Next deadline on the fixed grid; a loop that overran skips the missed slots.
            deadline += interval;
            while deadline <= Instant::now() {
                deadline += interval;
                self.report.missed_deadlines += 1;
            }
        }
        // The end (input done, or SIGTERM): everything left, then the partitions closed and
        // the final snapshots. (The end of the window the no-blocking-syscall test checks.)
        say(format!(
            "chronicle: shard {} input done, final flush",
            self.report.index
        ));
        let last = self.seal(true)?;
        let d = self.writer.wait()?;
        self.complete(last, d, true)?;
        self.report.counters = self.refinery.counters;
        self.report.ingest_ns = self
            .first_read
            .map_or(0, |f| self.clock.delta_as_nanos(f, self.last_read));
        self.report.o_direct_verified =
            self.report.segments_opened > 0 && self.report.segments_opened == self.segments_direct;
        let mut stats = std::mem::take(&mut self.total);
        stats.add(&self.stats);
        self.report.stats = stats;
        self.report.engine_ticks = self
            .engines
            .iter()
            .map(|(t, e)| (*t, e.engine.last_global_tick_id()))
            .collect();
        Ok(())
    }

    /// The hot loop: pops and refines records until the flush deadline, the end of the feed
    /// (and of the ring), or the end of the flush in flight (kept in `arrived`), whichever
    /// comes first.
    fn drain(
        &mut self,
        ring: &mut Consumer,
        done: &AtomicBool,
        deadline: Instant,
        in_flight: bool,
    ) -> Result<Drained, RuntimeError> {
        let mut n = 0u64;
        loop {
            // Read `done` before popping: a record pushed before `done` was set is then seen.
            let feed_done = done.load(Ordering::Acquire);
            let t0 = self.clock.raw();
            if let Some(p) = self.previous_read.take() {
                self.stats.hot_path.record(self.clock.delta_as_nanos(p, t0));
            }
            let popped = ring.pop()?;
            let idle = match popped {
                Some(view) => {
                    self.previous_read = Some(t0);
                    if self.oldest_pending.is_none() {
                        self.oldest_pending = Some(t0);
                    }
                    self.first_read.get_or_insert(t0);
                    self.last_read = t0;
                    let rec = view.decode().map_err(|source| RuntimeError::Record {
                        from: "the ring",
                        bytes: view.bytes.len(),
                        source,
                    })?;
                    // The refinery's and the engine's shares are timed on a sample.
                    self.sampled = n.is_multiple_of(SAMPLE_EVERY);
                    self.handle(&rec, view.bytes)?;
                    if let Some(published) = ring.published_ns() {
                        self.publish_clock.record(
                            &mut self.stats.publish_to_read,
                            &self.clock,
                            published,
                            t0,
                        );
                    }
                    n += 1;
                    if !n.is_multiple_of(YIELD_EVERY) {
                        continue;
                    }
                    false
                }
                None if feed_done => return Ok(Drained::Finished),
                None => true,
            };
            if Instant::now() >= deadline {
                return Ok(Drained::Deadline);
            }
            if in_flight {
                if let Some(d) = self.writer.try_done()? {
                    self.arrived = Some(d);
                    return Ok(Drained::FlushDone);
                }
            }
            while self.settle_next(false)? {}
            if idle {
                std::hint::spin_loop();
            }
        }
    }

    /// One record off the ring (`raw`: its bytes, for the hold).
    fn handle(&mut self, rec: &Record<'_>, raw: &[u8]) -> Result<(), RuntimeError> {
        fail::fail_point!("shard::handle", |msg| Err(RuntimeError::Engine {
            token: rec.meta.token_id,
            reason: msg.unwrap_or_else(|| "fail point shard::handle".into())
        }));
        let token = rec.meta.token_id;
        match rec.body {
            Body::Declaration(d) => return self.declare(token, &d),
            // A ring overrun or a lost datagram (token 0: the loss is not per token) may have
            // lost records of any token of this shard: each one is marked.
            Body::Gap(
                g @ Gap {
                    reason:
                        GapReason::RingOverrun
                        | GapReason::FeedLoss
                        | GapReason::KernelDrop
                        | GapReason::SenderRestart,
                    ..
                },
            ) if !self.engines.contains_key(&token) && !self.recovering.contains_key(&token) => {
                // Every token marked, including those being prepared: installed first.
                while self.settle_next(true)? {}
                self.report.ring_gaps += 1;
                self.report.gap_markers += 1;
                // The token list is reused: a whole-shard gap allocates nothing once warm.
                let mut tokens = std::mem::take(&mut self.gap_tokens);
                tokens.clear();
                tokens.extend(self.engines.keys().copied());
                for &t in &tokens {
                    self.push(
                        t,
                        rec.meta.exchange_ts_ns,
                        rec.meta.receive_ts_ns,
                        Body::Gap(g),
                    )?;
                }
                self.gap_tokens = tokens;
                return Ok(());
            }
            _ => {}
        }
        match self.event(rec) {
            // Not declared (yet; the refinery turns it away before doing anything): kept
            // until it is, never a reason to stop. A token being prepared loses nothing: with
            // the hold full, the shard waits for the declarations instead (back-pressure).
            Err(RuntimeError::Etl(chronicle_etl::EtlError::UnknownToken(_))) => {
                if self.recovering.contains_key(&token) && !self.hold.has_room(raw.len()) {
                    self.report.declaration_waits += 1;
                    while self.settle_next(true)? {}
                    return self.handle(rec, raw);
                }
                self.hold.keep(raw, &rec.meta);
                Ok(())
            }
            r => r,
        }
    }

    /// An event of a token.
    fn event(&mut self, rec: &Record<'_>) -> Result<(), RuntimeError> {
        self.push(
            rec.meta.token_id,
            rec.meta.exchange_ts_ns,
            rec.meta.receive_ts_ns,
            rec.body,
        )?;
        if matches!(rec.body, Body::Gap(_)) {
            self.report.gap_markers += 1;
        }
        self.report.events += 1;
        Ok(())
    }

    /// A declaration: the token's definition, and for a replay where its earlier run started
    /// and what is already durable (see feed::RunLedger). A new token's disk work goes to the
    /// declaration worker; its records are held until [`Self::settle_next`] installs it.
    fn declare(&mut self, token: u32, d: &Declaration) -> Result<(), RuntimeError> {
        let (definition, replay) = (d.definition, ReplayResume::of(d));
        if self.refinery.knows(token) {
            return match self.refinery.declare(token, definition, replay) {
                Err(chronicle_etl::EtlError::Identity(why)) => {
                    self.unresolvable(token, &why);
                    Ok(())
                }
                r => Ok(r?),
            };
        }
        // A feed re-declares its tokens every second or so: one preparation at a time.
        if self.recovering.contains_key(&token) {
            return Ok(());
        }
        let preceded = self.hold.holds(token);
        self.declarations.submit(declarations::Request {
            token,
            definition,
            replay,
        })?;
        self.recovering.insert(token, preceded);
        Ok(())
    }

    /// A declaration that did not resolve: reported once per token, its records held until
    /// a later one does.
    fn unresolvable(&mut self, token: u32, why: &str) {
        self.declaration_failures += 1;
        if self.unresolved.insert(token) {
            eprintln!(
                "chronicle: shard {}: token {token} not declared, its records are held until a \
                 declaration resolves: {why}",
                self.report.index
            );
        }
    }

    /// Installs the next token the declaration worker prepared (waiting for it if `wait`), and
    /// refines the records held for it. False when there was none (none outstanding, or none
    /// ready without waiting).
    fn settle_next(&mut self, wait: bool) -> Result<bool, RuntimeError> {
        let answer = if wait {
            self.declarations.answer()?
        } else {
            self.declarations.try_answer()?
        };
        let Some(declarations::Answer { token, result }) = answer else {
            return Ok(false);
        };
        let preceded = self.recovering.remove(&token).unwrap_or(false);
        let r = match result {
            Ok(r) => r,
            Err(RuntimeError::Etl(chronicle_etl::EtlError::Identity(why))) => {
                self.unresolvable(token, &why);
                return Ok(true);
            }
            Err(e) => return Err(e),
        };
        self.unresolved.remove(&token);
        self.refinery.install(r.prepared);
        self.report.snapshot_fallbacks += r.fallbacks;
        let tick = r.engine.last_global_tick_id();
        self.engines.insert(
            token,
            Engine {
                engine: r.engine,
                position: r.position,
                snapped_tick: tick,
            },
        );
        let mut held = std::mem::take(&mut self.released);
        held.clear();
        if let Some(r) = self.hold.take(token, &mut held) {
            if preceded || r.dropped > 0 {
                // Its stream began without its declaration: whatever the lost datagram
                // carried is unknown, and records a full hold dropped are counted.
                self.push(
                    token,
                    r.first.0,
                    r.first.1,
                    Body::Gap(Gap {
                        reason: GapReason::FeedLoss,
                        expected: 0,
                        received: 0,
                        lost: r.dropped,
                    }),
                )?;
                self.report.gap_markers += 1;
            }
            let mut at = 0;
            while at < held.len() {
                let undecodable = |bytes, source| RuntimeError::Record {
                    from: "the records held for a declaration",
                    bytes,
                    source,
                };
                let view = chronicle_protocol::RecordView::parse(&held[at..])
                    .map_err(|e| undecodable(held.len() - at, e))?;
                at += view.bytes.len();
                let rec = view
                    .decode()
                    .map_err(|e| undecodable(view.bytes.len(), e))?;
                self.event(&rec)?;
            }
        }
        self.released = held;
        Ok(true)
    }

    fn push(&mut self, token: u32, ts: u64, recv: u64, body: Body<'_>) -> Result<(), RuntimeError> {
        let engines = &mut self.engines;
        let clock = &self.clock;
        let sampled = self.sampled;
        let engine_stage = &mut self.stats.engine_update;
        let (cadence, due) = (self.cadence, &mut self.snapshots_due);
        let mut failed = None;
        let mut engine_ns = 0;
        let t_push = if sampled { clock.raw() } else { 0 };
        let pushed = self.refinery.push(token, ts, recv, body, &mut |a| {
            if a.late {
                return; // a late stream is outside the canonical log the engine follows
            }
            let Some(e) = engines.get_mut(&a.record.meta.token_id) else {
                return;
            };
            // A snapshot point (set by the input alone: `Cadence`): the state before this
            // record, captured now and written once its log is durable.
            if let Some(prev) = e.position {
                if cadence.due(e.engine.last_exchange_ts_ns(), a.record.meta.exchange_ts_ns) {
                    due.extend(e.capture(a.record.meta.token_id, prev));
                }
            }
            let t0 = if sampled { clock.raw() } else { 0 };
            if let Err(err) = e.engine.apply(a.record) {
                failed = Some(err);
            }
            if sampled {
                let ns = clock.delta_as_nanos(t0, clock.raw());
                engine_ns += ns;
                engine_stage.record(ns);
            }
            e.position = Some(LogPosition {
                date: a.date,
                offset: a.end_offset,
            });
        });
        if sampled && pushed.is_ok() {
            self.stats.buffer_append.record(
                clock
                    .delta_as_nanos(t_push, clock.raw())
                    .saturating_sub(engine_ns),
            );
        }
        pushed?;
        match failed {
            Some(e) => Err(RuntimeError::Engine {
                token,
                reason: e.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// After a flush, off the hot path: moves the stages recorded since the last hand-off to
    /// the metrics thread, with the cumulative counters. Nothing to do without metrics.
    fn hand_off(&mut self) {
        let Some(m) = &self.metrics else { return };
        let window = std::mem::take(&mut self.stats);
        self.total.add(&window);
        let (r, c) = (&self.report, &self.refinery.counters);
        m.send(chronicle_metrics::Snapshot {
            shard: r.index,
            stages: window.into_stages(),
            counters: chronicle_metrics::ShardCounters {
                events: r.events,
                records: c.records,
                durable_bytes: r.direct_bytes,
                undeclared_held: self.hold.held_total,
                undeclared_dropped: self.hold.dropped_total,
                declaration_failures: self.declaration_failures,
                ring_gaps: r.ring_gaps,
                gap_markers: r.gap_markers,
                late_rejected: c.late_rejected,
                duplicates: c.duplicates,
                late_streamed: c.late_streamed,
                snapshot_fallbacks: r.snapshot_fallbacks,
                snapshots: r.snapshots,
                flushes: r.flushes,
                missed_deadlines: r.missed_deadlines,
                flush_waits: r.flush_waits,
                ring_stamps_out_of_range: self.publish_clock.out_of_range,
            },
        });
    }

    /// At a deadline (or the end: `last`): captures the final snapshots if `last`, seals every
    /// partition's pending frames and hands them to the flush writer.
    fn seal(&mut self, last: bool) -> Result<InFlight, RuntimeError> {
        self.report.flushes += 1;
        if last {
            // The state of every engine that moved since its last point.
            for (token, e) in self.engines.iter_mut() {
                if let Some(pos) = e.position {
                    self.snapshots_due.extend(e.capture(*token, pos));
                }
            }
        }
        let mut jobs = std::mem::take(&mut self.jobs);
        jobs.clear();
        for w in self.refinery.partitions_mut() {
            if w.pending().1.is_empty() {
                continue;
            }
            // A buffer back from an earlier flush (the segment writer reserves room in it).
            let spare = self.spare.pop().unwrap_or_default();
            let mut index = self.spare_index.pop().unwrap_or_default();
            let segment = w.paths().segment.clone();
            let sealed = w.seal(spare, &mut index);
            jobs.push(Job {
                segment,
                start: sealed.start,
                bytes: sealed.bytes,
                index_path: w.index_path().to_owned(),
                index,
            });
        }
        // Partitions whose day (plus grace) is over, every one at the end: the writer finishes
        // their files once their last frames are durable.
        let closed = if last {
            self.refinery.close_all()?
        } else {
            let expired = self.refinery.expired();
            self.refinery.close_partitions(&expired)?
        };
        self.writer.submit(jobs, closed)?;
        // Room for twice the most points an interval ever passed: captures on the hot path
        // never grow the list (the snapshot writer may still hold the previous one).
        self.most_points = self.most_points.max(self.snapshots_due.len());
        let snapshots = std::mem::replace(
            &mut self.snapshots_due,
            std::mem::take(&mut self.snapshot_spare),
        );
        self.snapshots_due.reserve(2 * self.most_points);
        Ok(InFlight {
            snapshots,
            oldest_read: self.oldest_pending.take(),
            sealed_at: Instant::now(),
        })
    }

    /// A flush ended (its frames and their index entries durable, the partitions closed at
    /// its seal finished): what that allows. The snapshots captured before it handed to the
    /// snapshot writer, and the hand-off to `/metrics`.
    fn complete(&mut self, f: InFlight, done: flush::Done, last: bool) -> Result<(), RuntimeError> {
        let flush::Done {
            mut jobs,
            closed,
            result,
        } = done;
        let written = result?;
        self.report.direct_writes += written.writes;
        self.report.direct_bytes += written.bytes;
        self.report.segments_opened += written.opened;
        self.segments_direct += written.opened_direct;
        for j in jobs.drain(..) {
            self.spare.push(j.bytes);
            self.spare_index.push(j.index);
        }
        self.jobs = jobs;
        // Everything read from the ring before the seal is durable now (or was re-derived).
        if let Some(t0) = f.oldest_read {
            self.stats
                .read_to_durable
                .record(self.clock.delta_as_nanos(t0, self.clock.raw()));
        }
        self.report.closed.extend(closed);
        // Off the shard core: the snapshot writer thread writes them, in order.
        if let Some(spare) = self.snapshot_writer.submit(f.snapshots)? {
            self.keep_spare(spare);
        }
        let written = if last {
            self.snapshot_writer.finish()?
        } else {
            self.snapshot_writer.poll()?
        };
        for w in written {
            for ns in w.batch_ns {
                self.stats.snapshot_write.record(ns);
            }
            self.report.snapshots += w.snapshots;
            self.keep_spare(w.spare);
        }
        self.stats
            .flush_duration
            .record(f.sealed_at.elapsed().as_nanos() as u64);
        self.hand_off();
        Ok(())
    }

    /// Keeps an emptied capture buffer for a later seal (its capacity spares the hot path an
    /// allocation at the next snapshot point).
    fn keep_spare(&mut self, spare: Vec<Pending>) {
        if spare.capacity() > self.snapshot_spare.capacity() {
            self.snapshot_spare = spare;
        }
    }
}

/// One line to stderr in one write: the start and the end of the loop, which a test finds in
/// a trace of the shard's system calls.
fn say(mut line: String) {
    use std::io::Write;
    line.push('\n');
    let _ = std::io::stderr().write_all(line.as_bytes());
}
