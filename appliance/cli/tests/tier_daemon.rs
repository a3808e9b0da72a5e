//! The tier manager inside the appliance: `chronicle run` with a `[tiers]` section moves an
//! old closed day to the cold root from its own thread while the shards run, keeps the
//! newest day of each symbol warm, counts the move on `/metrics`, and stops with the daemon.

mod common;
use chronicle_testkit::shared_data;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const CAPTURE: &str = "binance-usdm-btcusdt-20240808.gz";

fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_appliance_moves_old_days_off_the_shard_cores_and_counts_them() {
    let Some(capture) = shared_data(CAPTURE) else {
        return;
    };
    let dir = scratch();
    let (data, cold) = (dir.path().join("data"), dir.path().join("cold"));
    // Old days of another venue than the one the run writes.
    import_capture(&capture, &data, "archive");
    let days = data.join("v1/archive/btcusdt");
    // Written two hours ago: past the default one-hour late window.
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    for d in ["2024-08-08", "2024-08-09"] {
        let f = std::fs::File::options()
            .write(true)
            .open(days.join(d).join("book.q"))
            .unwrap();
        f.set_modified(two_hours_ago).unwrap();
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = dir.path().join("chronicle.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[input]\nkind = \"synthetic\"\nseed = 3\nseconds = 5\n\
             [[shards]]\ncpu = {}\nring = \"/dev/shm/chronicle-tier-test-{}\"\nring_bytes = 1048576\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n\
             [tiers]\ncold_dir = {cold:?}\nwarm_to_cold_after_hours = 0\nkeep_newest_per_symbol = 1\nscan_interval_s = 1\n",
            cores - 1,
            std::process::id()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args(["run", "--config", config.to_str().unwrap(), "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut lines, mut addr) = (Vec::new(), None);
    let moved = cold.join("v1/archive/btcusdt/2024-08-08/book.q.zst");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(moved.is_file() && addr.is_some()) && Instant::now() < deadline {
        while let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            if let Some(a) = l
                .strip_prefix("chronicle: metrics on http://")
                .and_then(|r| r.strip_suffix("/metrics"))
            {
                addr = Some(a.to_owned());
            }
            lines.push(l);
        }
    }
    assert!(
        moved.is_file(),
        "no move within 120 s:\n{}",
        lines.join("\n")
    );
    let addr = addr.expect("metrics address printed");
    // The counters are updated at the end of the pass that made the move.
    let mut metrics = String::new();
    while Instant::now() < deadline {
        metrics = scrape(&addr);
        if metrics.contains("chronicle_tier_moves_total{move=\"warm_to_cold\"} 1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        metrics.contains("chronicle_tier_moves_total{move=\"warm_to_cold\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("chronicle_tier_move_failures_total{move=\"warm_to_cold\"} 0"));

    // SIGTERM: the daemon, its tier thread with it, stops cleanly.
    // SAFETY: signalling the child this test spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    assert!(status.success(), "{status}:\n{}", lines.join("\n"));
    let log = lines.join("\n");
    assert!(
        log.contains("chronicle: tiers: warm -> cold   v1/archive/btcusdt/2024-08-08:"),
        "{log}"
    );
    assert!(!days.join("2024-08-08").exists(), "moved day left warm");
    assert!(
        days.join("2024-08-09/book.q").is_file(),
        "the newest day stays warm"
    );
    let written = chronicle_ok(&["verify", data.to_str().unwrap()]);
    assert!(written.contains("0 torn tails"), "{written}");
}
