//! Snapshot encode/decode: every valid state round-trips bit for bit; no input panics
//! `restore`; hostile-but-well-framed inputs are either refused or resumable.

mod common;

use chronicle_engine::*;
use chronicle_protocol::{Body, Record, UNDEF};
use common::*;
use proptest::prelude::*;

/// A random value with a bias towards the edges, where encoders break.
fn edgy(rng: &mut Prng, lo: i64, hi: i64) -> i64 {
    match rng.below(8) {
        0 => lo,
        1 => hi,
        2 => lo.saturating_add(rng.range(0, 3)).min(hi),
        _ => rng.range(lo, hi),
    }
}

fn edgy_u64(rng: &mut Prng, hi: u64) -> u64 {
    match rng.below(6) {
        0 => 0,
        1 => hi,
        _ => rng.next_u64() % hi.saturating_add(1).max(1),
    }
}

fn bar(rng: &mut Prng, bucket: u64) -> Bar {
    let trades = if rng.chance(300) {
        0
    } else {
        edgy(rng, 1, u32::MAX as i64) as u32
    };
    let mut p: Vec<i32> = (0..4)
        .map(|_| edgy(rng, i32::MIN as i64, i32::MAX as i64) as i32)
        .collect();
    if trades == 0 {
        return Bar {
            bucket,
            open: p[0],
            high: p[0],
            low: p[0],
            close: p[0],
            volume: 0,
            trades,
        };
    }
    p.sort();
    let (open, close) = if rng.chance(500) {
        (p[1], p[2])
    } else {
        (p[2], p[1])
    };
    Bar {
        bucket,
        open,
        high: p[3],
        low: p[0],
        close,
        volume: edgy(rng, 0, i64::MAX),
        trades,
    }
}

/// A state satisfying every invariant `validate` checks, built from a seed.
pub fn valid_state(seed: u64) -> EngineState {
    let mut rng = Prng::new(seed);
    let r = &mut rng;
    let tick = edgy_u64(r, u64::MAX);
    let ts = edgy_u64(r, u64::MAX);
    let state = FsmState::from_u8(r.below(5) as u8).unwrap();
    let cooldown = if state == FsmState::Cooldown {
        CooldownKind::from_u8(1 + r.below(2) as u8).unwrap()
    } else {
        CooldownKind::None
    };
    let shift = r.below(19) as u32;
    let reason_flags =
        (r.next_u64() as u32 & (flags::CONDITION_MASK | flags::CAUSE_MASK)) | shift << 24;
    let no_oi = reason_flags & flags::NO_OPEN_INTEREST != 0;
    let no_quotes = reason_flags & flags::NO_QUOTES != 0;

    let rolling_count = edgy(r, 0, params::HEAT_BASELINE_WINDOWS as i64) as u32;
    let mut ring = [0i32; 8];
    for v in &mut ring {
        *v = edgy(r, 0, i32::MAX as i64) as i32;
    }
    let tiers = TierBlock {
        volatility: r.below(4) as u8,
        oi_density: if no_oi { 0 } else { r.below(4) as u8 },
        liquidity: if no_quotes { 0 } else { r.below(4) as u8 },
        volatility_metric: edgy(r, 0, params::RANGE_PPM_MAX as i64) as i32,
        oi_density_metric: if no_oi {
            0
        } else {
            edgy(r, 0, (64 << 16) - 1) as i32
        },
        liquidity_metric: if no_quotes {
            0
        } else {
            edgy(r, 0, params::SPREAD_PPB_MAX as i64) as i32
        },
        hysteresis: r.next_u64() as u32,
        last_update_tick: edgy_u64(r, tick),
    };
    let trigger = TriggerBlock {
        score: edgy(r, 0, 1000) as i32,
        liquidity_stress: if no_quotes {
            0
        } else {
            edgy(r, 0, 1000) as i32
        },
        compression: edgy(r, 0, 1000) as i32,
        divergence: if no_oi {
            0
        } else {
            edgy(r, -1_000_000, 1_000_000) as i32
        },
        oi_velocity: if no_oi {
            0
        } else {
            edgy(r, -44_000_000, 44_000_000) as i32
        },
        last_update_tick: edgy_u64(r, tick),
    };
    let bar_1m = bar(r, ts / params::BAR_1M_NS);
    let mut bar_5m = bar(r, ts / params::BAR_5M_NS);
    if bar_1m.trades > 0 {
        // The 5m bar contains the 1m bar.
        let extra = edgy(r, 0, u32::MAX as i64) as u32;
        bar_5m.trades = bar_1m.trades.saturating_add(extra);
        bar_5m.volume = bar_1m.volume.saturating_add(edgy(r, 0, i64::MAX));
        bar_5m.high = bar_1m.high.max(bar_5m.high);
        bar_5m.low = bar_1m.low.min(bar_5m.low);
        bar_5m.close = bar_1m.close;
        bar_5m.open = bar_5m.open.clamp(bar_5m.low, bar_5m.high);
    }
    EngineState {
        progress: Progress {
            token_id: r.next_u64(),
            global_tick_id: tick,
            exchange_ts_ns: ts,
        },
        fsm: FsmBlock {
            state,
            tier_state: tiers.volatility.max(tiers.oi_density).max(tiers.liquidity),
            trigger_level: trigger_level(trigger.score),
            cooldown,
            entry_tick: edgy_u64(r, tick),
            duration_ns: edgy_u64(r, ts),
            reason_flags,
        },
        heat: HeatBlock {
            score: edgy(r, 0, params::HEAT_MAX as i64) as i32,
            window: HeatWindow::from_u8(r.below(4) as u8).unwrap(),
            rolling_sum: if rolling_count == 0 {
                0
            } else {
                edgy(r, 0, i64::MAX)
            },
            rolling_count,
            hysteresis: r.next_u64() as u32,
            last_update_tick: edgy_u64(r, tick),
            ring,
        },
        tiers,
        trigger,
        bar_1m,
        bar_5m,
    }
}

/// Records with hostile values: UNDEF, zero, negative and extreme prices and sizes, crossed
/// quotes, time jumps in both directions.
fn hostile_record(rng: &mut Prng, tick: u64, ts: &mut u64) -> Record<'static> {
    let wild = |rng: &mut Prng| match rng.below(7) {
        0 => UNDEF,
        1 => 0,
        2 => i64::MIN,
        3 => -rng.range(1, 1_000_000),
        4 => rng.next_u64() as i64,
        _ => rng.range(1, 10_000_000_000_000),
    };
    *ts = match rng.below(10) {
        0 => ts.saturating_sub(rng.below(1_000_000_000)),
        1 => ts.saturating_add(rng.below(3_600_000_000_000)),
        2 => u64::MAX - rng.below(1000),
        3 => 0,
        _ => ts.saturating_add(rng.below(2_000_000_000)),
    };
    let t = *ts;
    match rng.below(8) {
        0 | 1 => trade(tick, t, wild(rng), wild(rng)),
        2 | 3 => bbo(tick, t, wild(rng), wild(rng), wild(rng), wild(rng)),
        4 => open_interest(tick, t, wild(rng)),
        5 => definition(tick, t, -9, wild(rng)),
        6 => gap(tick, t),
        _ => {
            let mut r = trade(tick, t, rng.range(1, 1000), 1);
            if let Body::Trade(ref mut tr) = r.body {
                tr.price = wild(rng);
            }
            r
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_states_roundtrip(seed in any::<u64>(), offset in any::<u64>()) {
        let s = valid_state(seed);
        let engine = TokenEngine::from_state(s).expect("builder makes valid states");
        let bytes = engine.snapshot(offset);
        let (back, header) = TokenEngine::restore(&bytes).unwrap();
        prop_assert_eq!(back, engine);
        prop_assert_eq!(*back.state(), s);
        prop_assert_eq!(header.event_log_offset, offset);
        prop_assert_eq!(header.global_tick_id, s.progress.global_tick_id);
        prop_assert_eq!(header.exchange_ts_ns, s.progress.exchange_ts_ns);
        prop_assert_eq!(header.token_id, s.progress.token_id);
        prop_assert_eq!(header.checksum, checksum(&bytes));
        prop_assert_eq!(back.snapshot(offset), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = TokenEngine::restore_slice(&bytes);
        if let Ok(arr) = <[u8; SNAPSHOT_LEN]>::try_from(&bytes[..]) {
            prop_assert!(TokenEngine::restore(&arr).is_err() || arr[0..4] == *b"SNAP");
        } else {
            prop_assert_eq!(
                TokenEngine::restore_slice(&bytes).unwrap_err(),
                SnapshotError::WrongLength { len: bytes.len() }
            );
        }
    }

    /// Random bodies behind a valid frame (magic, version, type, zero reserved bytes,
    /// matching checksum) reach the field checks. Whatever they accept must re-encode to
    /// the same bytes and survive `apply` on hostile records.
    #[test]
    fn framed_garbage_is_refused_or_resumable(
        body in prop::collection::vec(any::<u8>(), SNAPSHOT_LEN),
        seed in any::<u64>(),
    ) {
        let mut b = [0u8; SNAPSHOT_LEN];
        b.copy_from_slice(&body);
        b[0..4].copy_from_slice(b"SNAP");
        b[4..6].copy_from_slice(&1u16.to_le_bytes());
        b[6..8].copy_from_slice(&1u16.to_le_bytes());
        for (from, to) in layout::RESERVED {
            b[from..to].fill(0);
        }
        let sum = checksum(&b);
        b[40..48].copy_from_slice(&sum.to_le_bytes());
        if let Ok((mut e, h)) = TokenEngine::restore(&b) {
            prop_assert_eq!(e.snapshot(h.event_log_offset), b);
            drive_hostile(&mut e, seed);
        }
    }

    /// A real state with one field corrupted (and the checksum recomputed, as a buggy or
    /// malicious writer would): refused, or a state the engine can run from.
    #[test]
    fn corrupted_fields_are_refused_or_resumable(
        seed in any::<u64>(),
        at in 48usize..SNAPSHOT_LEN,
        value in any::<u8>(),
    ) {
        let mut e = TokenEngine::from_state(valid_state(seed)).unwrap();
        let mut b = e.snapshot(5);
        b[at] = value;
        let sum = checksum(&b);
        b[40..48].copy_from_slice(&sum.to_le_bytes());
        match TokenEngine::restore(&b) {
            Ok((mut back, _)) => {
                prop_assert_eq!(back.snapshot(5), b);
                drive_hostile(&mut back, seed);
            }
            Err(_) => {
                drive_hostile(&mut e, seed);
            }
        }
    }

    /// Any valid state fed hostile records never panics and always snapshots into a valid
    /// snapshot of itself.
    #[test]
    fn hostile_records_keep_the_state_valid(seed in any::<u64>(), fresh in any::<bool>()) {
        let mut e = if fresh {
            TokenEngine::new(TOKEN as u64)
        } else {
            let mut s = valid_state(seed);
            s.progress.token_id = TOKEN as u64;
            s.progress.global_tick_id = s.progress.global_tick_id.min(u64::MAX - 10_000);
            for t in [&mut s.fsm.entry_tick, &mut s.heat.last_update_tick,
                      &mut s.tiers.last_update_tick, &mut s.trigger.last_update_tick] {
                *t = (*t).min(s.progress.global_tick_id);
            }
            TokenEngine::from_state(s).unwrap()
        };
        let accepted = drive_hostile(&mut e, seed);
        if fresh {
            prop_assert!(accepted > 100, "only {} records accepted", accepted);
        }
    }
}

/// Applies 200 hostile records; returns how many were accepted.
fn drive_hostile(e: &mut TokenEngine, seed: u64) -> usize {
    let mut rng = Prng::new(seed.rotate_left(17));
    let mut ts = e.last_exchange_ts_ns();
    let token = e.token_id();
    let mut accepted = 0;
    for _ in 0..200 {
        let tick = e.last_global_tick_id().saturating_add(1 + rng.below(3));
        let mut rec = hostile_record(&mut rng, tick, &mut ts);
        rec.meta.token_id = token as u32;
        let before = *e;
        match e.apply(&rec) {
            Ok(_) => {
                let bytes = e.snapshot(tick);
                let (back, _) = TokenEngine::restore(&bytes).expect("engine states always restore");
                assert_eq!(back, *e);
                accepted += 1;
            }
            Err(_) => assert_eq!(before, *e, "a refused record must not change the state"),
        }
    }
    accepted
}
