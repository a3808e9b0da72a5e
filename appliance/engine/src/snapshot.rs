//! The 336-byte snapshot: encode, decode, and the checks that make a decoded state one the
//! engine could have reached. Layout and checksum: `docs/formats/snapshot.md`.

use crate::params::*;
use crate::state::*;
use chronicle_protocol::wire::{
    i32_at, i64_at, put_i32, put_i64, put_u16, put_u32, put_u64, tiles, u16_at, u32_at, u64_at,
};
use thiserror::Error;
use xxhash_rust::xxh3::xxh3_64;

/// Total snapshot size in bytes.
pub const SNAPSHOT_LEN: usize = 336;
/// The first four bytes: ASCII `SNAP` (0x534E4150 read big-endian).
pub const MAGIC: [u8; 4] = *b"SNAP";
/// Schema version written and accepted. Any change of layout, formula or threshold bumps it.
pub const SCHEMA_VERSION: u16 = 1;
/// Snapshot type 1: one token's tick-engine state (the only type in schema 1).
pub const SNAPSHOT_TYPE_TOKEN_ENGINE: u16 = 1;

/// Byte offsets of every field (the tables of `docs/formats/snapshot.md`, as code).
pub mod layout {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 4;
    pub const TYPE: usize = 6;
    pub const GLOBAL_TICK_ID: usize = 8;
    pub const EXCHANGE_TS: usize = 16;
    pub const TOKEN_ID: usize = 24;
    pub const EVENT_LOG_OFFSET: usize = 32;
    pub const CHECKSUM: usize = 40;

    pub const FSM: usize = 64;
    pub const FSM_STATE: usize = 64;
    pub const FSM_TIER_STATE: usize = 65;
    pub const FSM_TRIGGER_LEVEL: usize = 66;
    pub const FSM_COOLDOWN: usize = 67;
    pub const FSM_ENTRY_TICK: usize = 72;
    pub const FSM_DURATION: usize = 80;
    pub const FSM_REASON_FLAGS: usize = 88;

    pub const HEAT: usize = 96;
    pub const HEAT_SCORE: usize = 96;
    pub const HEAT_WINDOW_MODE: usize = 100;
    pub const HEAT_ROLLING_SUM: usize = 104;
    pub const HEAT_ROLLING_COUNT: usize = 112;
    pub const HEAT_HYSTERESIS: usize = 116;
    pub const HEAT_LAST_UPDATE: usize = 120;
    pub const HEAT_RING: usize = 128;

    pub const TIER: usize = 160;
    pub const TIER_VOLATILITY: usize = 160;
    pub const TIER_OI_DENSITY: usize = 161;
    pub const TIER_LIQUIDITY: usize = 162;
    pub const TIER_VOLATILITY_METRIC: usize = 168;
    pub const TIER_OI_DENSITY_METRIC: usize = 172;
    pub const TIER_LIQUIDITY_METRIC: usize = 176;
    pub const TIER_HYSTERESIS: usize = 180;
    pub const TIER_LAST_UPDATE: usize = 184;

    pub const TRIGGER: usize = 208;
    pub const TRIGGER_SCORE: usize = 208;
    pub const TRIGGER_LIQUIDITY_STRESS: usize = 212;
    pub const TRIGGER_COMPRESSION: usize = 216;
    pub const TRIGGER_DIVERGENCE: usize = 220;
    pub const TRIGGER_OI_VELOCITY: usize = 224;
    pub const TRIGGER_LAST_UPDATE: usize = 228;

    pub const OHLC_1M: usize = 240;
    pub const OHLC_5M: usize = 288;
    /// Bytes of one OHLC block.
    pub const BAR_LEN: usize = 36;
    /// Offsets within one OHLC block.
    pub const BAR_BUCKET: usize = 0;
    pub const BAR_OPEN: usize = 8;
    pub const BAR_HIGH: usize = 12;
    pub const BAR_LOW: usize = 16;
    pub const BAR_CLOSE: usize = 20;
    pub const BAR_VOLUME: usize = 24;
    pub const BAR_TRADES: usize = 32;

    /// Byte ranges that must be zero.
    pub const RESERVED: [(usize, usize); 9] = [
        (48, 64),
        (68, 72),
        (92, 96),
        (101, 104),
        (163, 168),
        (192, 208),
        (236, 240),
        (276, 288),
        (324, 336),
    ];

    /// `RESERVED[i]` as `(offset, width)`, for the tiling checks below.
    const fn reserved(i: usize) -> (usize, usize) {
        (RESERVED[i].0, RESERVED[i].1 - RESERVED[i].0)
    }

    // Every field, with its width, and every reserved range, in order: they tile the
    // snapshot, and the bar fields tile a bar.
    const _: () = assert!(super::tiles(
        &[
            (MAGIC, 4),
            (VERSION, 2),
            (TYPE, 2),
            (GLOBAL_TICK_ID, 8),
            (EXCHANGE_TS, 8),
            (TOKEN_ID, 8),
            (EVENT_LOG_OFFSET, 8),
            (CHECKSUM, 8),
            reserved(0),
            (FSM_STATE, 1),
            (FSM_TIER_STATE, 1),
            (FSM_TRIGGER_LEVEL, 1),
            (FSM_COOLDOWN, 1),
            reserved(1),
            (FSM_ENTRY_TICK, 8),
            (FSM_DURATION, 8),
            (FSM_REASON_FLAGS, 4),
            reserved(2),
            (HEAT_SCORE, 4),
            (HEAT_WINDOW_MODE, 1),
            reserved(3),
            (HEAT_ROLLING_SUM, 8),
            (HEAT_ROLLING_COUNT, 4),
            (HEAT_HYSTERESIS, 4),
            (HEAT_LAST_UPDATE, 8),
            (HEAT_RING, 4 * super::HEAT_RING),
            (TIER_VOLATILITY, 1),
            (TIER_OI_DENSITY, 1),
            (TIER_LIQUIDITY, 1),
            reserved(4),
            (TIER_VOLATILITY_METRIC, 4),
            (TIER_OI_DENSITY_METRIC, 4),
            (TIER_LIQUIDITY_METRIC, 4),
            (TIER_HYSTERESIS, 4),
            (TIER_LAST_UPDATE, 8),
            reserved(5),
            (TRIGGER_SCORE, 4),
            (TRIGGER_LIQUIDITY_STRESS, 4),
            (TRIGGER_COMPRESSION, 4),
            (TRIGGER_DIVERGENCE, 4),
            (TRIGGER_OI_VELOCITY, 4),
            (TRIGGER_LAST_UPDATE, 8),
            reserved(6),
            (OHLC_1M, BAR_LEN),
            reserved(7),
            (OHLC_5M, BAR_LEN),
            reserved(8),
        ],
        super::SNAPSHOT_LEN
    ));
    const _: () = assert!(super::tiles(
        &[
            (BAR_BUCKET, 8),
            (BAR_OPEN, 4),
            (BAR_HIGH, 4),
            (BAR_LOW, 4),
            (BAR_CLOSE, 4),
            (BAR_VOLUME, 8),
            (BAR_TRADES, 4),
        ],
        BAR_LEN
    ));
    // Each block starts at its first field.
    const _: () = assert!(
        FSM == FSM_STATE
            && HEAT == HEAT_SCORE
            && TIER == TIER_VOLATILITY
            && TRIGGER == TRIGGER_SCORE
    );
}

/// The framing fields of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SnapshotHeader {
    pub version: u16,
    pub snapshot_type: u16,
    /// GlobalTickId of the last event applied.
    pub global_tick_id: u64,
    /// Engine clock (largest exchange time applied), ns since the epoch.
    pub exchange_ts_ns: u64,
    pub token_id: u64,
    /// Byte position in the token's event log just past the last applied event.
    pub event_log_offset: u64,
    /// xxh3-64 (seed 0) of the 336 bytes with bytes 40..48 zeroed.
    pub checksum: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SnapshotError {
    #[error("snapshot is {len} bytes, expected {SNAPSHOT_LEN}")]
    WrongLength { len: usize },
    #[error("bad magic {found:02x?}, expected `SNAP`")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported snapshot schema version {found} (this build reads {SCHEMA_VERSION})")]
    UnsupportedVersion { found: u16 },
    #[error("unknown snapshot type {found}")]
    UnknownType { found: u16 },
    #[error("checksum mismatch: stored {stored:#018x}, computed {computed:#018x}")]
    ChecksumMismatch { stored: u64, computed: u64 },
    #[error("reserved byte at offset {offset} is {value:#04x}, must be zero")]
    ReservedNotZero { offset: usize, value: u8 },
    #[error("field `{field}` has out-of-range value {value}")]
    FieldOutOfRange { field: &'static str, value: i128 },
    #[error("inconsistent snapshot: {what}")]
    Inconsistent { what: &'static str },
}

/// xxh3-64, seed 0, over all 336 bytes with the checksum field (40..48) read as zero.
pub fn checksum(bytes: &[u8; SNAPSHOT_LEN]) -> u64 {
    let mut copy = *bytes;
    copy[layout::CHECKSUM..layout::CHECKSUM + 8].fill(0);
    xxh3_64(&copy)
}

/// Encodes a state without judging it (tests use this to pin offsets with arbitrary values;
/// the engine only ever passes states that [`validate`] accepts).
pub(crate) fn encode_state(s: &EngineState, event_log_offset: u64) -> [u8; SNAPSHOT_LEN] {
    use layout as l;
    let mut b = [0u8; SNAPSHOT_LEN];
    b[l::MAGIC..l::MAGIC + MAGIC.len()].copy_from_slice(&MAGIC);
    put_u16(&mut b, l::VERSION, SCHEMA_VERSION);
    put_u16(&mut b, l::TYPE, SNAPSHOT_TYPE_TOKEN_ENGINE);
    put_u64(&mut b, l::GLOBAL_TICK_ID, s.progress.global_tick_id);
    put_u64(&mut b, l::EXCHANGE_TS, s.progress.exchange_ts_ns);
    put_u64(&mut b, l::TOKEN_ID, s.progress.token_id);
    put_u64(&mut b, l::EVENT_LOG_OFFSET, event_log_offset);

    let f = &s.fsm;
    b[l::FSM_STATE] = f.state as u8;
    b[l::FSM_TIER_STATE] = f.tier_state;
    b[l::FSM_TRIGGER_LEVEL] = f.trigger_level;
    b[l::FSM_COOLDOWN] = f.cooldown as u8;
    put_u64(&mut b, l::FSM_ENTRY_TICK, f.entry_tick);
    put_u64(&mut b, l::FSM_DURATION, f.duration_ns);
    put_u32(&mut b, l::FSM_REASON_FLAGS, f.reason_flags);

    let h = &s.heat;
    put_i32(&mut b, l::HEAT_SCORE, h.score);
    b[l::HEAT_WINDOW_MODE] = h.window as u8;
    put_i64(&mut b, l::HEAT_ROLLING_SUM, h.rolling_sum);
    put_u32(&mut b, l::HEAT_ROLLING_COUNT, h.rolling_count);
    put_u32(&mut b, l::HEAT_HYSTERESIS, h.hysteresis);
    put_u64(&mut b, l::HEAT_LAST_UPDATE, h.last_update_tick);
    for (i, &v) in h.ring.iter().enumerate() {
        put_i32(&mut b, l::HEAT_RING + 4 * i, v);
    }

    let t = &s.tiers;
    b[l::TIER_VOLATILITY] = t.volatility;
    b[l::TIER_OI_DENSITY] = t.oi_density;
    b[l::TIER_LIQUIDITY] = t.liquidity;
    put_i32(&mut b, l::TIER_VOLATILITY_METRIC, t.volatility_metric);
    put_i32(&mut b, l::TIER_OI_DENSITY_METRIC, t.oi_density_metric);
    put_i32(&mut b, l::TIER_LIQUIDITY_METRIC, t.liquidity_metric);
    put_u32(&mut b, l::TIER_HYSTERESIS, t.hysteresis);
    put_u64(&mut b, l::TIER_LAST_UPDATE, t.last_update_tick);

    let g = &s.trigger;
    put_i32(&mut b, l::TRIGGER_SCORE, g.score);
    put_i32(&mut b, l::TRIGGER_LIQUIDITY_STRESS, g.liquidity_stress);
    put_i32(&mut b, l::TRIGGER_COMPRESSION, g.compression);
    put_i32(&mut b, l::TRIGGER_DIVERGENCE, g.divergence);
    put_i32(&mut b, l::TRIGGER_OI_VELOCITY, g.oi_velocity);
    put_u64(&mut b, l::TRIGGER_LAST_UPDATE, g.last_update_tick);

    for (base, bar) in [(l::OHLC_1M, &s.bar_1m), (l::OHLC_5M, &s.bar_5m)] {
        put_u64(&mut b, base + l::BAR_BUCKET, bar.bucket);
        put_i32(&mut b, base + l::BAR_OPEN, bar.open);
        put_i32(&mut b, base + l::BAR_HIGH, bar.high);
        put_i32(&mut b, base + l::BAR_LOW, bar.low);
        put_i32(&mut b, base + l::BAR_CLOSE, bar.close);
        put_i64(&mut b, base + l::BAR_VOLUME, bar.volume);
        put_u32(&mut b, base + l::BAR_TRADES, bar.trades);
    }

    let sum = checksum(&b);
    put_u64(&mut b, l::CHECKSUM, sum);
    debug_assert!(layout::RESERVED
        .iter()
        .all(|&(a, z)| b[a..z].iter().all(|&x| x == 0)));
    b
}

/// Checks the framing (magic, version, type, checksum, reserved bytes) and returns the header.
pub fn decode_header(b: &[u8; SNAPSHOT_LEN]) -> Result<SnapshotHeader, SnapshotError> {
    use layout as l;
    let magic: [u8; 4] = b[l::MAGIC..l::MAGIC + MAGIC.len()]
        .try_into()
        .expect("4 bytes");
    if magic != MAGIC {
        return Err(SnapshotError::BadMagic { found: magic });
    }
    let version = u16_at(b, l::VERSION);
    if version != SCHEMA_VERSION {
        return Err(SnapshotError::UnsupportedVersion { found: version });
    }
    let snapshot_type = u16_at(b, l::TYPE);
    if snapshot_type != SNAPSHOT_TYPE_TOKEN_ENGINE {
        return Err(SnapshotError::UnknownType {
            found: snapshot_type,
        });
    }
    let stored = u64_at(b, l::CHECKSUM);
    let computed = checksum(b);
    if stored != computed {
        return Err(SnapshotError::ChecksumMismatch { stored, computed });
    }
    for &(from, to) in &l::RESERVED {
        if let Some(i) = (from..to).find(|&i| b[i] != 0) {
            return Err(SnapshotError::ReservedNotZero {
                offset: i,
                value: b[i],
            });
        }
    }
    Ok(SnapshotHeader {
        version,
        snapshot_type,
        global_tick_id: u64_at(b, l::GLOBAL_TICK_ID),
        exchange_ts_ns: u64_at(b, l::EXCHANGE_TS),
        token_id: u64_at(b, l::TOKEN_ID),
        event_log_offset: u64_at(b, l::EVENT_LOG_OFFSET),
        checksum: stored,
    })
}

fn out_of_range(field: &'static str, value: impl Into<i128>) -> SnapshotError {
    SnapshotError::FieldOutOfRange {
        field,
        value: value.into(),
    }
}

/// Decodes and validates a whole snapshot.
pub(crate) fn decode_state(
    b: &[u8; SNAPSHOT_LEN],
) -> Result<(EngineState, SnapshotHeader), SnapshotError> {
    use layout as l;
    let header = decode_header(b)?;

    let state = FsmState::from_u8(b[l::FSM_STATE])
        .ok_or_else(|| out_of_range("fsm.state", b[l::FSM_STATE]))?;
    let cooldown = CooldownKind::from_u8(b[l::FSM_COOLDOWN])
        .ok_or_else(|| out_of_range("fsm.cooldown_subtype", b[l::FSM_COOLDOWN]))?;
    let window = HeatWindow::from_u8(b[l::HEAT_WINDOW_MODE])
        .ok_or_else(|| out_of_range("heat.window_mode", b[l::HEAT_WINDOW_MODE]))?;

    let mut ring = [0i32; HEAT_RING];
    for (i, v) in ring.iter_mut().enumerate() {
        *v = i32_at(b, l::HEAT_RING + 4 * i);
    }
    let bar = |base: usize| Bar {
        bucket: u64_at(b, base + l::BAR_BUCKET),
        open: i32_at(b, base + l::BAR_OPEN),
        high: i32_at(b, base + l::BAR_HIGH),
        low: i32_at(b, base + l::BAR_LOW),
        close: i32_at(b, base + l::BAR_CLOSE),
        volume: i64_at(b, base + l::BAR_VOLUME),
        trades: u32_at(b, base + l::BAR_TRADES),
    };

    let s = EngineState {
        progress: Progress {
            token_id: header.token_id,
            global_tick_id: header.global_tick_id,
            exchange_ts_ns: header.exchange_ts_ns,
        },
        fsm: FsmBlock {
            state,
            tier_state: b[l::FSM_TIER_STATE],
            trigger_level: b[l::FSM_TRIGGER_LEVEL],
            cooldown,
            entry_tick: u64_at(b, l::FSM_ENTRY_TICK),
            duration_ns: u64_at(b, l::FSM_DURATION),
            reason_flags: u32_at(b, l::FSM_REASON_FLAGS),
        },
        heat: HeatBlock {
            score: i32_at(b, l::HEAT_SCORE),
            window,
            rolling_sum: i64_at(b, l::HEAT_ROLLING_SUM),
            rolling_count: u32_at(b, l::HEAT_ROLLING_COUNT),
            hysteresis: u32_at(b, l::HEAT_HYSTERESIS),
            last_update_tick: u64_at(b, l::HEAT_LAST_UPDATE),
            ring,
        },
        tiers: TierBlock {
            volatility: b[l::TIER_VOLATILITY],
            oi_density: b[l::TIER_OI_DENSITY],
            liquidity: b[l::TIER_LIQUIDITY],
            volatility_metric: i32_at(b, l::TIER_VOLATILITY_METRIC),
            oi_density_metric: i32_at(b, l::TIER_OI_DENSITY_METRIC),
            liquidity_metric: i32_at(b, l::TIER_LIQUIDITY_METRIC),
            hysteresis: u32_at(b, l::TIER_HYSTERESIS),
            last_update_tick: u64_at(b, l::TIER_LAST_UPDATE),
        },
        trigger: TriggerBlock {
            score: i32_at(b, l::TRIGGER_SCORE),
            liquidity_stress: i32_at(b, l::TRIGGER_LIQUIDITY_STRESS),
            compression: i32_at(b, l::TRIGGER_COMPRESSION),
            divergence: i32_at(b, l::TRIGGER_DIVERGENCE),
            oi_velocity: i32_at(b, l::TRIGGER_OI_VELOCITY),
            last_update_tick: u64_at(b, l::TRIGGER_LAST_UPDATE),
        },
        bar_1m: bar(l::OHLC_1M),
        bar_5m: bar(l::OHLC_5M),
    };
    validate(&s)?;
    Ok((s, header))
}

fn in_range(field: &'static str, v: i32, lo: i32, hi: i32) -> Result<(), SnapshotError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(out_of_range(field, v))
    }
}

fn ensure(cond: bool, what: &'static str) -> Result<(), SnapshotError> {
    if cond {
        Ok(())
    } else {
        Err(SnapshotError::Inconsistent { what })
    }
}

/// Every invariant the engine maintains. A state that passes can be resumed: `apply` on it
/// behaves exactly as on the state the engine had when it wrote the snapshot.
pub fn validate(s: &EngineState) -> Result<(), SnapshotError> {
    let p = &s.progress;
    let f = &s.fsm;
    let h = &s.heat;
    let t = &s.tiers;
    let g = &s.trigger;

    // FSM
    ensure(
        (f.state == FsmState::Cooldown) == (f.cooldown != CooldownKind::None),
        "cooldown subtype must be set exactly in the Cooldown state",
    )?;
    if f.reason_flags & !flags::KNOWN_MASK != 0 {
        return Err(out_of_range("fsm.reason_flags", f.reason_flags));
    }
    if f.price_shift() > MAX_PRICE_SHIFT {
        return Err(out_of_range(
            "fsm.reason_flags.price_shift",
            f.price_shift(),
        ));
    }
    if f.tier_state > MAX_TIER {
        return Err(out_of_range("fsm.tier_state", f.tier_state));
    }
    ensure(
        f.tier_state == t.volatility.max(t.oi_density).max(t.liquidity),
        "fsm.tier_state must be the highest tier",
    )?;
    ensure(
        f.trigger_level == trigger_level(g.score),
        "fsm.trigger_level must be the level of the trigger score",
    )?;
    ensure(
        f.entry_tick <= p.global_tick_id,
        "fsm.entry_tick is after the last applied tick",
    )?;
    ensure(
        f.duration_ns <= p.exchange_ts_ns,
        "fsm.duration is longer than the clock",
    )?;

    // Heat
    in_range("heat.score", h.score, 0, HEAT_MAX)?;
    if h.rolling_count > HEAT_BASELINE_WINDOWS {
        return Err(out_of_range("heat.rolling_count", h.rolling_count));
    }
    if h.rolling_sum < 0 {
        return Err(out_of_range("heat.rolling_sum", h.rolling_sum));
    }
    ensure(
        h.rolling_count != 0 || h.rolling_sum == 0,
        "heat.rolling_sum without rolling_count",
    )?;
    for v in h.ring {
        in_range("heat.ring", v, 0, i32::MAX)?;
    }
    ensure(
        h.last_update_tick <= p.global_tick_id,
        "heat.last_update_tick is after the last applied tick",
    )?;

    // Tiers
    for (name, tier) in [
        ("tier.volatility", t.volatility),
        ("tier.oi_density", t.oi_density),
        ("tier.liquidity", t.liquidity),
    ] {
        if tier > MAX_TIER {
            return Err(out_of_range(name, tier));
        }
    }
    in_range(
        "tier.volatility_metric",
        t.volatility_metric,
        0,
        RANGE_PPM_MAX,
    )?;
    in_range(
        "tier.oi_density_metric",
        t.oi_density_metric,
        0,
        (63 << 16) | 0xFFFF,
    )?;
    in_range(
        "tier.liquidity_metric",
        t.liquidity_metric,
        0,
        SPREAD_PPB_MAX,
    )?;
    ensure(
        t.last_update_tick <= p.global_tick_id,
        "tier.last_update_tick is after the last applied tick",
    )?;

    // Trigger
    in_range("trigger.score", g.score, 0, SCORE_MAX)?;
    in_range("trigger.liquidity_stress", g.liquidity_stress, 0, SCORE_MAX)?;
    in_range("trigger.compression", g.compression, 0, SCORE_MAX)?;
    in_range(
        "trigger.divergence",
        g.divergence,
        -MOVE_PPM_MAX,
        MOVE_PPM_MAX,
    )?;
    in_range(
        "trigger.oi_velocity",
        g.oi_velocity,
        -OI_VELOCITY_PPM_MAX,
        OI_VELOCITY_PPM_MAX,
    )?;
    ensure(
        g.last_update_tick <= p.global_tick_id,
        "trigger.last_update_tick is after the last applied tick",
    )?;

    // Neutral parts must be neutral.
    if f.has(flags::NO_OPEN_INTEREST) {
        ensure(
            t.oi_density == 0
                && t.oi_density_metric == 0
                && g.oi_velocity == 0
                && g.divergence == 0,
            "open-interest fields must be 0 while no open interest was seen",
        )?;
    }
    if f.has(flags::NO_QUOTES) {
        ensure(
            t.liquidity == 0 && t.liquidity_metric == 0 && g.liquidity_stress == 0,
            "liquidity fields must be 0 while no quote was seen",
        )?;
    }

    // Bars
    ensure(
        s.bar_1m.bucket == p.exchange_ts_ns / BAR_1M_NS,
        "ohlc_1m.bucket is not the bucket of the clock",
    )?;
    ensure(
        s.bar_5m.bucket == p.exchange_ts_ns / BAR_5M_NS,
        "ohlc_5m.bucket is not the bucket of the clock",
    )?;
    for bar in [&s.bar_1m, &s.bar_5m] {
        if bar.volume < 0 {
            return Err(out_of_range("ohlc.volume", bar.volume));
        }
        if bar.trades == 0 {
            ensure(
                bar.open == bar.close && bar.high == bar.close && bar.low == bar.close,
                "an empty bar must hold the last close in all four prices",
            )?;
            ensure(bar.volume == 0, "an empty bar has volume")?;
        } else {
            ensure(
                bar.low <= bar.open.min(bar.close) && bar.high >= bar.open.max(bar.close),
                "bar low/high do not bracket open and close",
            )?;
        }
    }
    let (m1, m5) = (&s.bar_1m, &s.bar_5m);
    if m1.trades > 0 {
        ensure(
            m5.trades >= m1.trades
                && m5.volume >= m1.volume
                && m5.high >= m1.high
                && m5.low <= m1.low
                && m5.close == m1.close,
            "the 5m bar must contain the 1m bar",
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distinct, recognizable values in every field (not a state the engine could reach;
    /// only the encoder is under test here).
    fn distinct() -> EngineState {
        let mut s = EngineState::new(0x1111_2222_3333_4444, HeatWindow::S5);
        s.progress.global_tick_id = 0x0102_0304_0506_0708;
        s.progress.exchange_ts_ns = 0x1112_1314_1516_1718;
        s.fsm = FsmBlock {
            state: FsmState::Cooldown,
            tier_state: 0xA2,
            trigger_level: 0xA3,
            cooldown: CooldownKind::DataGap,
            entry_tick: 0x2122_2324_2526_2728,
            duration_ns: 0x3132_3334_3536_3738,
            reason_flags: 0x4142_4344,
        };
        s.heat = HeatBlock {
            score: 0x5152_5354,
            window: HeatWindow::S60,
            rolling_sum: 0x6162_6364_6566_6768,
            rolling_count: 0x7172_7374,
            hysteresis: 0x7576_7778,
            last_update_tick: 0x0A0B_0C0D_0E0F_1011,
            ring: [
                0x1000_0001,
                0x1000_0002,
                0x1000_0003,
                0x1000_0004,
                0x1000_0005,
                0x1000_0006,
                0x1000_0007,
                0x1000_0008,
            ],
        };
        s.tiers = TierBlock {
            volatility: 0xB1,
            oi_density: 0xB2,
            liquidity: 0xB3,
            volatility_metric: 0x2000_0001,
            oi_density_metric: 0x2000_0002,
            liquidity_metric: 0x2000_0003,
            hysteresis: 0x2000_0004,
            last_update_tick: 0x2000_0000_0000_0005,
        };
        s.trigger = TriggerBlock {
            score: 0x3000_0001,
            liquidity_stress: 0x3000_0002,
            compression: 0x3000_0003,
            divergence: 0x3000_0004,
            oi_velocity: 0x3000_0005,
            last_update_tick: 0x3000_0000_0000_0006,
        };
        s.bar_1m = Bar {
            bucket: 0x4000_0000_0000_0001,
            open: 0x4000_0002,
            high: 0x4000_0003,
            low: 0x4000_0004,
            close: 0x4000_0005,
            volume: 0x4000_0000_0000_0006,
            trades: 0x4000_0007,
        };
        s.bar_5m = Bar {
            bucket: 0x5000_0000_0000_0001,
            open: 0x5000_0002,
            high: 0x5000_0003,
            low: 0x5000_0004,
            close: 0x5000_0005,
            volume: 0x5000_0000_0000_0006,
            trades: 0x5000_0007,
        };
        s
    }

    #[test]
    fn header_offsets() {
        let b = encode_state(&distinct(), 0x0F0E_0D0C_0B0A_0908);
        assert_eq!(&b[0..4], b"SNAP");
        assert_eq!(u32::from_be_bytes(b[0..4].try_into().unwrap()), 0x534E_4150);
        assert_eq!(u16_at(&b, 4), 1);
        assert_eq!(u16_at(&b, 6), 1);
        assert_eq!(u64_at(&b, 8), 0x0102_0304_0506_0708);
        assert_eq!(u64_at(&b, 16), 0x1112_1314_1516_1718);
        assert_eq!(u64_at(&b, 24), 0x1111_2222_3333_4444);
        assert_eq!(u64_at(&b, 32), 0x0F0E_0D0C_0B0A_0908);
        assert_eq!(u64_at(&b, 40), checksum(&b));
        assert!(b[48..64].iter().all(|&x| x == 0));
    }

    #[test]
    fn fsm_offsets() {
        let b = encode_state(&distinct(), 0);
        assert_eq!(b[64], FsmState::Cooldown as u8);
        assert_eq!(b[65], 0xA2);
        assert_eq!(b[66], 0xA3);
        assert_eq!(b[67], CooldownKind::DataGap as u8);
        assert!(b[68..72].iter().all(|&x| x == 0));
        assert_eq!(u64_at(&b, 72), 0x2122_2324_2526_2728);
        assert_eq!(u64_at(&b, 80), 0x3132_3334_3536_3738);
        assert_eq!(u32_at(&b, 88), 0x4142_4344);
        assert!(b[92..96].iter().all(|&x| x == 0));
    }

    #[test]
    fn heat_offsets() {
        let b = encode_state(&distinct(), 0);
        assert_eq!(u32_at(&b, 96), 0x5152_5354);
        assert_eq!(b[100], HeatWindow::S60 as u8);
        assert!(b[101..104].iter().all(|&x| x == 0));
        assert_eq!(u64_at(&b, 104), 0x6162_6364_6566_6768);
        assert_eq!(u32_at(&b, 112), 0x7172_7374);
        assert_eq!(u32_at(&b, 116), 0x7576_7778);
        assert_eq!(u64_at(&b, 120), 0x0A0B_0C0D_0E0F_1011);
        for i in 0..8 {
            assert_eq!(u32_at(&b, 128 + 4 * i), 0x1000_0001 + i as u32);
        }
    }

    #[test]
    fn tier_offsets() {
        let b = encode_state(&distinct(), 0);
        assert_eq!(b[160], 0xB1);
        assert_eq!(b[161], 0xB2);
        assert_eq!(b[162], 0xB3);
        assert!(b[163..168].iter().all(|&x| x == 0));
        assert_eq!(u32_at(&b, 168), 0x2000_0001);
        assert_eq!(u32_at(&b, 172), 0x2000_0002);
        assert_eq!(u32_at(&b, 176), 0x2000_0003);
        assert_eq!(u32_at(&b, 180), 0x2000_0004);
        assert_eq!(u64_at(&b, 184), 0x2000_0000_0000_0005);
        assert!(b[192..208].iter().all(|&x| x == 0));
    }

    #[test]
    fn trigger_offsets() {
        let b = encode_state(&distinct(), 0);
        assert_eq!(u32_at(&b, 208), 0x3000_0001);
        assert_eq!(u32_at(&b, 212), 0x3000_0002);
        assert_eq!(u32_at(&b, 216), 0x3000_0003);
        assert_eq!(u32_at(&b, 220), 0x3000_0004);
        assert_eq!(u32_at(&b, 224), 0x3000_0005);
        assert_eq!(u64_at(&b, 228), 0x3000_0000_0000_0006);
        assert!(b[236..240].iter().all(|&x| x == 0));
    }

    #[test]
    fn ohlc_offsets() {
        let b = encode_state(&distinct(), 0);
        for (base, tag) in [(240usize, 0x4u64), (288, 0x5)] {
            assert_eq!(u64_at(&b, base), tag << 60 | 1);
            assert_eq!(u32_at(&b, base + 8), (tag as u32) << 28 | 2);
            assert_eq!(u32_at(&b, base + 12), (tag as u32) << 28 | 3);
            assert_eq!(u32_at(&b, base + 16), (tag as u32) << 28 | 4);
            assert_eq!(u32_at(&b, base + 20), (tag as u32) << 28 | 5);
            assert_eq!(u64_at(&b, base + 24), tag << 60 | 6);
            assert_eq!(u32_at(&b, base + 32), (tag as u32) << 28 | 7);
            assert!(b[base + 36..base + 48].iter().all(|&x| x == 0));
        }
        assert_eq!(b.len(), 336);
    }

    #[test]
    fn framing_errors_are_typed() {
        let s = EngineState::new(7, HeatWindow::S1);
        let good = encode_state(&s, 99);
        let (back, header) = decode_state(&good).unwrap();
        assert_eq!(back, s);
        assert_eq!(header.event_log_offset, 99);

        let mut b = good;
        b[0] = b'X';
        assert!(matches!(
            decode_state(&b),
            Err(SnapshotError::BadMagic { .. })
        ));

        let mut b = good;
        b[4] = 2;
        assert_eq!(
            decode_state(&b),
            Err(SnapshotError::UnsupportedVersion { found: 2 })
        );

        let mut b = good;
        b[6] = 9;
        assert_eq!(
            decode_state(&b),
            Err(SnapshotError::UnknownType { found: 9 })
        );

        // Every byte outside the checksum field is covered by it.
        for i in (0..SNAPSHOT_LEN).filter(|i| !(4..8).contains(i) && !(40..48).contains(i)) {
            let mut b = good;
            b[i] ^= 0x01;
            let err = decode_state(&b).unwrap_err();
            let expected = if i < 4 {
                matches!(err, SnapshotError::BadMagic { .. })
            } else {
                matches!(err, SnapshotError::ChecksumMismatch { .. })
            };
            assert!(expected, "byte {i}: {err:?}");
        }

        // A reserved byte with a matching checksum is still refused.
        let mut b = good;
        b[50] = 1;
        let sum = checksum(&b);
        put_u64(&mut b, 40, sum);
        assert_eq!(
            decode_state(&b),
            Err(SnapshotError::ReservedNotZero {
                offset: 50,
                value: 1
            })
        );

        // A field out of range with a matching checksum is refused by name.
        let mut b = good;
        b[64] = 9;
        let sum = checksum(&b);
        put_u64(&mut b, 40, sum);
        assert_eq!(
            decode_state(&b),
            Err(SnapshotError::FieldOutOfRange {
                field: "fsm.state",
                value: 9
            })
        );
    }
}
