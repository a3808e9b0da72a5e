//! The engine over the real BTCUSDT capture (../shared/data): determinism, golden FSM
//! transitions, snapshot-then-replay at random cut points, fallback past damaged snapshots,
//! and the audit manifest.

use chronicle_engine::{TokenEngine, Transition};
use chronicle_import::{binance, PartitionSink};
use chronicle_state::audit::audit;
use chronicle_state::log::TokenLog;
use chronicle_state::position::LogPosition;
use chronicle_state::recovery::{catch_up, Cadence};
use chronicle_state::store::SnapshotStore;
use chronicle_storage::meta::Source;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const TOKEN: u64 = 1;

/// The capture imported once per test process into a scratch dir on the real disk; None
/// (after a skip) where `../shared/data` lacks it.
fn imported() -> Option<&'static Path> {
    let capture = chronicle_testkit::shared_data("binance-usdm-btcusdt-20240808.gz")?;
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let mut sink = PartitionSink::new(
            dir.path(),
            Source {
                kind: "import".into(),
                format: "binance-capture".into(),
                file: None,
            },
        )
        .unwrap();
        binance::import(&capture, "binance-usdm", &mut sink).unwrap();
        sink.finish().unwrap();
        dir
    });
    Some(dir.path())
}

fn log(data: &Path) -> TokenLog {
    TokenLog::new(vec![data.join("v1/binance-usdm/btcusdt")])
}

/// Runs the engine over the whole log; returns the final state and every transition.
fn full_run(data: &Path) -> (TokenEngine, Vec<Transition>, LogPosition) {
    let mut e = TokenEngine::new(TOKEN);
    let mut transitions = Vec::new();
    let mut last = None;
    log(data)
        .replay(None, 0, |pos, rec| {
            transitions.extend(e.apply(rec).unwrap());
            last = Some(pos);
            Ok(())
        })
        .unwrap();
    (e, transitions, last.unwrap())
}

fn render(t: &[Transition]) -> String {
    t.iter()
        .map(|t| {
            format!(
                "{} {} {:?} -> {:?} {:?} causes={:#x}\n",
                t.global_tick_id, t.exchange_ts_ns, t.from, t.to, t.cooldown, t.causes
            )
        })
        .collect()
}

#[test]
fn deterministic_and_golden() {
    let Some(data) = imported() else { return };
    let (a, ta, pa) = full_run(data);
    let (b, tb, pb) = full_run(data);
    assert_eq!(
        a.snapshot(pa.pack()),
        b.snapshot(pb.pack()),
        "byte-identical snapshots"
    );
    assert_eq!(ta, tb);
    let records = log(data).replay(None, 0, |_, _| Ok(())).unwrap();
    assert_eq!(
        a.last_global_tick_id(),
        records,
        "tick ids 1..=n, every record applied"
    );
    let golden_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/btcusdt_fsm_transitions.txt");
    let got = render(&ta);
    if std::env::var_os("CHRONICLE_BLESS").is_some() {
        std::fs::write(&golden_path, &got).unwrap();
    }
    let golden =
        std::fs::read_to_string(&golden_path).expect("golden file (CHRONICLE_BLESS=1 writes it)");
    assert_eq!(
        got, golden,
        "FSM transitions on the BTCUSDT capture changed"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Snapshot at a random cut, restore from the bytes, replay the rest from the snapshot's
    /// log position: the same final snapshot as never stopping.
    #[test]
    fn snapshot_then_replay_equals_uninterrupted(cut in 1u64..530_680) {
        let Some(data) = imported() else { return Ok(()) };
        let (whole, _, end) = full_run(data);
        let mut e = TokenEngine::new(TOKEN);
        let mut snap = None;
        log(data).replay(None, 0, |pos, rec| {
            if snap.is_none() {
                e.apply(rec).unwrap();
                if rec.meta.global_tick_id == cut {
                    snap = Some(e.snapshot(pos.pack()));
                }
            }
            Ok(())
        }).unwrap();
        let (mut resumed, h) = TokenEngine::restore(&snap.unwrap()).unwrap();
        prop_assert_eq!(h.global_tick_id, cut);
        let pos = LogPosition::unpack(h.event_log_offset).unwrap();
        chronicle_state::recovery::check_alignment(&log(data), pos, cut).unwrap();
        let mut last = pos;
        log(data).replay(Some(pos), cut, |p, rec| { resumed.apply(rec).unwrap(); last = p; Ok(()) }).unwrap();
        prop_assert_eq!(resumed.snapshot(last.pack()), whole.snapshot(end.pack()));
    }
}

/// Copies the imported partitions (not snapshots) into a fresh data dir.
fn fresh_copy() -> Option<tempfile::TempDir> {
    let data = imported()?;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(data.join("v1"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    Some(dir)
}

#[test]
fn damaged_newest_snapshots_fall_back_and_still_agree() {
    let Some(dir) = fresh_copy() else { return };
    let store = SnapshotStore::new(dir.path(), 64);
    let cadence = Some(Cadence {
        every_ns: 10_000_000_000,
        at_end: true,
    });
    let (first, written) = catch_up(&store, &log(dir.path()), TOKEN, cadence).unwrap();
    assert!(written > 30, "a snapshot every 10 s of exchange time");
    let reference = first.engine.snapshot(first.position.unwrap().pack());

    let files = store.list(TOKEN).unwrap();
    // Newest: truncated. Second: one bit flipped. Third: a valid snapshot whose log position
    // was moved to a neighbouring record (checksum recomputed, so only alignment catches it).
    std::fs::write(&files[0], &std::fs::read(&files[0]).unwrap()[..300]).unwrap();
    let mut b = std::fs::read(&files[1]).unwrap();
    b[200] ^= 4;
    std::fs::write(&files[1], &b).unwrap();
    let (e3, h3) = TokenEngine::restore_slice(&std::fs::read(&files[2]).unwrap()).unwrap();
    let p3 = LogPosition::unpack(h3.event_log_offset).unwrap();
    let moved = LogPosition {
        date: p3.date,
        offset: p3.offset - 72 - 8,
    };
    std::fs::write(&files[2], e3.snapshot(moved.pack())).unwrap();

    let (r, _) = catch_up(&store, &log(dir.path()), TOKEN, None).unwrap();
    assert_eq!(r.fallbacks.len(), 3, "{:?}", r.fallbacks);
    assert!(
        r.fallbacks[0].reason.contains("336"),
        "{}",
        r.fallbacks[0].reason
    );
    assert!(
        r.fallbacks[1].reason.contains("checksum"),
        "{}",
        r.fallbacks[1].reason
    );
    assert!(
        r.fallbacks[2].reason.contains("not aligned"),
        "{}",
        r.fallbacks[2].reason
    );
    assert_eq!(r.snapshot.as_deref(), Some(files[3].as_path()));
    assert!(r.replayed > 0);
    assert_eq!(r.engine.snapshot(r.position.unwrap().pack()), reference);
}

#[test]
fn audit_roots_verify_and_catch_tampering() {
    let Some(dir) = fresh_copy() else { return };
    let store = SnapshotStore::new(dir.path(), 4);
    catch_up(
        &store,
        &log(dir.path()),
        TOKEN,
        Some(Cadence {
            every_ns: 30_000_000_000,
            at_end: true,
        }),
    )
    .unwrap();
    let day = chronicle_storage::utc::parse_iso_date("2024-08-08").unwrap();
    let r = audit(&store, day).unwrap();
    assert_eq!(r.entries, 12, "one per 30 s of the 23:54–00:00 capture");
    assert_eq!(
        (r.verified, r.pruned),
        (3, 9),
        "retention keeps 4 per token, one of them on the next day"
    );
    assert_eq!(
        audit(&store, day).unwrap().root_hex,
        r.root_hex,
        "the root is a pure function of the manifest"
    );
    let newest_of_day = store
        .list(TOKEN)
        .unwrap()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("2024-08-08_"))
        .unwrap();
    let mut b = std::fs::read(&newest_of_day).unwrap();
    b[100] ^= 1;
    std::fs::write(&newest_of_day, &b).unwrap();
    let err = audit(&store, day).unwrap_err().to_string();
    assert!(err.contains("does not match"), "{err}");
}
