//! Importing the real BTCUSDT capture of ../shared/data: counts checked against an
//! independent reading of the capture, both UTC dates present, `cat` and `verify` agree.

mod common;
use chronicle_testkit::shared_data;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};

const CAPTURE: &str = "binance-usdm-btcusdt-20240808.gz";

/// What the capture holds, read without any chronicle code: trades, tickers, and the level
/// updates of the diffs that survive Binance's synchronisation rule (u >= lastUpdateId).
fn oracle(path: &std::path::Path) -> (u64, u64, u64) {
    let r = BufReader::new(flate2::read::GzDecoder::new(
        std::fs::File::open(path).unwrap(),
    ));
    let mut diffs = Vec::new();
    let (mut trades, mut bbos, mut snapshot_id) = (0, 0, None);
    for line in r.lines() {
        let line = line.unwrap();
        let v: Value = serde_json::from_str(line.split_once(' ').unwrap().1).unwrap();
        if let Some(id) = v.get("lastUpdateId") {
            snapshot_id = id.as_u64();
            continue;
        }
        let d = &v["data"];
        match d["e"].as_str().unwrap() {
            "trade" => trades += 1,
            "bookTicker" => bbos += 1,
            "depthUpdate" => diffs.push((
                d["U"].as_u64().unwrap(),
                d["u"].as_u64().unwrap(),
                d["pu"].as_u64().unwrap(),
                (d["b"].as_array().unwrap().len() + d["a"].as_array().unwrap().len()) as u64,
            )),
            e => panic!("unexpected event {e}"),
        }
    }
    let l = snapshot_id.expect("capture has a snapshot");
    let kept: Vec<_> = diffs.into_iter().filter(|d| d.1 >= l).collect();
    assert!(kept[0].0 <= l, "first kept diff straddles the snapshot");
    (trades, bbos, kept.iter().map(|d| d.3).sum())
}

#[test]
fn import_counts_dates_cat_and_verify() {
    let Some(capture) = shared_data(CAPTURE) else {
        return;
    };
    let (trades, bbos, levels) = oracle(&capture);
    assert_eq!((trades, bbos), (21_313, 66_089), "the capture itself");

    let dir = scratch();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let out = chronicle_ok(&import_args(&capture, &data));
    assert!(out.contains("binance-usdm/btcusdt/2024-08-08"), "{out}");
    assert!(out.contains("binance-usdm/btcusdt/2024-08-09"), "{out}");

    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_tick = 0;
    let mut last_chunks_injected = 0;
    for date in ["2024-08-08", "2024-08-09"] {
        let part = data.join("v1/binance-usdm/btcusdt").join(date);
        let midnight = chronicle_storage::utc::parse_time("2024-08-09").unwrap();
        for line in chronicle_ok(&["cat", part.to_str().unwrap()]).lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let mut kind = v["type"].as_str().unwrap().to_owned();
            if v["injected"] == Value::Bool(true) {
                kind.push_str(" (injected)");
                last_chunks_injected += (v["last_chunk"] == Value::Bool(true)) as u64;
            }
            *counts.entry(kind).or_default() += 1;
            // Partitioned by exchange time, never receive time.
            let ts = v["exchange_ts_ns"].as_u64().unwrap();
            assert_eq!(ts >= midnight, date == "2024-08-09", "{line}");
            let tick = v["global_tick_id"].as_u64().unwrap();
            if date == "2024-08-08" {
                assert!(
                    tick > last_tick,
                    "tick ids strictly increase within a partition"
                );
            }
            last_tick = tick;
        }
        let meta: Value =
            serde_json::from_slice(&std::fs::read(part.join("meta.json")).unwrap()).unwrap();
        assert_eq!(meta["completeness"]["complete"], Value::Bool(true));
        assert_eq!(meta["symbol_code"], "btcusdt");
    }
    assert_eq!(counts["trade"], 21_313);
    assert_eq!(counts["bbo"], 66_089);
    assert_eq!(counts["level_update"], levels);
    assert_eq!(counts["book_snapshot"], 1, "the venue's REST snapshot");
    // The refinery's book, injected at each minute boundary after the book synced
    // (23:55 … 00:00: six boundaries in a capture from 23:54:16 to 00:00:01); a deep book
    // spans several chunk records, of which exactly one per injection is the last.
    assert_eq!(last_chunks_injected, 6);
    assert!(counts["book_snapshot (injected)"] >= 6);
    assert_eq!(counts["definition"], 2, "one per partition");
    assert!(
        !counts.contains_key("gap"),
        "this capture's pu chain is unbroken"
    );

    let v = chronicle_ok(&["verify", data_s]);
    assert!(v.starts_with("2 segments"), "{v}");

    // A re-import must not duplicate data.
    let again = chronicle(&import_args(&capture, &data));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn time_range_seeks_match_a_filtered_full_read() {
    let Some(capture) = shared_data(CAPTURE) else {
        return;
    };
    let dir = scratch();
    let data = dir.path().join("data");
    chronicle_ok(&import_args(&capture, &data));
    let part = data.join("v1/binance-usdm/btcusdt/2024-08-08");
    let all: Vec<String> = chronicle_ok(&["cat", part.to_str().unwrap()])
        .lines()
        .map(str::to_owned)
        .collect();
    let (from, to) = ("2024-08-08T23:56:00Z", "2024-08-08T23:57:30.5Z");
    let (f, t) = (
        chronicle_storage::utc::parse_time(from).unwrap(),
        chronicle_storage::utc::parse_time(to).unwrap(),
    );
    let expected: Vec<&String> = all
        .iter()
        .filter(|l| {
            let ts = serde_json::from_str::<Value>(l).unwrap()["exchange_ts_ns"]
                .as_u64()
                .unwrap();
            f <= ts && ts <= t
        })
        .collect();
    let got = chronicle_ok(&["cat", part.to_str().unwrap(), "--from", from, "--to", to]);
    let got: Vec<&str> = got.lines().collect();
    assert!(!expected.is_empty() && expected.len() < all.len() / 2);
    assert_eq!(got.len(), expected.len());
    assert!(got.iter().zip(&expected).all(|(a, b)| a == b));

    let csv = chronicle_ok(&[
        "cat",
        part.to_str().unwrap(),
        "--from",
        from,
        "--to",
        to,
        "--format",
        "csv",
    ]);
    assert_eq!(
        csv.lines().count(),
        expected.len() + 1,
        "header plus one row a record"
    );
}
