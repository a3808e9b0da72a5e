//! A minimal ring consumer for `chronicle replay --target shm:PATH`: attaches to the ring(s)
//! (waiting for the replay to create them), pops every record as fast as it can, and prints
//! what it received once the rings have been idle for a while.
//!
//! ```text
//! cargo run --release -p chronicle-replay --example drain -- /dev/shm/chronicle-replay-test \
//!     [--shards N] [--idle-exit SECONDS] [--wait SECONDS] [--core N] [--sleep-us US]
//! ```
//!
//! It spins on empty rings, unless `--sleep-us` makes it sleep that long between empty polls:
//! on a shared machine that leaves its core to other processes rather than pushing them onto
//! the sender's.
//!
//! Start it before the replay (it waits up to `--wait` seconds, default 60, for the files);
//! it exits after `--idle-exit` seconds (default 2) without a record, once it has seen one.
//! It removes the ring files it drained unless `--keep` is given.

use chronicle_feed::{attach, AttachOptions, Consumer, RingError};
use chronicle_protocol::{type_id, Body, GapReason, Record};
use chronicle_replay::RingTarget;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn attach_waiting(path: &Path, wait: Duration) -> Consumer {
    let start = Instant::now();
    loop {
        match attach(path, &AttachOptions::default()) {
            Ok(c) => return c,
            Err(RingError::NotFound { .. } | RingError::NotReady { .. })
                if start.elapsed() < wait =>
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => {
                eprintln!("drain: {e}");
                std::process::exit(1);
            }
        }
    }
}

#[derive(Default)]
struct Counts {
    records: u64,
    declarations: u64,
    events: u64,
    bytes: u64,
    overrun_gaps: u64,
    lost: u64,
    by_kind: BTreeMap<&'static str, u64>,
    tokens: BTreeMap<u32, u64>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let (mut shards, mut idle, mut wait, mut core, mut keep) =
        (1usize, 2.0f64, 60.0f64, None, false);
    let mut sleep = None;
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} takes a value"))
        };
        match a.as_str() {
            "--shards" => shards = value("--shards").parse().expect("--shards N"),
            "--idle-exit" => idle = value("--idle-exit").parse().expect("--idle-exit SECONDS"),
            "--wait" => wait = value("--wait").parse().expect("--wait SECONDS"),
            "--core" => core = Some(value("--core").parse::<usize>().expect("--core N")),
            "--keep" => keep = true,
            "--sleep-us" => {
                let us = value("--sleep-us")
                    .parse()
                    .expect("--sleep-us MICROSECONDS");
                sleep = Some(Duration::from_micros(us));
            }
            p if path.is_none() && !p.starts_with("--") => path = Some(PathBuf::from(p)),
            other => panic!("unexpected argument {other}"),
        }
    }
    let path = path
        .expect("usage: drain PATH [--shards N] [--idle-exit S] [--wait S] [--core N] [--keep]");
    if let Some(c) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id: c });
    }
    let paths = RingTarget::ring_paths(&path, shards);
    let mut rings: Vec<Consumer> = paths
        .iter()
        .map(|p| attach_waiting(p, Duration::from_secs_f64(wait)))
        .collect();
    eprintln!("drain: attached to {} ring(s)", rings.len());
    let mut c = Counts::default();
    let idle = Duration::from_secs_f64(idle);
    let mut idle_since = Instant::now();
    let mut first: Option<Instant> = None;
    let mut polls = 0u64;
    loop {
        let mut got = false;
        for ring in &mut rings {
            match ring.pop() {
                Ok(Some(view)) => {
                    got = true;
                    c.records += 1;
                    c.bytes += view.bytes.len() as u64;
                    let kind = type_id::name(view.type_id).unwrap_or("unknown");
                    *c.by_kind.entry(kind).or_default() += 1;
                    if view.type_id == type_id::GAP_V1 {
                        if let Ok(Record {
                            body: Body::Gap(g), ..
                        }) = view.decode()
                        {
                            if g.reason == GapReason::RingOverrun {
                                c.overrun_gaps += 1;
                                c.lost += g.lost;
                            }
                        }
                    } else if view.type_id == type_id::DECLARATION_V1 {
                        c.declarations += 1;
                    } else {
                        c.events += 1;
                        *c.tokens.entry(view.meta.token_id).or_default() += 1;
                    }
                }
                Ok(None) => {}
                Err(fault) => {
                    eprintln!("drain: ring fault: {fault}");
                    std::process::exit(1);
                }
            }
        }
        if got {
            first.get_or_insert_with(Instant::now);
            polls = 0;
            continue;
        }
        if polls == 0 {
            idle_since = Instant::now();
        }
        polls += 1;
        // Read the clock only now and then while spinning on empty rings.
        if polls.is_multiple_of(1024) && first.is_some() && idle_since.elapsed() >= idle {
            break;
        }
        match sleep {
            Some(d) => std::thread::sleep(d),
            None => core::hint::spin_loop(),
        }
    }
    let span = first.map_or(0.0, |f| {
        idle_since.saturating_duration_since(f).as_secs_f64()
    });
    println!("records:        {}", c.records);
    println!("declarations:   {}", c.declarations);
    println!("events:         {} in {:.3} s", c.events, span);
    println!("by kind:        {:?}", c.by_kind);
    println!("tokens:         {}", c.tokens.len());
    println!(
        "overrun gaps:   {} ({} records lost)",
        c.overrun_gaps, c.lost
    );
    println!("bytes:          {}", c.bytes);
    if !keep {
        for p in &paths {
            let _ = std::fs::remove_file(p);
        }
    }
}
