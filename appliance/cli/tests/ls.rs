//! `chronicle ls`: every partition on every tier, open or closed, with its records, span and
//! size; on generated data (always) and on the shared capture imported, then tiered.

mod common;
use chronicle_testkit::shared_data;
use common::*;
use serde_json::Value;
use std::path::Path;

fn ls(config: &Path) -> Vec<Value> {
    let out = chronicle_ok(&[
        "ls",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ]);
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn closed_and_open_partitions_with_their_counts() {
    let dir = scratch();
    let (data, cold) = (dir.path().join("data"), dir.path().join("cold"));
    let part = partition(&data, 5_000);
    let cfg = tier_now_config(dir.path(), &data, &cold);
    let rows = ls(&cfg);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(
        (
            r["venue"].as_str(),
            r["symbol"].as_str(),
            r["date"].as_str()
        ),
        (Some("testvenue"), Some("abc"), Some("2024-08-08"))
    );
    assert_eq!(
        (r["tier"].as_str(), r["state"].as_str()),
        (Some("warm"), Some("closed"))
    );
    assert_eq!(r["records"].as_u64(), Some(5_001), "definition + 5000");
    assert_eq!(r["records_exact"].as_bool(), Some(true));
    assert_eq!(
        r["bytes"].as_u64(),
        Some(std::fs::metadata(part.join("book.q")).unwrap().len())
    );

    // Still being written (no meta.json yet): open, counted from its index, a lower bound.
    std::fs::remove_file(part.join("meta.json")).unwrap();
    let r = &ls(&cfg)[0];
    assert_eq!(r["state"].as_str(), Some("open"));
    assert_eq!(r["records_exact"].as_bool(), Some(false));
    assert!(r["records"].as_u64().unwrap() <= 5_001);

    let table = chronicle_ok(&["ls", "--config", cfg.to_str().unwrap()]);
    assert!(
        table.contains("testvenue/abc/2024-08-08") && table.contains("open"),
        "{table}"
    );
    let missing = dir.path().join("missing.toml");
    std::fs::write(
        &missing,
        format!("data_dir = {:?}\n", dir.path().join("nope")),
    )
    .unwrap();
    let out = chronicle(&["ls", "--config", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such data directory"));
}

#[test]
fn the_capture_imported_then_tiered() {
    let Some(capture) = shared_data("binance-usdm-btcusdt-20240808.gz") else {
        return;
    };
    let dir = scratch();
    let (data, cold) = (dir.path().join("data"), dir.path().join("cold"));
    import_capture(&capture, &data, "binance-usdm");
    let cfg = tier_now_config(dir.path(), &data, &cold);
    let warm = ls(&cfg);
    let days: Vec<(&str, &str, u64)> = warm
        .iter()
        .map(|r| {
            (
                r["date"].as_str().unwrap(),
                r["tier"].as_str().unwrap(),
                r["records"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(days.len(), 2, "{days:?}");
    assert!(days.iter().all(|d| d.1 == "warm" && d.2 > 0), "{days:?}");

    chronicle_ok(&["tier", "run", "--config", cfg.to_str().unwrap()]);
    let tiered = ls(&cfg);
    assert_eq!(tiered.len(), 2, "{tiered:?}");
    for (before, after) in warm.iter().zip(&tiered) {
        assert_eq!(after["tier"].as_str(), Some("cold"));
        assert_eq!(after["state"].as_str(), Some("closed"));
        for k in [
            "date",
            "records",
            "first_exchange_ns",
            "last_exchange_ns",
            "token_id",
        ] {
            assert_eq!(before[k], after[k], "{k} unchanged by the move");
        }
        assert!(
            after["bytes"].as_u64().unwrap() < before["bytes"].as_u64().unwrap(),
            "compressed"
        );
    }
}
