//! `chronicle run` end to end: a replayed capture written by the appliance equals the
//! importer's output record for record; SIGKILL at random moments then a rerun loses and
//! duplicates nothing and ends in the same engine state; segments are written with O_DIRECT.
//! Snapshot points depend only on the input: two runs, `import` + `engine run`, and a run
//! killed and rerun write the same snapshot names and bytes and the same audit roots.

mod common;
use chronicle_testkit::shared_data;
use common::*;
use std::collections::BTreeMap;
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

/// Every engine snapshot of a data directory: its path under `snapshots/` and its bytes.
fn snapshots(data: &Path) -> BTreeMap<String, Vec<u8>> {
    let root = data.join("snapshots");
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "snap") {
                let name = p.strip_prefix(&root).unwrap().display().to_string();
                out.insert(name, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// `chronicle audit`'s Merkle root of each day that has snapshots.
fn audit_roots(data: &Path, days: &[&str]) -> Vec<String> {
    days.iter()
        .map(|d| {
            let out = chronicle_ok(&["audit", "--data-dir", data.to_str().unwrap(), "--date", d]);
            out.lines()
                .find(|l| l.starts_with("merkle_root "))
                .unwrap_or_else(|| panic!("no root for {d}: {out}"))
                .to_owned()
        })
        .collect()
}

/// The same snapshots, byte for byte, and the same audit roots.
fn assert_same_snapshots(a: &Path, b: &Path, days: &[&str], what: &str) {
    let (sa, sb) = (snapshots(a), snapshots(b));
    assert!(
        sa.len() > days.len(),
        "{what}: snapshots at their points: {sa:?}"
    );
    assert_eq!(
        sa.keys().collect::<Vec<_>>(),
        sb.keys().collect::<Vec<_>>(),
        "{what}: snapshot names"
    );
    assert!(sa == sb, "{what}: snapshot bytes differ");
    assert_eq!(audit_roots(a, days), audit_roots(b, days), "{what}");
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

    // Snapshot points are set by exchange time: a second run, and the import's engine run,
    // write the same files.
    let again = dir.path().join("again");
    chronicle_ok(&run_args(&capture, &again));
    assert_same_snapshots(&ran, &again, &DAYS, "run twice");
    chronicle_ok(&["engine", "run", "--data-dir", imported.to_str().unwrap()]);
    assert_same_snapshots(&ran, &imported, &DAYS, "run against import + engine run");
}

#[test]
fn synthetic_runs_write_the_same_snapshots() {
    let dir = scratch();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&a, &b] {
        chronicle_ok(&[
            "run",
            "--seconds",
            "200",
            "--no-metrics",
            "--data-dir",
            d.to_str().unwrap(),
        ]);
    }
    let day = snapshots(&a)
        .values()
        .next()
        .map(|b| {
            let clock = u64::from_le_bytes(b[16..24].try_into().unwrap());
            chronicle_storage::utc::iso_date(chronicle_storage::utc::date_of(clock))
        })
        .expect("snapshots");
    assert_same_snapshots(&a, &b, &[day.as_str()], "synthetic run twice");
    // The same input again into the same data directory: nothing to write, and said so.
    let again = chronicle_ok(&[
        "run",
        "--seconds",
        "200",
        "--no-metrics",
        "--data-dir",
        a.to_str().unwrap(),
    ]);
    assert!(
        again.contains("refined into 0 records") && again.contains("already ingested"),
        "{again}"
    );
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
    assert_same_snapshots(&reference, &crashed, &DAYS, "killed and rerun");
}
