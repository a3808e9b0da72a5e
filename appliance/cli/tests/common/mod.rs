//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)] // each test file uses its own subset

use chronicle_import::{EventSink, Instrument, PartitionSink};
use chronicle_protocol::{Bbo, Body, Side, Trade, UNDEF};
use chronicle_storage::meta::Source;
use std::ffi::OsStr;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn chronicle<S: AsRef<OsStr> + Debug>(args: &[S]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args(args)
        .output()
        .expect("run chronicle");
    out
}

/// Runs chronicle and asserts success, returning stdout.
pub fn chronicle_ok<S: AsRef<OsStr> + Debug>(args: &[S]) -> String {
    let out = chronicle(args);
    assert!(
        out.status.success(),
        "chronicle {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8 output")
}

/// A scratch directory on the real disk (not tmpfs), removed on drop.
pub fn scratch() -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tempfile::tempdir_in(base).expect("scratch dir")
}

/// splitmix64: kill moments that reproduce.
pub fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs `chronicle args` `times` times, each killed with SIGKILL after a reproducible random
/// delay in `[min, min + spread)` (a run that finished first is left alone); returns how many
/// were really killed.
pub fn kill_at_random(
    args: &[String],
    times: usize,
    seed: u64,
    min: std::time::Duration,
    spread: std::time::Duration,
) -> usize {
    let mut rng = seed;
    let mut killed = 0;
    for _ in 0..times {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chronicle"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn chronicle");
        let delay =
            min + std::time::Duration::from_nanos(next(&mut rng) % spread.as_nanos() as u64);
        std::thread::sleep(delay);
        if child.try_wait().expect("poll child").is_none() {
            child.kill().expect("SIGKILL");
            killed += 1;
        }
        child.wait().expect("reap child");
    }
    killed
}

/// A partition of `n` alternating trades and quotes on 2024-08-08; returns its directory.
pub fn partition(data: &Path, n: u64) -> PathBuf {
    let t0 = chronicle_storage::utc::parse_time("2024-08-08T12:00:00Z").unwrap();
    events(data, t0, n);
    data.join("v1/testvenue/abc/2024-08-08")
}

/// `n` alternating trades (even `i`) and quotes of `testvenue/abc`, 1 ms apart from `t0`,
/// imported into `data` (each into the partition of its UTC day).
pub fn events(data: &Path, t0: u64, n: u64) {
    let mut sink = PartitionSink::new(
        data,
        Source {
            kind: "import".into(),
            format: "test".into(),
            file: None,
        },
    )
    .unwrap();
    let h = sink
        .instrument(&Instrument {
            venue: "testvenue".into(),
            raw_symbol: "ABC".into(),
            price_exponent: -2,
            quantity_exponent: 0,
            instrument_class: 0,
            tick_size: UNDEF,
            lot_size: UNDEF,
            expiration_ns: 0,
        })
        .unwrap();
    for i in 0..n {
        let body = if i % 2 == 0 {
            Body::Trade(Trade {
                aggressor: Side::Bid,
                flags: 0,
                price: 10_000 + i as i64,
                quantity: 3,
                trade_id: i,
            })
        } else {
            Body::Bbo(Bbo {
                bid_price: 9_999,
                bid_quantity: 1,
                ask_price: 10_001,
                ask_quantity: 2,
                update_id: i,
            })
        };
        sink.event(h, t0 + i * 1_000_000, t0 + i * 1_000_000 + 500, body)
            .unwrap();
    }
    sink.finish().unwrap();
}

/// `chronicle` arguments: `command`, then `--input capture --data-dir data`.
pub fn input_args(command: &[&str], capture: &Path, data: &Path) -> Vec<String> {
    let paths = [
        "--input",
        capture.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    command
        .iter()
        .chain(&paths)
        .map(|s| s.to_string())
        .collect()
}

/// The arguments of `chronicle import` of a Binance capture into `data`, under the importer's
/// default venue (`binance-usdm`).
pub fn import_args(capture: &Path, data: &Path) -> Vec<String> {
    input_args(&["import", "--format", "binance-capture"], capture, data)
}

/// `chronicle import` of a Binance capture into `data`, its partitions under `venue`.
pub fn import_capture(capture: &Path, data: &Path, venue: &str) -> String {
    let mut args = import_args(capture, data);
    args.extend(["--venue".to_owned(), venue.to_owned()]);
    chronicle_ok(&args)
}

/// A configuration with `data` and the cold root `cold` whose closed days are due to move at
/// once (no late window, no age, none kept warm), written into `dir`.
pub fn tier_now_config(dir: &Path, data: &Path, cold: &Path) -> PathBuf {
    let config = dir.join("chronicle.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[partitions]\ngrace_ms = 0\n\
             [tiers]\ncold_dir = {cold:?}\nwarm_to_cold_after_hours = 0\nkeep_newest_per_symbol = 0\n"
        ),
    )
    .unwrap();
    config
}
