//! Every threshold, horizon and limit of the engine, in one place. `docs/engine.md` explains
//! each one; changing any of them changes what a snapshot means, so it is a schema change
//! (bump `SCHEMA_VERSION`).

/// Nanoseconds per second.
pub const NS_PER_SEC: u64 = 1_000_000_000;

// ---- OHLC -------------------------------------------------------------------------------

/// Length of a 1m bar: bucket id = exchange_ts_ns / BAR_1M_NS.
pub const BAR_1M_NS: u64 = 60 * NS_PER_SEC;
/// Length of a 5m bar: bucket id = exchange_ts_ns / BAR_5M_NS (= 1m bucket id / 5).
pub const BAR_5M_NS: u64 = 300 * NS_PER_SEC;
/// Largest price shift (OHLC price = mantissa / 10^shift): i64 cannot hold 10^19.
pub const MAX_PRICE_SHIFT: u8 = 18;

// ---- Session break ----------------------------------------------------------------------

/// A silence in exchange time longer than this restarts heat and bars (market closed,
/// feed down): the old baseline says nothing about the reopening. Bounds every catch-up loop.
pub const SESSION_BREAK_NS: u64 = 600 * NS_PER_SEC;

// ---- Heat -------------------------------------------------------------------------------

/// Samples in the heat ring: the "recent" horizon, in heat windows.
pub const HEAT_RING: usize = 8;
/// Horizon of the baseline EMA, in heat windows (a cumulative mean until it is full).
pub const HEAT_BASELINE_WINDOWS: u32 = 256;
/// Fractional bits of the baseline: rolling_sum holds trades × 2^16.
pub const HEAT_SUM_FRAC_BITS: u32 = 16;
/// Heat is in per mille of the baseline rate: 1000 = trading at the usual pace.
pub const HEAT_UNIT: i32 = 1000;
/// Heat saturates at 100× the baseline.
pub const HEAT_MAX: i32 = 100_000;
/// Windows of baseline needed before the FSM leaves Warmup.
pub const WARMUP_WINDOWS: u32 = 30;

// ---- FSM --------------------------------------------------------------------------------

/// Heat (‰) needed to enter Hot, and to stay in it (hysteresis band).
pub const HOT_ENTER_HEAT: i32 = 3000;
pub const HOT_STAY_HEAT: i32 = 2000;
/// Heat (‰) needed to enter Active, and to stay in it.
pub const ACTIVE_ENTER_HEAT: i32 = 1500;
pub const ACTIVE_STAY_HEAT: i32 = 1100;
/// Trigger score (0..=1000) needed to enter / stay in Hot.
pub const HOT_ENTER_TRIGGER: i32 = 750;
pub const HOT_STAY_TRIGGER: i32 = 600;
/// Trigger score needed to enter / stay in Active.
pub const ACTIVE_ENTER_TRIGGER: i32 = 500;
pub const ACTIVE_STAY_TRIGGER: i32 = 400;
/// Consecutive heat windows a promotion must hold before it happens.
pub const PROMOTE_WINDOWS: u32 = 2;
/// Consecutive heat windows a demotion must hold before it happens.
pub const DEMOTE_WINDOWS: u32 = 10;
/// Minimum time in Cooldown after leaving Hot.
pub const COOLDOWN_AFTER_HOT_NS: u64 = 30 * NS_PER_SEC;
/// Time in Cooldown after a data gap (the book and trade flow are incomplete).
pub const COOLDOWN_GAP_NS: u64 = 10 * NS_PER_SEC;

// ---- Tiers ------------------------------------------------------------------------------

/// Tiers are 0..=MAX_TIER; higher is more extreme (more volatile, thinner, more crowded).
pub const MAX_TIER: u8 = 3;
/// Volatility tier thresholds on the 1m range EMA, ppm of price.
pub const VOLATILITY_UP_PPM: [i32; 3] = [500, 1_500, 4_000];
/// Liquidity tier thresholds on the spread EMA, ppb of mid (100_000 ppb = 1 bp).
pub const LIQUIDITY_UP_PPB: [i32; 3] = [20_000, 100_000, 500_000];
/// OI-density tier thresholds on OI above its EMA, ppm (log return).
pub const OI_DENSITY_UP_PPM: [i32; 3] = [2_000, 5_000, 10_000];
/// A tier falls only below DOWN_NUM/DOWN_DEN of the threshold that raised it.
pub const TIER_DOWN_NUM: i32 = 4;
pub const TIER_DOWN_DEN: i32 = 5;
/// Tier evaluations (1m closes) between two tier changes.
pub const TIER_MIN_DWELL: u32 = 3;
/// A 1m range is clamped to this many ppm of the close (1000%) before it is averaged.
pub const RANGE_PPM_MAX: i32 = 10_000_000;
/// EMA horizon of the volatility metric, in 1m bars.
pub const VOLATILITY_EMA_BARS: i32 = 16;
/// EMA horizon of the liquidity metric (spread), in quote updates.
pub const LIQUIDITY_EMA_QUOTES: i32 = 256;
/// EMA horizon of the OI baseline, in OI samples.
pub const OI_EMA_SAMPLES: i32 = 16;
/// Largest spread, ppb of mid (a spread of twice the mid: one side near zero).
pub const SPREAD_PPB_MAX: i32 = 2_000_000_000;

// ---- Trigger cost -----------------------------------------------------------------------

/// Component and composite scores are 0..=SCORE_MAX.
pub const SCORE_MAX: i32 = 1000;
/// EMA horizon of the compression score, in 1m bars.
pub const COMPRESSION_EMA_BARS: i32 = 4;
/// Heat (‰) above baseline that saturates the heat component: 3× baseline = full.
pub const TRIGGER_HEAT_FULL: i32 = 2000;
/// |divergence| (ppm) that saturates the divergence component.
pub const TRIGGER_DIVERGENCE_FULL_PPM: i32 = 5_000;
/// |OI velocity| (ppm) that saturates the OI velocity component.
pub const TRIGGER_OI_VELOCITY_FULL_PPM: i32 = 10_000;
/// Weights of heat, liquidity stress, compression, divergence, OI velocity.
pub const TRIGGER_WEIGHTS: [i32; 5] = [3, 2, 2, 1, 1];
/// Trigger-cost level = score / LEVEL_STEP, at most MAX_TIER.
pub const TRIGGER_LEVEL_STEP: i32 = 250;
/// Divergence and the 5m price move are clamped to ±100%.
pub const MOVE_PPM_MAX: i32 = 1_000_000;
/// |OI velocity| can never exceed this: both logs are in 0..63·2^16.
pub const OI_VELOCITY_PPM_MAX: i32 = 44_000_000;
