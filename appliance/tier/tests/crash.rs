//! The crash matrix: a failure injected at every step of both moves (an error return, and a
//! panic = the process dying there), the same failure again on the first restart (a crash
//! during recovery), then a clean restart. After every crash each unit still reads back with
//! the same records; after the clean restart each unit has exactly one copy, in the target
//! tier, and nothing is left behind. Fail points are process-global: `FailScenario` serializes
//! these tests.

mod common;
use chronicle_archive::remote::RemoteConfig;
use chronicle_archive::testing::SeaweedFs;
use chronicle_reader::Tier;
use chronicle_tier::{PassReport, TierConfig, TierError, FAIL_POINTS};
use common::*;
use fail::FailScenario;
use std::panic::{catch_unwind, AssertUnwindSafe};

const ACTIONS: [&str; 2] = ["return", "panic"];

/// Whether the report shows `point` firing (in a move, or in reconciliation).
fn fired(report: &PassReport, point: &str) -> bool {
    let injected = |e: &TierError| matches!(e, TierError::Injected(p) if *p == point);
    report
        .moves
        .iter()
        .any(|m| m.result.as_ref().err().is_some_and(injected))
        || report.unresolved.iter().any(|(_, e)| injected(e))
}

/// One pass of a fresh manager with `point` set to `action`; true if the point fired.
fn crash(r: &Roots, cfg: &TierConfig, point: &str, action: &str) -> bool {
    fail::cfg(point, action).unwrap();
    let m = r.manager(cfg.clone());
    let outcome = catch_unwind(AssertUnwindSafe(|| pass(&m)));
    fail::remove(point);
    match outcome {
        Err(_) => {
            assert_eq!(action, "panic", "{point}: only the panic action panics");
            true
        }
        Ok(report) => fired(&report, point),
    }
}

#[test]
fn fail_points_are_compiled_in() {
    let scenario = FailScenario::setup();
    let r = Roots::new();
    assert!(
        crash(&r, &r.config(), "w2c.transcoded", "return"),
        "chronicle-tier was built without its fail points (feature `failpoints`)"
    );
    scenario.teardown();
}

/// For every fail point of a move and both actions, on a fresh copy of the template: crash,
/// crash again on the first restart (recovery itself interrupted), then restart cleanly.
/// `setup` gives the config (and the store's config, for reading RemoteCold) of case `n`.
fn matrix(
    move_prefix: &str,
    setup: impl Fn(&Roots, usize) -> (TierConfig, Option<RemoteConfig>),
    end: Tier,
) {
    let scenario = FailScenario::setup();
    let mut case = 0;
    for point in FAIL_POINTS.iter().filter(|p| p.starts_with(move_prefix)) {
        for action in ACTIONS {
            case += 1;
            let r = Roots::new();
            let (cfg, remote) = setup(&r, case);
            let reader = r.reader(remote.as_ref());
            let when = format!("{point}={action}");
            assert!(crash(&r, &cfg, point, action), "{when}: did not fire");
            assert_readable(&r, &reader, &format!("after the crash at {when}"));
            crash(&r, &cfg, point, action);
            assert_readable(&r, &reader, &format!("after a second crash at {when}"));
            let report = pass(&r.manager(cfg.clone()));
            assert_eq!(report.failed(), 0, "{when}: restart: {:?}", report.moves);
            assert!(
                report.unresolved.is_empty(),
                "{when}: {:?}",
                report.unresolved
            );
            assert_settled(&r, &reader, end, &format!("restart after {when}"));
            eprintln!(
                "crash at {when}: recovered; resolved {:?}",
                report
                    .resolved
                    .iter()
                    .map(|x| x.state.name())
                    .collect::<Vec<_>>()
            );
        }
    }
    scenario.teardown();
}

#[test]
fn warm_to_cold_crash_at_every_step() {
    matrix("w2c.", |r, _| (r.config(), None), Tier::Cold);
}

#[test]
fn cold_to_remote_crash_at_every_step() {
    let Some(s3) = SeaweedFs::start_or_skip() else {
        return;
    };
    let setup = |r: &Roots, case: usize| {
        let mut remote = s3.config().clone();
        remote.prefix = format!("crash-{case}");
        let cfg = TierConfig {
            cold_to_remote_after_days: 0,
            remote: Some(remote.clone()),
            ..r.config()
        };
        (cfg, Some(remote))
    };
    matrix("c2r.", setup, Tier::RemoteCold);
}
