//! Every unit a pass leaves where it is says why: newest kept, too young, its day's late
//! window, written within the late window (closed or not), the pass's max_moves_per_pass, an
//! unresolved leftover; the totals count them by reason with when they are due.

mod common;
use chronicle_tier::layout::{self, Unit, WarmFiles};
use chronicle_tier::not_moved::at as due_at;
use chronicle_tier::{MoveKind, NotMoved, PassReport, TierConfig, TierManager};
use common::*;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

const HOUR: u64 = 3_600_000_000_000;

/// The units held, each with its reason (all warm → cold here: no object store).
fn held(report: &PassReport) -> Vec<(PathBuf, NotMoved)> {
    (report.not_moved.iter())
        .map(|h| {
            assert_eq!(h.kind, MoveKind::WarmToCold);
            (h.unit.clone(), h.reason)
        })
        .collect()
}

fn moved(report: &PassReport) -> Vec<PathBuf> {
    assert_eq!(report.failed(), 0, "{:?}", report.moves);
    report.moves.iter().map(|m| m.unit.clone()).collect()
}

/// The template's two days and the first one's late stream.
fn days(r: &Roots) -> (Unit, Unit, Unit) {
    let parts = layout::partitions(&r.warm).unwrap();
    assert_eq!(parts.len(), 2, "the template's two days");
    (parts[0].clone(), parts[0].late_of(), parts[1].clone())
}

fn pass_at(m: &TierManager, ns: u64) -> PassReport {
    m.pass(at(ns), &AtomicBool::new(false)).unwrap()
}

#[test]
fn newest_kept_too_young_and_the_days_late_window() {
    let r = Roots::new();
    let (d0, late, d1) = days(&r);
    let keep_one = r.manager(TierConfig {
        keep_newest_per_symbol: 1,
        ..r.config()
    });
    let report = pass(&keep_one);
    assert_eq!(moved(&report), [d0.rel.clone(), late.rel.clone()]);
    assert_eq!(held(&report), [(d1.rel.clone(), NotMoved::NewestKept)]);
    assert!(
        report.totals().ends_with("; not moved: 1 newest kept"),
        "{}",
        report.totals()
    );

    // A day waits for the later of its age and its late window, and says which and until
    // when.
    for (age_hours, until, reason) in [
        (24, d1.day_end_ns() + 24 * HOUR, "too young"),
        (0, d1.day_end_ns() + HOUR, "late window"),
    ] {
        let r = Roots::new();
        touch_segments(&r, at(d0.day_end_ns()));
        let cfg = TierConfig {
            warm_to_cold_after_hours: age_hours,
            ..r.config()
        };
        let m = TierManager::new(cfg, &r.warm, Duration::from_nanos(HOUR)).unwrap();
        let report = pass_at(&m, d1.day_end_ns() + HOUR / 2);
        assert_eq!(
            moved(&report),
            [d0.rel.clone(), late.rel.clone()],
            "{reason}"
        );
        let expected = match age_hours {
            0 => NotMoved::LateWindow {
                until_ns: until,
                written_ns: None,
            },
            _ => NotMoved::TooYoung { until_ns: until },
        };
        assert_eq!(held(&report), [(d1.rel.clone(), expected)]);
        let totals = report.totals();
        assert!(
            totals.ends_with(&format!(
                "; not moved: 1 {reason} (until {})",
                due_at(until)
            )),
            "{totals}"
        );
    }
}

#[test]
fn a_segment_written_within_the_late_window_waits_closed_or_not() {
    let r = Roots::new();
    let (d0, late, d1) = days(&r);
    // Written ten minutes ago (an import or a replay of old days); d0 not closed yet.
    touch_segments(&r, SystemTime::now() - Duration::from_secs(600));
    std::fs::remove_file(WarmFiles::new(&r.warm, &d0).meta).unwrap();
    let written = |u: &Unit| {
        let m = std::fs::metadata(WarmFiles::new(&r.warm, u).segment).unwrap();
        let t = m.modified().unwrap().duration_since(SystemTime::UNIX_EPOCH);
        t.unwrap().as_nanos() as u64
    };
    let late_window = |u: &Unit| NotMoved::LateWindow {
        until_ns: written(u) + HOUR,
        written_ns: Some(written(u)),
    };
    let m = TierManager::new(r.config(), &r.warm, Duration::from_nanos(HOUR)).unwrap();
    let report = pass(&m);
    assert_eq!(moved(&report), Vec::<PathBuf>::new());
    assert_eq!(
        held(&report),
        [
            (
                d0.rel.clone(),
                NotMoved::NotClosed {
                    written_ns: written(&d0)
                }
            ),
            (late.rel.clone(), late_window(&late)),
            (d1.rel.clone(), late_window(&d1)),
        ]
    );
    let totals = report.totals();
    assert!(
        totals.contains("; not moved: 2 late window (until ") && totals.ends_with(", 1 not closed"),
        "{totals}"
    );
    let lines = report.not_moved_lines();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with(&format!(
            "warm -> cold   {}: not moved: not closed",
            d0.rel.display()
        )),
        "{lines:?}"
    );

    // Left alone past the window: the closed ones move, the unclosed one is a failed move
    // (never closed), as before.
    touch_segments(&r, SystemTime::now() - Duration::from_secs(7200));
    let report = pass(&m);
    assert_eq!(report.failed(), 1, "{:?}", report.moves);
    let failed = report.moves.iter().find(|mv| mv.result.is_err()).unwrap();
    assert_eq!(failed.unit, d0.rel);
    assert!(report.not_moved.is_empty(), "{:?}", report.not_moved);
}

#[test]
fn the_move_budget_and_unresolved_leftovers_hold_units() {
    let r = Roots::new();
    let (d0, late, d1) = days(&r);
    let one = r.manager(TierConfig {
        max_moves_per_pass: 1,
        ..r.config()
    });
    let report = pass(&one);
    assert_eq!(moved(&report), std::slice::from_ref(&d0.rel));
    assert_eq!(
        held(&report),
        [
            (late.rel.clone(), NotMoved::MaxMoves),
            (d1.rel.clone(), NotMoved::MaxMoves)
        ]
    );
    assert!(report
        .totals()
        .ends_with("; not moved: 2 max_moves_per_pass"));

    // A warm copy that differs from the cold one and does not extend it: reconciliation
    // leaves both for an operator, and the pass says the unit is held for that.
    let r = Roots::new();
    assert_eq!(pass(&r.manager(r.config())).failed(), 0);
    let other = template().warm.join(&d1.rel);
    let to = r.warm.join(&d0.rel);
    std::fs::create_dir_all(to.join("index")).unwrap();
    for f in ["book.q", "meta.json", "index/time.idx"] {
        std::fs::copy(other.join(f), to.join(f)).unwrap();
    }
    let report = pass(&r.manager(r.config()));
    assert_eq!(report.unresolved.len(), 1);
    assert_eq!(held(&report), [(d0.rel.clone(), NotMoved::Unresolved)]);
}
