//! Determinism: the same log gives byte-identical snapshots, and a snapshot taken anywhere
//! resumes exactly like the uninterrupted run.

mod common;

use chronicle_engine::{FsmState, TokenEngine, Transition, SNAPSHOT_LEN};
use chronicle_protocol::Record;
use common::*;
use proptest::prelude::*;
use std::sync::OnceLock;

const EVENTS: usize = 30_000;

struct Run {
    records: Vec<Record<'static>>,
    /// Snapshot after each record (index i: after records[..=i]).
    snapshots: Vec<[u8; SNAPSHOT_LEN]>,
    transitions: Vec<(usize, Transition)>,
}

fn run(records: Vec<Record<'static>>) -> Run {
    let mut engine = TokenEngine::new(TOKEN as u64);
    let mut snapshots = Vec::with_capacity(records.len());
    let mut transitions = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if let Some(t) = engine.apply(r).expect("synthetic log is well ordered") {
            transitions.push((i, t));
        }
        snapshots.push(engine.snapshot(i as u64));
    }
    Run {
        records,
        snapshots,
        transitions,
    }
}

fn reference() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| run(market(0xC0FFEE, EVENTS, true)))
}

#[test]
fn the_synthetic_market_exercises_every_state() {
    let r = reference();
    let seen = |s: FsmState| r.transitions.iter().any(|(_, t)| t.to == s);
    for s in [
        FsmState::Quiet,
        FsmState::Active,
        FsmState::Hot,
        FsmState::Cooldown,
    ] {
        assert!(seen(s), "never entered {s:?}: {:?}", r.transitions);
    }
    // Hot is always left through Cooldown.
    for (_, t) in &r.transitions {
        if t.from == FsmState::Hot {
            assert_eq!(t.to, FsmState::Cooldown, "{t:?}");
        }
    }
}

#[test]
fn two_runs_give_identical_snapshots() {
    let a = reference();
    let b = run(market(0xC0FFEE, EVENTS, true));
    assert_eq!(a.transitions, b.transitions);
    for (i, (x, y)) in a.snapshots.iter().zip(&b.snapshots).enumerate() {
        assert_eq!(x, y, "snapshots differ after record {i}");
    }
}

#[test]
fn every_intermediate_state_restores_to_itself() {
    let r = reference();
    let mut engine = TokenEngine::new(TOKEN as u64);
    for (i, rec) in r.records.iter().enumerate() {
        engine.apply(rec).unwrap();
        let (back, header) = TokenEngine::restore(&r.snapshots[i]).expect("restore");
        assert_eq!(back, engine, "after record {i}");
        assert_eq!(header.global_tick_id, rec.meta.global_tick_id);
        assert_eq!(header.event_log_offset, i as u64);
        assert_eq!(back.snapshot(i as u64), r.snapshots[i]);
    }
}

#[test]
fn a_venue_without_open_interest_runs_neutral() {
    let r = run(market(0xBEEF, 10_000, false));
    let (e, _) = TokenEngine::restore(r.snapshots.last().unwrap()).unwrap();
    let s = e.state();
    assert!(s.fsm.has(chronicle_engine::flags::NO_OPEN_INTEREST));
    assert_eq!(s.tiers.oi_density, 0);
    assert_eq!(s.tiers.oi_density_metric, 0);
    assert_eq!(s.trigger.oi_velocity, 0);
    assert_eq!(s.trigger.divergence, 0);
    assert!(r.transitions.iter().any(|(_, t)| t.to == FsmState::Hot));
}

/// Applies records[from..] to `engine`, returning the final snapshot and transitions.
fn finish(
    mut engine: TokenEngine,
    records: &[Record<'static>],
    from: usize,
) -> ([u8; SNAPSHOT_LEN], Vec<(usize, Transition)>) {
    let mut transitions = Vec::new();
    for (i, r) in records.iter().enumerate().skip(from) {
        if let Some(t) = engine.apply(r).unwrap() {
            transitions.push((i, t));
        }
    }
    (engine.snapshot((records.len() - 1) as u64), transitions)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Snapshot after record `cut`, restore, apply the rest: same bytes, same transitions.
    #[test]
    fn resume_from_any_cut_equals_uninterrupted(cut in 0usize..EVENTS) {
        let r = reference();
        let (restored, header) = TokenEngine::restore(&r.snapshots[cut]).unwrap();
        prop_assert_eq!(header.event_log_offset as usize, cut);
        let (last, transitions) = finish(restored, &r.records, cut + 1);
        prop_assert_eq!(&last, r.snapshots.last().unwrap());
        let expected: Vec<_> = r.transitions.iter().filter(|(i, _)| *i > cut).cloned().collect();
        prop_assert_eq!(transitions, expected);
    }

    /// Replaying records that were already applied is refused and changes nothing, so a
    /// recovery that seeks a little too early is harmless.
    #[test]
    fn overlapping_replay_is_idempotent(cut in 1usize..EVENTS, back in 1usize..64) {
        let r = reference();
        let (mut restored, _) = TokenEngine::restore(&r.snapshots[cut]).unwrap();
        for rec in &r.records[cut.saturating_sub(back)..=cut] {
            prop_assert!(restored.apply(rec).is_err());
        }
        prop_assert_eq!(restored.snapshot(cut as u64), r.snapshots[cut]);
    }
}
