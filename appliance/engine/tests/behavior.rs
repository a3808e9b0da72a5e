//! What the engine does, scenario by scenario: FSM transitions, price scaling, bars,
//! liquidity, open interest, tiers.

mod common;

use chronicle_engine::*;
use chronicle_protocol::{Record, UNDEF};
use common::*;

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

/// Drives one engine with hand-made records, keeping tick ids and time.
struct Feed {
    e: TokenEngine,
    tick: u64,
    ts: u64,
    log: Vec<Transition>,
}

impl Feed {
    fn new() -> Self {
        Self {
            e: TokenEngine::new(TOKEN as u64),
            tick: 0,
            ts: START_NS,
            log: Vec::new(),
        }
    }

    fn next(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn apply(&mut self, r: Record<'static>) {
        if let Some(t) = self.e.apply(&r).expect("in order") {
            self.log.push(t);
        }
    }

    fn trade(&mut self, price: i64, qty: i64) {
        let t = self.next();
        self.apply(trade(t, self.ts, price, qty));
    }

    fn bbo(&mut self, bid: i64, bq: i64, ask: i64, aq: i64) {
        let t = self.next();
        self.apply(bbo(t, self.ts, bid, bq, ask, aq));
    }

    fn oi(&mut self, oi: i64) {
        let t = self.next();
        self.apply(open_interest(t, self.ts, oi));
    }

    fn gap(&mut self) {
        let t = self.next();
        self.apply(gap(t, self.ts));
    }

    fn definition(&mut self, exponent: i8, tick_size: i64) {
        let t = self.next();
        self.apply(definition(t, self.ts, exponent, tick_size));
    }

    /// `per_sec` evenly spaced trades a second for `secs` seconds at `price`.
    fn flow(&mut self, secs: u64, per_sec: u64, price: i64) {
        for _ in 0..secs {
            let start = self.ts;
            for i in 0..per_sec {
                self.ts = start + i * SEC / per_sec;
                self.trade(price, 10);
            }
            self.ts = start + SEC;
        }
    }

    fn path(&self) -> Vec<(FsmState, FsmState)> {
        self.log.iter().map(|t| (t.from, t.to)).collect()
    }

    fn s(&self) -> &EngineState {
        self.e.state()
    }
}

use FsmState::*;

#[test]
fn warmup_ends_after_thirty_windows() {
    let mut f = Feed::new();
    f.flow(40, 10, 618_003);
    assert_eq!(f.path(), [(Warmup, Quiet)]);
    let t = f.log[0];
    assert_eq!(t.causes, flags::CAUSE_WARMED_UP);
    assert_eq!(t.exchange_ts_ns, START_NS + 30 * SEC);
    assert_eq!(f.s().heat.rolling_count, 39);
    // Steady flow: heat at the baseline.
    assert_eq!(f.s().heat.score, 1000);
}

#[test]
fn a_burst_goes_active_then_hot_and_cools_down() {
    let mut f = Feed::new();
    f.flow(300, 10, 618_003);
    f.flow(30, 60, 618_003);
    f.flow(120, 10, 618_003);
    assert_eq!(
        f.path(),
        [
            (Warmup, Quiet),
            (Quiet, Active),
            (Active, Hot),
            (Hot, Cooldown),
            (Cooldown, Quiet)
        ]
    );
    let [_, active, hot, cool, quiet] = f.log[..] else {
        unreachable!()
    };
    assert_eq!(active.causes, flags::CAUSE_HEAT);
    assert_eq!(hot.causes, flags::CAUSE_HEAT);
    // 2 windows to promote each time: Active after 2 s of burst, Hot 3 s later.
    assert_eq!(active.exchange_ts_ns, START_NS + 302 * SEC);
    assert_eq!(hot.exchange_ts_ns, START_NS + 305 * SEC);
    assert_eq!(cool.cooldown, CooldownKind::AfterHot);
    assert_eq!(cool.causes, flags::CAUSE_DECAY);
    assert_eq!(quiet.causes, flags::CAUSE_COOLDOWN_EXPIRED);
    assert_eq!(
        quiet.exchange_ts_ns - cool.exchange_ts_ns,
        params::COOLDOWN_AFTER_HOT_NS
    );
    assert_eq!(f.e.fsm_state(), Quiet);
    assert_eq!(f.e.state_entered_ts_ns(), quiet.exchange_ts_ns);
}

#[test]
fn a_new_burst_during_cooldown_reignites_hot() {
    let mut f = Feed::new();
    f.flow(300, 10, 618_003);
    f.flow(30, 60, 618_003);
    f.flow(20, 10, 618_003);
    assert_eq!(f.e.fsm_state(), Cooldown);
    f.flow(10, 80, 618_003);
    let last = *f.log.last().unwrap();
    assert_eq!((last.from, last.to), (Cooldown, Hot));
    assert_eq!(last.causes & flags::CAUSE_HEAT, flags::CAUSE_HEAT);
}

#[test]
fn a_gap_cools_down_for_ten_seconds() {
    let mut f = Feed::new();
    f.gap(); // ignored in Warmup
    f.flow(60, 10, 618_003);
    assert_eq!(f.path(), [(Warmup, Quiet)]);
    f.gap();
    let t = *f.log.last().unwrap();
    assert_eq!(
        (t.from, t.to, t.cooldown),
        (Quiet, Cooldown, CooldownKind::DataGap)
    );
    assert_eq!(t.causes, flags::CAUSE_GAP);
    assert_eq!(t.exchange_ts_ns, f.ts);
    f.flow(5, 10, 618_003);
    f.gap(); // restarts the wait, not a transition
    assert_eq!(f.log.len(), 2);
    f.flow(9, 10, 618_003);
    assert_eq!(f.e.fsm_state(), Cooldown);
    f.flow(2, 10, 618_003);
    assert_eq!(f.e.fsm_state(), Quiet);
    assert_eq!(f.log.last().unwrap().causes, flags::CAUSE_COOLDOWN_EXPIRED);
}

#[test]
fn a_long_silence_is_a_session_break() {
    let mut f = Feed::new();
    f.flow(60, 10, 618_003);
    assert_eq!(f.e.fsm_state(), Quiet);
    f.ts += params::SESSION_BREAK_NS + SEC;
    f.trade(618_003, 1);
    let t = *f.log.last().unwrap();
    assert_eq!((t.from, t.to), (Quiet, Warmup));
    assert_eq!(t.causes, flags::CAUSE_SESSION_BREAK);
    let s = f.s();
    assert_eq!(s.heat.rolling_count, 0);
    assert_eq!(s.heat.ring.iter().sum::<i32>(), 1);
    assert_eq!(s.bar_1m.trades, 1);
    // A silence just under the limit is caught up window by window instead.
    let mut g = Feed::new();
    g.flow(60, 10, 618_003);
    g.ts += params::SESSION_BREAK_NS - SEC;
    g.trade(618_003, 1);
    assert_ne!(g.e.fsm_state(), Warmup);
    assert_eq!(g.s().heat.rolling_count, params::HEAT_BASELINE_WINDOWS);
    // 599 silent windows pulled the baseline down from 10 trades a window.
    let mean = (g.s().heat.rolling_sum / params::HEAT_BASELINE_WINDOWS as i64) >> 16;
    assert!((0..10).contains(&mean), "{mean}");
}

#[test]
fn stale_ticks_and_other_tokens_are_refused_without_effect() {
    let mut f = Feed::new();
    f.flow(2, 10, 618_003);
    let before = f.e;
    let stale = trade(f.tick, f.ts, 1, 1);
    assert_eq!(
        f.e.apply(&stale),
        Err(ApplyError::StaleTick {
            last: f.tick,
            found: f.tick
        })
    );
    let mut other = trade(f.tick + 1, f.ts, 1, 1);
    other.meta.token_id = TOKEN + 1;
    assert!(matches!(
        f.e.apply(&other),
        Err(ApplyError::WrongToken { .. })
    ));
    assert_eq!(f.e, before);
}

#[test]
fn btc_prices_fit_as_they_are() {
    let mut f = Feed::new();
    f.definition(-1, 1);
    f.trade(618_003, 6);
    let s = f.s();
    assert_eq!(s.fsm.price_shift(), 0);
    assert!(!s.fsm.has(flags::NO_DEFINITION));
    assert_eq!((s.bar_1m.open, s.bar_1m.close), (618_003, 618_003));
    assert_eq!(s.bar_1m.volume, 6);
}

#[test]
fn dbn_prices_are_divided_by_the_tick_sizes_power_of_ten() {
    let mut f = Feed::new();
    // ES: exponent -9, tick 0.25 = 250_000_000 -> shift 7, bar unit 0.01.
    f.definition(-9, 250_000_000);
    f.trade(5_000_250_000_000, 3);
    f.trade(4_999_750_000_000, 1);
    let s = f.s();
    assert_eq!(s.fsm.price_shift(), 7);
    assert_eq!(
        (s.bar_1m.open, s.bar_1m.high, s.bar_1m.low, s.bar_1m.close),
        (500_025, 500_025, 499_975, 499_975)
    );
    assert!(!s.fsm.has(flags::PRICE_CLAMPED));
}

#[test]
fn without_a_definition_oversized_prices_clamp_and_say_so() {
    let mut f = Feed::new();
    f.trade(5_000_250_000_000, 3);
    let s = f.s();
    assert!(s.fsm.has(flags::NO_DEFINITION));
    assert!(s.fsm.has(flags::PRICE_CLAMPED));
    assert_eq!(s.bar_1m.close, i32::MAX);
}

#[test]
fn a_later_definition_rescales_the_open_bars() {
    let mut f = Feed::new();
    f.trade(618_003, 1);
    f.trade(618_107, 1);
    f.definition(-1, 10); // tick 1.0 at exponent -1: shift 1
    let s = f.s();
    assert_eq!(s.fsm.price_shift(), 1);
    assert_eq!((s.bar_1m.low, s.bar_1m.high), (61_800, 61_810));
    assert_eq!((s.bar_5m.low, s.bar_5m.high), (61_800, 61_810));
}

#[test]
fn bars_roll_on_exchange_time_and_carry_the_close() {
    let mut f = Feed::new();
    // START is on a 5m boundary; trade through 1m and 5m boundaries.
    f.trade(100, 1);
    f.ts += 30 * SEC;
    f.trade(110, 2);
    f.trade(90, 3);
    assert_eq!(f.s().bar_1m.bucket, START_NS / params::BAR_1M_NS);
    f.ts += 40 * SEC; // next minute
    f.trade(95, 4);
    let s = *f.s();
    assert_eq!(s.bar_1m.bucket, START_NS / params::BAR_1M_NS + 1);
    assert_eq!(
        (s.bar_1m.open, s.bar_1m.high, s.bar_1m.low, s.bar_1m.close),
        (95, 95, 95, 95)
    );
    assert_eq!((s.bar_1m.trades, s.bar_1m.volume), (1, 4));
    assert_eq!(
        (s.bar_5m.open, s.bar_5m.high, s.bar_5m.low, s.bar_5m.close),
        (100, 110, 90, 95)
    );
    assert_eq!((s.bar_5m.trades, s.bar_5m.volume), (4, 10));
    // A record without a trade in a new minute opens a flat bar at the last close.
    f.ts += 60 * SEC;
    f.bbo(94, 1, 96, 1);
    let s = *f.s();
    assert_eq!(s.bar_1m.trades, 0);
    assert_eq!((s.bar_1m.open, s.bar_1m.low, s.bar_1m.high), (95, 95, 95));
    // The volatility EMA saw the first minute: range 20 / close 90 = 222_222 ppm.
    assert!(s.tiers.volatility_metric > 0);
    f.ts += 5 * 60 * SEC;
    f.trade(97, 1);
    assert_eq!(f.s().bar_5m.bucket, START_NS / params::BAR_5M_NS + 1);
    assert_eq!((f.s().bar_5m.open, f.s().bar_5m.trades), (97, 1));
}

#[test]
fn late_records_do_not_move_the_clock_back() {
    let mut f = Feed::new();
    f.trade(100, 1);
    f.ts += 10 * SEC;
    f.trade(100, 1);
    let now = f.e.last_exchange_ts_ns();
    f.ts -= 3 * SEC;
    f.trade(101, 1);
    assert_eq!(f.e.last_exchange_ts_ns(), now);
    assert!(f.s().fsm.has(flags::CLOCK_REGRESSED));
    assert_eq!(f.s().bar_1m.close, 101);
}

#[test]
fn spread_and_imbalance_drive_liquidity_stress() {
    let mut f = Feed::new();
    assert!(f.s().fsm.has(flags::NO_QUOTES));
    f.bbo(618_003, 5_000, 618_004, 5_000);
    let s = *f.s();
    assert!(!s.fsm.has(flags::NO_QUOTES));
    // One tick of 0.1 at 61800.35: 1 × 2e9 / 1_236_007 = 1618 ppb.
    assert_eq!(s.tiers.liquidity_metric, 1618);
    assert_eq!(s.trigger.liquidity_stress, 0);
    // Three ticks and all size on the bid: spread +200% (capped 1000), imbalance 1000.
    f.bbo(618_002, 9_999, 618_005, 1);
    let s = *f.s();
    assert_eq!(s.trigger.liquidity_stress, (2 * 1000 + 999) / 3);
    assert!(s.tiers.liquidity_metric > 1618);
    // Crossed quotes are flagged and ignored.
    f.bbo(618_010, 1, 618_000, 1);
    assert!(f.s().fsm.has(flags::CROSSED_BOOK));
    assert_eq!(f.s().tiers.liquidity_metric, s.tiers.liquidity_metric);
    // One-sided books are ignored.
    f.bbo(UNDEF, UNDEF, 618_000, 1);
    assert_eq!(f.s().tiers.liquidity_metric, s.tiers.liquidity_metric);
}

#[test]
fn a_wide_market_reaches_a_high_liquidity_tier_with_hysteresis() {
    let mut f = Feed::new();
    // 10.0 wide at 61800: 161_812 ppb, tier 2 (>= 100_000 ppb).
    for _ in 0..6 * 60 {
        for _ in 0..10 {
            f.bbo(617_950, 10, 618_050, 10);
            f.ts += 100 * MS;
        }
    }
    let s = *f.s();
    assert_eq!(s.tiers.liquidity, 2);
    assert_eq!(s.fsm.tier_state, 2);
    // Tightening to 1 tick takes the EMA down, and the tier follows below 4/5 of 100_000.
    for _ in 0..10 * 60 {
        for _ in 0..10 {
            f.bbo(618_000, 10, 618_001, 10);
            f.ts += 100 * MS;
        }
    }
    assert_eq!(f.s().tiers.liquidity, 0);
}

#[test]
fn open_interest_velocity_and_divergence() {
    let mut f = Feed::new();
    f.trade(618_000, 1);
    f.oi(UNDEF); // mark-price-only venue message
    assert!(f.s().fsm.has(flags::NO_OPEN_INTEREST));
    assert_eq!(f.s().trigger.oi_velocity, 0);

    f.oi(80_000_000);
    let s = *f.s();
    assert!(!s.fsm.has(flags::NO_OPEN_INTEREST));
    assert_eq!(s.trigger.oi_velocity, 0);
    // log2(8e7) = 26.25
    assert_eq!(s.tiers.oi_density_metric >> 16, 26);
    // OI builds 1% a sample while price falls: shorts pressing, negative divergence.
    let mut oi = 80_000_000i64;
    for i in 0..10 {
        oi += oi / 100;
        f.ts += SEC;
        f.trade(618_000 - 100 * (i + 1), 1);
        f.oi(oi);
    }
    let s = *f.s();
    assert!(s.trigger.oi_velocity > 10_000, "{}", s.trigger.oi_velocity);
    assert!(s.trigger.divergence < 0, "{}", s.trigger.divergence);
    // Price up with OI up: they agree, no divergence.
    f.trade(700_000, 1);
    f.oi(oi + oi / 100);
    assert_eq!(f.s().trigger.divergence, 0);
    assert!(f.s().trigger.score > 0);
}

#[test]
fn volatile_minutes_raise_the_volatility_tier_and_quiet_ones_compress() {
    let mut f = Feed::new();
    // Each minute swings 0.6% (6_000 ppm): tier 3 (>= 4_000 ppm).
    for _ in 0..8 {
        f.trade(618_000, 1);
        f.ts += 20 * SEC;
        f.trade(621_708, 1);
        f.ts += 20 * SEC;
        f.trade(618_000, 1);
        f.ts += 20 * SEC;
    }
    f.trade(618_000, 1);
    let s = *f.s();
    assert_eq!(s.tiers.volatility, 3);
    assert_eq!(s.trigger.compression, 0);
    // Flat minutes: range 0 against a high EMA -> compression climbs.
    for _ in 0..6 {
        f.ts += 60 * SEC;
        f.trade(618_000, 1);
    }
    let s = *f.s();
    assert!(s.trigger.compression > 700, "{}", s.trigger.compression);
    // The tier does not drop at once: 4/5 band and a 3-minute dwell.
    assert_eq!(s.tiers.volatility, 3);
}
