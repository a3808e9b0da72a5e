//! Once a shard's loop starts, its core makes no file system call: no read, write, open,
//! fsync, `syncfs` or directory sync, not at a flush, not when a new token is declared, not
//! at a day's rollover. `chronicle run` is traced with `strace -f`; every system call the
//! shard's thread makes between its two log lines ("ingesting on core", "input done") must be
//! one of the few that touch no file: futex (hand-offs to its helper threads, and waiting for
//! a flush in flight), and memory management.

mod common;
use chronicle_testkit::shared_data;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// System calls that touch no file and never wait on a disk.
const ALLOWED: [&str; 9] = [
    "futex",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "brk",
    "sched_yield",
    "rt_sigprocmask",
];

/// Runs `chronicle args` under `strace -f` and returns the system calls of the shard's thread
/// inside its loop, by name, and the offending lines.
fn shard_syscalls(args: &[String], trace: &Path) -> (BTreeMap<String, u64>, Vec<String>) {
    let status = Command::new("strace")
        .args(["-f", "-qq", "-s", "120", "-o"])
        .arg(trace)
        .arg(env!("CARGO_BIN_EXE_chronicle"))
        .args(args)
        .status()
        .expect("strace (Debian package `strace`) is needed by this test");
    assert!(
        status.success(),
        "chronicle {args:?} under strace: {status}"
    );
    let text = std::fs::read_to_string(trace).unwrap();
    let (mut shard, mut inside, mut ended) = (None, false, false);
    let (mut calls, mut offending) = (BTreeMap::new(), Vec::new());
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let rest = rest.trim_start();
        // The end of a call strace showed as `<unfinished ...>` when another thread
        // interrupted it: counted at its start.
        if rest.starts_with("<...") {
            continue;
        }
        let Some(name) = rest.split('(').next().filter(|n| !n.is_empty()) else {
            continue;
        };
        if name == "write" && rest.contains("ingesting on core") {
            assert!(shard.is_none(), "one shard in this run");
            shard = Some(pid.to_owned());
            inside = true;
            continue;
        }
        if shard.as_deref() != Some(pid) || !inside {
            continue;
        }
        if name == "write" && rest.contains("input done, final flush") {
            inside = false;
            ended = true;
            continue;
        }
        *calls.entry(name.to_owned()).or_insert(0) += 1;
        if !ALLOWED.contains(&name) {
            offending.push(line.to_owned());
        }
    }
    assert!(
        shard.is_some() && ended,
        "the shard's loop lines are in the trace"
    );
    (calls, offending)
}

fn check(args: &[String], what: &str) {
    let dir = scratch();
    let (calls, offending) = shard_syscalls(args, &dir.path().join("trace"));
    assert!(
        offending.is_empty(),
        "{what}: the shard's thread made file system calls in its loop:\n{}",
        offending.join("\n")
    );
    assert!(
        calls.get("futex").copied().unwrap_or(0) > 0,
        "{what}: flushes were handed off inside the traced loop: {calls:?}"
    );
}

#[test]
fn the_synthetic_feed_runs_without_a_file_system_call_on_the_shard_core() {
    let dir = scratch();
    let data = dir.path().join("data");
    let args: Vec<String> = ["run", "--seconds", "600", "--no-metrics", "--data-dir"]
        .iter()
        .map(|s| s.to_string())
        .chain([data.to_str().unwrap().to_owned()])
        .collect();
    check(&args, "synthetic feed");
}

#[test]
fn a_real_capture_across_midnight_runs_without_a_file_system_call_on_the_shard_core() {
    // Crosses 2024-08-08 → 2024-08-09: the new day's partition is opened in the loop.
    let Some(capture) = shared_data("binance-usdm-btcusdt-20240808.gz") else {
        return;
    };
    let dir = scratch();
    let mut args = input_args(&["run"], &capture, &dir.path().join("data"));
    args.push("--no-metrics".into());
    check(&args, "real capture");
    let days: Vec<_> = std::fs::read_dir(dir.path().join("data/v1/binance-usdm/btcusdt"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(days.len(), 2, "both days written: {days:?}");
}
