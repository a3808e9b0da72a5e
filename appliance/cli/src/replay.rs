//! `chronicle replay`: plays a capture (or the synthetic model) into Zone 1 — `/dev/shm`
//! rings or feed datagrams over UDP — paced like the original, at a fixed rate, or as fast as
//! possible, and reports what was sent and how far each event left from its schedule.
//! `docs/replay.md` is the guide.

use crate::progress::{with_progress, Count};
use crate::CliResult;
use chronicle_replay::player::{default_core, stop_on_sigint};
use chronicle_replay::{
    play, play_with_progress, Input, NullTarget, Pacing, PlayOptions, ReplaySource, RingTarget,
    SourceOptions, SyntheticConfig, Target, UdpTarget,
};
use clap::ValueEnum;
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// `<receive ns> <combined-stream JSON>` lines, gzip or plain.
    BinanceCapture,
    /// Databento DBN (.dbn, .dbn.zst, .dbz).
    Dbn,
    /// A stored partition on any local tier (its directory, book.q or book.q.zst): the
    /// records as stored.
    Q,
}

#[derive(clap::Args)]
pub struct Args {
    /// The capture to replay: a file, or a partition directory. Without it, the synthetic
    /// model (`--seed`, `--seconds`).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Format of --input. Default: from the path (a directory, `.q` or `.q.zst` is `q`;
    /// `.dbn`, `.dbn.zst`, `.dbz` is `dbn`; anything else `binance-capture`).
    #[arg(long, value_enum, requires = "input")]
    format: Option<Format>,
    /// Seed of the synthetic model (default: the model's default seed).
    #[arg(long, conflicts_with = "input")]
    seed: Option<u64>,
    /// The synthetic model's length in seconds (default 60); with --input, replay only the
    /// capture's first SECONDS of receive time.
    #[arg(long)]
    seconds: Option<f64>,
    /// `shm:PATH` (create the ring file(s); a consumer attaches), `udp:HOST:PORT` (feed
    /// datagrams), or `null` (send nothing: the pacing floor of this machine).
    #[arg(long)]
    target: String,
    /// Pace by the capture's inter-arrival times divided by X (1: real time).
    #[arg(long, conflicts_with = "rate")]
    speed: Option<f64>,
    /// Pace at a fixed N events per second. Without --speed or --rate: as fast as possible.
    #[arg(long)]
    rate: Option<f64>,
    /// Play the capture N times, each pass shifted in time after the previous one.
    #[arg(long = "loop", default_value_t = 1, value_name = "N")]
    loops: u32,
    /// Fan out: N distinct tokens per instrument (raw symbols SYMBOL-0 .. SYMBOL-{N-1}).
    #[arg(long, default_value_t = 1, value_name = "N")]
    tokens: u32,
    /// The data directory whose dim_symbol gives instruments their token ids (registered there
    /// if new). Without it token ids are assigned for this run only and nothing is written: a
    /// UDP receiver takes the ids it is declared under.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Venue of a Binance capture or of the synthetic model.
    #[arg(long, default_value = "binance-usdm")]
    venue: String,
    /// shm targets: rings, one per shard. With more than one, PATH is a prefix: ring i is
    /// PATH-i, and token t goes to ring t % N.
    #[arg(long, default_value_t = 1, value_name = "N")]
    shards: usize,
    /// shm targets: data-area size of each ring, MiB (a power of two, 1..=2048).
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    ring_mib: usize,
    /// shm targets: replace a stale ring at the ring paths (one whose producer is gone); a
    /// ring a live process produces into is refused.
    #[arg(long)]
    replace: bool,
    /// udp targets: bytes a datagram may carry, its 16-byte header included (1472 fits an
    /// Ethernet MTU; loopback takes 65507).
    #[arg(long, default_value_t = 1472, value_name = "BYTES")]
    datagram_bytes: usize,
    /// Pin the sender to this core (default: the last core).
    #[arg(long, conflicts_with = "no_pin")]
    core: Option<usize>,
    /// Do not pin the sender.
    #[arg(long)]
    no_pin: bool,
    /// As fast as possible: make N records visible at a time (one ring publication, or
    /// the datagrams sent back to back). Paced replays make each group of records due at
    /// the same time visible whole, whatever its size.
    #[arg(long, default_value_t = 16, value_name = "N")]
    batch: usize,
    /// Spin (rather than sleep) for the last this many microseconds before a send. The
    /// default (1 s) spins through a capture's gaps: most precise, burns the core; 200 lets
    /// the sender sleep (wake-ups may then be late by the OS's or VM's wake-up latency).
    #[arg(long, default_value_t = 1_000_000, value_name = "US")]
    spin_us: u64,
}

fn input_of(a: &Args) -> Result<Input, String> {
    let Some(path) = a.input.clone() else {
        let mut cfg = SyntheticConfig::default();
        if let Some(seed) = a.seed {
            cfg.seed = seed;
        }
        if let Some(s) = a.seconds {
            cfg.duration_ns = seconds_ns(s)?;
        }
        return Ok(Input::Synthetic(cfg));
    };
    let format = a.format.unwrap_or_else(|| guess_format(&path));
    Ok(match format {
        Format::BinanceCapture => Input::Binance(path),
        Format::Dbn => Input::Dbn(path),
        Format::Q => Input::Partition(path),
    })
}

fn guess_format(path: &Path) -> Format {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if path.is_dir() || name.ends_with(".q") || name.ends_with(".q.zst") {
        return Format::Q;
    }
    match chronicle_import::CaptureFormat::of_path(path) {
        chronicle_import::CaptureFormat::Dbn => Format::Dbn,
        chronicle_import::CaptureFormat::BinanceCapture => Format::BinanceCapture,
    }
}

fn seconds_ns(s: f64) -> Result<u64, String> {
    if s.is_finite() && s > 0.0 {
        Ok((s * 1e9) as u64)
    } else {
        Err(format!("--seconds {s} must be a positive number"))
    }
}

fn pacing_of(a: &Args) -> Result<Pacing, String> {
    match (a.speed, a.rate) {
        (Some(x), _) => Pacing::Speed(x).validate(),
        (_, Some(r)) => Pacing::Rate(r).validate(),
        _ => Ok(Pacing::AsFastAsPossible),
    }
}

fn target_of(a: &Args) -> Result<Box<dyn Target>, Box<dyn std::error::Error>> {
    if let Some(path) = a.target.strip_prefix("shm:") {
        if a.ring_mib == 0 || !a.ring_mib.is_power_of_two() || a.ring_mib > 2048 {
            return Err(format!(
                "--ring-mib {} must be a power of two in 1..=2048",
                a.ring_mib
            )
            .into());
        }
        let t = RingTarget::create_shm(Path::new(path), a.shards, a.ring_mib << 20, a.replace)?;
        for p in t.paths() {
            eprintln!("ring {} created; attach a consumer to it", p.display());
        }
        return Ok(Box::new(t));
    }
    if a.target == "null" {
        return Ok(Box::new(NullTarget::default()));
    }
    if let Some(hostport) = a.target.strip_prefix("udp:") {
        let addr = hostport
            .to_socket_addrs()
            .map_err(|e| format!("--target udp:{hostport}: {e}"))?
            .next()
            .ok_or_else(|| format!("--target udp:{hostport}: no address"))?;
        return Ok(Box::new(UdpTarget::connect(addr, a.datagram_bytes)?));
    }
    Err(format!(
        "--target `{}` is none of shm:PATH, udp:HOST:PORT, null",
        a.target
    )
    .into())
}

pub fn run(a: Args) -> CliResult {
    let input = input_of(&a)?;
    let pacing = pacing_of(&a)?;
    if a.shards == 0 {
        return Err("--shards must be at least 1".into());
    }
    let mut opts = SourceOptions::new(&a.venue, a.data_dir.as_deref());
    opts.tokens = a.tokens;
    opts.loops = a.loops;
    if a.input.is_some() {
        opts.max_capture_ns = a.seconds.map(seconds_ns).transpose()?;
    }
    let what = match &input {
        Input::Binance(p) | Input::Dbn(p) | Input::Partition(p) => {
            format!("{} ({})", p.display(), input.format())
        }
        Input::Synthetic(cfg) => format!(
            "synthetic model (seed {}, {} s)",
            cfg.seed,
            cfg.duration_ns as f64 / 1e9
        ),
    };
    eprintln!("decoding {what} ...");
    let mut source = ReplaySource::open_with(input, &opts)?;
    let s = source.summary();
    eprintln!(
        "{} events a pass ({}) over {:.3} s of capture; {} instrument(s) x {} token(s) x {} pass(es) \
         = {} events, {} declarations; {} MB buffered",
        s.events,
        s.by_kind
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        s.receive_span_ns() as f64 / 1e9,
        s.instruments,
        a.tokens,
        a.loops,
        source.total_events(),
        source.total_declarations(),
        s.bytes / 1_000_000
    );
    if s.truncated > 0 {
        eprintln!("left out {} events after the first --seconds", s.truncated);
    }
    if s.skipped_injected > 0 {
        eprintln!(
            "left out {} book snapshots the refinery had injected",
            s.skipped_injected
        );
    }
    if let Some(t) = &s.torn_tail {
        eprintln!(
            "warning: the segment ends in a torn tail ({t}); replaying the records before it"
        );
    }
    for t in source.tokens().iter().take(8) {
        eprintln!("token {} = {}/{}", t.token_id, t.venue, t.raw_symbol);
    }
    if source.tokens().len() > 8 {
        eprintln!("... {} tokens", source.tokens().len());
    }
    let mut target = target_of(&a)?;
    let mut play_opts = PlayOptions::new(pacing);
    play_opts.spin_ns = a.spin_us * 1_000;
    play_opts.max_batch = a.batch.max(1);
    play_opts.core = if a.no_pin {
        None
    } else {
        a.core.or_else(default_core)
    };
    play_opts.stop = Some(stop_on_sigint());
    // A paced replay takes as long as its capture says; as fast as possible, a bar tells.
    let report = if play_opts.pacing == Pacing::AsFastAsPossible {
        with_progress("replaying", Count::Items("events"), |p| {
            play_with_progress(&mut source, target.as_mut(), &play_opts, p)
        })?
    } else {
        play(&mut source, target.as_mut(), &play_opts)?
    };
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}
