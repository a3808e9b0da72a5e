//! Recovery (`docs/state.md`): load the newest valid snapshot, check it against the log, replay
//! the log after it. A snapshot that is short, corrupt, of another token or not aligned
//! with the log is passed over for the previous one — logged and counted, never "start
//! empty"; with none valid the whole log is replayed, which gives the same state.

use crate::log::TokenLog;
use crate::position::LogPosition;
use crate::store::SnapshotStore;
use crate::StateError;
use chronicle_engine::{SnapshotHeader, TokenEngine};
use chronicle_storage::index::TimeIndex;
use chronicle_storage::partition::{INDEX_DIR, INDEX_FILE};
use chronicle_storage::segment::{frame_len, FrameIter, Segment, HEADER_LEN};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    pub path: PathBuf,
    pub reason: String,
}

/// The engine, caught up with the log.
#[derive(Debug)]
pub struct Recovered {
    pub engine: TokenEngine,
    /// The snapshot resumed from (`None`: replayed from the start of the log).
    pub snapshot: Option<PathBuf>,
    pub fallbacks: Vec<Fallback>,
    pub replayed: u64,
    /// Just past the last applied record.
    pub position: Option<LogPosition>,
}

/// When a token's engine is snapshotted. The points depend only on the input: the state just
/// before the first record of each new `every_ns` bucket of exchange time (so it covers every
/// record before the boundary), skipped when nothing was applied since the last snapshot.
/// `chronicle engine run`, the appliance's shard and its recovery all take this one rule, so
/// that any of them writes the same snapshot names and bytes for the same log.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    pub every_ns: u64,
    /// Also one at the end of the log (`chronicle engine run`; the appliance's last flush).
    pub at_end: bool,
}

impl Cadence {
    /// Whether a snapshot is due before applying a record at `next_ts` to an engine whose last
    /// record was at `last_ts`.
    #[inline]
    pub fn due(&self, last_ts: u64, next_ts: u64) -> bool {
        next_ts / self.every_ns > last_ts / self.every_ns
    }
}

/// Checks that the record ending at `pos` exists and carries `tick`.
pub fn check_alignment(log: &TokenLog, pos: LogPosition, tick: u64) -> Result<(), String> {
    let seg_path = log
        .segment_for(pos.date)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no partition for {}", pos.date))?;
    let seg = Segment::open(&seg_path).map_err(|e| e.to_string())?;
    // Start at the index block holding the position (or the first frame) instead of the day.
    // The index is derived and only a shortcut: without a readable one, scan from the start.
    let index = seg_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(INDEX_DIR)
        .join(INDEX_FILE);
    let start = TimeIndex::read(&index)
        .ok()
        .and_then(|ix| {
            ix.entries
                .iter()
                .rev()
                .find(|e| e.offset < pos.offset)
                .map(|e| e.offset)
        })
        .unwrap_or(HEADER_LEN as u64);
    for f in FrameIter::new(seg.bytes(), start as usize) {
        let end = f.offset + frame_len(f.record.bytes.len()) as u64;
        if end == pos.offset {
            return if f.record.meta.global_tick_id == tick {
                Ok(())
            } else {
                Err(format!(
                    "record ending at offset {} carries tick {}, snapshot says {tick}",
                    pos.offset, f.record.meta.global_tick_id
                ))
            };
        }
        if end > pos.offset {
            break;
        }
    }
    Err(format!(
        "no record ends at offset {} of {}",
        pos.offset,
        seg_path.display()
    ))
}

/// A usable snapshot: the engine it restores, its header, its file.
pub type Found = (TokenEngine, SnapshotHeader, PathBuf);

/// The newest snapshot that decodes, belongs to `token_id` and lines up with the log.
pub fn newest_valid(
    store: &SnapshotStore,
    log: &TokenLog,
    token_id: u64,
) -> Result<(Option<Found>, Vec<Fallback>), StateError> {
    let mut fallbacks = Vec::new();
    for path in store.list(token_id)? {
        let reason = match std::fs::read(&path) {
            Err(e) => e.to_string(),
            Ok(bytes) => match TokenEngine::restore_slice(&bytes) {
                Err(e) => e.to_string(),
                Ok((_, h)) if h.token_id != token_id => format!("snapshot of token {}", h.token_id),
                Ok((engine, h)) => match LogPosition::unpack(h.event_log_offset) {
                    None => format!(
                        "EventLogOffset {:#x} is no log position",
                        h.event_log_offset
                    ),
                    Some(pos) => match check_alignment(log, pos, h.global_tick_id) {
                        Ok(()) => return Ok((Some((engine, h, path)), fallbacks)),
                        Err(r) => format!("not aligned with the log: {r}"),
                    },
                },
            },
        };
        tracing_fallback(&path, &reason);
        fallbacks.push(Fallback { path, reason });
    }
    Ok((None, fallbacks))
}

fn tracing_fallback(path: &Path, reason: &str) {
    eprintln!(
        "chronicle: snapshot {} skipped, falling back: {reason}",
        path.display()
    );
}

/// Recovers `token_id` and replays the rest of its log; with `cadence`, writes the snapshots
/// due on the way (and one at the end if it says so).
pub fn catch_up(
    store: &SnapshotStore,
    log: &TokenLog,
    token_id: u64,
    cadence: Option<Cadence>,
) -> Result<(Recovered, usize), StateError> {
    let (found, fallbacks) = newest_valid(store, log, token_id)?;
    let (mut engine, mut position, snapshot) = match found {
        Some((engine, h, path)) => (engine, LogPosition::unpack(h.event_log_offset), Some(path)),
        None => (TokenEngine::new(token_id), None, None),
    };
    let mut written = 0usize;
    let mut snapped_tick = engine.last_global_tick_id();
    let mut snap =
        |engine: &TokenEngine, pos: LogPosition, snapped: &mut u64| -> Result<(), StateError> {
            if engine.last_global_tick_id() != *snapped {
                store.write(
                    token_id,
                    &engine.snapshot(pos.pack()),
                    engine.last_exchange_ts_ns(),
                )?;
                *snapped = engine.last_global_tick_id();
                written += 1;
            }
            Ok(())
        };
    let after_tick = engine.last_global_tick_id();
    let replayed = log.replay(position, after_tick, |pos, rec| {
        if let (Some(c), Some(prev)) = (&cadence, position) {
            if c.due(engine.last_exchange_ts_ns(), rec.meta.exchange_ts_ns) {
                snap(&engine, prev, &mut snapped_tick)?;
            }
        }
        engine.apply(rec).map_err(|e| StateError::Log {
            path: PathBuf::from(format!("token {token_id} log, {}", pos.date)),
            offset: pos.offset,
            reason: e.to_string(),
        })?;
        position = Some(pos);
        Ok(())
    })?;
    if let (Some(Cadence { at_end: true, .. }), Some(pos)) = (cadence, position) {
        snap(&engine, pos, &mut snapped_tick)?;
    }
    Ok((
        Recovered {
            engine,
            snapshot,
            fallbacks,
            replayed,
            position,
        },
        written,
    ))
}
