//! The per-token tick engine: one `Copy` struct, advanced record by record, integer-only.
//! Formulas and thresholds: `docs/engine.md`; constants: [`crate::params`].

use crate::fixed::*;
use crate::params::*;
use crate::snapshot::{self, SnapshotError, SnapshotHeader, SNAPSHOT_LEN};
use crate::state::*;
use chronicle_protocol::{Bbo, Body, Definition, OpenInterest, Record, Trade, UNDEF};
use thiserror::Error;

/// A change of FSM state (or of cooldown subtype) caused by one `apply`. When one record
/// crosses many heat windows (a silence), only the net change is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transition {
    pub from: FsmState,
    pub to: FsmState,
    pub cooldown: CooldownKind,
    /// The `CAUSE_*` bits of [`flags`] for the state entered.
    pub causes: u32,
    /// The record whose processing made the change.
    pub global_tick_id: u64,
    /// Exchange time at which the new state was entered (a heat-window boundary, or the
    /// record's time for gaps and session breaks).
    pub exchange_ts_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ApplyError {
    #[error("record of token {found} given to the engine of token {expected}")]
    WrongToken { expected: u64, found: u32 },
    /// Replaying an already applied record is refused, so overlapping replays are harmless.
    #[error("global tick id {found} is not after the last applied id {last}")]
    StaleTick { last: u64, found: u64 },
}

/// Scratch for one `apply`; never outlives it, so it is not state.
struct Cx {
    tick: u64,
    /// Exchange time the current FSM state was entered (clock − duration).
    entry_ts: u64,
    trigger_dirty: bool,
}

/// One token's engine. Its entire state is the [`EngineState`] it wraps, which the 336-byte
/// snapshot holds completely: `restore(snapshot(x))` resumes exactly like `x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenEngine {
    s: EngineState,
}

impl TokenEngine {
    /// A fresh engine with 1-second heat windows.
    pub fn new(token_id: u64) -> Self {
        Self::with_heat_window(token_id, HeatWindow::default())
    }

    pub fn with_heat_window(token_id: u64, window: HeatWindow) -> Self {
        Self {
            s: EngineState::new(token_id, window),
        }
    }

    /// Adopts a state after checking every invariant (the same checks as `restore`).
    pub fn from_state(s: EngineState) -> Result<Self, SnapshotError> {
        snapshot::validate(&s)?;
        Ok(Self { s })
    }

    pub fn state(&self) -> &EngineState {
        &self.s
    }

    pub fn fsm_state(&self) -> FsmState {
        self.s.fsm.state
    }

    pub fn token_id(&self) -> u64 {
        self.s.progress.token_id
    }

    /// GlobalTickId of the last applied record (0 before the first).
    pub fn last_global_tick_id(&self) -> u64 {
        self.s.progress.global_tick_id
    }

    /// The engine clock: the largest exchange time applied so far.
    pub fn last_exchange_ts_ns(&self) -> u64 {
        self.s.progress.exchange_ts_ns
    }

    /// Exchange time at which the current FSM state was entered.
    pub fn state_entered_ts_ns(&self) -> u64 {
        self.s
            .progress
            .exchange_ts_ns
            .saturating_sub(self.s.fsm.duration_ns)
    }

    /// The 336-byte snapshot. The header's GlobalTickId and exchange time are the engine's
    /// own (the last applied record), so they always match the state; `event_log_offset` is
    /// the caller's position just past that record in the token's event log.
    pub fn snapshot(&self, event_log_offset: u64) -> [u8; SNAPSHOT_LEN] {
        debug_assert_eq!(snapshot::validate(&self.s), Ok(()));
        snapshot::encode_state(&self.s, event_log_offset)
    }

    /// Decodes and validates a snapshot; never panics on any input.
    pub fn restore(bytes: &[u8; SNAPSHOT_LEN]) -> Result<(Self, SnapshotHeader), SnapshotError> {
        let (s, header) = snapshot::decode_state(bytes)?;
        Ok((Self { s }, header))
    }

    /// [`Self::restore`] for a slice, which must be exactly 336 bytes.
    pub fn restore_slice(bytes: &[u8]) -> Result<(Self, SnapshotHeader), SnapshotError> {
        let arr: &[u8; SNAPSHOT_LEN] = bytes
            .try_into()
            .map_err(|_| SnapshotError::WrongLength { len: bytes.len() })?;
        Self::restore(arr)
    }

    /// Applies one record of this token. Never allocates, never panics, O(1) except when
    /// exchange time jumps: then at most `SESSION_BREAK_NS / window` heat windows and
    /// `SESSION_BREAK_NS / 1m` bars are closed.
    pub fn apply(&mut self, rec: &Record<'_>) -> Result<Option<Transition>, ApplyError> {
        let meta = rec.meta;
        if meta.token_id as u64 != self.s.progress.token_id {
            return Err(ApplyError::WrongToken {
                expected: self.s.progress.token_id,
                found: meta.token_id,
            });
        }
        if meta.global_tick_id <= self.s.progress.global_tick_id {
            return Err(ApplyError::StaleTick {
                last: self.s.progress.global_tick_id,
                found: meta.global_tick_id,
            });
        }
        let before = (self.s.fsm.state, self.s.fsm.cooldown);
        let clock = self.s.progress.exchange_ts_ns;
        let mut cx = Cx {
            tick: meta.global_tick_id,
            entry_ts: clock.saturating_sub(self.s.fsm.duration_ns),
            trigger_dirty: false,
        };
        // Time never runs backwards: a late record is processed at the engine clock.
        // Exchange time 0 means the record carries no time (it does not regress the clock).
        let ts = meta.exchange_ts_ns;
        let now = ts.max(clock);
        self.advance(now, &mut cx);
        if ts != 0 && ts < clock {
            self.s.fsm.reason_flags |= flags::CLOCK_REGRESSED;
        }

        match rec.body {
            Body::Trade(t) => self.on_trade(&t, now),
            Body::Bbo(b) => self.on_bbo(&b, &mut cx),
            Body::BookSnapshot(b) => {
                // Only the first chunk holds the best levels.
                if b.chunk == 0 && b.bid_count > 0 && b.ask_count > 0 {
                    if let (Some(bid), Some(ask)) =
                        (b.levels.get(0), b.levels.get(b.bid_count as usize))
                    {
                        self.on_quote(bid.price, bid.quantity, ask.price, ask.quantity, &mut cx);
                    }
                }
            }
            Body::OpenInterest(o) => self.on_open_interest(&o, &mut cx),
            Body::Definition(d) => self.on_definition(&d),
            Body::Gap(_) => self.on_gap(now, &mut cx),
            // Book reconstruction lives elsewhere; level updates, orders and heartbeats only
            // move the clock here. A declaration is the shard's, never an engine's record.
            Body::LevelUpdate(_) | Body::Order(_) | Body::Heartbeat(_) | Body::Declaration(_) => {}
        }
        if cx.trigger_dirty {
            self.recompute_trigger(&cx);
        }

        self.s.progress.global_tick_id = cx.tick;
        self.s.progress.exchange_ts_ns = now;
        debug_assert!(cx.entry_ts <= now);
        self.s.fsm.duration_ns = now.saturating_sub(cx.entry_ts);
        debug_assert_eq!(snapshot::validate(&self.s), Ok(()));

        let after = (self.s.fsm.state, self.s.fsm.cooldown);
        Ok((after != before).then_some(Transition {
            from: before.0,
            to: after.0,
            cooldown: after.1,
            causes: self.s.fsm.reason_flags & flags::CAUSE_MASK,
            global_tick_id: cx.tick,
            exchange_ts_ns: cx.entry_ts,
        }))
    }

    // ---- time -----------------------------------------------------------------------------

    fn advance(&mut self, now: u64, cx: &mut Cx) {
        let clock = self.s.progress.exchange_ts_ns;
        if now == clock {
            return;
        }
        debug_assert!(now > clock);
        if clock == 0 || now - clock > SESSION_BREAK_NS {
            self.restart(now, clock != 0, cx);
            return;
        }
        self.roll_bars(now, cx);
        self.roll_heat(clock, now, cx);
    }

    /// First record, or a silence longer than SESSION_BREAK_NS: heat and bars start over
    /// (volatility, liquidity and OI baselines are kept: they change slowly).
    fn restart(&mut self, now: u64, session_break: bool, cx: &mut Cx) {
        let h = &mut self.s.heat;
        h.score = 0;
        h.rolling_sum = 0;
        h.rolling_count = 0;
        h.hysteresis = 0;
        h.ring = [0; HEAT_RING];
        h.last_update_tick = cx.tick;
        self.s.bar_1m = Bar::empty(now / BAR_1M_NS, self.s.bar_1m.close);
        self.s.bar_5m = Bar::empty(now / BAR_5M_NS, self.s.bar_5m.close);
        self.recompute_divergence();
        cx.trigger_dirty = true;
        if session_break && self.s.fsm.state != FsmState::Warmup {
            self.transition(
                FsmState::Warmup,
                CooldownKind::None,
                flags::CAUSE_SESSION_BREAK,
                now,
                cx,
            );
        }
    }

    fn roll_bars(&mut self, now: u64, cx: &mut Cx) {
        let new_1m = now / BAR_1M_NS;
        let old_1m = self.s.bar_1m.bucket;
        if new_1m <= old_1m {
            return;
        }
        let closed = self.s.bar_1m;
        self.close_minute(&closed, cx);
        // Minutes without any record: flat bars at the last close. Bounded by the session
        // break (a longer silence restarts instead of getting here).
        let empties = (new_1m - old_1m - 1).min(SESSION_BREAK_NS / BAR_1M_NS + 1);
        for i in 0..empties {
            let flat = Bar::empty(old_1m + 1 + i, closed.close);
            self.close_minute(&flat, cx);
        }
        // Divergence reads the 5m bar as it stands at the end of the minute.
        self.recompute_divergence();
        self.s.bar_1m = Bar::empty(new_1m, closed.close);
        let new_5m = now / BAR_5M_NS;
        if new_5m > self.s.bar_5m.bucket {
            self.s.bar_5m = Bar::empty(new_5m, self.s.bar_5m.close);
        }
        cx.trigger_dirty = true;
    }

    fn roll_heat(&mut self, clock: u64, now: u64, cx: &mut Cx) {
        let w_ns = self.s.heat.window.ns();
        let first = clock / w_ns;
        let last = now / w_ns;
        // Bounded by the session break: at most 2401 windows of 250 ms.
        let steps = last.saturating_sub(first).min(SESSION_BREAK_NS / w_ns + 1);
        for i in 0..steps {
            let window = first + i;
            self.close_heat_window(window, (window + 1).saturating_mul(w_ns), cx);
        }
    }

    // ---- heat -----------------------------------------------------------------------------

    /// Closes heat window `window`: score the last 8 windows against the baseline, fold the
    /// closed window into the baseline, open the next slot, let the FSM look.
    fn close_heat_window(&mut self, window: u64, boundary_ts: u64, cx: &mut Cx) {
        let h = &mut self.s.heat;
        let recent: i64 = h.ring.iter().map(|&v| v as i64).sum();
        h.score = heat_score(recent, h.rolling_sum, h.rolling_count);

        let closed = h.ring[(window % HEAT_RING as u64) as usize] as i64;
        let x = closed << HEAT_SUM_FRAC_BITS;
        if h.rolling_count < HEAT_BASELINE_WINDOWS {
            // Cumulative mean until the baseline is full: no cold-start bias.
            h.rolling_sum = h.rolling_sum.saturating_add(x);
            h.rolling_count += 1;
        } else {
            // EMA: sum keeps N × mean; subtract one mean, add the new sample.
            let mean = div_round(h.rolling_sum as i128, HEAT_BASELINE_WINDOWS as i128) as i64;
            h.rolling_sum = h.rolling_sum.saturating_sub(mean).saturating_add(x);
        }
        debug_assert!(h.rolling_sum >= 0 && h.rolling_count <= HEAT_BASELINE_WINDOWS);
        h.ring[((window + 1) % HEAT_RING as u64) as usize] = 0;
        h.last_update_tick = cx.tick;

        self.recompute_trigger(cx);
        self.evaluate_fsm(boundary_ts, cx);
    }

    fn on_trade(&mut self, t: &Trade, now: u64) {
        if t.price == UNDEF {
            return;
        }
        let price = self.scale_price(t.price);
        let quantity = if t.quantity == UNDEF {
            0
        } else {
            t.quantity.max(0)
        };
        self.s.bar_1m.add_trade(price, quantity);
        self.s.bar_5m.add_trade(price, quantity);
        let slot = ((now / self.s.heat.window.ns()) % HEAT_RING as u64) as usize;
        let h = &mut self.s.heat;
        h.ring[slot] = h.ring[slot].saturating_add(1);
    }

    fn scale_price(&mut self, price: i64) -> i32 {
        let divisor = pow10(self.s.fsm.price_shift());
        let (p, clamped) = clamp_i32((price / divisor) as i128);
        if clamped {
            self.s.fsm.reason_flags |= flags::PRICE_CLAMPED;
        }
        p
    }

    // ---- bars, volatility, compression, tiers --------------------------------------------

    fn close_minute(&mut self, bar: &Bar, cx: &mut Cx) {
        let range = range_ppm(bar);
        let t = &mut self.s.tiers;
        let g = &mut self.s.trigger;
        let vol = t.volatility_metric;
        if vol > 0 {
            // How much tighter than usual this minute was: 1000 = no range at all.
            let contraction = clamp_range(
                SCORE_MAX as i128 - range as i128 * SCORE_MAX as i128 / vol as i128,
                0,
                SCORE_MAX,
            );
            g.compression = ema_step(g.compression, contraction, COMPRESSION_EMA_BARS);
        }
        t.volatility_metric = if vol == 0 && bar.trades > 0 {
            range
        } else {
            ema_step(vol, range, VOLATILITY_EMA_BARS)
        };
        debug_assert!((0..=RANGE_PPM_MAX).contains(&t.volatility_metric));
        self.evaluate_tiers(cx);
    }

    fn evaluate_tiers(&mut self, cx: &Cx) {
        let f = self.s.fsm;
        let t = &mut self.s.tiers;
        let volatility = band_tier(t.volatility, t.volatility_metric, &VOLATILITY_UP_PPM);
        let liquidity = if f.has(flags::NO_QUOTES) {
            0
        } else {
            band_tier(t.liquidity, t.liquidity_metric, &LIQUIDITY_UP_PPB)
        };
        let oi_density = if f.has(flags::NO_OPEN_INTEREST) {
            0
        } else {
            band_tier(t.oi_density, self.s.trigger.oi_velocity, &OI_DENSITY_UP_PPM)
        };
        let changed =
            (volatility, liquidity, oi_density) != (t.volatility, t.liquidity, t.oi_density);
        if changed && t.hysteresis >= TIER_MIN_DWELL {
            t.volatility = volatility;
            t.liquidity = liquidity;
            t.oi_density = oi_density;
            t.hysteresis = 0;
        } else {
            t.hysteresis = t.hysteresis.saturating_add(1);
        }
        t.last_update_tick = cx.tick;
        self.s.fsm.tier_state = t.volatility.max(t.liquidity).max(t.oi_density);
    }

    // ---- liquidity --------------------------------------------------------------------------

    fn on_bbo(&mut self, b: &Bbo, cx: &mut Cx) {
        self.on_quote(b.bid_price, b.bid_quantity, b.ask_price, b.ask_quantity, cx);
    }

    fn on_quote(&mut self, bid: i64, bid_qty: i64, ask: i64, ask_qty: i64, cx: &mut Cx) {
        let defined = [bid, bid_qty, ask, ask_qty]
            .iter()
            .all(|&v| v != UNDEF && v > 0);
        if !defined {
            return; // a one-sided or empty book has no spread to measure
        }
        if ask <= bid {
            self.s.fsm.reason_flags |= flags::CROSSED_BOOK;
            return;
        }
        self.s.fsm.reason_flags &= !flags::CROSSED_BOOK;
        // Spread over mid, in ppb: (ask − bid) / ((ask + bid) / 2) × 10^9.
        let spread = clamp_range(
            (ask as i128 - bid as i128) * 2_000_000_000 / (ask as i128 + bid as i128),
            0,
            SPREAD_PPB_MAX,
        );
        let t = &mut self.s.tiers;
        let base = if self.s.fsm.has(flags::NO_QUOTES) {
            self.s.fsm.reason_flags &= !flags::NO_QUOTES;
            spread
        } else {
            t.liquidity_metric
        };
        t.liquidity_metric = ema_step(base, spread, LIQUIDITY_EMA_QUOTES);
        // Widening against the old normal: +100% or more = full stress.
        let widening = clamp_range(
            (spread as i128 - base as i128) * SCORE_MAX as i128 / base.max(1) as i128,
            0,
            SCORE_MAX,
        );
        // One-sided top of book: 0 balanced, 1000 all size on one side.
        let imbalance = clamp_range(
            (bid_qty as i128 - ask_qty as i128).abs() * SCORE_MAX as i128
                / (bid_qty as i128 + ask_qty as i128),
            0,
            SCORE_MAX,
        );
        self.s.trigger.liquidity_stress = (2 * widening + imbalance) / 3;
        cx.trigger_dirty = true;
    }

    // ---- open interest ----------------------------------------------------------------------

    fn on_open_interest(&mut self, o: &OpenInterest, cx: &mut Cx) {
        if o.open_interest == UNDEF || o.open_interest <= 0 {
            return; // venue sent mark/funding only: OI parts stay as they are
        }
        let level = log2_q16(o.open_interest) as i64;
        let t = &mut self.s.tiers;
        let g = &mut self.s.trigger;
        // The OI EMA is not stored: it is level − velocity, exactly recoverable (see fixed.rs).
        let ema = if self.s.fsm.has(flags::NO_OPEN_INTEREST) {
            self.s.fsm.reason_flags &= !flags::NO_OPEN_INTEREST;
            level
        } else {
            t.oi_density_metric as i64 - ppm_to_log2_q16(g.oi_velocity) as i64
        };
        let ema = ema + div_round((level - ema) as i128, OI_EMA_SAMPLES as i128) as i64;
        t.oi_density_metric = level as i32;
        g.oi_velocity = clamp_range(
            log2_q16_to_ppm(sat_i32((level - ema) as i128)) as i128,
            -OI_VELOCITY_PPM_MAX,
            OI_VELOCITY_PPM_MAX,
        );
        self.recompute_divergence();
        cx.trigger_dirty = true;
    }

    /// Price (5m bar so far) against OI velocity: nonzero only when they disagree.
    fn recompute_divergence(&mut self) {
        if self.s.fsm.has(flags::NO_OPEN_INTEREST) {
            self.s.trigger.divergence = 0;
            return;
        }
        let b = &self.s.bar_5m;
        let price_move = if b.trades > 0 && b.open > 0 {
            clamp_range(
                (b.close as i128 - b.open as i128) * 1_000_000 / b.open as i128,
                -MOVE_PPM_MAX,
                MOVE_PPM_MAX,
            )
        } else {
            0
        };
        let v = self.s.trigger.oi_velocity;
        self.s.trigger.divergence = if price_move > 0 && v < 0 {
            price_move.min(-v)
        } else if price_move < 0 && v > 0 {
            -(-price_move).min(v)
        } else {
            0
        };
    }

    // ---- definition, gap ----------------------------------------------------------------------

    fn on_definition(&mut self, d: &Definition) {
        let shift = if d.tick_size > 0 && d.tick_size != UNDEF {
            decimal_trailing_zeros(d.tick_size).min(MAX_PRICE_SHIFT)
        } else {
            0
        };
        let old = self.s.fsm.price_shift();
        if shift != old {
            let mut clamped = false;
            for bar in [&mut self.s.bar_1m, &mut self.s.bar_5m] {
                for p in [&mut bar.open, &mut bar.high, &mut bar.low, &mut bar.close] {
                    let (v, c) = if shift > old {
                        clamp_i32(*p as i128 / pow10(shift - old) as i128)
                    } else {
                        clamp_i32(*p as i128 * pow10(old - shift) as i128)
                    };
                    *p = v;
                    clamped |= c;
                }
            }
            if clamped {
                self.s.fsm.reason_flags |= flags::PRICE_CLAMPED;
            }
            self.s.fsm.set_price_shift(shift);
        }
        self.s.fsm.reason_flags &= !flags::NO_DEFINITION;
    }

    fn on_gap(&mut self, now: u64, cx: &mut Cx) {
        match (self.s.fsm.state, self.s.fsm.cooldown) {
            // Nothing is trusted in Warmup anyway.
            (FsmState::Warmup, _) => {}
            // Another gap while waiting one out: the wait starts again.
            (FsmState::Cooldown, CooldownKind::DataGap) => {
                cx.entry_ts = now;
                self.s.fsm.entry_tick = cx.tick;
            }
            _ => self.transition(
                FsmState::Cooldown,
                CooldownKind::DataGap,
                flags::CAUSE_GAP,
                now,
                cx,
            ),
        }
    }

    // ---- trigger ----------------------------------------------------------------------------

    fn recompute_trigger(&mut self, cx: &Cx) {
        let f = self.s.fsm;
        let g = &mut self.s.trigger;
        let heat = clamp_range(
            (self.s.heat.score as i128 - HEAT_UNIT as i128) * SCORE_MAX as i128
                / TRIGGER_HEAT_FULL as i128,
            0,
            SCORE_MAX,
        );
        let [w_heat, w_stress, w_compression, w_divergence, w_velocity] = TRIGGER_WEIGHTS;
        let mut num = w_heat * heat + w_compression * g.compression;
        let mut den = w_heat + w_compression;
        // Absent inputs are left out of the average rather than counted as calm.
        if !f.has(flags::NO_QUOTES) {
            num += w_stress * g.liquidity_stress;
            den += w_stress;
        }
        if !f.has(flags::NO_OPEN_INTEREST) {
            let divergence = (g.divergence.unsigned_abs() as i64 * SCORE_MAX as i64
                / TRIGGER_DIVERGENCE_FULL_PPM as i64)
                .min(SCORE_MAX as i64) as i32;
            let velocity = (g.oi_velocity.unsigned_abs() as i64 * SCORE_MAX as i64
                / TRIGGER_OI_VELOCITY_FULL_PPM as i64)
                .min(SCORE_MAX as i64) as i32;
            num += w_divergence * divergence + w_velocity * velocity;
            den += w_divergence + w_velocity;
        }
        debug_assert!(den > 0 && num >= 0 && num <= den * SCORE_MAX);
        g.score = num / den;
        g.last_update_tick = cx.tick;
        self.s.fsm.trigger_level = trigger_level(g.score);
    }

    // ---- FSM --------------------------------------------------------------------------------

    /// Runs once per closed heat window, at `ts` (the window's end).
    fn evaluate_fsm(&mut self, ts: u64, cx: &mut Cx) {
        let heat = self.s.heat.score;
        let trigger = self.s.trigger.score;
        let enter_hot = heat >= HOT_ENTER_HEAT || trigger >= HOT_ENTER_TRIGGER;
        let enter_active = heat >= ACTIVE_ENTER_HEAT || trigger >= ACTIVE_ENTER_TRIGGER;
        let stay_hot = heat >= HOT_STAY_HEAT || trigger >= HOT_STAY_TRIGGER;
        let stay_active = heat >= ACTIVE_STAY_HEAT || trigger >= ACTIVE_STAY_TRIGGER;
        let fresh = if enter_hot {
            FsmState::Hot
        } else if enter_active {
            FsmState::Active
        } else {
            FsmState::Quiet
        };
        let causes_for = |to: FsmState| -> u32 {
            let (h, t) = match to {
                FsmState::Hot => (HOT_ENTER_HEAT, HOT_ENTER_TRIGGER),
                _ => (ACTIVE_ENTER_HEAT, ACTIVE_ENTER_TRIGGER),
            };
            let mut c = 0;
            if heat >= h {
                c |= flags::CAUSE_HEAT;
            }
            if trigger >= t {
                c |= flags::CAUSE_TRIGGER;
            }
            c
        };
        let elapsed = ts.saturating_sub(cx.entry_ts);
        let state = self.s.fsm.state;
        match state {
            FsmState::Warmup => {
                if self.s.heat.rolling_count >= WARMUP_WINDOWS {
                    self.transition(
                        FsmState::Quiet,
                        CooldownKind::None,
                        flags::CAUSE_WARMED_UP,
                        ts,
                        cx,
                    );
                }
            }
            FsmState::Cooldown => {
                let (min_ns, may_reignite) = match self.s.fsm.cooldown {
                    CooldownKind::AfterHot => (COOLDOWN_AFTER_HOT_NS, true),
                    CooldownKind::DataGap | CooldownKind::None => (COOLDOWN_GAP_NS, false),
                };
                if may_reignite && enter_hot {
                    let h = &mut self.s.heat.hysteresis;
                    *h = h.saturating_add(1);
                    if *h >= PROMOTE_WINDOWS {
                        let c = causes_for(FsmState::Hot);
                        self.transition(FsmState::Hot, CooldownKind::None, c, ts, cx);
                    }
                } else {
                    self.s.heat.hysteresis = 0;
                    if elapsed >= min_ns {
                        let c = flags::CAUSE_COOLDOWN_EXPIRED;
                        self.transition(fresh, CooldownKind::None, c, ts, cx);
                    }
                }
            }
            FsmState::Quiet | FsmState::Active | FsmState::Hot => {
                let target = if enter_hot || (state == FsmState::Hot && stay_hot) {
                    FsmState::Hot
                } else if enter_active || (state >= FsmState::Active && stay_active) {
                    FsmState::Active
                } else {
                    FsmState::Quiet
                };
                if target == state {
                    self.s.heat.hysteresis = 0;
                    return;
                }
                let h = &mut self.s.heat.hysteresis;
                *h = h.saturating_add(1);
                let need = if target > state {
                    PROMOTE_WINDOWS
                } else {
                    DEMOTE_WINDOWS
                };
                if *h < need {
                    return;
                }
                if target > state {
                    let c = causes_for(target);
                    self.transition(target, CooldownKind::None, c, ts, cx);
                } else if state == FsmState::Hot {
                    let c = flags::CAUSE_DECAY;
                    self.transition(FsmState::Cooldown, CooldownKind::AfterHot, c, ts, cx);
                } else {
                    self.transition(target, CooldownKind::None, flags::CAUSE_DECAY, ts, cx);
                }
            }
        }
    }

    fn transition(
        &mut self,
        to: FsmState,
        cooldown: CooldownKind,
        causes: u32,
        ts: u64,
        cx: &mut Cx,
    ) {
        debug_assert!((to == FsmState::Cooldown) == (cooldown != CooldownKind::None));
        debug_assert!(causes & !flags::CAUSE_MASK == 0);
        let f = &mut self.s.fsm;
        f.state = to;
        f.cooldown = cooldown;
        f.entry_tick = cx.tick;
        // Conditions that persist (no OI, no quotes, ...) and the price shift survive; the
        // "since the state was entered" ones and the old causes do not.
        let keep = (flags::CONDITION_MASK & !(flags::CLOCK_REGRESSED | flags::PRICE_CLAMPED))
            | flags::PRICE_SHIFT_MASK;
        f.reason_flags = (f.reason_flags & keep) | causes;
        self.s.heat.hysteresis = 0;
        cx.entry_ts = ts;
    }
}

/// Recent trade rate (8 windows) over the baseline rate, ‰. No baseline: 0. A silent
/// baseline with trades now: HEAT_MAX.
fn heat_score(recent: i64, rolling_sum: i64, rolling_count: u32) -> i32 {
    if rolling_count == 0 {
        return 0;
    }
    if rolling_sum <= 0 {
        return if recent > 0 { HEAT_MAX } else { 0 };
    }
    // (recent / 8) / (rolling_sum / 2^16 / count) × 1000
    let num = recent.max(0) as i128
        * (1i128 << HEAT_SUM_FRAC_BITS)
        * rolling_count as i128
        * HEAT_UNIT as i128;
    let den = HEAT_RING as i128 * rolling_sum as i128;
    clamp_range(num / den, 0, HEAT_MAX)
}

/// High − low of a bar in ppm of its close (0 for a non-positive close).
fn range_ppm(bar: &Bar) -> i32 {
    if bar.close <= 0 {
        return 0;
    }
    clamp_range(
        (bar.high as i128 - bar.low as i128) * 1_000_000 / bar.close as i128,
        0,
        RANGE_PPM_MAX,
    )
}

/// Band hysteresis: rise to the highest tier whose threshold the metric reaches; fall only
/// when the metric is below 4/5 of the threshold of the current tier.
fn band_tier(current: u8, metric: i32, up: &[i32; 3]) -> u8 {
    let reached = up.iter().filter(|&&u| metric >= u).count() as u8;
    if reached > current {
        return reached;
    }
    let held = up
        .iter()
        .filter(|&&u| metric as i64 * TIER_DOWN_DEN as i64 >= u as i64 * TIER_DOWN_NUM as i64)
        .count() as u8;
    if held < current {
        return held;
    }
    current.min(MAX_TIER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_tier_has_hysteresis() {
        let up = [100, 200, 300];
        assert_eq!(band_tier(0, 99, &up), 0);
        assert_eq!(band_tier(0, 100, &up), 1);
        assert_eq!(band_tier(0, 350, &up), 3);
        // Falls only below 4/5 of the threshold that raised it.
        assert_eq!(band_tier(1, 81, &up), 1);
        assert_eq!(band_tier(1, 80, &up), 1);
        assert_eq!(band_tier(1, 79, &up), 0);
        assert_eq!(band_tier(3, 241, &up), 3);
        assert_eq!(band_tier(3, 239, &up), 2);
        assert_eq!(band_tier(3, 0, &up), 0);
    }

    #[test]
    fn heat_score_is_relative_to_baseline() {
        // Baseline: 10 trades per window over 100 windows.
        let sum = (10 * 100) << HEAT_SUM_FRAC_BITS;
        assert_eq!(heat_score(80, sum, 100), 1000);
        assert_eq!(heat_score(240, sum, 100), 3000);
        assert_eq!(heat_score(0, sum, 100), 0);
        assert_eq!(heat_score(i64::MAX, sum, 100), HEAT_MAX);
        assert_eq!(heat_score(5, 0, 10), HEAT_MAX);
        assert_eq!(heat_score(5, 0, 0), 0);
    }
}
