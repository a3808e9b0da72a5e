//! `chronicle tier run`: the real capture's two days move warm → cold in one pass, a line per
//! move and totals are printed, `cat` of each day by its key prints the same bytes before and
//! after, `verify` passes on the cold copies, and a second pass has nothing to do. Freshly
//! imported old days (generated) stay warm for the late window, and the pass says so, with
//! until when; `--verbose` gives the reason per unit.

mod common;
use chronicle_testkit::shared_data;
use common::*;

const CAPTURE: &str = "binance-usdm-btcusdt-20240808.gz";
const DAYS: [&str; 2] = [
    "binance-usdm/btcusdt/2024-08-08",
    "binance-usdm/btcusdt/2024-08-09",
];

#[test]
fn tier_run_moves_closed_days_and_cat_is_unchanged() {
    let Some(capture) = shared_data(CAPTURE) else {
        return;
    };
    let dir = scratch();
    let (data, cold) = (dir.path().join("data"), dir.path().join("cold"));
    import_capture(&capture, &data, "binance-usdm");
    // The days were just written: no late window, so that they are due now.
    let config = tier_now_config(dir.path(), &data, &cold);
    let cfg = config.to_str().unwrap();
    let before: Vec<String> = DAYS
        .iter()
        .map(|d| chronicle_ok(&["cat", "--config", cfg, d]))
        .collect();

    let out = chronicle_ok(&["tier", "run", "--config", cfg]);
    for d in DAYS {
        let line = out
            .lines()
            .find(|l| l.starts_with("warm -> cold") && l.contains(d))
            .unwrap_or_else(|| panic!("no move line for {d}:\n{out}"));
        assert!(
            line.contains(" records, ") && line.contains(" MB/s"),
            "{line}"
        );
        assert!(!data.join("v1").join(d).exists(), "{d} left warm");
        assert!(cold.join("v1").join(d).join("book.q.zst").is_file(), "{d}");
    }
    assert!(
        out.contains("tier pass: 2 warm -> cold, 0 cold -> remote, 0 failed"),
        "{out}"
    );

    for (d, before) in DAYS.iter().zip(&before) {
        let after = chronicle_ok(&["cat", "--config", cfg, d]);
        assert!(after == *before, "{d}: cat differs after the move to cold");
        let cold_dir = cold.join("v1").join(d);
        let verified = chronicle_ok(&["verify", cold_dir.to_str().unwrap()]);
        assert!(verified.contains("0 torn tails"), "{verified}");
    }

    let again = chronicle_ok(&["tier", "run", "--config", cfg]);
    assert!(
        again.contains("tier pass: 0 warm -> cold, 0 cold -> remote, 0 failed"),
        "{again}"
    );
}

#[test]
fn tier_run_without_a_cold_root_says_so() {
    let out = chronicle(&["tier", "run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tiers.cold_dir is not set"), "{err}");
}

#[test]
fn a_freshly_imported_old_day_says_it_waits_for_its_late_window() {
    let dir = scratch();
    let (data, cold) = (dir.path().join("data"), dir.path().join("cold"));
    // Old days (2024-08-08 and 09: the synthetic model crosses midnight), imported now.
    let capture = dir.path().join("synthetic.capture");
    let file = std::fs::File::create(&capture).unwrap();
    chronicle_replay::write_capture(&chronicle_replay::SyntheticConfig::default(), file).unwrap();
    chronicle_ok(&import_args(&capture, &data));
    let days: Vec<_> = ["2024-08-08", "2024-08-09"]
        .map(|d| data.join("v1/binance-usdm/btcusdt").join(d))
        .into();
    // Old enough to move but for the late window (the default hour), which runs from
    // book.q's modification time.
    let config = dir.path().join("chronicle.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[tiers]\ncold_dir = {cold:?}\nwarm_to_cold_after_hours = 0\n\
             keep_newest_per_symbol = 0\n"
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let written = |day: &std::path::Path| {
        let t = std::fs::metadata(day.join("book.q"))
            .unwrap()
            .modified()
            .unwrap();
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    };
    let at = chronicle_tier::not_moved::at;
    let hour = 3_600_000_000_000;
    let untils: std::collections::BTreeSet<String> =
        days.iter().map(|d| at(written(d) + hour)).collect();
    let until = match untils.len() {
        1 => untils.first().unwrap().clone(),
        _ => format!("{} to {}", untils.first().unwrap(), untils.last().unwrap()),
    };

    let run = chronicle(&["tier", "run", "--config", cfg]);
    assert!(run.status.success());
    // Piped, as here, no progress bar is drawn.
    assert_eq!(String::from_utf8_lossy(&run.stderr), "");
    let out = String::from_utf8(run.stdout).unwrap();
    assert!(
        out.contains(&format!(
            "tier pass: 0 warm -> cold, 0 cold -> remote, 0 failed; 0 bytes read, 0 bytes \
             written; 0 leftovers reconciled, 0 unresolved; not moved: 2 late window (until \
             {until})"
        )),
        "{out}"
    );
    assert_eq!(
        out.lines().count(),
        1,
        "no line per unit without --verbose: {out}"
    );

    let out = chronicle_ok(&["tier", "run", "--verbose", "--config", cfg]);
    for day in &days {
        let rel = day.strip_prefix(&data).unwrap();
        let line = format!(
            "warm -> cold   {}: not moved: inside the late window (grace_ms) until {}: book.q \
             was written at {}",
            rel.display(),
            at(written(day) + hour),
            at(written(day))
        );
        assert!(out.lines().any(|l| l == line), "{line}\n{out}");
    }
    assert_eq!(out.lines().count(), 3, "{out}");

    // Once left alone for the window, both move.
    for day in &days {
        let f = std::fs::File::options()
            .write(true)
            .open(day.join("book.q"))
            .unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7200))
            .unwrap();
    }
    let out = chronicle_ok(&["tier", "run", "--config", cfg]);
    assert!(
        out.contains("tier pass: 2 warm -> cold") && !out.contains("not moved"),
        "{out}"
    );
}
