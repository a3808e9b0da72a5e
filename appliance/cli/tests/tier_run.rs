//! `chronicle tier run`: the real capture's two days move warm → cold in one pass, a line per
//! move and totals are printed, `cat` of each day by its key prints the same bytes before and
//! after, `verify` passes on the cold copies, and a second pass has nothing to do.

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
