//! Cross-process: a producer process (this test binary re-executed) pushes 20 M sequence-
//! numbered records into a 1 MiB /dev/shm ring, never blocking: blocks of 2^20 records at
//! full speed (faster than the consumer, so overruns are constant) alternate with blocks paced
//! at 2.5 M/s, and the consumer stalls 20 ms every 2 M records. This process consumes and
//! checks that every written record arrives exactly once, intact and in order, and that the
//! gap markers sit exactly where, and cover exactly what, the producer dropped (the producer
//! logs its runs of drops to a file; the two lists must be equal).
//!
//! `CHRONICLE_FEED_XPROC_RECORDS` overrides the record count (default 20 000 000).
#![cfg(not(loom))]

mod common;

use chronicle_feed::*;
use chronicle_protocol::*;
use common::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ENV_PATH: &str = "CHRONICLE_FEED_XPROC_PATH";
const ENV_RECORDS: &str = "CHRONICLE_FEED_XPROC_RECORDS";
const CAPACITY: usize = 1 << 20;
/// 2.5 M records/s in the paced blocks.
const PACE: Duration = Duration::from_nanos(400);

fn records() -> u64 {
    std::env::var(ENV_RECORDS)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000_000)
}

fn drops_file(ring: &Path) -> PathBuf {
    ring.with_extension("drops")
}

/// The producer side; a no-op unless this binary was re-executed by the test below.
#[test]
fn xproc_producer_child() {
    let Some(path) = std::env::var_os(ENV_PATH) else {
        return;
    };
    let path = PathBuf::from(path);
    let n = records();
    let mut p = create(&path, CAPACITY, Access::Owner).unwrap();
    // Runs of dropped records as (first index, count), to compare with the gaps seen.
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut rec = heartbeat(0);
    let mut due = Instant::now();
    for seq in 0..n {
        // Only the sequence fields change: the body and the tick id.
        rec[8..16].copy_from_slice(&seq.to_le_bytes());
        rec[32..40].copy_from_slice(&seq.to_le_bytes());
        // Alternate blocks of 2^20 records: at full speed (faster than the consumer:
        // overruns galore), then paced like a feed below the shard's capacity (the consumer
        // keeps up except during its deliberate stalls).
        if (seq >> 20) & 1 == 1 {
            due += PACE;
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        } else {
            due = Instant::now();
        }
        if p.push(&rec).unwrap() == Pushed::Dropped {
            match runs.last_mut() {
                Some((first, count)) if *first + *count == seq => *count += 1,
                _ => runs.push((seq, 1)),
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !p.flush_gap() {
        assert!(Instant::now() < deadline, "consumer never drained the ring");
        std::hint::spin_loop();
    }
    let bytes: Vec<u8> = runs
        .iter()
        .flat_map(|(a, b)| a.to_le_bytes().into_iter().chain(b.to_le_bytes()))
        .collect();
    std::fs::write(drops_file(&path), bytes).unwrap();
    let s = p.stats();
    println!(
        "XPROC written={} dropped={} gaps={} runs={}",
        s.written,
        s.dropped,
        s.overrun_gaps,
        runs.len()
    );
}

#[test]
fn cross_process_every_record_once_in_order_with_exact_gaps() {
    if std::env::var_os(ENV_PATH).is_some() {
        return; // we are the child
    }
    let n = records();
    let dir = shm_dir();
    let path = ring_path(&dir, "xproc.ring");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "xproc_producer_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(ENV_PATH, &path)
        .env(ENV_RECORDS, n.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    let start = Instant::now();
    let mut c = loop {
        match attach(&path, &AttachOptions::default()) {
            Ok(c) => break c,
            Err(RingError::NotFound { .. } | RingError::NotReady { .. }) => {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "producer never created the ring"
                );
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("producer exited early: {status}");
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{e}"),
        }
    };

    let mut next = 0u64; // the next sequence number we must see
    let mut delivered = 0u64;
    let mut gaps: Vec<(u64, u64)> = Vec::new();
    let mut empty_polls = 0u64;
    let deadline = start + Duration::from_secs(300);
    while next < n {
        match c.pop().unwrap() {
            Some(v) => {
                empty_polls = 0;
                if v.type_id == type_id::GAP_V1 {
                    let Body::Gap(g) = v.decode().unwrap().body else {
                        unreachable!()
                    };
                    assert_eq!(g.reason, GapReason::RingOverrun);
                    assert_eq!(g.expected, next, "gap placed at the first missing record");
                    assert!(g.lost > 0 && g.received == g.expected + g.lost, "{g:?}");
                    gaps.push((g.expected, g.lost));
                    next = g.received;
                } else {
                    assert_eq!(v.type_id, type_id::HEARTBEAT_V1);
                    assert_eq!(v.meta.global_tick_id, next, "in order, once");
                    let body = u64::from_le_bytes(v.bytes[32..40].try_into().unwrap());
                    assert_eq!(body, next, "record body intact");
                    next += 1;
                    delivered += 1;
                    // Stall now and then: a slow shard, which the feed must not wait for.
                    if delivered.is_multiple_of(2_000_000) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            None => {
                empty_polls += 1;
                if empty_polls.is_multiple_of(1_000_000) {
                    assert!(
                        Instant::now() < deadline,
                        "timed out at record {next} of {n}"
                    );
                    // Still empty a million polls after the producer exited: it lost records.
                    if let Some(status) = child.try_wait().unwrap() {
                        assert!(
                            empty_polls < 2_000_000,
                            "producer exited ({status}) at {next} of {n}"
                        );
                    }
                }
                std::hint::spin_loop();
            }
        }
    }
    assert!(c.pop().unwrap().is_none(), "nothing after the last record");
    let status = child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "producer failed: {out}");
    let line = out
        .lines()
        .find_map(|l| l.split_once("XPROC ").map(|x| x.1))
        .unwrap_or_else(|| panic!("no producer summary in: {out}"));
    let field = |k: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (written, dropped, gap_count) = (field("written"), field("dropped"), field("gaps"));

    let runs: Vec<(u64, u64)> = std::fs::read(drops_file(&path))
        .unwrap()
        .chunks_exact(16)
        .map(|c| {
            (
                u64::from_le_bytes(c[..8].try_into().unwrap()),
                u64::from_le_bytes(c[8..].try_into().unwrap()),
            )
        })
        .collect();
    eprintln!(
        "cross-process: {n} records offered, {written} delivered, {dropped} dropped in {} gaps, {:.2?}",
        gaps.len(),
        start.elapsed()
    );
    assert_eq!(delivered, written, "every written record arrived");
    assert_eq!(written + dropped, n);
    assert!(dropped > 0, "the stalls caused overruns");
    assert_eq!(gaps.len() as u64, gap_count);
    assert_eq!(c.producer_dropped(), dropped, "header counter agrees");
    // Each run of consecutive drops is announced by one gap, right before the next record.
    assert_eq!(gaps, runs, "gap markers exactly where the producer dropped");
}
