//! The engine's whole state, block by block, exactly as the 336-byte snapshot lays it out
//! (see `docs/formats/snapshot.md`). Plain `Copy` data: no heap, no pointers, nothing that
//! is not encoded.

use crate::params::{HEAT_RING, MAX_PRICE_SHIFT, NS_PER_SEC, SCORE_MAX, TRIGGER_LEVEL_STEP};

/// What the token is doing, as a trader would say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum FsmState {
    /// Not enough history for a baseline (start of day, after a session break).
    Warmup = 0,
    /// Trading below the Active thresholds.
    Quiet = 1,
    /// Trading noticeably above its baseline, or the market is primed (trigger score).
    Active = 2,
    /// A burst: several times the usual trade rate, or a fully primed market.
    Hot = 3,
    /// Waiting out a burst or a data gap before signals are trusted again.
    Cooldown = 4,
}

impl FsmState {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Warmup,
            1 => Self::Quiet,
            2 => Self::Active,
            3 => Self::Hot,
            4 => Self::Cooldown,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Warmup => "warmup",
            Self::Quiet => "quiet",
            Self::Active => "active",
            Self::Hot => "hot",
            Self::Cooldown => "cooldown",
        }
    }
}

/// Why the FSM is in Cooldown. `None` in every other state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CooldownKind {
    None = 0,
    /// Left Hot: at least `COOLDOWN_AFTER_HOT_NS`; a renewed burst re-enters Hot.
    AfterHot = 1,
    /// A Gap record said the stream is incomplete: `COOLDOWN_GAP_NS`, no re-entry.
    DataGap = 2,
}

impl CooldownKind {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::AfterHot,
            2 => Self::DataGap,
            _ => return None,
        })
    }
}

/// Length of one heat window (one sample of the heat ring). Fixed for a token's life: the
/// baseline is counted in windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum HeatWindow {
    Ms250 = 0,
    #[default]
    S1 = 1,
    S5 = 2,
    S60 = 3,
}

impl HeatWindow {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Ms250,
            1 => Self::S1,
            2 => Self::S5,
            3 => Self::S60,
            _ => return None,
        })
    }

    pub fn ns(self) -> u64 {
        match self {
            Self::Ms250 => NS_PER_SEC / 4,
            Self::S1 => NS_PER_SEC,
            Self::S5 => 5 * NS_PER_SEC,
            Self::S60 => 60 * NS_PER_SEC,
        }
    }
}

/// FSM reason flags (u32 at offset 88). Bits 0..=7: data conditions; bits 8..=15: why the
/// current state was entered (replaced at each transition); bits 24..=28: the OHLC price
/// shift (see [`flags::PRICE_SHIFT_SHIFT`]). Every other bit is zero.
pub mod flags {
    /// No open interest seen yet: OI tier, metric, velocity and divergence stay neutral (0).
    pub const NO_OPEN_INTEREST: u32 = 1 << 0;
    /// No valid two-sided quote seen yet: liquidity tier, metric and stress stay 0.
    pub const NO_QUOTES: u32 = 1 << 1;
    /// No instrument definition seen yet: prices are scaled with shift 0.
    pub const NO_DEFINITION: u32 = 1 << 2;
    /// The last quote was crossed or locked (ask <= bid); it was not used.
    pub const CROSSED_BOOK: u32 = 1 << 3;
    /// Since the state was entered, a record's exchange time was behind the engine clock.
    pub const CLOCK_REGRESSED: u32 = 1 << 4;
    /// Since the state was entered, a price did not fit an i32 bar price and was clamped.
    pub const PRICE_CLAMPED: u32 = 1 << 5;
    pub const CONDITION_MASK: u32 = 0x3F;

    /// Entered because heat crossed a threshold.
    pub const CAUSE_HEAT: u32 = 1 << 8;
    /// Entered because the trigger score crossed a threshold.
    pub const CAUSE_TRIGGER: u32 = 1 << 9;
    /// Entered because heat and trigger fell below the stay thresholds.
    pub const CAUSE_DECAY: u32 = 1 << 10;
    /// Entered because a cooldown ran out.
    pub const CAUSE_COOLDOWN_EXPIRED: u32 = 1 << 11;
    /// Entered because of a Gap record.
    pub const CAUSE_GAP: u32 = 1 << 12;
    /// Entered because exchange time jumped by more than `SESSION_BREAK_NS`.
    pub const CAUSE_SESSION_BREAK: u32 = 1 << 13;
    /// Entered because the heat baseline became long enough.
    pub const CAUSE_WARMED_UP: u32 = 1 << 14;
    pub const CAUSE_MASK: u32 = 0x7F00;

    /// Bit position of the 5-bit price shift.
    pub const PRICE_SHIFT_SHIFT: u32 = 24;
    pub const PRICE_SHIFT_MASK: u32 = 0x1F << PRICE_SHIFT_SHIFT;

    /// Every bit a valid snapshot may set.
    pub const KNOWN_MASK: u32 = CONDITION_MASK | CAUSE_MASK | PRICE_SHIFT_MASK;
}

/// Header fields that are engine state: who, and how far the engine has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Progress {
    pub token_id: u64,
    /// GlobalTickId of the last applied record (0: none yet; ids start at 1).
    pub global_tick_id: u64,
    /// Engine clock: the largest exchange time applied so far, ns since the epoch.
    pub exchange_ts_ns: u64,
}

/// FSM block (offset 64, 32 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FsmBlock {
    pub state: FsmState,
    /// Composite tier: max of the three tiers.
    pub tier_state: u8,
    /// Trigger-cost level: trigger score / 250, 0..=3.
    pub trigger_level: u8,
    pub cooldown: CooldownKind,
    /// GlobalTickId of the record whose processing entered the state.
    pub entry_tick: u64,
    /// Exchange-time ns since the state was entered (engine clock − entry time).
    pub duration_ns: u64,
    /// See [`flags`].
    pub reason_flags: u32,
}

impl FsmBlock {
    /// OHLC price shift: bar prices are price mantissa / 10^shift.
    pub fn price_shift(&self) -> u8 {
        ((self.reason_flags & flags::PRICE_SHIFT_MASK) >> flags::PRICE_SHIFT_SHIFT) as u8
    }

    pub(crate) fn set_price_shift(&mut self, shift: u8) {
        debug_assert!(shift <= MAX_PRICE_SHIFT);
        let shift = shift.min(MAX_PRICE_SHIFT) as u32;
        self.reason_flags =
            (self.reason_flags & !flags::PRICE_SHIFT_MASK) | (shift << flags::PRICE_SHIFT_SHIFT);
    }

    pub fn has(&self, flag: u32) -> bool {
        self.reason_flags & flag != 0
    }
}

/// Heat block (offset 96, 64 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeatBlock {
    /// Recent trade rate over the baseline rate, ‰ (1000 = usual pace), 0..=HEAT_MAX.
    pub score: i32,
    pub window: HeatWindow,
    /// Baseline accumulator: trades per window × 2^16 × rolling_count (an EMA once full).
    pub rolling_sum: i64,
    /// Windows in the baseline, 0..=HEAT_BASELINE_WINDOWS.
    pub rolling_count: u32,
    /// Consecutive windows the FSM has wanted a different state.
    pub hysteresis: u32,
    /// GlobalTickId of the record that closed the last heat window.
    pub last_update_tick: u64,
    /// Trades per window; slot (window id % 8). The current window's slot is still filling.
    pub ring: [i32; HEAT_RING],
}

/// Tier block (offset 160, 48 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TierBlock {
    pub volatility: u8,
    pub oi_density: u8,
    pub liquidity: u8,
    /// EMA of the 1m bar range, ppm of the close.
    pub volatility_metric: i32,
    /// log2(open interest mantissa), Q16.16 (0 without open interest).
    pub oi_density_metric: i32,
    /// EMA of the quoted spread, ppb of mid.
    pub liquidity_metric: i32,
    /// Tier evaluations since the last tier change (saturating).
    pub hysteresis: u32,
    /// GlobalTickId of the record that closed the last 1m bar (the last tier evaluation).
    pub last_update_tick: u64,
}

/// Trigger-cost block (offset 208, 32 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TriggerBlock {
    /// Weighted composite of the components, 0..=1000.
    pub score: i32,
    /// Spread widening vs its EMA and top-of-book imbalance, 0..=1000.
    pub liquidity_stress: i32,
    /// 1m ranges tighter than the volatility EMA, smoothed, 0..=1000.
    pub compression: i32,
    /// Signed ppm: + price up while OI falls, − price down while OI builds; 0 if they agree.
    pub divergence: i32,
    /// OI above (+) or below (−) its EMA, natural-log ppm.
    pub oi_velocity: i32,
    /// GlobalTickId of the last recomputation of the score.
    pub last_update_tick: u64,
}

/// One OHLC bar (offsets 240 and 288, 48 bytes each). Prices are mantissa / 10^shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bar {
    /// exchange_ts_ns / bar length.
    pub bucket: u64,
    pub open: i32,
    pub high: i32,
    pub low: i32,
    pub close: i32,
    /// Sum of trade quantity mantissas (saturating).
    pub volume: i64,
    /// Trades in the bar; 0 means no trade yet and all four prices hold the last close.
    pub trades: u32,
}

impl Bar {
    pub(crate) const fn empty(bucket: u64, last_close: i32) -> Self {
        Self {
            bucket,
            open: last_close,
            high: last_close,
            low: last_close,
            close: last_close,
            volume: 0,
            trades: 0,
        }
    }

    pub(crate) fn add_trade(&mut self, price: i32, quantity: i64) {
        if self.trades == 0 {
            self.open = price;
            self.high = price;
            self.low = price;
        } else {
            self.high = self.high.max(price);
            self.low = self.low.min(price);
        }
        self.close = price;
        self.volume = self.volume.saturating_add(quantity.max(0));
        self.trades = self.trades.saturating_add(1);
    }
}

/// The whole engine state: the 336-byte snapshot minus its framing (magic, version, type,
/// checksum) and the caller's EventLogOffset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EngineState {
    pub progress: Progress,
    pub fsm: FsmBlock,
    pub heat: HeatBlock,
    pub tiers: TierBlock,
    pub trigger: TriggerBlock,
    pub bar_1m: Bar,
    pub bar_5m: Bar,
}

/// Trigger-cost level of a trigger score.
pub fn trigger_level(score: i32) -> u8 {
    (score.clamp(0, SCORE_MAX) / TRIGGER_LEVEL_STEP).min(3) as u8
}

impl EngineState {
    /// A token that has seen nothing: Warmup, no baseline, every "no data" flag set.
    pub fn new(token_id: u64, window: HeatWindow) -> Self {
        Self {
            progress: Progress {
                token_id,
                global_tick_id: 0,
                exchange_ts_ns: 0,
            },
            fsm: FsmBlock {
                state: FsmState::Warmup,
                tier_state: 0,
                trigger_level: 0,
                cooldown: CooldownKind::None,
                entry_tick: 0,
                duration_ns: 0,
                reason_flags: flags::NO_OPEN_INTEREST | flags::NO_QUOTES | flags::NO_DEFINITION,
            },
            heat: HeatBlock {
                score: 0,
                window,
                rolling_sum: 0,
                rolling_count: 0,
                hysteresis: 0,
                last_update_tick: 0,
                ring: [0; HEAT_RING],
            },
            tiers: TierBlock {
                volatility: 0,
                oi_density: 0,
                liquidity: 0,
                volatility_metric: 0,
                oi_density_metric: 0,
                liquidity_metric: 0,
                // Let the first evaluation place the tiers without waiting out a dwell.
                hysteresis: crate::params::TIER_MIN_DWELL,
                last_update_tick: 0,
            },
            trigger: TriggerBlock {
                score: 0,
                liquidity_stress: 0,
                compression: 0,
                divergence: 0,
                oi_velocity: 0,
                last_update_tick: 0,
            },
            bar_1m: Bar::empty(0, 0),
            bar_5m: Bar::empty(0, 0),
        }
    }
}
