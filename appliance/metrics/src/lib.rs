//! chronicle-metrics: the appliance's latency histograms and counters on `/metrics`
//! (Prometheus text format, `docs/observability.md`).
//!
//! Hand-off, not sharing: each shard records into its own `hdrhistogram`s on the hot path (TSC
//! clock, no atomics, no lock). At each flush — off the hot path — it moves the histograms of
//! the interval just ended into a [`Snapshot`] with its cumulative counters and sends that
//! through a channel ([`Reporter`]); the UDP feed handler does the same every 250 ms with its
//! receive → publish histograms and counters ([`FeedSnapshot`]). The metrics thread merges
//! snapshots into cumulative
//! Prometheus buckets (seconds, 50 ns … 10 s) and into a rolling window of exact HDR
//! histograms for the quantile gauges; the HTTP thread renders them on each scrape.

mod http;

use hdrhistogram::Histogram;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram as PHistogram, LabelPair, Metric, MetricFamily, MetricType,
    Quantile, Summary,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use http::MAX_REQUEST_BYTES;

/// Upper bounds (seconds) of the exported histogram buckets: 1, 1.5, 2, 3, 5, 7 per decade
/// from 50 ns to 10 s (+Inf is implicit), fine enough for sub-microsecond stages.
pub fn bucket_bounds() -> Vec<f64> {
    let mut v = Vec::new();
    for exp in -8i32..=1 {
        for m in [1.0, 1.5, 2.0, 3.0, 5.0, 7.0] {
            let b = m * 10f64.powi(exp);
            if (5e-8 - 1e-12..=10.0 + 1e-9).contains(&b) {
                v.push(b);
            }
        }
    }
    v
}

/// Quantiles exported (as a summary) from the exact HDR histograms of the last window.
pub const QUANTILES: [f64; 5] = [0.5, 0.9, 0.99, 0.999, 1.0];

/// How long a quantile window lasts: the gauges cover the previous full window plus the
/// current partial one (between one and two windows of data).
pub const WINDOW: Duration = Duration::from_secs(10);

/// A stage's latency histogram, in ns: 1 ns … 100 s at 3 significant digits, allocated
/// up front so that recording never allocates. Shards and the feed handler record into
/// these; larger values are recorded as 100 s (`saturating_record`).
pub fn stage_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// A shard's cumulative counters (totals since the shard started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardCounters {
    /// Events taken from the ring (declarations and ring-overrun markers excluded).
    pub events: u64,
    /// Records written to partitions (refinery count: events, gap markers, injected books).
    pub records: u64,
    /// Bytes made durable by O_DIRECT flushes (block-aligned writes, tail rewrites included).
    pub durable_bytes: u64,
    /// Records of a token that came before its declaration: held, then refined once it came.
    pub undeclared_held: u64,
    /// Records of undeclared tokens dropped because the hold was full (marked by a gap in
    /// the token's log once it is declared).
    pub undeclared_dropped: u64,
    /// Declarations the shard could not resolve (no `dim_symbol` row): the token's records
    /// are held until a later declaration resolves.
    pub declaration_failures: u64,
    /// Ring-overrun gap markers the shard received.
    pub ring_gaps: u64,
    /// Gap markers of any reason the shard received (ring overrun, feed loss, ...).
    pub gap_markers: u64,
    pub late_rejected: u64,
    pub late_streamed: u64,
    /// Records already stored that a restarted sender sent again: not stored twice.
    pub duplicates: u64,
    /// Engine recoveries that skipped a damaged snapshot for an older one.
    pub snapshot_fallbacks: u64,
    pub snapshots: u64,
    pub flushes: u64,
    pub missed_deadlines: u64,
    /// Deadlines that found the previous flush still in flight (the shard waited: back-pressure).
    pub flush_waits: u64,
    /// Ring publication stamps later than the shard's read, or older than 100 s: not recorded.
    pub ring_stamps_out_of_range: u64,
}

/// What a shard hands off at a flush: the stage histograms of the interval since its
/// previous hand-off (ns, moved out, not copied) and its cumulative counters.
pub struct Snapshot {
    pub shard: usize,
    pub stages: Vec<(&'static str, Histogram<u64>)>,
    pub counters: ShardCounters,
}

/// A counter value handed off by a thread other than the shards (the feed handler's),
/// exported as `name{labels}`; values of one name form one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterValue {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Vec<(&'static str, &'static str)>,
    pub value: u64,
}

/// What the feed handler hands off periodically: its stage histograms since its previous
/// hand-off, per shard (moved out, not copied), and its cumulative counters.
pub struct FeedSnapshot {
    /// `(shard, stage, histogram in ns)`.
    pub stages: Vec<(usize, &'static str, Histogram<u64>)>,
    pub counters: Vec<CounterValue>,
    /// Values that are levels, not totals (the socket's receive buffer): exported as gauges.
    pub gauges: Vec<CounterValue>,
}

/// What travels from the recording threads to the metrics thread.
enum Handoff {
    Shard(Snapshot),
    Feed(FeedSnapshot),
}

/// A counter owned by a thread other than the shards (the tier manager's), read at scrape
/// time: not on any hot path, so a plain function over its atomics.
pub struct SharedCounter {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Vec<(&'static str, &'static str)>,
    pub read: Box<dyn Fn() -> u64 + Send>,
}

/// A sending end (a shard's, the feed handler's). Sending allocates a channel node; the
/// senders call it at flush or hand-off time, never on the hot path.
#[derive(Clone)]
pub struct Reporter {
    tx: Sender<Handoff>,
}

impl Reporter {
    /// Hands a shard's snapshot to the metrics thread (a no-op once the metrics server is
    /// gone).
    pub fn send(&self, s: Snapshot) {
        let _ = self.tx.send(Handoff::Shard(s));
    }

    /// Hands the feed handler's snapshot to the metrics thread.
    pub fn send_feed(&self, s: FeedSnapshot) {
        let _ = self.tx.send(Handoff::Feed(s));
    }
}

/// A shard's Zone 1 ring, whose header the metrics thread reads at scrape time for the fill
/// gauges.
#[derive(Debug, Clone)]
pub struct RingWatch {
    pub shard: usize,
    pub path: PathBuf,
    /// Reads the ring file's header: `chronicle_feed::read_fill`, the owner of the ring
    /// layout (a function here because the feed depends on this crate, not the reverse).
    pub read: fn(&Path) -> Option<RingFill>,
}

/// What a ring file's header says, read at scrape time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingFill {
    /// `head - tail`: published and not yet released.
    pub used: u64,
    pub capacity: u64,
    /// Records the producer dropped on overrun since the ring was created.
    pub dropped: u64,
}

struct StageSeries {
    /// Cumulative counts per bucket (not yet cumulative across buckets), then +Inf.
    buckets: Vec<u64>,
    sum_ns: u128,
    count: u64,
}

struct Window {
    started: Instant,
    previous: Option<Histogram<u64>>,
    current: Option<Histogram<u64>>,
}

struct State {
    bounds_ns: Vec<u64>,
    bounds: Vec<f64>,
    stages: BTreeMap<(usize, &'static str), StageSeries>,
    /// Per stage, all shards merged.
    windows: BTreeMap<&'static str, Window>,
    counters: BTreeMap<usize, (ShardCounters, Instant)>,
    rings: Vec<RingWatch>,
    snapshots: u64,
    shared: Vec<SharedCounter>,
    /// The feed handler's counters, gauges and when they came (None: no feed hand-off yet).
    feed: Option<(Vec<CounterValue>, Vec<CounterValue>, Instant)>,
}

impl State {
    fn merge(&mut self, handoff: Handoff, now: Instant) {
        self.snapshots += 1;
        match handoff {
            Handoff::Shard(s) => {
                self.counters.insert(s.shard, (s.counters, now));
                for (stage, h) in s.stages {
                    self.merge_stage(s.shard, stage, h, now);
                }
            }
            Handoff::Feed(f) => {
                self.feed = Some((f.counters, f.gauges, now));
                for (shard, stage, h) in f.stages {
                    self.merge_stage(shard, stage, h, now);
                }
            }
        }
    }

    /// Adds one interval's histogram of `stage` on `shard` to its buckets and to the stage's
    /// quantile window.
    fn merge_stage(&mut self, shard: usize, stage: &'static str, h: Histogram<u64>, now: Instant) {
        let n = self.bounds_ns.len();
        let series = self
            .stages
            .entry((shard, stage))
            .or_insert_with(|| StageSeries {
                buckets: vec![0; n + 1],
                sum_ns: 0,
                count: 0,
            });
        for v in h.iter_recorded() {
            let value = h.median_equivalent(v.value_iterated_to());
            let c = v.count_at_value();
            let i = self.bounds_ns.partition_point(|&b| b < value);
            series.buckets[i] += c;
            series.sum_ns += value as u128 * c as u128;
            series.count += c;
        }
        let w = self.windows.entry(stage).or_insert_with(|| Window {
            started: now,
            previous: None,
            current: None,
        });
        if now.duration_since(w.started) >= WINDOW {
            w.previous = w.current.take();
            w.started = now;
        }
        if h.is_empty() {
            return;
        }
        match &mut w.current {
            Some(cur) => {
                let _ = cur.add(&h);
            }
            None => w.current = Some(h),
        }
    }

    fn families(&self) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        // Histograms.
        let mut metrics = Vec::new();
        for ((shard, stage), s) in &self.stages {
            let mut h = PHistogram::default();
            let mut cum = 0;
            let mut buckets = Vec::with_capacity(self.bounds.len());
            for (b, c) in self.bounds.iter().zip(&s.buckets) {
                cum += c;
                let mut bucket = Bucket::default();
                bucket.set_upper_bound(*b);
                bucket.set_cumulative_count(cum);
                buckets.push(bucket);
            }
            h.set_bucket(buckets);
            h.set_sample_count(s.count);
            h.set_sample_sum(s.sum_ns as f64 / 1e9);
            let mut m =
                Metric::from_label(labels(&[("shard", &shard.to_string()), ("stage", stage)]));
            m.set_histogram(h);
            metrics.push(m);
        }
        out.push(family(
            "chronicle_stage_latency_seconds",
            "Per-stage latency per shard (TSC clock, HDR-recorded, exported in seconds).",
            MetricType::HISTOGRAM,
            metrics,
        ));
        // Exact HDR quantiles of the last window, all shards merged: a summary (the one type
        // whose samples carry a `quantile` label), with the cumulative count and sum.
        let mut metrics = Vec::new();
        for (stage, w) in &self.windows {
            let merged = match (&w.previous, &w.current) {
                (Some(p), Some(c)) => {
                    let mut m = p.clone();
                    let _ = m.add(c);
                    m
                }
                (Some(h), None) | (None, Some(h)) => h.clone(),
                (None, None) => continue,
            };
            let quantiles = QUANTILES
                .iter()
                .map(|&q| {
                    let v = if q >= 1.0 {
                        merged.max()
                    } else {
                        merged.value_at_quantile(q)
                    };
                    let mut p = Quantile::default();
                    p.set_quantile(q);
                    p.set_value(v as f64 / 1e9);
                    p
                })
                .collect();
            let (count, sum_ns) = self
                .stages
                .iter()
                .filter(|((_, st), _)| st == stage)
                .fold((0, 0u128), |(c, s), (_, x)| (c + x.count, s + x.sum_ns));
            let mut summary = Summary::default();
            summary.set_quantile(quantiles);
            summary.set_sample_count(count);
            summary.set_sample_sum(sum_ns as f64 / 1e9);
            let mut m = Metric::from_label(labels(&[("stage", stage)]));
            m.set_summary(summary);
            metrics.push(m);
        }
        out.push(family(
            "chronicle_stage_latency_quantile_seconds",
            "Exact HDR quantiles of each stage over the last 10-20 s, all shards merged (count and sum: since start).",
            MetricType::SUMMARY,
            metrics,
        ));
        // Counters.
        type Get = fn(&ShardCounters) -> u64;
        let counters: [(&str, &str, Get); 17] = [
            (
                "chronicle_events_total",
                "Events taken from the rings.",
                |c| c.events,
            ),
            (
                "chronicle_records_total",
                "Records written to partitions.",
                |c| c.records,
            ),
            (
                "chronicle_durable_bytes_total",
                "Bytes made durable by O_DIRECT flushes.",
                |c| c.durable_bytes,
            ),
            (
                "chronicle_undeclared_records_total",
                "Records that came before their instrument's declaration (held until it came).",
                |c| c.undeclared_held,
            ),
            (
                "chronicle_undeclared_dropped_total",
                "Records of undeclared instruments dropped because the hold was full (marked by a gap).",
                |c| c.undeclared_dropped,
            ),
            (
                "chronicle_declaration_failures_total",
                "Declarations the shard could not resolve in dim_symbol (records held meanwhile).",
                |c| c.declaration_failures,
            ),
            (
                "chronicle_ring_gaps_total",
                "Ring-overrun gap markers received.",
                |c| c.ring_gaps,
            ),
            (
                "chronicle_gap_markers_total",
                "Gap markers received (any reason).",
                |c| c.gap_markers,
            ),
            (
                "chronicle_late_rejected_total",
                "Late records rejected (day closed).",
                |c| c.late_rejected,
            ),
            (
                "chronicle_late_streamed_total",
                "Late records written to the late stream.",
                |c| c.late_streamed,
            ),
            (
                "chronicle_duplicates_dropped_total",
                "Records already stored that a restarted sender sent again, not stored twice.",
                |c| c.duplicates,
            ),
            (
                "chronicle_snapshot_fallbacks_total",
                "Engine recoveries that skipped a damaged snapshot.",
                |c| c.snapshot_fallbacks,
            ),
            (
                "chronicle_engine_snapshots_total",
                "Engine snapshots written.",
                |c| c.snapshots,
            ),
            (
                "chronicle_flushes_total",
                "Flushes (one per interval).",
                |c| c.flushes,
            ),
            (
                "chronicle_flush_waits_total",
                "Deadlines that found the previous flush in flight: the shard waited (back-pressure on its ring).",
                |c| c.flush_waits,
            ),
            (
                "chronicle_flush_missed_deadlines_total",
                "Flush slots skipped because a flush overran.",
                |c| c.missed_deadlines,
            ),
            (
                "chronicle_ring_stamps_out_of_range_total",
                "Ring publication stamps later than the shard's read or older than 100 s (not recorded).",
                |c| c.ring_stamps_out_of_range,
            ),
        ];
        for (name, help, get) in counters {
            let metrics = self
                .counters
                .iter()
                .map(|(shard, (c, _))| {
                    let mut m = Metric::from_label(labels(&[("shard", &shard.to_string())]));
                    let mut v = Counter::default();
                    v.set_value(get(c) as f64);
                    m.set_counter(v);
                    m
                })
                .collect();
            out.push(family(name, help, MetricType::COUNTER, metrics));
        }
        let now = Instant::now();
        out.push(family(
            "chronicle_shard_report_age_seconds",
            "Time since the shard's last hand-off (flush): a stuck shard grows this.",
            MetricType::GAUGE,
            self.counters
                .iter()
                .map(|(shard, (_, at))| {
                    gauge(
                        &[("shard", &shard.to_string())],
                        now.duration_since(*at).as_secs_f64(),
                    )
                })
                .collect(),
        ));
        // Ring fill and drops, read from the shared header now: a shard that stopped reading
        // (or died) still shows its ring filling and its producer dropping.
        let mut fill = Vec::new();
        let mut ratio = Vec::new();
        let mut drops = Vec::new();
        for r in &self.rings {
            if let Some(h) = (r.read)(&r.path) {
                let l = [("shard", r.shard.to_string())];
                let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
                fill.push(gauge(&l, h.used as f64));
                ratio.push(gauge(&l, h.used as f64 / h.capacity as f64));
                let mut m = Metric::from_label(labels(&l));
                let mut v = Counter::default();
                v.set_value(h.dropped as f64);
                m.set_counter(v);
                drops.push(m);
            }
        }
        out.push(family(
            "chronicle_ring_drops_total",
            "Records dropped by a full ring (the producer's count, read from the ring header).",
            MetricType::COUNTER,
            drops,
        ));
        out.push(family(
            "chronicle_ring_fill_bytes",
            "Bytes published to the ring and not yet released by its shard (consumer lag).",
            MetricType::GAUGE,
            fill,
        ));
        out.push(family(
            "chronicle_ring_fill_ratio",
            "Ring fill as a fraction of its capacity.",
            MetricType::GAUGE,
            ratio,
        ));
        out.push(family(
            "chronicle_metrics_snapshots_total",
            "Hand-offs (shards' and the feed handler's) merged by the metrics thread.",
            MetricType::COUNTER,
            vec![{
                let mut m = Metric::default();
                let mut v = Counter::default();
                v.set_value(self.snapshots as f64);
                m.set_counter(v);
                m
            }],
        ));
        // Counters of other threads: the tier manager's (read now) and the feed handler's
        // (its last hand-off); one family per name.
        let values: Vec<CounterValue> = self
            .shared
            .iter()
            .map(|c| CounterValue {
                name: c.name,
                help: c.help,
                labels: c.labels.clone(),
                value: (c.read)(),
            })
            .chain(self.feed.iter().flat_map(|(v, _, _)| v.iter().cloned()))
            .collect();
        let mut names: Vec<(&str, &str)> = Vec::new();
        for c in &values {
            if !names.iter().any(|(n, _)| *n == c.name) {
                names.push((c.name, c.help));
            }
        }
        for (name, help) in names {
            let metrics = values
                .iter()
                .filter(|c| c.name == name)
                .map(|c| {
                    let mut m = Metric::from_label(labels(&c.labels));
                    let mut v = Counter::default();
                    v.set_value(c.value as f64);
                    m.set_counter(v);
                    m
                })
                .collect();
            out.push(family(name, help, MetricType::COUNTER, metrics));
        }
        if let Some((_, gauges, at)) = &self.feed {
            for g in gauges {
                out.push(family(
                    g.name,
                    g.help,
                    MetricType::GAUGE,
                    vec![gauge(&g.labels, g.value as f64)],
                ));
            }
            out.push(family(
                "chronicle_feed_report_age_seconds",
                "Time since the feed handler's last hand-off: a stuck feed thread grows this.",
                MetricType::GAUGE,
                vec![gauge(&[], now.duration_since(*at).as_secs_f64())],
            ));
        }
        out.retain(|f| !f.get_metric().is_empty());
        out
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

fn gauge(pairs: &[(&str, &str)], value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::from_label(labels(pairs));
    m.set_gauge(g);
    m
}

fn family(name: &str, help: &str, t: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.into());
    f.set_help(help.into());
    f.set_field_type(t);
    f.set_metric(metrics);
    f
}

/// The merged state as a `prometheus` collector.
struct StateCollector {
    state: Arc<Mutex<State>>,
    descs: Vec<Desc>,
}

impl Collector for StateCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }
    fn collect(&self) -> Vec<MetricFamily> {
        self.state.lock().map(|s| s.families()).unwrap_or_default()
    }
}

/// The metrics service: a merge thread fed by the shards' [`Reporter`]s and an HTTP thread
/// serving `/metrics`. Dropping it stops both.
pub struct MetricsServer {
    addr: SocketAddr,
    tx: Sender<Handoff>,
    registry: prometheus::Registry,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    state: Arc<Mutex<State>>,
}

impl MetricsServer {
    /// Binds `listen` (e.g. `127.0.0.1:9477`; port 0 picks a free one) and starts the threads.
    pub fn start(listen: &str, rings: Vec<RingWatch>) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(listen)?;
        // Here rather than in the serving thread: a failure is the caller's error, not a
        // server that silently never answers.
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let bounds = bucket_bounds();
        let state = Arc::new(Mutex::new(State {
            bounds_ns: bounds.iter().map(|b| (b * 1e9).round() as u64).collect(),
            bounds,
            stages: BTreeMap::new(),
            windows: BTreeMap::new(),
            counters: BTreeMap::new(),
            rings,
            snapshots: 0,
            shared: Vec::new(),
            feed: None,
        }));
        let registry = prometheus::Registry::new();
        let build = prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "chronicle_build_info",
                "Build of the running appliance (always 1).",
            ),
            &["version", "rustc_edition"],
        )
        .map_err(std::io::Error::other)?;
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION"), "2021"])
            .set(1);
        registry
            .register(Box::new(build))
            .map_err(std::io::Error::other)?;
        registry
            .register(Box::new(StateCollector {
                state: state.clone(),
                descs: Vec::new(),
            }))
            .map_err(std::io::Error::other)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel::<Handoff>();
        let merge = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::Builder::new()
                .name("chronicle-metrics-merge".into())
                .spawn(move || merge_loop(rx, &state, &stop))?
        };
        let serve = {
            let (registry, stop) = (registry.clone(), stop.clone());
            std::thread::Builder::new()
                .name("chronicle-metrics-http".into())
                .spawn(move || http::serve(listener, &registry, &stop))?
        };
        Ok(Self {
            addr,
            tx,
            registry,
            stop,
            threads: vec![merge, serve],
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds counters that another thread owns (read at each scrape); counters of one name
    /// must be added together, as one family.
    pub fn add_shared(&self, counters: Vec<SharedCounter>) {
        if let Ok(mut st) = self.state.lock() {
            st.shared.extend(counters);
        }
    }

    /// A sending end for one shard, or for the feed handler.
    pub fn reporter(&self) -> Reporter {
        Reporter {
            tx: self.tx.clone(),
        }
    }

    /// The exposition text a scrape would get now.
    pub fn render(&self) -> String {
        http::render(&self.registry)
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn merge_loop(rx: Receiver<Handoff>, state: &Mutex<State>, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(s) => {
                if let Ok(mut st) = state.lock() {
                    st.merge(s, Instant::now());
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
}
