//! The shard's snapshot writer: a thread pinned off the shard cores that writes the snapshots
//! a completed flush made writable. A batch costs file creations, a manifest append and two
//! `syncfs` (tens to hundreds of ms on a busy disk); on the shard core that was a pause of the
//! ring. Batches are written in the order they are handed over, each as rounds of distinct
//! tokens (a token passes several points in one flush when the input runs faster than
//! exchange time, and a store batch holds a token once, in point order).

use crate::helper::Helper;
use crate::{RuntimeError, ThreadFailure};
use chronicle_state::store::{Pending, SnapshotStore};
use std::path::Path;
use std::time::Instant;

/// What the thread did with one hand-over.
pub struct Written {
    /// The hand-over's buffer, emptied, for the shard's next captures.
    pub spare: Vec<Pending>,
    pub snapshots: u64,
    /// Per store batch: its duration, ns.
    pub batch_ns: Vec<u64>,
}

pub struct SnapshotWriter {
    helper: Helper<Vec<Pending>, Result<Written, String>>,
}

impl SnapshotWriter {
    /// Starts the thread for shard `index`, pinned to the cores that are not `shard_cpus`.
    pub fn spawn(
        data_dir: &Path,
        retain: usize,
        index: usize,
        shard_cpus: Vec<usize>,
    ) -> Result<Self, RuntimeError> {
        let store = SnapshotStore::new(data_dir, retain);
        Ok(Self {
            helper: Helper::spawn(
                format!("chronicle-snap-{index}"),
                shard_cpus,
                move |points| write_rounds(&store, points),
            )?,
        })
    }

    /// Hands over snapshots whose log is durable (nothing to do for an empty list: it comes
    /// straight back as the spare).
    pub fn submit(&mut self, points: Vec<Pending>) -> Result<Option<Vec<Pending>>, RuntimeError> {
        if points.is_empty() {
            return Ok(Some(points));
        }
        self.helper.submit(points)?;
        Ok(None)
    }

    /// What the thread finished since the last call, without waiting; its first error is
    /// the shard's.
    pub fn poll(&mut self) -> Result<Vec<Written>, RuntimeError> {
        let mut out = Vec::new();
        while let Some(r) = self.helper.try_answer()? {
            out.push(received(r)?);
        }
        Ok(out)
    }

    /// Waits for everything handed over (the end of the run).
    pub fn finish(&mut self) -> Result<Vec<Written>, RuntimeError> {
        let mut out = Vec::new();
        while let Some(r) = self.helper.answer()? {
            out.push(received(r)?);
        }
        Ok(out)
    }
}

fn received(r: Result<Written, String>) -> Result<Written, RuntimeError> {
    r.map_err(|e| RuntimeError::thread("snapshot writer", ThreadFailure::Failed(e)))
}

fn write_rounds(store: &SnapshotStore, mut points: Vec<Pending>) -> Result<Written, String> {
    let mut batch_ns = Vec::new();
    let mut batch = Vec::with_capacity(points.len());
    let total = points.len() as u64;
    while !points.is_empty() {
        batch.clear();
        let mut i = 0;
        while i < points.len() {
            let token = points[i].token_id;
            if batch.iter().any(|p: &Pending| p.token_id == token) {
                i += 1;
            } else {
                batch.push(points.remove(i));
            }
        }
        let t0 = Instant::now();
        store.write_batch(&batch).map_err(|e| e.to_string())?;
        batch_ns.push(t0.elapsed().as_nanos() as u64);
    }
    Ok(Written {
        spare: points,
        snapshots: total,
        batch_ns,
    })
}
