//! `chronicle run`: the appliance's main job.

use crate::CliResult;
use chronicle_import::CaptureFormat;
use chronicle_runtime::config::{default_venue, Config, Input};
use chronicle_runtime::run::{run as run_appliance, RunSummary};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// The production configuration (TOML, see docs/config.md). Without it: the embedded
    /// default — the synthetic feed for a bounded run into ./data.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Replay this capture instead of the synthetic feed.
    #[arg(long, conflicts_with = "config")]
    input: Option<PathBuf>,
    /// `binance-capture` or `dbn`. Default: from the file name (`.dbn`, `.dbn.zst`, `.dbz`
    /// are DBN, anything else a Binance capture).
    #[arg(long, requires = "input")]
    format: Option<CaptureFormat>,
    /// The venue of a Binance capture (the capture itself does not say).
    #[arg(long, default_value_t = default_venue(), requires = "input")]
    venue: String,
    /// Where partitions, snapshots and dim_symbol go. Default: ./data.
    #[arg(long, conflicts_with = "config")]
    data_dir: Option<PathBuf>,
    /// Seconds of synthetic feed (default input).
    #[arg(long, default_value_t = 60, conflicts_with_all = ["config", "input"])]
    seconds: u64,
    /// Seed of the synthetic feed: the same seed gives the same events.
    #[arg(long, default_value_t = 20240808, conflicts_with_all = ["config", "input"])]
    seed: u64,
    /// Keep running after a bounded input ends, until SIGTERM.
    #[arg(long)]
    follow: bool,
    /// Serve `/metrics` (Prometheus) on this address instead of the configured one
    /// (default 127.0.0.1:9477; port 0 picks a free port, printed on stderr).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// No `/metrics` endpoint.
    #[arg(long, conflicts_with = "metrics_listen")]
    no_metrics: bool,
}

pub fn run(a: Args) -> CliResult {
    let mut cfg = Config::load(a.config.as_deref())?;
    if let Some(l) = a.metrics_listen {
        cfg.metrics.enabled = true;
        cfg.metrics.listen = l;
    }
    if a.no_metrics {
        cfg.metrics.enabled = false;
    }
    if let Some(d) = a.data_dir {
        cfg.data_dir = d;
    }
    cfg.input = match (a.input, a.config.is_some()) {
        (Some(path), _) => Input::Capture {
            format: a.format,
            path,
            venue: a.venue,
        },
        (None, false) => Input::Synthetic {
            seed: a.seed,
            seconds: a.seconds,
        },
        (None, true) => cfg.input,
    };
    // SIGTERM (systemd stop) and SIGINT end a daemon cleanly: flush, snapshot, exit.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let s = run_appliance(&cfg, a.follow, stop)?;
    print_summary(&cfg, &s);
    Ok(ExitCode::SUCCESS)
}

fn print_summary(cfg: &Config, s: &RunSummary) {
    let sum = |f: &dyn Fn(&chronicle_runtime::shard::ShardReport) -> u64| {
        s.shards.iter().map(f).sum::<u64>()
    };
    let secs = s.elapsed.as_secs_f64();
    println!(
        "chronicle run: {} in {:.2} s, data in {}",
        input_name(&cfg.input),
        secs,
        cfg.data_dir.display()
    );
    // The rate over the ingest period (first record to last), not the run's idle time.
    let ingest = s.shards.iter().map(|r| r.ingest_ns).max().unwrap_or(0);
    println!(
        "  events      {} fed, {} refined into {} records ({:.0} events/s over {:.2} s of ingest)",
        s.feed_events,
        sum(&|r| r.events),
        sum(&|r| r.counters.records),
        sum(&|r| r.events) as f64 / (ingest.max(1) as f64 / 1e9),
        ingest as f64 / 1e9
    );
    if sum(&|r| r.events) > 0 && sum(&|r| r.counters.records) == 0 {
        println!(
            "  already ingested: every event was stored by an earlier run of this input; nothing written"
        );
    }
    println!(
        "  loss        {} ring drops, {} ring gaps, {} late rejected, {} late to the late stream (feed waited {} times on a full ring)",
        s.ring_drops,
        sum(&|r| r.ring_gaps),
        sum(&|r| r.counters.late_rejected),
        sum(&|r| r.counters.late_streamed),
        s.feed_full_waits
    );
    if let Some(f) = &s.feed {
        println!(
            "  udp feed    {} datagrams: {} lost ({} dropped by the kernel, {} upstream), {} stale, {} malformed; {} sender restarts",
            f.datagrams,
            f.lost_datagrams,
            f.kernel_drops,
            f.upstream_lost_datagrams,
            f.stale,
            f.malformed,
            f.sender_restarts
        );
    }
    println!(
        "  duplicates  {} records already stored, sent again by a restarted sender: not stored twice",
        sum(&|r| r.counters.duplicates)
    );
    let gaps: u64 = s
        .shards
        .iter()
        .flat_map(|r| &r.closed)
        .map(|c| c.meta.completeness.gaps)
        .sum();
    println!("  gaps        {gaps} gap markers in the written partitions");
    println!(
        "  storage     {} partitions, {} bytes of frames; {} O_DIRECT writes, {} bytes; O_DIRECT verified: {}",
        sum(&|r| r.closed.len() as u64),
        s.shards.iter().flat_map(|r| &r.closed).map(|c| c.meta.segment_bytes).sum::<u64>(),
        sum(&|r| r.direct_writes),
        sum(&|r| r.direct_bytes),
        s.shards.iter().all(|r| r.o_direct_verified)
    );
    println!(
        "  flushes     {} ({} missed deadlines, {} waited for the flush in flight, {} for declarations), {} injected book snapshots, {} engine snapshots",
        sum(&|r| r.flushes),
        sum(&|r| r.missed_deadlines),
        sum(&|r| r.flush_waits),
        sum(&|r| r.declaration_waits),
        sum(&|r| r.counters.injected_snapshots),
        sum(&|r| r.snapshots)
    );
    for r in &s.shards {
        for c in &r.closed {
            let m = &c.meta;
            println!(
                "  partition   {}/{}/{}: {} records, {} bytes{}",
                m.venue,
                m.symbol_code,
                m.date,
                m.records,
                m.segment_bytes,
                if m.completeness.complete {
                    ""
                } else {
                    " (incomplete)"
                }
            );
        }
        for (token, tick) in &r.engine_ticks {
            println!("  engine      token {token}: tick {tick}");
        }
        println!("  shard {} latency (TSC):", r.index);
        for st in r.stats.stages() {
            println!("    {}", st.line());
        }
    }
}

fn input_name(i: &Input) -> String {
    match i {
        Input::Synthetic { seed, seconds } => format!("synthetic feed (seed {seed}, {seconds} s)"),
        Input::Capture { path, format, .. } => format!(
            "{} capture {}",
            Input::capture_format(path, *format).name(),
            path.display()
        ),
        Input::Udp { bind, .. } => format!("UDP feed on {bind}"),
    }
}
