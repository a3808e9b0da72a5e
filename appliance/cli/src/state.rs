//! `chronicle engine run`, `chronicle snapshot inspect`, `chronicle audit`.

use crate::locate::Where;
use crate::CliResult;
use chronicle_engine::{EngineState, TokenEngine};
use chronicle_protocol::Scaled;
use chronicle_reader::render::Scale;
use chronicle_reader::TierRoots;
use chronicle_state::audit::audit;
use chronicle_state::log::TokenLog;
use chronicle_state::position::LogPosition;
use chronicle_state::recovery::{catch_up, Cadence};
use chronicle_state::store::SnapshotStore;
use chronicle_storage::symbols::DimSymbol;
use chronicle_storage::utc;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    place: Where,
    /// Snapshot cadence in ms of exchange time (a multiple of the 250 ms flush).
    #[arg(long, default_value_t = 60_000)]
    every_ms: u64,
    /// Snapshots kept per token.
    #[arg(long, default_value_t = 16)]
    retain: usize,
}

/// Brings every token's engine up to date with its log: resume from the newest valid
/// snapshot, replay the rest, snapshot at each cadence boundary and at the end.
pub fn run(a: RunArgs) -> CliResult {
    if a.every_ms == 0 || !a.every_ms.is_multiple_of(250) {
        return Err(format!(
            "--every-ms {} is not a positive multiple of the 250 ms flush",
            a.every_ms
        )
        .into());
    }
    let data_dir = a.place.data_dir()?;
    let _lock = chronicle_storage::fsutil::lock_dir(&data_dir, "chronicle engine run")?;
    let store = SnapshotStore::new(&data_dir, a.retain);
    for (token, dirs) in tokens(&data_dir)? {
        let log = TokenLog::new(dirs);
        let (r, written) = catch_up(
            &store,
            &log,
            token,
            Some(Cadence {
                every_ns: a.every_ms * 1_000_000,
                at_end: true,
            }),
        )?;
        println!(
            "token {token}: resumed from {}, {} fallbacks, replayed {} records, wrote {written} snapshots; \
             tick {} state {:?}",
            r.snapshot.as_ref().map_or("the start of the log".into(), |p| p.display().to_string()),
            r.fallbacks.len(),
            r.replayed,
            r.engine.last_global_tick_id(),
            r.engine.fsm_state()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Each token (symbol_id) with the directories of its codes.
fn tokens(
    data_dir: &std::path::Path,
) -> Result<BTreeMap<u64, Vec<PathBuf>>, Box<dyn std::error::Error>> {
    let symbols = DimSymbol::load(data_dir)?;
    Ok(symbols
        .rows()
        .iter()
        .map(|r| (r.symbol_id, symbols.log_dirs(data_dir, r.symbol_id)))
        .collect())
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// A `.snap` file (`{data_dir}/snapshots/{token}/{time}.snap`).
    file: PathBuf,
    /// Where the token's log is, for the exponents that scale the bars' prices and volumes.
    /// Default: the data directory the file is in.
    #[command(flatten)]
    place: Where,
}

/// Every field of a snapshot as JSON; a damaged file is an error saying why. Bar prices and
/// volumes are shown scaled by the exponents of the partition the snapshot's log position is
/// in, beside their raw values.
pub fn inspect(a: InspectArgs) -> CliResult {
    let bytes = std::fs::read(&a.file).map_err(|e| format!("{}: {e}", a.file.display()))?;
    let (engine, h) =
        TokenEngine::restore_slice(&bytes).map_err(|e| format!("{}: {e}", a.file.display()))?;
    let s: &EngineState = engine.state();
    let pos = LogPosition::unpack(h.event_log_offset);
    let roots = match (&a.place.config, &a.place.data_dir) {
        (None, None) => {
            // snapshots/{token}/{name}.snap below the data directory.
            let dir = a.file.ancestors().nth(3).unwrap_or(Path::new("."));
            TierRoots::warm_only(dir.to_owned())
        }
        _ => a.place.roots()?,
    };
    let scale = pos
        .ok_or_else(|| "the snapshot has no log position".to_owned())
        .and_then(|p| scale_at(&roots, h.token_id, p));
    let shift = i32::from(s.fsm.price_shift());
    let scaled = |mantissa: i64, exponent: Option<i8>| {
        exponent.map(|exponent| Scaled { mantissa, exponent }.to_string())
    };
    let price_exp = scale
        .as_ref()
        .ok()
        .and_then(|sc| i8::try_from(i32::from(sc.price_exponent) + shift).ok());
    let qty_exp = scale.as_ref().ok().map(|sc| sc.quantity_exponent);
    let bar = |b: &chronicle_engine::Bar| {
        json!({
            "bucket": b.bucket, "open": b.open, "high": b.high, "low": b.low, "close": b.close,
            "volume": b.volume, "trades": b.trades,
            "open_scaled": scaled(b.open.into(), price_exp),
            "high_scaled": scaled(b.high.into(), price_exp),
            "low_scaled": scaled(b.low.into(), price_exp),
            "close_scaled": scaled(b.close.into(), price_exp),
            "volume_scaled": scaled(b.volume, qty_exp),
        })
    };
    let scale_json = match &scale {
        Ok(sc) => json!({
            "price_exponent": sc.price_exponent, "quantity_exponent": sc.quantity_exponent,
            "price_shift": shift,
        }),
        Err(why) => json!({ "unavailable": why }),
    };
    let v = json!({
        "header": {
            "magic": "SNAP", "schema_version": h.version, "snapshot_type": h.snapshot_type,
            "global_tick_id": h.global_tick_id, "exchange_ts_ns": h.exchange_ts_ns,
            "exchange_time": utc::rfc3339(h.exchange_ts_ns), "token_id": h.token_id,
            "event_log_offset": h.event_log_offset,
            "event_log_position": pos.map(|p| json!({"partition_date": utc::iso_date(p.date), "offset": p.offset})),
            "state_checksum": format!("{:016x}", h.checksum),
        },
        "scale": scale_json,
        "fsm": {
            "state": format!("{:?}", s.fsm.state), "tier_state": s.fsm.tier_state,
            "trigger_level": s.fsm.trigger_level, "cooldown": format!("{:?}", s.fsm.cooldown),
            "entry_tick": s.fsm.entry_tick, "duration_ns": s.fsm.duration_ns,
            "reason_flags": format!("{:#010x}", s.fsm.reason_flags),
        },
        "heat": {
            "score": s.heat.score, "window": format!("{:?}", s.heat.window),
            "rolling_sum": s.heat.rolling_sum, "rolling_count": s.heat.rolling_count,
            "hysteresis": s.heat.hysteresis, "last_update_tick": s.heat.last_update_tick,
            "ring": s.heat.ring,
        },
        "tiers": {
            "volatility": s.tiers.volatility, "oi_density": s.tiers.oi_density,
            "liquidity": s.tiers.liquidity, "volatility_metric": s.tiers.volatility_metric,
            "oi_density_metric": s.tiers.oi_density_metric, "liquidity_metric": s.tiers.liquidity_metric,
            "hysteresis": s.tiers.hysteresis, "last_update_tick": s.tiers.last_update_tick,
        },
        "trigger": {
            "score": s.trigger.score, "liquidity_stress": s.trigger.liquidity_stress,
            "compression": s.trigger.compression, "divergence": s.trigger.divergence,
            "oi_velocity": s.trigger.oi_velocity, "last_update_tick": s.trigger.last_update_tick,
        },
        "ohlc_1m": bar(&s.bar_1m),
        "ohlc_5m": bar(&s.bar_5m),
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(ExitCode::SUCCESS)
}

/// The exponents of the partition holding `pos` in the log of `token`.
fn scale_at(roots: &TierRoots, token: u64, pos: LogPosition) -> Result<Scale, String> {
    let symbols = DimSymbol::load(&roots.warm).map_err(|e| e.to_string())?;
    let date = utc::iso_date(pos.date);
    for dir in symbols.log_dirs(&roots.warm, token) {
        let key = dir.strip_prefix(&roots.warm).unwrap_or(&dir).join(&date);
        if roots.locate(&key).is_some() {
            let (_, p) = roots.open(&key).map_err(|e| e.to_string())?;
            let h = p.body.header();
            return Ok(Scale {
                price_exponent: h.price_exponent,
                quantity_exponent: h.quantity_exponent,
            });
        }
    }
    Err(format!(
        "no partition of token {token} on {date} under {} (--data-dir or --config names where the log is)",
        roots.warm.display()
    ))
}

#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    place: Where,
    /// The UTC day whose manifest to verify (YYYY-MM-DD).
    #[arg(long, value_parser = |s: &str| utc::parse_iso_date(s).ok_or(format!("`{s}` is not YYYY-MM-DD")))]
    date: time::Date,
}

/// Prints the day's Merkle root and verifies every snapshot of that day against it.
pub fn audit_day(a: AuditArgs) -> CliResult {
    let store = SnapshotStore::new(&a.place.data_dir()?, 2);
    let r = audit(&store, a.date)?;
    println!("merkle_root {}", r.root_hex);
    println!(
        "{}: {} entries, {} snapshots verified, {} pruned by retention{}",
        r.manifest.display(),
        r.entries,
        r.verified,
        r.pruned,
        if r.torn {
            ", torn last line ignored"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}
