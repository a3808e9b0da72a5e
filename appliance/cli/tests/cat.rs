//! `cat` by symbol across days and tiers, by record type, and its refusals of ranges that
//! select nothing; configuration paths relative to the configuration file. Built from
//! generated events (no shared data needed).

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// 20 events 1 ms apart from 23:59:59.990: ten on 2024-08-08, ten on 2024-08-09, each day
/// after the instrument's definition record (22 records).
fn across_midnight(data: &Path) {
    let t0 = chronicle_storage::utc::parse_time("2024-08-08T23:59:59.990Z").unwrap();
    events(data, t0, 20);
}

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn field_u64(v: &serde_json::Value, f: &str) -> u64 {
    v[f].as_u64().unwrap()
}

fn stderr_of(args: &[&str]) -> (Option<i32>, String) {
    let out = chronicle(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_symbol_reads_its_days_in_order_and_a_range_spans_midnight() {
    let tmp = scratch();
    let data = tmp.path().join("data");
    across_midnight(&data);
    let d = data.to_str().unwrap();
    let dir = data.join("v1/testvenue/abc");
    for target in ["testvenue/abc", "v1/testvenue/abc", dir.to_str().unwrap()] {
        let all = json_lines(&chronicle_ok(&["cat", "--data-dir", d, target]));
        assert_eq!(all.len(), 22, "{target}: both days");
        let ticks: Vec<u64> = all.iter().map(|v| field_u64(v, "global_tick_id")).collect();
        assert!(
            ticks.windows(2).all(|w| w[0] < w[1]),
            "{target}: in log order"
        );
    }
    // 23:59:59.995 .. 00:00:00.004 inclusive: five events of each day, in one call.
    let got = json_lines(&chronicle_ok(&[
        "cat",
        "--data-dir",
        d,
        "testvenue/abc",
        "--type",
        "trade,bbo",
        "--from",
        "2024-08-08T23:59:59.995Z",
        "--to",
        "2024-08-09T00:00:00.004Z",
    ]));
    let ts: Vec<u64> = got.iter().map(|v| field_u64(v, "exchange_ts_ns")).collect();
    let midnight = chronicle_storage::utc::parse_time("2024-08-09").unwrap();
    assert_eq!(ts.len(), 10, "{ts:?}");
    assert_eq!(ts.iter().filter(|&&t| t < midnight).count(), 5);
    assert!(ts.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn type_filters_and_csv_has_one_header() {
    let tmp = scratch();
    let data = tmp.path().join("data");
    across_midnight(&data);
    let d = data.to_str().unwrap();
    let trades = json_lines(&chronicle_ok(&[
        "cat",
        "--data-dir",
        d,
        "testvenue/abc",
        "--type",
        "trade",
    ]));
    assert_eq!(trades.len(), 10);
    assert!(trades.iter().all(|v| v["type"] == "trade"));
    let both = chronicle_ok(&[
        "cat",
        "--data-dir",
        d,
        "testvenue/abc",
        "--type",
        "trade,bbo",
    ]);
    assert_eq!(both.lines().count(), 20);
    let csv = chronicle_ok(&[
        "cat",
        "--data-dir",
        d,
        "testvenue/abc",
        "--format",
        "csv",
        "--type",
        "bbo",
    ]);
    assert_eq!(
        csv.lines().count(),
        11,
        "one header, then ten quotes across two days"
    );
    let (code, err) = stderr_of(&["cat", "--data-dir", d, "testvenue/abc", "--type", "trades"]);
    assert_eq!(code, Some(2), "a usage error");
    assert!(err.contains("`trades` is not a record type"), "{err}");
}

#[test]
fn empty_inverted_and_outside_ranges_are_refused_with_what_is_stored() {
    let tmp = scratch();
    let data = tmp.path().join("data");
    across_midnight(&data);
    let d = data.to_str().unwrap();
    let (code, err) = stderr_of(&[
        "cat",
        "--data-dir",
        d,
        "testvenue/abc",
        "--from",
        "2024-08-09",
        "--to",
        "2024-08-08",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is after --to"), "{err}");
    // A partition whose span the range misses: the span is named.
    let (code, err) = stderr_of(&[
        "cat",
        "--data-dir",
        d,
        "testvenue/abc/2024-08-08",
        "--from",
        "2024-08-08T10:00:00Z",
        "--to",
        "2024-08-08T11:00:00Z",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("no record matched")
            && err.contains("holds 11 records from 2024-08-08T23:59:59.990"),
        "{err}"
    );
    // A symbol with no day in the range: its days are named.
    let (code, err) = stderr_of(&[
        "cat",
        "--data-dir",
        d,
        "testvenue/abc",
        "--from",
        "2024-09-01",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("2 days are 2024-08-08 .. 2024-08-09"), "{err}");
    // A type the partition does not hold.
    let (code, err) = stderr_of(&[
        "cat",
        "--data-dir",
        d,
        "testvenue/abc/2024-08-09",
        "--type",
        "gap",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("holds 11 records"), "{err}");
}

#[test]
fn a_symbol_key_reads_across_tiers_and_config_paths_are_relative_to_the_file() {
    let tmp = scratch();
    let site = tmp.path().join("site");
    across_midnight(&site.join("data"));
    // Relative roots: resolved against the configuration's directory, not the working one.
    let cfg = tier_now_config(&site, Path::new("data"), Path::new("cold"));
    let cfg = cfg.to_str().unwrap();
    let before = chronicle_ok(&["cat", "--config", cfg, "testvenue/abc"]);
    assert_eq!(before.lines().count(), 22);
    // 2024-08-08 moves to the cold root; 2024-08-09 stays warm only if kept, and with
    // `keep_newest_per_symbol = 0` moves too: the read is the same from either tier.
    chronicle_ok(&["tier", "run", "--config", cfg]);
    assert!(site.join("cold/v1/testvenue/abc/2024-08-08").is_dir());
    assert!(!site
        .join("data/v1/testvenue/abc/2024-08-08/book.q")
        .exists());
    // From another working directory, through the relative configuration.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .current_dir(&elsewhere)
        .args(["cat", "--config", "../site/chronicle.toml", "testvenue/abc"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), before);
    assert!(!elsewhere.join("data").exists() && !elsewhere.join("cold").exists());
    // A key in no tier names only the configured tiers (no object store here).
    let (code, err) = stderr_of(&["cat", "--config", cfg, "testvenue/abc/2024-08-10"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("Warm ") && err.contains("Cold ") && !err.contains("RemoteCold"),
        "{err}"
    );
}
