//! The shard's flush writer: a thread with its own glommio executor, pinned off the shard
//! cores, and the one owner of the shard's partition files. It creates them (a new day's
//! segment, index and directories), writes them, and closes them (padding cut, last index
//! entries, `meta.json`); the shard's partition writers only buffer (`Backend::Sealed`). At
//! each deadline the shard seals its partitions' buffers and hands them over; the writer
//! writes them through io_uring and `fdatasync`s each segment while the shard goes on draining
//! its ring into fresh buffers, then hands the buffers back. At most one flush is in flight: a
//! deadline that finds the previous one still running waits for it (back-pressure on the
//! ring, counted).
//!
//! Why a thread and not a task on the shard's executor: glommio reaps I/O completions only
//! when its scheduler preempts the running task (every 100 ms by default), so a flush task
//! beside a drain loop that never sleeps advanced one step per 100 ms; a shorter preemption
//! timer made the executor sleep through a completion now and then (the run hung with a full
//! ring). On its own executor the writer sleeps in io_uring until each completion, and the
//! shard core does no flush work at all.

use crate::direct::{ChunkPool, DirectSegment};
use crate::helper::{pin_helper, Helper};
use crate::{RuntimeError, ThreadFailure};
use chronicle_etl::Closed;
use chronicle_state::store::Pending;
use chronicle_storage::fsutil::{create_dir_durable, fsync_dir};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One partition's sealed frames, and the index entries over them.
pub struct Job {
    pub segment: PathBuf,
    /// Segment offset of the first byte; 0 for a new partition (its header first): the
    /// writer creates its files.
    pub start: u64,
    pub bytes: Vec<u8>,
    pub index_path: PathBuf,
    /// Encoded index entries, appended once `bytes` are durable.
    pub index: Vec<u8>,
}

/// What a flush did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Written {
    pub writes: u64,
    pub bytes: u64,
    /// Segments opened, and of those the ones whose descriptor has O_DIRECT set.
    pub opened: u64,
    pub opened_direct: u64,
}

/// One flush: the jobs, then the partitions to close once they are durable (their day is
/// over, or the run ends).
struct Request {
    jobs: Vec<Job>,
    close: Vec<Closed>,
}

/// A flush's hand-back: the jobs (their buffers, for reuse), the partitions it closed, and
/// what came of them.
pub struct Done {
    pub jobs: Vec<Job>,
    pub closed: Vec<Closed>,
    pub result: Result<Written, RuntimeError>,
}

/// A flush in flight and what becomes true when it is durable.
pub struct InFlight {
    /// Snapshots captured before the seal: their log is in this flush.
    pub snapshots: Vec<Pending>,
    /// TSC instant of the oldest record read before the seal (read → durable).
    pub oldest_read: Option<u64>,
    pub sealed_at: std::time::Instant,
}

/// The flush writer: requests in, [`Done`]s back, in order.
pub struct FlushWriter {
    helper: Helper<Request, Done>,
}

impl FlushWriter {
    /// Starts shard `index`'s writer, pinned to the cores that are not `shard_cpus` (as the
    /// other helper threads are), with `io_memory` bytes of io_uring registered memory.
    pub fn spawn(
        index: usize,
        shard_cpus: &[usize],
        io_memory: usize,
    ) -> Result<Self, RuntimeError> {
        let shard_cpus = shard_cpus.to_vec();
        let name = format!("flush-{index}");
        let helper = Helper::start(name.clone(), move |ends| {
            let thread = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
                .name(&name)
                .io_memory(io_memory)
                .spawn(move || async move {
                    pin_helper(&name, &shard_cpus);
                    let mut segments = BTreeMap::new();
                    let mut pool = ChunkPool::default();
                    // Nothing else runs on this executor: waiting here for the next flush is
                    // fine.
                    while let Ok(request) = ends.requests.recv() {
                        let done = flush(&mut segments, &mut pool, request).await;
                        if ends.answers.send(done).is_err() {
                            break;
                        }
                    }
                })
                .map_err(|e| {
                    RuntimeError::thread("flush writer", ThreadFailure::Spawn(e.to_string()))
                })?;
            Ok(Box::new(move || {
                let _ = thread.join();
            }))
        })?;
        Ok(Self { helper })
    }

    /// Hands a flush over: `jobs`, then finishing the files of `close`.
    pub fn submit(&mut self, jobs: Vec<Job>, close: Vec<Closed>) -> Result<(), RuntimeError> {
        self.helper.submit(Request { jobs, close })
    }

    /// The flush in flight, if it is done (never waits).
    pub fn try_done(&mut self) -> Result<Option<Done>, RuntimeError> {
        self.helper.try_answer()
    }

    /// Waits for the flush in flight.
    pub fn wait(&mut self) -> Result<Done, RuntimeError> {
        Ok(self.helper.answer()?.expect("a flush is in flight"))
    }
}

async fn flush(
    segments: &mut BTreeMap<PathBuf, DirectSegment>,
    pool: &mut ChunkPool,
    request: Request,
) -> Done {
    let mut written = Written::default();
    let mut result = Ok(());
    for job in request
        .jobs
        .iter()
        .filter(|j| !j.bytes.is_empty() || !j.index.is_empty())
    {
        result = write_one(segments, pool, job, &mut written).await;
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        for c in &request.close {
            result = close(segments, c).await;
            if result.is_err() {
                break;
            }
        }
    }
    Done {
        jobs: request.jobs,
        closed: request.close,
        result: result.map(|()| written),
    }
}

async fn write_one(
    segments: &mut BTreeMap<PathBuf, DirectSegment>,
    pool: &mut ChunkPool,
    job: &Job,
    written: &mut Written,
) -> Result<(), RuntimeError> {
    if !segments.contains_key(&job.segment) {
        if job.start == 0 {
            // A new partition: its directories first, durable, as the import's writer makes
            // them; the segment is created exclusively below.
            let index_dir = job
                .index_path
                .parent()
                .expect("the index is in a directory");
            create_dir_durable(index_dir)?;
        }
        let d = DirectSegment::open(&job.segment, job.start).await?;
        if job.start == 0 {
            fsync_dir(job.segment.parent().expect("a segment is in a directory"))?;
        }
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
    d.append_durable(job.start, &job.bytes, pool).await?;
    written.writes += d.writes - before.0;
    written.bytes += d.bytes_written - before.1;
    if !job.index.is_empty() {
        // Derived data behind durable frames; a small buffered append on this thread.
        append_index(&job.index_path, &job.index)?;
    }
    Ok(())
}

/// Finishes a closed partition's files once its last frames are durable: the segment's
/// padding cut, its last index entries, its `meta.json`.
async fn close(
    segments: &mut BTreeMap<PathBuf, DirectSegment>,
    c: &Closed,
) -> Result<(), RuntimeError> {
    if let Some(d) = segments.remove(&c.paths.segment) {
        d.close().await?;
    }
    if !c.index_tail.is_empty() {
        append_index(&c.paths.index, &c.index_tail)?;
    }
    c.meta.write(&c.paths.meta)?;
    Ok(())
}

/// Appends encoded entries (a new index's header first) to an index file, creating it.
fn append_index(path: &std::path::Path, entries: &[u8]) -> Result<(), RuntimeError> {
    use std::io::Write;
    let io = |e| chronicle_storage::StorageError::io(path, e);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(io)?;
    let created = f.metadata().map_err(io)?.len() == 0;
    f.write_all(entries).map_err(io)?;
    f.sync_data().map_err(io)?;
    if created {
        fsync_dir(path.parent().expect("the index is in a directory"))?;
    }
    Ok(())
}
