//! `chronicle engine run` killed with SIGKILL at random moments and restarted ends in the
//! same engine state as a run that was never interrupted; `snapshot inspect` and `audit`
//! read what it wrote.

mod common;
use chronicle_testkit::shared_data;
use common::*;
use std::path::Path;
use std::time::Duration;

fn final_snapshot(data: &Path) -> (String, Vec<u8>) {
    let dir = data.join("snapshots/1");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".snap") && !n.starts_with('.'))
        .collect();
    names.sort();
    let newest = names.pop().expect("a snapshot");
    let bytes = std::fs::read(dir.join(&newest)).unwrap();
    (newest, bytes)
}

#[test]
fn sigkill_at_random_moments_then_restart_matches_an_uninterrupted_run() {
    let Some(capture) = shared_data("binance-usdm-btcusdt-20240808.gz") else {
        return;
    };
    let dir = scratch();
    let (reference, crashed) = (dir.path().join("reference"), dir.path().join("crashed"));
    for d in [&reference, &crashed] {
        chronicle_ok(&import_args(&capture, d));
    }
    // Snapshot at every 250 ms flush boundary: many durable writes to be killed among.
    let run = |d: &Path| {
        [
            "engine",
            "run",
            "--data-dir",
            d.to_str().unwrap(),
            "--every-ms",
            "250",
            "--retain",
            "8",
        ]
        .map(str::to_owned)
    };
    let reference_out = chronicle_ok(&run(&reference));
    // "token 1: ... tick N state S": the last tick id of the uninterrupted run.
    let tick = |out: &str| -> u64 {
        out.split(" tick ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|t| t.parse().ok())
            .expect("a tick in the summary")
    };
    let final_tick = tick(&reference_out);

    let killed = kill_at_random(
        &run(&crashed),
        12,
        0x00C0_FFEE,
        Duration::from_millis(2),
        Duration::from_millis(400),
    );
    assert!(
        killed >= 3,
        "the runs must actually be interrupted ({killed} were)"
    );
    let out = chronicle_ok(&run(&crashed));
    assert_eq!(tick(&out), final_tick, "{out}");

    let (name_a, a) = final_snapshot(&reference);
    let (name_b, b) = final_snapshot(&crashed);
    assert_eq!(name_a, name_b);
    assert_eq!(
        a, b,
        "engine state after crashes equals the uninterrupted run's"
    );

    let inspect = chronicle_ok(&[
        "snapshot",
        "inspect",
        crashed.join("snapshots/1").join(&name_b).to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["header"]["global_tick_id"], final_tick);
    assert_eq!(
        v["header"]["event_log_position"]["partition_date"],
        "2024-08-09"
    );
    // The bar's close, scaled, is the price of the log's last trade as `cat` prints it.
    let trades = chronicle_ok(&[
        "cat",
        "--data-dir",
        crashed.to_str().unwrap(),
        "binance-usdm/btcusdt",
        "--type",
        "trade",
    ]);
    let last: serde_json::Value = serde_json::from_str(trades.lines().last().unwrap()).unwrap();
    assert_eq!(v["scale"]["price_exponent"], -1, "{}", v["scale"]);
    assert_eq!(v["ohlc_1m"]["close_scaled"], last["price"], "{inspect}");
    assert!(v["ohlc_1m"]["close"].is_i64(), "the raw value beside");
    for day in ["2024-08-08", "2024-08-09"] {
        let audit = chronicle_ok(&[
            "audit",
            "--data-dir",
            crashed.to_str().unwrap(),
            "--date",
            day,
        ]);
        assert!(audit.starts_with("merkle_root "), "{audit}");
    }
}
