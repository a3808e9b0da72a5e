//! The feed side of a bounded run: a capture (real or synthetic) decoded by the importers'
//! sources into records that go to the shards' rings. Identity is the feed's: it registers
//! each new instrument in dim_symbol and sends the shard a declaration before its events.
//! A replay is lossless: when a ring is full the feed waits (a live UDP feed never does; it
//! drops and marks the gap, see chronicle-feed).

use chronicle_etl::resume::resume;
use chronicle_feed::{Producer, ShardMap};
use chronicle_import::{EventSink, ImportError, Instrument, InstrumentHandle};
use chronicle_protocol::{Body, Declaration, Meta, Record, MAX_RECORD_LEN};
use chronicle_storage::fsutil::{create_dir_durable, write_atomic};
use chronicle_storage::symbols::DimSymbol;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where each token's stream started in the first run of a replayed input, so that a rerun
/// (after a crash, or simply again) re-derives the same tick ids and writes only what is
/// not yet durable: `{data_dir}/v1/runs/{input key}.json`, written atomically.
pub struct RunLedger {
    path: PathBuf,
    start_ticks: BTreeMap<u32, u64>,
}

#[derive(Serialize, Deserialize)]
struct LedgerFile {
    format: String,
    input: String,
    start_ticks: BTreeMap<u32, u64>,
}

impl RunLedger {
    /// `input` names the replayed input exactly (kind, path, size, seed...).
    pub fn open(data_dir: &Path, input: &str) -> Result<Self, ImportError> {
        let key = format!("{:016x}", fnv1a(input.as_bytes()));
        let path = data_dir.join("v1").join("runs").join(format!("{key}.json"));
        let start_ticks = match std::fs::read(&path) {
            Ok(b) => {
                serde_json::from_slice::<LedgerFile>(&b)
                    .map_err(|e| ImportError::Input {
                        path: path.clone(),
                        at: "ledger".into(),
                        msg: e.to_string(),
                    })?
                    .start_ticks
            }
            // Only a missing ledger means a first run; any other failure must not silently
            // re-derive tick ids that differ from the ones already written.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(ImportError::Io { path, source }),
        };
        Ok(Self { path, start_ticks })
    }

    fn start_tick(&mut self, token: u32, fresh: u64, input: &str) -> Result<u64, ImportError> {
        if let Some(&t) = self.start_ticks.get(&token) {
            return Ok(t);
        }
        self.start_ticks.insert(token, fresh);
        let body = LedgerFile {
            format: "chronicle.run-ledger/1".into(),
            input: input.into(),
            start_ticks: self.start_ticks.clone(),
        };
        create_dir_durable(self.path.parent().expect("has parent"))?;
        write_atomic(
            &self.path,
            &serde_json::to_vec_pretty(&body).expect("serializes"),
        )?;
        Ok(fresh)
    }
}

/// FNV-1a 64: a stable key for an input description (not a security boundary).
pub fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| {
        (h ^ c as u64).wrapping_mul(0x100_0000_01b3)
    })
}

pub struct RingSink {
    data_dir: PathBuf,
    input: String,
    ledger: RunLedger,
    symbols: DimSymbol,
    rings: Vec<Producer>,
    map: ShardMap,
    tokens: Vec<u32>,
    scratch: Box<[u8; MAX_RECORD_LEN]>,
    /// Spins spent waiting for ring space (backpressure seen by the replay).
    pub full_waits: u64,
    /// Set when the run stops (a shard failed, SIGTERM): a wait for ring space ends.
    stop: Option<Arc<AtomicBool>>,
    pub events: u64,
}

impl RingSink {
    /// `input` describes the replayed input exactly; it keys the run ledger.
    pub fn new(
        data_dir: &Path,
        input: &str,
        rings: Vec<Producer>,
        map: ShardMap,
    ) -> Result<Self, ImportError> {
        Ok(Self {
            data_dir: data_dir.to_owned(),
            input: input.to_owned(),
            ledger: RunLedger::open(data_dir, input)?,
            symbols: DimSymbol::load(data_dir)?,
            rings,
            map,
            tokens: Vec::new(),
            scratch: Box::new([0u8; MAX_RECORD_LEN]),
            full_waits: 0,
            stop: None,
            events: 0,
        })
    }

    /// Stops waiting for ring space (with an error) once `stop` is set: a ring whose shard
    /// died never drains.
    pub fn stop_on(&mut self, stop: Arc<AtomicBool>) {
        self.stop = Some(stop);
    }

    pub fn into_rings(self) -> Vec<Producer> {
        self.rings
    }

    fn send(&mut self, record: Record<'_>) -> Result<(), ImportError> {
        let len = record
            .encode(&mut self.scratch[..])
            .map_err(|e| ImportError::Encode(e.to_string()))?;
        let ring = &mut self.rings[self.map.shard_of(record.meta.token_id)];
        loop {
            // Published on its own, stamped: the shard times ring publish → read.
            match ring.try_stage(&self.scratch[..len]) {
                Ok(true) => {
                    ring.publish();
                    return Ok(());
                }
                Ok(false) => {
                    self.full_waits += 1;
                    if self
                        .stop
                        .as_ref()
                        .is_some_and(|s| s.load(Ordering::Relaxed))
                    {
                        return Err(ImportError::Encode(
                            "the run stopped while the feed waited for ring space".into(),
                        ));
                    }
                    std::hint::spin_loop();
                }
                Err(e) => return Err(ImportError::Encode(format!("ring refused a record: {e:?}"))),
            }
        }
    }
}

impl EventSink for RingSink {
    fn instrument(&mut self, i: &Instrument) -> Result<InstrumentHandle, ImportError> {
        let row = self
            .symbols
            .resolve_or_register(&i.venue, &i.raw_symbol, 0)?;
        // Durable before the shard resolves it.
        self.symbols.save()?;
        let token = u32::try_from(row.symbol_id)
            .map_err(|_| ImportError::Encode(format!("symbol_id {} exceeds u32", row.symbol_id)))?;
        let def = i.definition(token as u64)?;
        let durable = resume(&self.data_dir, &i.venue, &row.symbol_code, None)
            .map_err(ImportError::Storage)?;
        let start = self
            .ledger
            .start_tick(token, durable.next_tick, &self.input)?;
        self.send(
            Declaration {
                definition: def,
                start_tick: start,
                durable_tick: durable.next_tick - 1,
            }
            .record(token),
        )?;
        Ok(match self.tokens.iter().position(|&t| t == token) {
            Some(h) => h,
            None => {
                self.tokens.push(token);
                self.tokens.len() - 1
            }
        })
    }

    fn event(
        &mut self,
        h: InstrumentHandle,
        exchange_ts_ns: u64,
        receive_ts_ns: u64,
        body: Body<'_>,
    ) -> Result<(), ImportError> {
        self.events += 1;
        let meta = Meta {
            token_id: self.tokens[h],
            global_tick_id: 0,
            exchange_ts_ns,
            receive_ts_ns,
        };
        self.send(Record { meta, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_absent_is_a_first_run_but_unreadable_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = RunLedger::open(dir.path(), "input-a").expect("no ledger yet");
        assert!(fresh.start_ticks.is_empty());

        // A ledger that exists but cannot be read (here: a directory in its place).
        std::fs::create_dir_all(&fresh.path).unwrap();
        let err = RunLedger::open(dir.path(), "input-a")
            .err()
            .expect("an unreadable ledger must not read as 'no ledger'");
        assert!(
            matches!(&err, ImportError::Io { path, .. } if *path == fresh.path),
            "{err}"
        );
        assert!(
            err.to_string().contains(&fresh.path.display().to_string()),
            "{err}"
        );
    }
}
