//! The shard's declaration worker: the disk work of a token's first declaration, on a helper
//! thread. A new token needs its `dim_symbol` row (registered if the data directory has never
//! seen the symbol), where its log continues, its open partitions on disk repaired and
//! recounted, and its engine recovered from its newest snapshot and the durable log. All of
//! that reads files; the shard holds the token's records meanwhile and installs the result
//! without touching the disk (`Shard::settle`).

use crate::helper::Helper;
use crate::RuntimeError;
use chronicle_engine::TokenEngine;
use chronicle_etl::{EtlError, Prepared, Refinery, RefineryConfig, ReplayResume};
use chronicle_protocol::Definition;
use chronicle_state::log::TokenLog;
use chronicle_state::position::LogPosition;
use chronicle_state::recovery::{catch_up, Cadence};
use chronicle_state::store::SnapshotStore;
use chronicle_storage::symbols::DimSymbol;

pub struct Request {
    pub token: u32,
    pub definition: Definition,
    pub replay: Option<ReplayResume>,
}

/// A token ready to install.
pub struct Recovered {
    pub prepared: Prepared,
    pub engine: TokenEngine,
    /// Just past the last record the engine applied.
    pub position: Option<LogPosition>,
    /// Damaged snapshots skipped for older ones (each reported as it was).
    pub fallbacks: u64,
}

pub struct Answer {
    pub token: u32,
    pub result: Result<Recovered, RuntimeError>,
}

pub type DeclarationWorker = Helper<Request, Answer>;

/// Starts shard `index`'s worker. `cadence`: the snapshot points the recovered log passed
/// since the newest snapshot (a run killed before writing them) are written on the way.
pub fn spawn(
    index: usize,
    shard_cpus: Vec<usize>,
    cfg: RefineryConfig,
    retain: usize,
    cadence: Cadence,
) -> Result<DeclarationWorker, RuntimeError> {
    let store = SnapshotStore::new(&cfg.data_dir, retain);
    let mut symbols: Option<DimSymbol> = None;
    Helper::spawn(
        format!("chronicle-decl-{index}"),
        shard_cpus,
        move |q: Request| {
            let token = q.token;
            let result = recover(&cfg, &store, &mut symbols, cadence, q);
            if let Err(e) = &result {
                if !matches!(e, RuntimeError::Etl(EtlError::Identity(_))) {
                    eprintln!("chronicle: shard {index}: token {token}: {e}");
                }
            }
            Answer { token, result }
        },
    )
}

fn recover(
    cfg: &RefineryConfig,
    store: &SnapshotStore,
    table: &mut Option<DimSymbol>,
    cadence: Cadence,
    q: Request,
) -> Result<Recovered, RuntimeError> {
    // The shard's refinery gets the table whenever it may be newer than its own.
    let fresh = table.is_none();
    let symbols = match table {
        Some(s) => s,
        None => table.insert(DimSymbol::load(&cfg.data_dir)?),
    };
    let mut prepared = Refinery::prepare(cfg, symbols, q.token, q.definition, q.replay);
    // A symbol this data directory has never seen: the feed's identity is taken as is (its
    // token id becomes the symbol id), unless that id is another symbol's.
    if let (Err(EtlError::Identity(_)), None, Ok((venue, raw))) =
        (&prepared, q.replay, Refinery::names(&q.definition))
    {
        prepared = DimSymbol::register_declared(&cfg.data_dir, &venue, &raw, q.token as u64)
            .map_err(|e| EtlError::Identity(e.to_string()))
            .and_then(|_| Refinery::prepare(cfg, symbols, q.token, q.definition, q.replay));
    }
    let (mut prepared, reloaded) = prepared?;
    if reloaded || fresh {
        prepared.symbols = Some(symbols.clone());
    }
    let dirs = symbols.log_dirs(&cfg.data_dir, q.token as u64);
    let cadence = Cadence {
        at_end: false,
        ..cadence
    };
    // (It reports each damaged snapshot it skips.)
    let (r, _) = catch_up(store, &TokenLog::new(dirs), q.token as u64, Some(cadence))?;
    Ok(Recovered {
        prepared,
        engine: r.engine,
        position: r.position,
        fallbacks: r.fallbacks.len() as u64,
    })
}
