//! When partitions move and when they must not: the late window and the age, the newest
//! partitions of a symbol, torn, corrupt or unclosed partitions, a second manager, and the
//! leftovers reconciliation must leave to an operator.

mod common;
use chronicle_reader::Tier;
use chronicle_storage::meta::PartitionMeta;
use chronicle_storage::partition::SEGMENT_FILE;
use chronicle_tier::fsops::RootLock;
use chronicle_tier::layout::{self, ColdFiles, Unit, WarmFiles};
use chronicle_tier::manager::LOCK_FILE;
use chronicle_tier::reconcile::State;
use chronicle_tier::{PassReport, TierConfig, TierError, TierManager};
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

const HOUR: Duration = Duration::from_secs(3600);

fn pass_at(m: &TierManager, now: SystemTime) -> PassReport {
    m.pass(now, &AtomicBool::new(false)).unwrap()
}

fn first(r: &Roots) -> Unit {
    layout::partitions(&r.warm).unwrap().remove(0)
}

#[test]
fn a_partition_moves_only_after_its_late_window_and_its_age() {
    let r = Roots::new();
    let d = first(&r);
    let grace = HOUR;
    let cfg = r.config(); // age 0: only the late window holds it back
    let m = TierManager::new(cfg.clone(), &r.warm, grace).unwrap();
    let window_end = d.day_end_ns() + grace.as_nanos() as u64;
    touch_segments(&r, at(d.day_end_ns()));

    let report = pass_at(&m, at(window_end - 1));
    assert!(
        report.moves.is_empty(),
        "inside the late window: {:?}",
        report.moves
    );
    assert_eq!(copies(&r, &d), vec![Tier::Warm]);

    // Past the window, but book.q was written 10 minutes ago: still at work.
    touch_segments(&r, at(window_end - 600_000_000_000));
    let report = pass_at(&m, at(window_end + 1));
    assert!(
        report.moves.is_empty(),
        "recently written: {:?}",
        report.moves
    );

    touch_segments(&r, at(d.day_end_ns()));
    let report = pass_at(&m, at(window_end + 1));
    let moved: Vec<_> = report.moves.iter().map(|m| m.unit.clone()).collect();
    assert_eq!(
        moved,
        vec![d.rel.clone(), d.late_of().rel],
        "{:?}",
        report.moves
    );
    assert!(report.moves.iter().all(|m| m.result.is_ok()));
    assert_eq!(copies(&r, &d), vec![Tier::Cold]);

    // With a 24 h age the next day waits for its 24 h, not only its hour.
    let next = layout::partitions(&r.warm).unwrap().remove(0);
    let aged = TierConfig {
        warm_to_cold_after_hours: 24,
        ..cfg
    };
    let m = TierManager::new(aged, &r.warm, grace).unwrap();
    let report = pass_at(&m, at(next.day_end_ns() + 2 * grace.as_nanos() as u64));
    assert!(report.moves.is_empty(), "{:?}", report.moves);
    let report = pass_at(&m, at(next.day_end_ns() + 24 * HOUR.as_nanos() as u64 + 1));
    assert_eq!(report.moves.len(), 1, "{:?}", report.moves);
    assert_eq!(copies(&r, &next), vec![Tier::Cold]);
    assert_settled(&r, &r.reader(None), Tier::Cold, "both days moved");
}

#[test]
fn the_newest_partitions_of_a_symbol_stay_warm() {
    let r = Roots::new();
    let parts = layout::partitions(&r.warm).unwrap();
    assert!(parts.len() >= 2, "the template has two days");
    let keep_one = TierConfig {
        keep_newest_per_symbol: 1,
        ..r.config()
    };
    let report = pass(&r.manager(keep_one));
    assert_eq!(report.failed(), 0, "{:?}", report.moves);
    let newest = parts.last().unwrap();
    assert_eq!(copies(&r, newest), vec![Tier::Warm]);
    for p in &parts[..parts.len() - 1] {
        assert_eq!(copies(&r, p), vec![Tier::Cold], "{}", p.rel.display());
    }
    let keep_default = TierConfig {
        keep_newest_per_symbol: 2,
        ..r.config()
    };
    let report = pass(&r.manager(keep_default));
    assert!(report.moves.is_empty(), "{:?}", report.moves);
    assert_readable(&r, &r.reader(None), "split across warm and cold");
}

/// The partition stays warm, unchanged, and the failure is counted and names the file.
fn assert_refused(r: &Roots, unit: &Unit, why: &str) {
    let before = std::fs::read(WarmFiles::new(&r.warm, unit).segment).unwrap();
    let m = r.manager(TierConfig {
        keep_newest_per_symbol: 1,
        ..r.config()
    });
    let report = pass(&m);
    let failure = report
        .moves
        .iter()
        .find(|mv| mv.unit == unit.rel)
        .and_then(|mv| mv.result.as_ref().err())
        .unwrap_or_else(|| panic!("{why}: no failed move in {:?}", report.moves));
    let text = failure.to_string();
    assert!(
        text.contains(why) && text.contains(&*unit.rel.to_string_lossy()),
        "{text}"
    );
    assert_eq!(m.counters().warm_to_cold.failed.load(Ordering::Relaxed), 1);
    assert_eq!(copies(r, unit), vec![Tier::Warm]);
    assert_eq!(
        std::fs::read(WarmFiles::new(&r.warm, unit).segment).unwrap(),
        before
    );
    let c = ColdFiles::new(&r.cold, unit);
    assert!(!c.dir.join("book.q.zst").exists() && c.temps().unwrap().is_empty());
}

#[test]
fn torn_corrupt_or_unclosed_partitions_stay_warm() {
    let r = Roots::new();
    let d = first(&r);
    let seg = WarmFiles::new(&r.warm, &d).segment;
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0x55; 11]);
    std::fs::write(&seg, &bytes).unwrap();
    assert_refused(&r, &d, "torn tail");

    let r = Roots::new();
    let seg = WarmFiles::new(&r.warm, &d).segment;
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    assert_refused(&r, &d, "book.q");

    let r = Roots::new();
    std::fs::remove_file(WarmFiles::new(&r.warm, &d).meta).unwrap();
    assert_refused(&r, &d, "never closed");
}

#[test]
fn one_manager_per_cold_root() {
    let r = Roots::new();
    std::fs::create_dir_all(&r.cold).unwrap();
    let _held = RootLock::acquire(&r.cold.join(LOCK_FILE)).unwrap();
    let err = r
        .manager(r.config())
        .pass(SystemTime::now(), &AtomicBool::new(false))
        .unwrap_err();
    assert!(matches!(err, TierError::Locked { .. }), "{err}");
    assert_eq!(copies(&r, &first(&r)), vec![Tier::Warm]);
}

#[test]
fn a_stop_ends_the_pass_between_two_steps() {
    let r = Roots::new();
    let report = r
        .manager(r.config())
        .pass(SystemTime::now(), &AtomicBool::new(true))
        .unwrap();
    assert!(report.stopped && report.moves.is_empty(), "{report:?}");
    let report = pass(&r.manager(r.config()));
    assert_eq!(report.failed(), 0);
    assert_settled(&r, &r.reader(None), Tier::Cold, "after a stopped pass");
}

/// Puts the template's warm copy of `unit` back after the unit moved to cold, with `extra`
/// appended to `book.q` (and meta.json recounted when it is a whole frame).
fn restore_warm(r: &Roots, unit: &Unit, extra_frame: bool) {
    let from = WarmFiles::new(&template().warm, unit);
    let to = WarmFiles::new(&r.warm, unit);
    std::fs::create_dir_all(to.index.parent().unwrap()).unwrap();
    std::fs::copy(&from.index, &to.index).unwrap();
    let mut seg = std::fs::read(&from.segment).unwrap();
    let mut meta = PartitionMeta::read(&from.meta).unwrap();
    if extra_frame {
        // The first frame again: a valid frame (length, CRC32C, record) at the end.
        let len = u32::from_le_bytes(seg[128..132].try_into().unwrap()) as usize;
        let frame = seg[128..128 + chronicle_storage::segment::frame_len(len)].to_vec();
        seg.extend_from_slice(&frame);
        meta.records += 1;
        meta.segment_bytes = seg.len() as u64;
    }
    std::fs::write(&to.segment, &seg).unwrap();
    meta.write(&to.meta).unwrap();
}

#[test]
fn a_warm_copy_that_grew_after_the_cold_copy_wins() {
    let r = Roots::new();
    let d = first(&r);
    assert_eq!(pass(&r.manager(r.config())).failed(), 0);
    restore_warm(&r, &d, true);
    let grown = render_sha(&r.reader(None), &d);
    assert_eq!(grown.0, Tier::Warm);
    let report = pass(&r.manager(r.config()));
    let states: Vec<State> = report.resolved.iter().map(|x| x.state).collect();
    assert!(states.contains(&State::WarmExtended), "{states:?}");
    assert_eq!(report.failed(), 0, "{:?}", report.moves);
    assert_eq!(copies(&r, &d), vec![Tier::Cold]);
    assert_eq!(render_sha(&r.reader(None), &d), (Tier::Cold, grown.1));
}

#[test]
fn leftovers_without_a_safe_resolution_are_left_alone() {
    // A warm copy that differs from the cold one and does not extend it (a late stream
    // written again after its partition moved): both stay, reported.
    let r = Roots::new();
    let d = first(&r);
    assert_eq!(pass(&r.manager(r.config())).failed(), 0);
    let other = layout::partitions(&template().warm).unwrap().remove(1);
    let (from, to) = (template().warm.join(&other.rel), r.warm.join(&d.rel));
    std::fs::create_dir_all(to.join("index")).unwrap();
    for f in [SEGMENT_FILE, "meta.json", "index/time.idx"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    let report = pass(&r.manager(r.config()));
    let (unit, err) = &report.unresolved[0];
    assert_eq!(unit, &d.rel);
    assert!(matches!(err, TierError::Unresolved { .. }), "{err}");
    assert!(err.to_string().contains("does not extend"), "{err}");
    assert_eq!(copies(&r, &d), vec![Tier::Warm, Tier::Cold], "both kept");

    // A cold copy without its `.zst` and no warm book.q: there is no complete copy to keep,
    // so nothing is deleted.
    let r = Roots::new();
    assert_eq!(pass(&r.manager(r.config())).failed(), 0);
    let c = ColdFiles::new(&r.cold, &d);
    std::fs::remove_file(&c.zst).unwrap();
    let report = pass(&r.manager(r.config()));
    assert!(
        report
            .unresolved
            .iter()
            .any(|(u, e)| u == &d.rel && e.to_string().contains("no complete copy")),
        "{:?}",
        report.unresolved
    );
    assert!(c.idx.is_file() && c.meta.is_file(), "nothing deleted");
}

#[test]
fn a_cold_copy_that_fails_verification_is_not_trusted() {
    let r = Roots::new();
    let d = first(&r);
    assert_eq!(pass(&r.manager(r.config())).failed(), 0);
    restore_warm(&r, &d, false);
    let c = ColdFiles::new(&r.cold, &d);
    let mut zst = std::fs::read(&c.zst).unwrap();
    zst[100] ^= 0x01;
    std::fs::write(&c.zst, &zst).unwrap();
    let report = pass(&r.manager(r.config()));
    assert!(report.unresolved.is_empty(), "{:?}", report.unresolved);
    assert!(
        report
            .resolved
            .iter()
            .any(|x| x.action.contains("fails verification")),
        "{:?}",
        report.resolved
    );
    // The damaged copy was replaced by a fresh move of the verified warm copy.
    assert_settled(
        &r,
        &r.reader(None),
        Tier::Cold,
        "after replacing a damaged copy",
    );
    assert_ne!(std::fs::read(&c.zst).unwrap(), zst);
}

#[test]
fn derived_parquet_moves_with_the_cold_copy() {
    let r = Roots::new();
    // Only the small second day (and no late stream), to keep the test short.
    let days = layout::partitions(&r.warm).unwrap();
    std::fs::remove_dir_all(r.warm.join(&days[0].rel)).unwrap();
    let cfg = TierConfig {
        derive_parquet: true,
        ..r.config()
    };
    let report = pass(&r.manager(cfg));
    assert_eq!(report.moves.len(), 1, "{:?}", report.moves);
    assert!(report.moves[0].result.is_ok(), "{:?}", report.moves);
    let c = ColdFiles::new(&r.cold, &days[1]);
    let parquet = std::fs::read(&c.parquet).unwrap();
    assert!(parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"));
    assert!(c.temps().unwrap().is_empty());
    assert_eq!(copies(&r, &days[1]), vec![Tier::Cold]);
}
