//! `chronicle run` end to end: a replayed capture written by the appliance equals the
//! importer's output record for record; SIGKILL at random moments then a rerun loses and
//! duplicates nothing and ends in the same engine state; segments are written with O_DIRECT.

mod common;
use common::*;
use std::path::Path;
use std::time::Duration;

const CAPTURE: &str = "binance-usdm-btcusdt-20240808.gz";
const DAYS: [&str; 2] = ["2024-08-08", "2024-08-09"];

fn cat_all(data: &Path) -> String {
    DAYS.iter()
        .map(|d| {
            chronicle_ok(&[
                "cat",
                data.join("v1/binance-usdm/btcusdt")
                    .join(d)
                    .to_str()
                    .unwrap(),
            ])
        })
        .collect()
}

fn run_args(capture: &Path, data: &Path) -> Vec<String> {
    input_args(&["run"], capture, data)
}

fn newest_snapshot(data: &Path) -> Vec<u8> {
    let dir = data.join("snapshots/1");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .collect();
    names.sort();
    std::fs::read(names.last().expect("a snapshot")).unwrap()
}

#[test]
fn run_equals_import_and_uses_o_direct() {
    let Some(capture) = shared_data(CAPTURE) else {
        return;
    };
    let dir = scratch();
    let (ran, imported) = (dir.path().join("ran"), dir.path().join("imported"));
    let out = chronicle_ok(&run_args(&capture, &ran));
    assert!(out.contains("O_DIRECT verified: true"), "{out}");
    assert!(out.contains("0 ring drops"), "{out}");
    chronicle_ok(&import_args(&capture, &imported));
    let (a, b) = (cat_all(&ran), cat_all(&imported));
    assert!(a.lines().count() > 530_000);
    assert!(
        a == b,
        "the appliance and the importer wrote different records"
    );
    // Both days complete, closed with their meta (the capture crosses UTC midnight).
    for d in DAYS {
        let meta: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                ran.join("v1/binance-usdm/btcusdt")
                    .join(d)
                    .join("meta.json"),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(meta["completeness"]["complete"], true);
        assert_eq!(meta["source"]["kind"], "feed");
    }
    // O_DIRECT writes leave no padding after close: the file ends at its last frame.
    chronicle_ok(&["verify", ran.to_str().unwrap()]);
}

#[test]
fn sigkill_during_runs_then_rerun_loses_and_duplicates_nothing() {
    let Some(capture) = shared_data(CAPTURE) else {
        return;
    };
    let dir = scratch();
    let (reference, crashed) = (dir.path().join("reference"), dir.path().join("crashed"));
    chronicle_ok(&run_args(&capture, &reference));

    let killed = kill_at_random(
        &run_args(&capture, &crashed),
        8,
        0x5EED,
        Duration::from_millis(200),
        Duration::from_millis(2_500),
    );
    assert!(
        killed >= 3,
        "runs must really be interrupted ({killed} were)"
    );
    chronicle_ok(&run_args(&capture, &crashed));
    // A segment may end in a torn tail only until the next run cuts it; after the last run
    // every file is clean.
    let v = chronicle(&["verify", crashed.to_str().unwrap()]);
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stderr)
    );
    assert!(
        cat_all(&crashed) == cat_all(&reference),
        "every record once, in order"
    );
    assert_eq!(
        newest_snapshot(&crashed),
        newest_snapshot(&reference),
        "engine state equals the uninterrupted run's"
    );
}
