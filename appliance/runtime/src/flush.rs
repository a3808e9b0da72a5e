//! The shard's overlapped flush: at each deadline the shard seals its partitions' buffers and
//! hands the sealed bytes to a task on its own glommio task queue, which writes them with
//! O_DIRECT through io_uring and `fdatasync`s each segment, while the shard goes on draining
//! its ring into fresh buffers. At most one flush is in flight: a deadline that finds the
//! previous one still running waits for it (back-pressure on the ring, counted).
//!
//! The task owns the O_DIRECT segments (`DirectSegment`) while it runs and hands them back
//! with the buffers when it ends; nothing is shared between the two tasks but a flag that says
//! "done", which the drain loop polls between records.

use crate::direct::DirectSegment;
use crate::RuntimeError;
use chronicle_etl::PartitionKey;
use chronicle_state::store::Pending;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

/// One partition's sealed frames.
pub struct Job {
    pub segment: PathBuf,
    /// Segment offset of the first byte.
    pub start: u64,
    pub bytes: Vec<u8>,
}

impl Job {
    /// The offset just past the job's frames: the segment is durable up to here once done.
    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

/// What a flush task did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Written {
    pub writes: u64,
    pub bytes: u64,
    /// Segments opened, and of those the ones whose descriptor has O_DIRECT set.
    pub opened: u64,
    pub opened_direct: u64,
}

/// A flush task's hand-back.
pub struct Done {
    pub segments: BTreeMap<PathBuf, DirectSegment>,
    pub jobs: Vec<Job>,
    pub result: Result<Written, RuntimeError>,
}

/// A flush in flight and what becomes true when it is durable.
pub struct InFlight {
    pub task: glommio::Task<Done>,
    pub done: Rc<Cell<bool>>,
    /// Snapshots captured before the seal: their log is in this flush.
    pub snapshots: Vec<Pending>,
    /// Partitions that had expired at the seal: closed once their last bytes are durable.
    pub closing: Vec<PartitionKey>,
    /// TSC instant of the oldest record read before the seal (read → durable).
    pub oldest_read: Option<u64>,
    pub sealed_at: std::time::Instant,
}

/// Writes each job at its offset with O_DIRECT and makes it durable, opening segments it has
/// not seen yet. Sets `done` when it ends, whatever the result.
pub async fn write(
    mut segments: BTreeMap<PathBuf, DirectSegment>,
    jobs: Vec<Job>,
    done: Rc<Cell<bool>>,
) -> Done {
    let mut written = Written::default();
    let mut result = Ok(());
    for job in jobs.iter().filter(|j| !j.bytes.is_empty()) {
        result = write_one(&mut segments, job, &mut written).await;
        if result.is_err() {
            break;
        }
    }
    done.set(true);
    Done {
        segments,
        jobs,
        result: result.map(|()| written),
    }
}

async fn write_one(
    segments: &mut BTreeMap<PathBuf, DirectSegment>,
    job: &Job,
    written: &mut Written,
) -> Result<(), RuntimeError> {
    if !segments.contains_key(&job.segment) {
        let d = DirectSegment::open(&job.segment, job.start).await?;
        written.opened += 1;
        if d.fdinfo_flags()
            .is_some_and(|f| f & libc::O_DIRECT as u32 != 0)
        {
            written.opened_direct += 1;
        }
        segments.insert(job.segment.clone(), d);
    }
    let d = segments.get_mut(&job.segment).expect("opened above");
    let before = (d.writes, d.bytes_written);
    d.append_durable(job.start, &job.bytes).await?;
    written.writes += d.writes - before.0;
    written.bytes += d.bytes_written - before.1;
    Ok(())
}
