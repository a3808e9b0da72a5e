//! `chronicle run`: rings, shard executors and the feed, then a summary.

use crate::config::{Config, Input};
use crate::feed::RingSink;
use crate::shard::{self, ShardReport, ShardSettings};
use crate::{RuntimeError, ThreadFailure};
use chronicle_etl::RefineryConfig;
use chronicle_feed::{FeedHandler, ShardMap};
use chronicle_import::CaptureFormat;
use chronicle_storage::meta::Source;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct RunSummary {
    pub shards: Vec<ShardReport>,
    pub feed_events: u64,
    pub feed_full_waits: u64,
    pub ring_drops: u64,
    /// The UDP feed handler's counters (None for a bounded input).
    pub feed: Option<chronicle_feed::FeedStats>,
    pub elapsed: Duration,
    /// Where `/metrics` was served (None: disabled, or its address could not be bound).
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// Runs the appliance. A bounded input (synthetic, capture) ends when it is consumed, unless
/// `follow`; UDP input (or `follow`) runs until `stop` is set (SIGTERM).
pub fn run(cfg: &Config, follow: bool, stop: Arc<AtomicBool>) -> Result<RunSummary, RuntimeError> {
    crate::tune_allocator();
    cfg.validate().map_err(RuntimeError::Config)?;
    // One writer per data directory: a second appliance (or an import) into the same
    // partitions would hand out the same tick ids twice.
    let _lock = chronicle_storage::fsutil::lock_dir(&cfg.data_dir, "chronicle run")?;
    let started = Instant::now();
    check_host(cfg)?;
    // Last of the checks: what the run creates in /dev/shm goes with it (`_rings` drops on
    // every way out of this function).
    let ring_paths: Vec<PathBuf> = cfg
        .shards
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.ring
                .clone()
                .unwrap_or_else(|| crate::rings::ring_for(&cfg.data_dir, i))
        })
        .collect();
    let (_rings, producers, consumers) = crate::rings::Rings::create(
        &ring_paths
            .iter()
            .zip(&cfg.shards)
            .map(|(p, s)| (p.clone(), s.ring_bytes))
            .collect::<Vec<_>>(),
    )?;
    say_where(cfg, &ring_paths);
    let map = ShardMap::modulo(cfg.shards.len())
        .map_err(|e| RuntimeError::Config(format!("[[shards]]: {e}")))?;
    let metrics = start_metrics(cfg, &ring_paths);
    let done = Arc::new(AtomicBool::new(false));
    let tiers = spawn_tier_manager(cfg, done.clone(), metrics.as_ref())?;
    let source = source_of(&cfg.input);
    let mut handles = Vec::new();
    for (i, consumer) in consumers.into_iter().enumerate() {
        // A failing shard sets `stop`: the feed ends at once and so does the run.
        handles.push(shard::spawn(
            shard_settings(cfg, i, &source, metrics.as_ref()),
            consumer,
            done.clone(),
            stop.clone(),
        )?);
    }
    let feed = run_feed(cfg, follow, &stop, producers, map, metrics.as_ref());
    done.store(true, Ordering::Release);
    let shards = join_shards(handles);
    if let Some(t) = tiers {
        t.join()
            .map_err(|_| RuntimeError::thread("tier manager", ThreadFailure::Panicked))?;
    }
    let shards = shards?;
    let (feed_events, feed_full_waits, ring_drops, feed) = feed?;
    Ok(RunSummary {
        shards,
        feed_events,
        feed_full_waits,
        ring_drops,
        feed,
        elapsed: started.elapsed(),
        metrics_addr: metrics.as_ref().map(|m| m.local_addr()),
    })
}

/// Says at start where the data goes and which shard reads which ring on which core.
fn say_where(cfg: &Config, ring_paths: &[PathBuf]) {
    eprintln!(
        "chronicle: data in {}; tiers: cold {}, remote {}",
        std::fs::canonicalize(&cfg.data_dir)
            .unwrap_or_else(|_| cfg.data_dir.clone())
            .display(),
        cfg.tiers
            .cold_dir
            .as_ref()
            .map_or("none".into(), |d| d.display().to_string()),
        cfg.tiers
            .remote
            .as_ref()
            .map_or("none".into(), |r| format!("{}/{}", r.endpoint, r.bucket)),
    );
    for (i, (s, path)) in cfg.shards.iter().zip(ring_paths).enumerate() {
        eprintln!(
            "chronicle: shard {i} on core {}, ring {} ({} MiB)",
            s.cpu,
            path.display(),
            s.ring_bytes >> 20
        );
    }
}

/// Where the partitions' records come from, for their `meta.json`.
fn source_of(input: &Input) -> Source {
    Source {
        kind: "feed".into(),
        format: match input {
            Input::Synthetic { .. } => "synthetic".into(),
            Input::Capture { path, format, .. } => {
                Input::capture_format(path, *format).name().into()
            }
            Input::Udp { .. } => "udp".into(),
        },
        file: match input {
            Input::Capture { path, .. } => Some(path.display().to_string()),
            _ => None,
        },
    }
}

/// `/metrics`, if enabled. Metrics are not worth stopping ingestion for: a failed bind is
/// reported and the run goes on (the `ChronicleScrapeDown` alert sees it).
fn start_metrics(cfg: &Config, ring_paths: &[PathBuf]) -> Option<chronicle_metrics::MetricsServer> {
    if !cfg.metrics.enabled {
        return None;
    }
    let rings = ring_paths
        .iter()
        .enumerate()
        .map(|(shard, path)| chronicle_metrics::RingWatch {
            shard,
            path: path.clone(),
            read: chronicle_feed::read_fill,
        })
        .collect();
    match chronicle_metrics::MetricsServer::start(&cfg.metrics.listen, rings) {
        Ok(m) => {
            eprintln!("chronicle: metrics on http://{}/metrics", m.local_addr());
            Some(m)
        }
        Err(e) => {
            eprintln!(
                "chronicle: metrics disabled: cannot listen on {}: {e}",
                cfg.metrics.listen
            );
            None
        }
    }
}

/// Shard `index`'s settings: its core, its refinery (sealed partition writers: the flush
/// writer owns the files), its cadences.
fn shard_settings(
    cfg: &Config,
    index: usize,
    source: &Source,
    metrics: Option<&chronicle_metrics::MetricsServer>,
) -> ShardSettings {
    let mut refinery = RefineryConfig::new(cfg.data_dir.clone(), source.clone());
    refinery.inject_every_ns = cfg.partitions.inject_book_every_ms * 1_000_000;
    refinery.grace_ns = cfg.partitions.grace_ms * 1_000_000;
    refinery.late_policy = cfg.partitions.late_policy.into();
    refinery.append_existing = true;
    refinery.backend = chronicle_etl::Backend::Sealed;
    ShardSettings {
        index,
        cpu: cfg.shards[index].cpu,
        shard_cpus: cfg.shards.iter().map(|s| s.cpu).collect(),
        refinery,
        flush_interval: Duration::from_millis(cfg.flush.interval_ms),
        snapshot_every_ns: cfg.snapshots.every_ms * 1_000_000,
        retain: cfg.snapshots.retain,
        io_memory_bytes: cfg.io_memory_bytes,
        metrics: metrics.map(|m| m.reporter()),
    }
}

/// Joins every shard (the healthy ones flush what they read): their reports, or the first
/// failure, which is the run's error before anything the feed said about it.
fn join_shards(
    handles: Vec<glommio::ExecutorJoinHandle<Result<ShardReport, RuntimeError>>>,
) -> Result<Vec<ShardReport>, RuntimeError> {
    let mut shards = Vec::new();
    let mut failure = None;
    for (index, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(report)) => shards.push(report),
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(RuntimeError::thread(
                    format!("shard {index}"),
                    ThreadFailure::Failed(e.to_string()),
                ));
            }
        }
    }
    failure.map_or(Ok(shards), Err)
}

/// What the host must offer before anything is created: every configured core available to
/// this process, and a capture input that can be read.
fn check_host(cfg: &Config) -> Result<(), RuntimeError> {
    let available = available_cpus();
    for (what, cpu) in cfg
        .shards
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("shards[{i}].cpu"), s.cpu))
        .chain([("feed_cpu".to_string(), cfg.feed_cpu)])
    {
        if !available.contains(&cpu) {
            return Err(RuntimeError::Core {
                key: what,
                cpu,
                available,
            });
        }
    }
    if let Input::Capture { path, .. } = &cfg.input {
        std::fs::File::open(path).map_err(|source| RuntimeError::Input {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// What the feed did: events, full-ring waits, ring drops, and the UDP handler's counters.
type FeedResult = (u64, u64, u64, Option<chronicle_feed::FeedStats>);

/// Runs the feed until its input ends (bounded, unless `follow`) or `stop` is set.
fn run_feed(
    cfg: &Config,
    follow: bool,
    stop: &Arc<AtomicBool>,
    producers: Vec<chronicle_feed::Producer>,
    map: ShardMap,
    metrics: Option<&chronicle_metrics::MetricsServer>,
) -> Result<FeedResult, RuntimeError> {
    match &cfg.input {
        Input::Udp {
            bind,
            recv_buffer_bytes,
        } => {
            let socket_err = |source| RuntimeError::Socket {
                bind: bind.clone(),
                source,
            };
            let socket = std::net::UdpSocket::bind(bind).map_err(socket_err)?;
            let mut handler =
                FeedHandler::with_receive_buffer(socket, producers, map, *recv_buffer_bytes)
                    .map_err(|e| RuntimeError::Config(format!("udp feed: {e}")))?;
            let rb = handler.receive_buffer();
            eprintln!(
                "chronicle: feed: udp {bind}: receive buffer {} bytes granted of {} asked ({})",
                rb.granted,
                rb.requested,
                if rb.forced {
                    "SO_RCVBUFFORCE"
                } else {
                    "SO_RCVBUF, capped by net.core.rmem_max"
                }
            );
            if let Some(w) = rb.warning() {
                eprintln!("chronicle: warning: feed: {w}");
            }
            // Live feed counters and receive → publish latencies on /metrics.
            if let Some(m) = metrics {
                handler.report_to(m.reporter());
            }
            let feed = handler
                .spawn(Some(cfg.feed_cpu), false, stop.clone())
                .map_err(|e| RuntimeError::thread("feed", ThreadFailure::Spawn(e.to_string())))?;
            let (handler, result) = feed
                .join()
                .map_err(|_| RuntimeError::thread("feed", ThreadFailure::Panicked))?;
            result.map_err(socket_err)?;
            let st = handler.stats();
            Ok((st.records_written, 0, st.records_dropped, Some(st)))
        }
        bounded => {
            let bounded = bounded.clone();
            let data_dir = cfg.data_dir.clone();
            let cpu = cfg.feed_cpu;
            let sink_stop = stop.clone();
            let feed = std::thread::Builder::new()
                .name("chronicle-feed".into())
                .spawn(move || -> Result<(u64, u64, u64), String> {
                    chronicle_feed::feed::pin_current_thread(cpu);
                    let mut sink = RingSink::new(&data_dir, &input_key(&bounded), producers, map)
                        .map_err(|e| e.to_string())?;
                    sink.stop_on(sink_stop);
                    replay_into(&bounded, &data_dir, &mut sink)?;
                    Ok((sink.events, sink.full_waits, 0))
                })
                .map_err(|e| RuntimeError::thread("feed", ThreadFailure::Spawn(e.to_string())))?;
            let r = feed
                .join()
                .map_err(|_| RuntimeError::thread("feed", ThreadFailure::Panicked))?;
            let r = r.map_err(|reason| RuntimeError::Feed {
                input: input_key(&cfg.input),
                reason,
            })?;
            if follow {
                eprintln!(
                    "chronicle: the input ended ({} events); following until SIGTERM",
                    r.0
                );
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Ok((r.0, r.1, r.2, None))
        }
    }
}

/// Decodes a bounded input into the rings.
fn replay_into(
    input: &Input,
    data_dir: &std::path::Path,
    sink: &mut RingSink,
) -> Result<(), String> {
    match input {
        Input::Synthetic { seed, seconds } => {
            let cfg = chronicle_replay::SyntheticConfig {
                seed: *seed,
                duration_ns: seconds * 1_000_000_000,
                ..Default::default()
            };
            // The synthetic model speaks the Binance capture format, so it takes the same
            // decoder as a real capture.
            std::fs::create_dir_all(data_dir).map_err(|e| e.to_string())?;
            let path = data_dir.join(format!(".synthetic-{seed}-{seconds}s.capture"));
            let f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            chronicle_replay::write_capture(&cfg, std::io::BufWriter::new(f))
                .map_err(|e| e.to_string())?;
            let r = chronicle_import::binance::import(&path, "binance-usdm", sink)
                .map(|_| ())
                .map_err(|e| e.to_string());
            let _ = std::fs::remove_file(&path);
            r
        }
        Input::Capture {
            path,
            format,
            venue,
        } => match Input::capture_format(path, *format) {
            CaptureFormat::BinanceCapture => chronicle_import::binance::import(path, venue, sink)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            CaptureFormat::Dbn => chronicle_import::dbn::import(path, sink)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        },
        Input::Udp { .. } => unreachable!("UDP input is not bounded"),
    }
}

/// Names a bounded input exactly, for the run ledger: the same input replays to the same
/// tick ids.
fn input_key(input: &Input) -> String {
    match input {
        Input::Synthetic { seed, seconds } => format!("synthetic seed={seed} seconds={seconds}"),
        Input::Capture {
            path,
            format,
            venue,
        } => {
            // An unreadable capture fails at import, naming its path, before any tick id
            // is written under this key.
            let len = std::fs::metadata(path).map_or(0, |m| m.len());
            let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            format!(
                "capture format={} venue={venue} path={} bytes={len}",
                Input::capture_format(path, *format).name(),
                abs.display()
            )
        }
        Input::Udp { bind, .. } => format!("udp {bind}"),
    }
}

/// The tier manager's thread (`docs/tiers.md`): a pass at start (which reconciles what a crash
/// left), then one every `tiers.scan_interval_s`, until `stop`. It runs off the shard cores
/// (pinned to the others) and its counters go to `/metrics`. None when no cold root is set or
/// `tiers.in_appliance` is off.
fn spawn_tier_manager(
    cfg: &Config,
    stop: Arc<AtomicBool>,
    metrics: Option<&chronicle_metrics::MetricsServer>,
) -> Result<Option<std::thread::JoinHandle<()>>, RuntimeError> {
    if cfg.tiers.cold_dir.is_none() || !cfg.tiers.in_appliance {
        return Ok(None);
    }
    let grace = Duration::from_millis(cfg.partitions.grace_ms);
    let manager = chronicle_tier::TierManager::new(cfg.tiers.clone(), &cfg.data_dir, grace)?;
    if let Some(m) = metrics {
        m.add_shared(tier_counters(&manager.counters()));
    }
    let shard_cpus: Vec<usize> = cfg.shards.iter().map(|s| s.cpu).collect();
    let interval = cfg.tiers.scan_interval();
    let handle = std::thread::Builder::new()
        .name("chronicle-tiers".into())
        .spawn(move || {
            crate::helper::pin_helper("tier manager", &shard_cpus);
            // The totals (with why units stay) whenever they differ from the last pass's: a
            // pass that moves nothing says why once, not every scan_interval_s.
            let mut last_totals = String::new();
            while !stop.load(Ordering::Relaxed) {
                match manager.pass(std::time::SystemTime::now(), &stop) {
                    Ok(report) => {
                        for line in report.lines() {
                            eprintln!("chronicle: tiers: {line}");
                        }
                        let totals = report.totals();
                        if totals != last_totals {
                            eprintln!("chronicle: tiers: {totals}");
                            last_totals = totals;
                        }
                    }
                    Err(e) => eprintln!("chronicle: tiers: pass failed: {e}"),
                }
                // Sleep in short steps so that a stop is seen promptly.
                let until = Instant::now() + interval;
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
        .map_err(|e| RuntimeError::thread("tier manager", ThreadFailure::Spawn(e.to_string())))?;
    Ok(Some(handle))
}

/// The tier manager's counters as `/metrics` counters, by move.
fn tier_counters(c: &Arc<chronicle_tier::TierCounters>) -> Vec<chronicle_metrics::SharedCounter> {
    use chronicle_metrics::SharedCounter;
    use chronicle_tier::{MoveKind, TierCounters};
    type Get = fn(&TierCounters, MoveKind) -> u64;
    let per_move: [(&'static str, &'static str, Get); 4] = [
        (
            "chronicle_tier_moves_total",
            "Tier moves finished.",
            |c, k| c.of(k).done.load(Ordering::Relaxed),
        ),
        (
            "chronicle_tier_move_failures_total",
            "Tier moves that failed (the unit stays where it was).",
            |c, k| c.of(k).failed.load(Ordering::Relaxed),
        ),
        (
            "chronicle_tier_read_bytes_total",
            "Bytes read from the source tier by finished moves.",
            |c, k| c.of(k).bytes_in.load(Ordering::Relaxed),
        ),
        (
            "chronicle_tier_written_bytes_total",
            "Bytes written to the target tier by finished moves.",
            |c, k| c.of(k).bytes_out.load(Ordering::Relaxed),
        ),
    ];
    let mut out = Vec::new();
    for (name, help, get) in per_move {
        for kind in [MoveKind::WarmToCold, MoveKind::ColdToRemote] {
            let c = c.clone();
            out.push(SharedCounter {
                name,
                help,
                labels: vec![("move", kind.label())],
                read: Box::new(move || get(&c, kind)),
            });
        }
    }
    type Total = fn(&TierCounters) -> &std::sync::atomic::AtomicU64;
    let totals: [(&'static str, &'static str, Total); 3] = [
        ("chronicle_tier_passes_total", "Tier manager passes.", |c| {
            &c.passes
        }),
        (
            "chronicle_tier_leftovers_resolved_total",
            "Leftovers of interrupted moves reconciled.",
            |c| &c.leftovers_resolved,
        ),
        (
            "chronicle_tier_leftovers_unresolved_total",
            "Leftovers left for an operator or the next pass (per pass seen).",
            |c| &c.leftovers_unresolved,
        ),
    ];
    for (name, help, get) in totals {
        let c = c.clone();
        out.push(SharedCounter {
            name,
            help,
            labels: Vec::new(),
            read: Box::new(move || get(&c).load(Ordering::Relaxed)),
        });
    }
    out
}

/// The cores this process may run on: its main thread's affinity mask (a thread started from
/// a pinned shard inherits that shard's core, so the caller's own mask would not do).
fn available_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(
            libc::getpid(),
            std::mem::size_of::<libc::cpu_set_t>(),
            &mut set,
        ) != 0
        {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Pins the calling thread to the cores it may run on that are not shard cores; false if
/// there is none (then it is left as it was).
pub(crate) fn pin_off(shard_cpus: &[usize]) -> bool {
    let off: Vec<usize> = available_cpus()
        .into_iter()
        .filter(|c| !shard_cpus.contains(c))
        .collect();
    if off.is_empty() {
        return false;
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the calls only fill that local set and
    // set the calling thread's affinity.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in &off {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}
