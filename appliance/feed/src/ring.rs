//! The SPSC ring logic, shared by the `/dev/shm` rings and the in-memory rings the loom model
//! checks. See `docs/formats/ring.md` for the frame format and `docs/zone1.md` for the policy.
//!
//! `head` and `tail` are absolute byte positions (they never wrap: 2^64 bytes is centuries at
//! any feed rate); the offset in the data area is `pos & (capacity - 1)`. The producer writes
//! a frame, then publishes `head` with `Release`; the consumer loads `head` with `Acquire`,
//! copies the frame out, validates the copy and (lazily, see [`Consumer::commit`]) publishes
//! `tail` with `Release`. Each side keeps the other's index cached and reloads it only when
//! the cache says "full" / "empty", so the two index lines move between cores only when they
//! must.
//!
//! The producer never blocks: when a record does not fit it is dropped and counted, and the
//! next record that fits is preceded by a `gap` record (`GapReason::RingOverrun`) saying how
//! many were lost. The consumer trusts nothing it reads from the ring: every index and length
//! is read once, bounds-checked against its own copy of the capacity, and a fault stops the
//! consumer with a [`RingFault`] until the caller chooses to [`Consumer::resync`].

use core::sync::atomic::{compiler_fence, AtomicBool};

use chronicle_protocol::wire::u16_at;
use chronicle_protocol::{header, Body, HEADER_LEN as RECORD_HEADER_LEN, MAX_RECORD_LEN};
use chronicle_protocol::{DecodeError, Gap, GapReason, Meta, Record, RecordView};

use crate::clock::monotonic_ns;
use crate::layout::{self, FRAME_HEADER, FRAME_PUBLISHED, MIN_MEM_CAPACITY, UNSTAMPED, WRAP};
use crate::sync::{Arc, AtomicU64, Ordering, Word};

/// Bytes of a `gap` record, and of its frame.
const GAP_LEN: usize = 64;
const GAP_FRAME: u64 = (FRAME_HEADER + GAP_LEN) as u64;

/// Raw view of one ring's shared state. The owner ([`Keep`]) keeps the memory alive for as
/// long as a `Region` exists.
pub(crate) struct Region {
    pub(crate) head: *const AtomicU64,
    pub(crate) tail: *const AtomicU64,
    pub(crate) dropped: *const AtomicU64,
    pub(crate) overrun_gaps: *const AtomicU64,
    pub(crate) data: *const Word,
    /// Data-area bytes; a power of two. Our own copy: never re-read from shared memory.
    pub(crate) capacity: u64,
    /// Set by the SIGBUS handler when the mapping behind `data` was truncated.
    pub(crate) truncated: &'static AtomicBool,
}

// SAFETY: the pointers target memory shared by design (atomics / `Word`s); the owner of the
// memory travels with the region inside the `Producer` or `Consumer`.
unsafe impl Send for Region {}

impl Region {
    #[inline(always)]
    fn head(&self) -> &AtomicU64 {
        // SAFETY: valid for the region's lifetime (see `Region`).
        unsafe { &*self.head }
    }

    #[inline(always)]
    fn tail(&self) -> &AtomicU64 {
        // SAFETY: as above.
        unsafe { &*self.tail }
    }

    #[inline(always)]
    fn word(&self, pos: u64) -> &Word {
        let index = ((pos & (self.capacity - 1)) >> 3) as usize;
        debug_assert!(index < (self.capacity >> 3) as usize);
        // SAFETY: `index` is masked into the data area, which holds `capacity / 8` words.
        unsafe { &*self.data.add(index) }
    }

    /// `n` consecutive words from `pos`, which the caller checked do not run past the end
    /// of the data area.
    #[inline(always)]
    fn words(&self, pos: u64, n: usize) -> &[Word] {
        let index = ((pos & (self.capacity - 1)) >> 3) as usize;
        assert!(
            index + n <= (self.capacity >> 3) as usize,
            "words inside the data area"
        );
        // SAFETY: the range is inside the data area (asserted above).
        unsafe { core::slice::from_raw_parts(self.data.add(index), n) }
    }

    #[inline(always)]
    fn truncated(&self) -> bool {
        // The SIGBUS handler runs on this thread in the middle of an earlier load: keep the
        // compiler from moving the flag load above the data loads (a signal fence).
        compiler_fence(Ordering::SeqCst);
        self.truncated.load(core::sync::atomic::Ordering::Relaxed)
    }
}

/// What keeps a ring's memory alive.
pub(crate) enum Keep {
    // Held, never read: the memory lives as long as this does.
    Mem(#[allow(dead_code)] Arc<MemShared>),
    #[cfg(not(loom))]
    Shm(#[allow(dead_code)] std::sync::Arc<crate::shm::Mapping>),
}

static NEVER_TRUNCATED: AtomicBool = AtomicBool::new(false);

/// Where the next frame of `frame` bytes starts and ends when the head is at `head`: a frame
/// never straddles the end of the data area; if it does not fit before the end, a wrap marker
/// pads to the end and the frame starts at offset 0.
#[inline(always)]
fn place(head: u64, frame: u64, capacity: u64) -> (bool, u64) {
    let rest = capacity - (head & (capacity - 1));
    if frame <= rest {
        (false, head + frame)
    } else {
        (true, head + rest + frame)
    }
}

/// The largest record frame a producer accepts: small enough that a gap frame and a record
/// frame, each possibly behind a wrap marker, always fit an empty ring (so a loss is always
/// announced once the consumer catches up).
pub fn max_frame(capacity: u64) -> u64 {
    (capacity.saturating_sub(2 * GAP_FRAME) / 2) & !7
}

/// What [`Producer::push`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Written,
    /// The ring was full: the record was counted as lost and a gap marker will precede the
    /// next record that fits.
    Dropped,
}

/// A record the producer refuses: the caller's bug, not back-pressure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("record of {len} bytes is invalid for a ring (must be a multiple of 8 in 32..=65528, matching its header)")]
    BadRecord { len: usize },
    #[error("record frame of {frame} bytes is too large for a ring of capacity {capacity} (see `max_frame`)")]
    TooLarge { frame: usize, capacity: u64 },
}

/// Producer-side counters (also mirrored into the ring header for observers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProducerStats {
    /// Records written (gap markers excluded).
    pub written: u64,
    /// Records dropped because the ring was full.
    pub dropped: u64,
    /// Gap markers written for those drops.
    pub overrun_gaps: u64,
    /// Records dropped and not yet announced by a gap marker.
    pub pending_lost: u64,
    /// Times the consumer's `tail` was out of range (treated as "full").
    pub consumer_faults: u64,
}

/// The writing end of a ring. Single producer: `&mut self` everywhere.
pub struct Producer {
    region: Region,
    /// Our own head: authoritative, never re-read from shared memory.
    head: u64,
    published: u64,
    cached_tail: u64,
    /// Records offered to the ring so far (written or dropped); gap markers carry these
    /// indices so that a consumer can tell exactly which records are missing.
    offered: u64,
    pending_lost: u64,
    first_lost: u64,
    first_lost_meta: Meta,
    stats: ProducerStats,
    _keep: Keep,
}

impl Producer {
    pub(crate) fn new(region: Region, keep: Keep) -> Self {
        let head = region.head().load(Ordering::Relaxed);
        let tail = region.tail().load(Ordering::Acquire);
        assert!(
            head.wrapping_sub(tail) <= region.capacity,
            "fresh ring has valid indices"
        );
        Self {
            region,
            head,
            published: head,
            cached_tail: tail,
            offered: 0,
            pending_lost: 0,
            first_lost: 0,
            first_lost_meta: Meta::default(),
            stats: ProducerStats::default(),
            _keep: keep,
        }
    }

    /// Data-area bytes.
    pub fn capacity(&self) -> u64 {
        self.region.capacity
    }

    /// True once the ring file was found truncated under us (SIGBUS caught): our writes go
    /// nowhere and the ring must be recreated.
    pub fn truncated(&self) -> bool {
        self.region.truncated()
    }

    pub fn stats(&self) -> ProducerStats {
        ProducerStats {
            pending_lost: self.pending_lost,
            ..self.stats
        }
    }

    /// Writes `record` and publishes it, without a publication time (a clock read per record
    /// costs a tool publishing record by record up to half its throughput; `stage` +
    /// [`publish`](Self::publish) stamps). Never blocks: when the ring is full the record is
    /// dropped and counted, and a gap marker will precede the next record that fits.
    #[inline]
    pub fn push(&mut self, record: &[u8]) -> Result<Pushed, PushError> {
        let pushed = self.stage(record)?;
        self.publish_unstamped();
        Ok(pushed)
    }

    /// Like [`push`](Self::push) but leaves the record unpublished until [`publish`]
    /// (Self::publish): a datagram's records become visible together, for one index store.
    #[inline]
    pub fn stage(&mut self, record: &[u8]) -> Result<Pushed, PushError> {
        if self.try_stage(record)? {
            return Ok(Pushed::Written);
        }
        if self.pending_lost == 0 {
            self.first_lost = self.offered;
            // Only labels the overrun gap; the record is dropped and counted either way.
            self.first_lost_meta = RecordView::parse(record)
                .map(|v| v.meta)
                .unwrap_or_default();
        }
        self.offered += 1;
        self.pending_lost += 1;
        self.stats.dropped += 1;
        // Mirrored for observers with a plain store: we are the only writer.
        // SAFETY: `dropped` lives as long as the region.
        unsafe { &*self.region.dropped }.store(self.stats.dropped, Ordering::Relaxed);
        Ok(Pushed::Dropped)
    }

    /// Writes `record` if it fits now and publishes it, without a publication time (as
    /// [`push`](Self::push)); `Ok(false)` when the ring is full (nothing is counted as lost:
    /// the caller keeps the record and retries). For lossless tools and benchmarks.
    #[inline]
    pub fn try_push(&mut self, record: &[u8]) -> Result<bool, PushError> {
        let written = self.try_stage(record)?;
        if written {
            self.publish_unstamped();
        }
        Ok(written)
    }

    /// Like [`stage`](Self::stage) but lossless: `Ok(false)` when the record does not fit
    /// now, and nothing is counted. A sender that stages a whole message ahead of its due
    /// time uses it to tell "my own staged records fill the ring" (publish them, then stage
    /// the rest) from "the consumer is behind" (then [`stage`](Self::stage) drops and counts).
    #[inline]
    pub fn try_stage(&mut self, record: &[u8]) -> Result<bool, PushError> {
        let frame = self.check(record)?;
        if !self.write_if_fits(record, frame) {
            return Ok(false);
        }
        self.offered += 1;
        self.stats.written += 1;
        Ok(true)
    }

    /// Bytes staged and not yet published.
    pub fn staged_bytes(&self) -> u64 {
        self.head - self.published
    }

    /// Makes staged frames visible to the consumer, stamped with the time now
    /// (`CLOCK_MONOTONIC`; one clock read, only when something is staged).
    #[inline]
    pub fn publish(&mut self) {
        if self.head != self.published {
            self.publish_to(self.head, monotonic_ns());
        }
    }

    /// Where the next staged frame goes: a position to [`publish_to`](Self::publish_to)
    /// later, once more has been staged behind it.
    pub fn position(&self) -> u64 {
        self.head
    }

    /// Makes the frames staged before `position` (a value [`position`](Self::position)
    /// returned, not yet published) visible, stamped `published_ns` (`CLOCK_MONOTONIC` ns,
    /// `chronicle_feed::clock`); those staged after it stay staged. A sender that stages
    /// several messages ahead publishes each at its own time; a caller publishing several
    /// rings at once stamps them all with one clock read.
    #[inline]
    pub fn publish_to(&mut self, position: u64, published_ns: u64) {
        self.publish_marked(position, published_ns.clamp(1, UNSTAMPED - 1));
    }

    /// Makes staged frames visible without a publication time (the consumer then knows none).
    #[inline]
    pub fn publish_unstamped(&mut self) {
        self.publish_marked(self.head, UNSTAMPED);
    }

    /// Publishes up to `position`, `mark` in the publication's first `published_ns`.
    #[inline(always)]
    fn publish_marked(&mut self, position: u64, mark: u64) {
        assert!(
            (self.published..=self.head).contains(&position) && position.is_multiple_of(8),
            "publish_to({position}) outside the staged frames {}..={}",
            self.published,
            self.head
        );
        if position == self.published {
            return;
        }
        // The publication's first record frame carries its time (0 marks the others); it
        // starts where the last publication ended, or after a wrap marker there. We read back
        // our own frame word: the consumer never writes the data area (if a hostile one did,
        // the masked store still stays inside the mapping).
        let capacity = self.region.capacity;
        let mut first = self.published;
        if self.region.word(first).load() as u32 == WRAP {
            first += capacity - (first & (capacity - 1));
        }
        debug_assert!(first < position, "a wrap marker is followed by its frame");
        self.region.word(first + FRAME_PUBLISHED).store(mark);
        self.region.head().store(position, Ordering::Release);
        self.published = position;
    }

    /// Writes the pending gap marker, if any, without a record after it (the feed calls this
    /// when idle so that a loss is announced even if no record follows), published without a
    /// time. True if no gap is pending any more.
    pub fn flush_gap(&mut self) -> bool {
        if self.pending_lost == 0 {
            return true;
        }
        let (_, end) = place(self.head, GAP_FRAME, self.region.capacity);
        if !self.reserve(end - self.head) {
            return false;
        }
        self.write_gap();
        self.publish_unstamped();
        true
    }

    #[inline(always)]
    fn check(&self, record: &[u8]) -> Result<u64, PushError> {
        let len = record.len();
        if !(RECORD_HEADER_LEN..=MAX_RECORD_LEN).contains(&len)
            || !len.is_multiple_of(8)
            || u16_at(record, header::LENGTH) as usize != len
        {
            return Err(PushError::BadRecord { len });
        }
        let frame = (FRAME_HEADER + len) as u64;
        if frame > max_frame(self.region.capacity) {
            return Err(PushError::TooLarge {
                frame: frame as usize,
                capacity: self.region.capacity,
            });
        }
        Ok(frame)
    }

    /// Writes the pending gap (if any) and the record when both fit; otherwise writes
    /// nothing. Both or neither, so a gap marker is always directly followed by the record
    /// that ended the loss, or by nothing yet.
    #[inline(always)]
    fn write_if_fits(&mut self, record: &[u8], frame: u64) -> bool {
        let capacity = self.region.capacity;
        let start = if self.pending_lost == 0 {
            self.head
        } else {
            place(self.head, GAP_FRAME, capacity).1
        };
        let (_, end) = place(start, frame, capacity);
        if !self.reserve(end - self.head) {
            return false;
        }
        if self.pending_lost != 0 {
            self.write_gap();
        }
        self.write_frame(record);
        debug_assert_eq!(self.head, end);
        true
    }

    /// True if `need` bytes are free after `head`. Reloads the consumer's tail only when the
    /// cached one says no; a tail out of range counts as "full" (never trust the consumer).
    #[inline(always)]
    fn reserve(&mut self, need: u64) -> bool {
        let capacity = self.region.capacity;
        debug_assert!(need <= capacity);
        if need <= capacity - (self.head - self.cached_tail) {
            return true;
        }
        let tail = self.region.tail().load(Ordering::Acquire);
        if tail < self.cached_tail || tail > self.head || !tail.is_multiple_of(8) {
            self.stats.consumer_faults += 1;
            return false;
        }
        self.cached_tail = tail;
        need <= capacity - (self.head - tail)
    }

    fn write_gap(&mut self) {
        debug_assert!(self.pending_lost > 0);
        let gap = Record {
            meta: Meta {
                token_id: 0,
                global_tick_id: 0,
                ..self.first_lost_meta
            },
            body: Body::Gap(Gap {
                reason: GapReason::RingOverrun,
                expected: self.first_lost,
                received: self.first_lost + self.pending_lost,
                lost: self.pending_lost,
            }),
        };
        let mut buf = [0u8; GAP_LEN];
        let n = gap.encode(&mut buf).expect("a gap record fits 64 bytes");
        assert_eq!(n, GAP_LEN);
        self.write_frame(&buf);
        self.pending_lost = 0;
        self.stats.overrun_gaps += 1;
        // SAFETY: `overrun_gaps` lives as long as the region.
        unsafe { &*self.region.overrun_gaps }.store(self.stats.overrun_gaps, Ordering::Relaxed);
    }

    /// Writes one frame at `head` (after a wrap marker if it does not fit before the end).
    /// Space was reserved by the caller.
    #[inline(always)]
    fn write_frame(&mut self, record: &[u8]) {
        let capacity = self.region.capacity;
        let frame = (FRAME_HEADER + record.len()) as u64;
        let (wrap, _) = place(self.head, frame, capacity);
        if wrap {
            self.region
                .word(self.head)
                .store(layout::frame_word(WRAP, self.head));
            self.head += capacity - (self.head & (capacity - 1));
        }
        let at = self.head;
        debug_assert!((at & (capacity - 1)) + frame <= capacity);
        let words = self.region.words(at, frame as usize / 8);
        words[0].store(layout::frame_word(record.len() as u32, at));
        // `published_ns`: 0 until `publish_to` stamps the first frame of the publication.
        words[1].store(0);
        for (w, chunk) in words[FRAME_HEADER / 8..].iter().zip(record.chunks_exact(8)) {
            w.store(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        self.head = at + frame;
    }
}

/// Why the consumer stopped. The consumer never reads outside the data area, whatever the
/// producer wrote; it reports what it found and where (absolute ring positions).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingFault {
    #[error("ring head {head} is out of range (tail {tail}, capacity {capacity}, must be 8-aligned and within one capacity ahead of the tail)")]
    HeadOutOfRange { head: u64, tail: u64, capacity: u64 },
    #[error("frame at ring position {pos} has stamp {found:#x}, expected {expected:#x} (stale or misplaced frame)")]
    BadStamp { pos: u64, expected: u32, found: u32 },
    #[error("frame at ring position {pos} has invalid length {len}")]
    BadLength { pos: u64, len: u32 },
    #[error("frame at ring position {pos} of {frame} bytes runs past the end of the data area (offset {offset}, capacity {capacity})")]
    PastEnd {
        pos: u64,
        frame: u64,
        offset: u64,
        capacity: u64,
    },
    #[error("frame at ring position {pos} of {frame} bytes runs past the published head {head}")]
    PastHead { pos: u64, frame: u64, head: u64 },
    #[error("wrap marker at ring position {pos} is invalid (at offset 0, past the published head, or a second one in a row)")]
    BadWrap { pos: u64 },
    #[error("record at ring position {pos} is invalid: {error}")]
    BadRecord { pos: u64, error: DecodeError },
    #[error(
        "record at ring position {pos} says it is {record_len} bytes, its frame holds {frame_len}"
    )]
    LengthMismatch {
        pos: u64,
        frame_len: u32,
        record_len: usize,
    },
    #[error("ring file was truncated while mapped (SIGBUS caught); the ring is unusable")]
    Truncated,
}

/// Consumer-side counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Records returned (synthesized resync gaps included).
    pub popped: u64,
    pub faults: u64,
    pub resyncs: u64,
    /// Bytes skipped by resyncs.
    pub skipped_bytes: u64,
}

/// The reading end of a ring. Single consumer: `&mut self` everywhere.
pub struct Consumer {
    region: Region,
    /// Our own tail: authoritative, never re-read from shared memory.
    tail: u64,
    /// The tail last stored to shared memory (see [`Consumer::commit`]).
    published_tail: u64,
    /// Publish the tail once it is this many bytes ahead of the published one.
    commit_every: u64,
    cached_head: u64,
    /// Records are copied here before they are validated, so that a producer writing the
    /// ring while we read cannot change a record after we checked it. `u64`s: 8-aligned.
    scratch: Box<[u64]>,
    fault: Option<RingFault>,
    gap_after_resync: bool,
    /// `published_ns` of the publication the last record came from; 0: unknown.
    published_ns: u64,
    stats: ConsumerStats,
    _keep: Keep,
}

/// The largest record length a consumer accepts in a ring of `capacity` bytes.
fn max_record(capacity: u64) -> usize {
    MAX_RECORD_LEN.min(capacity as usize / 2 - FRAME_HEADER)
}

impl Consumer {
    /// `tail` is where this consumer starts (the header's tail: a restarted consumer resumes).
    pub(crate) fn new(region: Region, keep: Keep, tail: u64) -> Self {
        assert!(tail.is_multiple_of(8), "attach validated the tail");
        let words = max_record(region.capacity) / 8;
        let commit_every = region.capacity / 8;
        Self {
            region,
            tail,
            published_tail: tail,
            commit_every,
            cached_head: tail,
            scratch: vec![0u64; words].into_boxed_slice(),
            fault: None,
            gap_after_resync: false,
            published_ns: 0,
            stats: ConsumerStats::default(),
            _keep: keep,
        }
    }

    pub fn capacity(&self) -> u64 {
        self.region.capacity
    }

    pub fn stats(&self) -> ConsumerStats {
        self.stats
    }

    /// The fault that stopped this consumer, if any.
    pub fn fault(&self) -> Option<&RingFault> {
        self.fault.as_ref()
    }

    /// When the record last returned by [`pop`](Self::pop) was published: the producer's
    /// `CLOCK_MONOTONIC` stamp on its publication (`chronicle_feed::clock`). `None` when not
    /// known: a consumer that started inside a publication (a restart), a synthesized gap
    /// after [`resync`](Self::resync). Untrusted: the producer wrote it, so it may lie in
    /// the future or the far past; compare it with a clock, never index with it.
    pub fn published_ns(&self) -> Option<u64> {
        (self.published_ns != 0).then_some(self.published_ns)
    }

    /// The producer's count of records dropped on overrun (informational: the gap markers in
    /// the stream are what downstream relies on).
    pub fn producer_dropped(&self) -> u64 {
        // SAFETY: `dropped` lives as long as the region.
        unsafe { &*self.region.dropped }.load(Ordering::Relaxed)
    }

    /// Publishes the tail: the space of every record popped so far goes back to the
    /// producer. `pop` does this by itself whenever it finds the ring empty and every
    /// `capacity / 8` bytes; between those points the tail is published lazily, because each
    /// store would pull the tail's cache line away from a producer that is polling it. A
    /// restarted consumer resumes at the published tail (so it may see again up to
    /// `capacity / 8` bytes of records: at-least-once).
    #[inline]
    pub fn commit(&mut self) {
        if self.tail != self.published_tail {
            self.region.tail().store(self.tail, Ordering::Release);
            self.published_tail = self.tail;
        }
    }

    /// Sets how far (in bytes) the tail may run ahead of the published one before `pop`
    /// publishes it (default `capacity / 8`; clamped to `8..=capacity`). Smaller: less to
    /// re-read after a consumer crash, more cache-line traffic.
    pub fn set_commit_interval(&mut self, bytes: u64) {
        self.commit_every = bytes.clamp(8, self.region.capacity);
    }

    /// The next record, `Ok(None)` if the ring is empty. The record is a validated copy
    /// (`RecordView::parse` succeeded and its length matches its frame). After a fault every
    /// call returns the same fault until [`resync`](Self::resync).
    #[inline]
    pub fn pop(&mut self) -> Result<Option<RecordView<'_>>, RingFault> {
        if let Some(fault) = &self.fault {
            return Err(fault.clone());
        }
        if self.gap_after_resync {
            self.gap_after_resync = false;
            self.stats.popped += 1;
            self.published_ns = 0;
            return Ok(Some(self.resync_gap()));
        }
        match self.read_next() {
            Ok(None) => Ok(None),
            Ok(Some((len, type_id, meta))) => {
                self.stats.popped += 1;
                Ok(Some(RecordView {
                    type_id,
                    meta,
                    bytes: &scratch_bytes(&self.scratch)[..len],
                }))
            }
            Err(fault) => {
                let fault = if self.region.truncated() {
                    RingFault::Truncated
                } else {
                    fault
                };
                self.fault = Some(fault.clone());
                self.stats.faults += 1;
                Err(fault)
            }
        }
    }

    /// Recovers from a fault by skipping to the producer's current head. The next record
    /// returned is a synthesized `gap` (`RingOverrun`, `lost` 0: unknown) so downstream
    /// marks the loss. Fails, leaving the consumer stopped, if the head itself is invalid or
    /// the file was truncated. Returns the bytes skipped.
    pub fn resync(&mut self) -> Result<u64, RingFault> {
        let head = self.region.head().load(Ordering::Acquire);
        let fault = if self.region.truncated() {
            Some(RingFault::Truncated)
        } else if !self.head_valid(head) {
            Some(RingFault::HeadOutOfRange {
                head,
                tail: self.tail,
                capacity: self.region.capacity,
            })
        } else {
            None
        };
        if let Some(fault) = fault {
            self.fault = Some(fault.clone());
            return Err(fault);
        }
        let skipped = head - self.tail;
        self.tail = head;
        self.cached_head = head;
        self.commit();
        self.fault = None;
        self.gap_after_resync = true;
        self.published_ns = 0;
        self.stats.resyncs += 1;
        self.stats.skipped_bytes += skipped;
        Ok(skipped)
    }

    fn resync_gap(&mut self) -> RecordView<'_> {
        let gap = Record {
            meta: Meta::default(),
            body: Body::Gap(Gap {
                reason: GapReason::RingOverrun,
                expected: 0,
                received: 0,
                lost: 0,
            }),
        };
        let scratch = scratch_bytes_mut(&mut self.scratch);
        let n = gap.encode(scratch).expect("scratch holds a gap record");
        RecordView::parse(&scratch[..n]).expect("a freshly encoded gap parses")
    }

    #[inline(always)]
    fn head_valid(&self, head: u64) -> bool {
        head.is_multiple_of(8) && head >= self.tail && head - self.tail <= self.region.capacity
    }

    /// Bytes published and not yet consumed; reloads the head only when the cache is empty
    /// (and then first gives back the space consumed so far).
    #[inline(always)]
    fn available(&mut self) -> Result<u64, RingFault> {
        if self.cached_head == self.tail {
            self.commit();
            let head = self.region.head().load(Ordering::Acquire);
            // A truncated header page reads as zeros, which can look like an empty ring.
            if self.region.truncated() {
                return Err(RingFault::Truncated);
            }
            if !self.head_valid(head) {
                return Err(RingFault::HeadOutOfRange {
                    head,
                    tail: self.tail,
                    capacity: self.region.capacity,
                });
            }
            self.cached_head = head;
        }
        Ok(self.cached_head - self.tail)
    }

    /// Copies the next record into `scratch` and validates it; returns its length, type and
    /// header. Advances the tail past it (and past a wrap marker before it).
    #[inline(always)]
    fn read_next(&mut self) -> Result<Option<(usize, u16, Meta)>, RingFault> {
        let capacity = self.region.capacity;
        // At most a wrap marker and then a frame: a bounded loop, whatever the ring says.
        for attempt in 0..2 {
            let available = self.available()?;
            if available == 0 {
                return Ok(None);
            }
            let pos = self.tail;
            let offset = pos & (capacity - 1);
            let word = self.region.word(pos).load();
            let len = word as u32;
            let found = (word >> 32) as u32;
            let expected = layout::stamp(pos);
            if found != expected {
                return Err(RingFault::BadStamp {
                    pos,
                    expected,
                    found,
                });
            }
            if len == WRAP {
                let rest = capacity - offset;
                if attempt > 0 || rest > available || offset == 0 {
                    return Err(RingFault::BadWrap { pos });
                }
                self.tail = pos + rest;
                continue;
            }
            let len_usize = len as usize;
            if len_usize < RECORD_HEADER_LEN
                || len_usize > self.scratch.len() * 8
                || !len.is_multiple_of(8)
            {
                return Err(RingFault::BadLength { pos, len });
            }
            let frame = (FRAME_HEADER + len_usize) as u64;
            if offset + frame > capacity {
                return Err(RingFault::PastEnd {
                    pos,
                    frame,
                    offset,
                    capacity,
                });
            }
            if frame > available {
                return Err(RingFault::PastHead {
                    pos,
                    frame,
                    head: self.cached_head,
                });
            }
            // The frame lies inside the data area (checked just above): its publication stamp
            // (0: the publication of the frame before), then the record's words.
            match self.region.word(pos + FRAME_PUBLISHED).load() {
                0 => {}
                UNSTAMPED => self.published_ns = 0,
                stamp => self.published_ns = stamp,
            }
            let src = self.region.words(pos + FRAME_HEADER as u64, len_usize / 8);
            for (dst, w) in self.scratch[..len_usize / 8].iter_mut().zip(src) {
                *dst = w.load();
            }
            if self.region.truncated() {
                return Err(RingFault::Truncated);
            }
            let view = match RecordView::parse(&scratch_bytes(&self.scratch)[..len_usize]) {
                Ok(view) => view,
                Err(error) => return Err(RingFault::BadRecord { pos, error }),
            };
            if view.bytes.len() != len_usize {
                return Err(RingFault::LengthMismatch {
                    pos,
                    frame_len: len,
                    record_len: view.bytes.len(),
                });
            }
            let (type_id, meta) = (view.type_id, view.meta);
            self.tail = pos + frame;
            if self.tail - self.published_tail >= self.commit_every {
                self.commit();
            }
            return Ok(Some((len_usize, type_id, meta)));
        }
        // Not reached: the second pass returns (a second wrap marker is `BadWrap`).
        Err(RingFault::BadWrap { pos: self.tail })
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // A clean stop gives back everything consumed: a restart resumes exactly here.
        if self.fault.is_none() && !self.region.truncated() {
            self.commit();
        }
    }
}

/// The scratch words as bytes (the crate builds for little-endian targets only, where the
/// bytes of each word are the record's bytes in order).
fn scratch_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: u8 has no alignment or validity requirements; same allocation and length.
    unsafe { core::slice::from_raw_parts(words.as_ptr() as *const u8, words.len() * 8) }
}

fn scratch_bytes_mut(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: as above, and the borrow is exclusive.
    unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, words.len() * 8) }
}

/// The shared state of an in-memory ring: same logic, heap instead of `/dev/shm`.
pub(crate) struct MemShared {
    head: Padded,
    tail: Padded,
    dropped: AtomicU64,
    overrun_gaps: AtomicU64,
    data: Box<[Word]>,
}

#[repr(align(128))]
struct Padded(AtomicU64);

/// An in-process ring of `capacity` data bytes (a power of two, at least 512): the reference
/// implementation the loom model checks, and a ring for in-process tests.
pub fn mem_ring(capacity: usize) -> (Producer, Consumer) {
    mem_ring_at(capacity, 0)
}

/// [`mem_ring`] whose head and tail start at absolute position `start` (8-aligned), so that a
/// test reaches wrap-around, or stamp truncation, in a few records.
#[doc(hidden)]
pub fn mem_ring_at(capacity: usize, start: u64) -> (Producer, Consumer) {
    assert!(
        capacity.is_power_of_two() && (MIN_MEM_CAPACITY..=1 << 30).contains(&capacity),
        "ring capacity must be a power of two in 512..=1 GiB"
    );
    assert!(start.is_multiple_of(8), "ring positions are 8-aligned");
    let data: Box<[Word]> = (0..capacity / 8).map(|_| Word::new(0)).collect();
    let shared = Arc::new(MemShared {
        head: Padded(AtomicU64::new(start)),
        tail: Padded(AtomicU64::new(start)),
        dropped: AtomicU64::new(0),
        overrun_gaps: AtomicU64::new(0),
        data,
    });
    let region = |s: &MemShared| Region {
        head: &s.head.0,
        tail: &s.tail.0,
        dropped: &s.dropped,
        overrun_gaps: &s.overrun_gaps,
        data: s.data.as_ptr(),
        capacity: capacity as u64,
        truncated: &NEVER_TRUNCATED,
    };
    let producer = Producer::new(region(&shared), Keep::Mem(shared.clone()));
    let consumer = Consumer::new(region(&shared), Keep::Mem(shared), start);
    (producer, consumer)
}
