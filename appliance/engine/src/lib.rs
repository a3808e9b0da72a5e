//! chronicle-engine: the per-token tick engine and its 336-byte snapshot (`docs/engine.md`).
//!
//! A [`TokenEngine`] consumes one token's normalized records ([`chronicle_protocol::Record`])
//! in GlobalTickId order and keeps five blocks of state: an FSM (Warmup / Quiet / Active /
//! Hot / Cooldown), heat (trade rate against its own baseline), tiers (volatility, OI density,
//! liquidity, with hysteresis), trigger-cost scores, and 1m/5m OHLC bars. The whole state is
//! one `Copy` struct that the snapshot holds completely, so `restore(snapshot())` followed by
//! the rest of the log gives byte-identical results to never stopping.
//!
//! Rules: integers only, saturating or widened arithmetic everywhere (no panic, no overflow
//! on any input), no allocation in `apply`, no wall clock (time is the records' exchange
//! time), no hash maps. Formulas: `docs/engine.md`; layout: `docs/formats/snapshot.md`.

mod engine;
mod fixed;
pub mod params;
mod snapshot;
mod state;

pub use engine::{ApplyError, TokenEngine, Transition};
pub use snapshot::{
    checksum, decode_header, layout, validate, SnapshotError, SnapshotHeader, MAGIC,
    SCHEMA_VERSION, SNAPSHOT_LEN, SNAPSHOT_TYPE_TOKEN_ENGINE,
};
pub use state::{
    flags, trigger_level, Bar, CooldownKind, EngineState, FsmBlock, FsmState, HeatBlock,
    HeatWindow, Progress, TierBlock, TriggerBlock,
};
