//! The UDP feed handler: datagrams of normalized protocol records in, shard rings out.
//!
//! Datagram format (`docs/formats/ring.md`, "Feed datagrams"): a 24-byte header
//! (`magic u32`, `version u16`, `count u16`, `sequence u64`, `session u64`) followed by exactly
//! `count` protocol records back to back. A datagram is validated whole before any of its
//! records is routed: a malformed datagram is counted and dropped, never partly forwarded.
//! Sequence numbers increase by one per datagram of a session; a jump means datagrams were
//! lost in transport, and every shard gets a `gap` record (`GapReason::FeedLoss`) before the
//! next records. A new session is a restarted sender: every shard gets a `SenderRestart` gap,
//! and the numbering starts again.
//!
//! Per datagram the handler records, per shard it wrote to, the time from its receive to its
//! ring publication (`receive_to_publish`, `CLOCK_MONOTONIC`, one sample per record) into
//! histograms it alone owns; with [`FeedHandler::report_to`] it hands them and its counters
//! to the metrics thread every 250 ms, between datagrams (no atomics or locks per datagram).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chronicle_metrics::{stage_histogram, CounterValue, FeedSnapshot, Reporter};
use chronicle_protocol::wire::{put_u16, put_u32, put_u64, tiles, u16_at, u32_at, u64_at};
use chronicle_protocol::{Body, DecodeError, Gap, GapReason, Meta, Record, RecordView};
use hdrhistogram::Histogram;

use crate::clock::monotonic_ns;
use crate::ring::{Producer, PushError, Pushed};
use crate::socket::{self, BatchReceiver, ReceiveBuffer, DEFAULT_RECV_BUFFER_BYTES};

/// `b"CHFD"` read as a little-endian u32.
pub const DATAGRAM_MAGIC: u32 = u32::from_le_bytes(*b"CHFD");
/// 3: declarations are `declaration` records (2 sent definitions with a marker tick id); a
/// datagram of another version is refused as malformed, so a sender and a receiver of
/// different releases fail loudly instead of holding undeclared tokens.
pub const DATAGRAM_VERSION: u16 = 3;
pub const DATAGRAM_HEADER_LEN: usize = 24;
// Datagram header fields (`docs/formats/ring.md`, "Feed datagram").
const MAGIC_AT: usize = 0;
const VERSION_AT: usize = 4;
const COUNT_AT: usize = 6;
const SEQUENCE_AT: usize = 8;
const SESSION_AT: usize = 16;

const _: () = assert!(tiles(
    &[
        (MAGIC_AT, 4),
        (VERSION_AT, 2),
        (COUNT_AT, 2),
        (SEQUENCE_AT, 8),
        (SESSION_AT, 8),
    ],
    DATAGRAM_HEADER_LEN
));
/// The largest UDP payload over IPv4.
pub const MAX_DATAGRAM_LEN: usize = 65507;
/// A limit on records per datagram (65507 bytes hold at most 2046 records of 32 bytes).
pub const MAX_RECORDS_PER_DATAGRAM: u16 = 2046;
/// A limit on shards: the handler tracks the shards a datagram touched in a u64.
pub const MAX_SHARDS: usize = 64;
/// How long a blocking receive waits before the handler checks its stop flag and flushes
/// pending gap markers.
const IDLE_POLL: Duration = Duration::from_millis(10);
/// How often the handler hands its histograms and counters to the metrics thread.
pub const REPORT_EVERY: Duration = Duration::from_millis(250);
/// The `stage` label of the handler's histograms on `/metrics`.
pub const RECEIVE_TO_PUBLISH: &str = "receive_to_publish";

/// Why a datagram was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatagramError {
    #[error("datagram of {len} bytes is shorter than its {DATAGRAM_HEADER_LEN}-byte header")]
    Truncated { len: usize },
    #[error("datagram magic {found:#010x} is not {DATAGRAM_MAGIC:#010x}")]
    BadMagic { found: u32 },
    #[error("datagram version {found}, expected {DATAGRAM_VERSION}")]
    BadVersion { found: u16 },
    #[error("datagram announces {count} records, the limit is {MAX_RECORDS_PER_DATAGRAM}")]
    TooManyRecords { count: u16 },
    #[error("record {index} at datagram offset {offset}: {error}")]
    BadRecord {
        index: u16,
        offset: usize,
        error: DecodeError,
    },
    #[error("{extra} bytes after the {count} records the datagram announces")]
    TrailingBytes { count: u16, extra: usize },
}

/// Counters of the feed handler (single writer: the handler thread).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedStats {
    pub datagrams: u64,
    /// Records written to rings (dropped-on-overrun records are counted by each ring).
    pub records_written: u64,
    /// Records a full ring dropped (each announced by a `RingOverrun` gap).
    pub records_dropped: u64,
    /// Malformed datagrams, all reasons.
    pub malformed: u64,
    pub malformed_truncated: u64,
    pub malformed_magic: u64,
    pub malformed_version: u64,
    pub malformed_count: u64,
    pub malformed_record: u64,
    pub malformed_trailing: u64,
    /// Datagrams whose sequence was behind the expected one (duplicates, late arrivals).
    pub stale: u64,
    /// Datagrams missing according to sequence numbers (kernel drops and upstream loss).
    pub lost_datagrams: u64,
    /// Of those, the ones lost before this box's socket (on the wire, upstream).
    pub upstream_lost_datagrams: u64,
    /// Sequence jumps, each announced to every shard by a `KernelDrop` and/or `FeedLoss` gap.
    pub feed_gaps: u64,
    /// Datagrams the kernel dropped because the socket's receive buffer was full
    /// (`SO_RXQ_OVFL`), whatever they carried.
    pub kernel_drops: u64,
    /// New sender sessions after the first (a restarted sender), each announced to every
    /// shard by a `SenderRestart` gap.
    pub sender_restarts: u64,
}

impl FeedStats {
    /// The counters as exported on `/metrics` (`docs/observability.md`).
    pub fn counter_values(&self) -> Vec<CounterValue> {
        let one = |name, help, value| CounterValue {
            name,
            help,
            labels: Vec::new(),
            value,
        };
        let malformed = |reason, value| CounterValue {
            name: "chronicle_feed_malformed_datagrams_total",
            help: "Malformed datagrams dropped whole by the feed handler, by reason.",
            labels: vec![("reason", reason)],
            value,
        };
        vec![
            one(
                "chronicle_feed_datagrams_total",
                "Datagrams the feed handler received (valid or not).",
                self.datagrams,
            ),
            one(
                "chronicle_feed_records_total",
                "Records the feed handler wrote to shard rings.",
                self.records_written,
            ),
            one(
                "chronicle_feed_dropped_records_total",
                "Records a full shard ring dropped (each run announced by a ring_overrun gap).",
                self.records_dropped,
            ),
            malformed("truncated", self.malformed_truncated),
            malformed("magic", self.malformed_magic),
            malformed("version", self.malformed_version),
            malformed("count", self.malformed_count),
            malformed("record", self.malformed_record),
            malformed("trailing", self.malformed_trailing),
            one(
                "chronicle_feed_stale_datagrams_total",
                "Datagrams behind the expected sequence (duplicates, late), not forwarded.",
                self.stale,
            ),
            one(
                "chronicle_feed_sender_restarts_total",
                "New sender sessions after the first: a restarted sender, marked in every shard's stream.",
                self.sender_restarts,
            ),
            one(
                "chronicle_feed_lost_datagrams_total",
                "Datagrams missing according to sequence numbers.",
                self.lost_datagrams,
            ),
            one(
                "chronicle_feed_upstream_lost_datagrams_total",
                "Datagrams missing by sequence that the kernel did not drop (lost upstream).",
                self.upstream_lost_datagrams,
            ),
            one(
                "chronicle_feed_loss_gaps_total",
                "Sequence jumps, each announced to every shard by kernel_drop/feed_loss gaps.",
                self.feed_gaps,
            ),
            one(
                "chronicle_feed_kernel_drops_total",
                "Datagrams the kernel dropped because the socket's receive buffer was full.",
                self.kernel_drops,
            ),
        ]
    }
}

/// Token → shard: an explicit table, else `token_id % shards`. Stable: the same
/// configuration always routes a token to the same shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    shards: usize,
    /// Sorted by token, no duplicates.
    table: Vec<(u32, u16)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("shard count {0} must be in 1..={MAX_SHARDS}")]
    ShardCount(usize),
    #[error("token {token} is mapped to shard {shard}, but there are {shards} shards")]
    ShardOutOfRange {
        token: u32,
        shard: usize,
        shards: usize,
    },
    #[error("token {0} is mapped twice")]
    DuplicateToken(u32),
    #[error("{rings} rings for a map of {shards} shards")]
    RingCount { rings: usize, shards: usize },
    #[error("feed socket: {0}")]
    Socket(String),
}

impl ShardMap {
    pub fn modulo(shards: usize) -> Result<Self, ConfigError> {
        Self::with_table(shards, [])
    }

    pub fn with_table(
        shards: usize,
        entries: impl IntoIterator<Item = (u32, usize)>,
    ) -> Result<Self, ConfigError> {
        if shards == 0 || shards > MAX_SHARDS {
            return Err(ConfigError::ShardCount(shards));
        }
        let mut table = Vec::new();
        for (token, shard) in entries {
            if shard >= shards {
                return Err(ConfigError::ShardOutOfRange {
                    token,
                    shard,
                    shards,
                });
            }
            table.push((token, shard as u16));
        }
        table.sort_unstable();
        if let Some(w) = table.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(ConfigError::DuplicateToken(w[0].0));
        }
        Ok(Self { shards, table })
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    #[inline]
    pub fn shard_of(&self, token_id: u32) -> usize {
        match self.table.binary_search_by_key(&token_id, |e| e.0) {
            Ok(i) => self.table[i].1 as usize,
            Err(_) => token_id as usize % self.shards,
        }
    }
}

/// A valid datagram's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramHeader {
    pub sequence: u64,
    pub count: u16,
    /// The sender's run: a restarted sender picks a new one (never 0).
    pub session: u64,
}

/// Validates a datagram; returns its header. No allocation.
pub fn validate_datagram(d: &[u8]) -> Result<DatagramHeader, DatagramError> {
    if d.len() < DATAGRAM_HEADER_LEN {
        return Err(DatagramError::Truncated { len: d.len() });
    }
    let magic = u32_at(d, MAGIC_AT);
    if magic != DATAGRAM_MAGIC {
        return Err(DatagramError::BadMagic { found: magic });
    }
    let version = u16_at(d, VERSION_AT);
    if version != DATAGRAM_VERSION {
        return Err(DatagramError::BadVersion { found: version });
    }
    let count = u16_at(d, COUNT_AT);
    if count > MAX_RECORDS_PER_DATAGRAM {
        return Err(DatagramError::TooManyRecords { count });
    }
    let sequence = u64_at(d, SEQUENCE_AT);
    let session = u64_at(d, SESSION_AT);
    let mut offset = DATAGRAM_HEADER_LEN;
    for index in 0..count {
        let view = RecordView::parse(&d[offset..]).map_err(|error| DatagramError::BadRecord {
            index,
            offset,
            error,
        })?;
        // Full decode: unknown types and invalid fields are malformed here, not downstream.
        view.decode().map_err(|error| DatagramError::BadRecord {
            index,
            offset,
            error,
        })?;
        offset += view.bytes.len();
    }
    if offset != d.len() {
        return Err(DatagramError::TrailingBytes {
            count,
            extra: d.len() - offset,
        });
    }
    Ok(DatagramHeader {
        sequence,
        count,
        session,
    })
}

/// A session id for a sender starting now: its start time and process, never 0.
pub fn new_session() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (now ^ (u64::from(std::process::id()) << 40)).max(1)
}

/// Builds feed datagrams (for senders, replay tools and tests). Reuses its buffer.
#[derive(Debug, Clone)]
pub struct DatagramWriter {
    buf: Vec<u8>,
    /// This sender's session, written in every header.
    session: u64,
    /// Bytes a datagram may take (header included) unless its first record alone is larger.
    limit: usize,
    count: u16,
    finished: bool,
}

impl Default for DatagramWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl DatagramWriter {
    /// Datagrams of up to the largest UDP payload.
    pub fn new() -> Self {
        Self::with_limit(MAX_DATAGRAM_LEN)
    }

    /// Datagrams of at most `limit` bytes, header included (clamped to the header and one
    /// record ..= [`MAX_DATAGRAM_LEN`]; 1472 fits an Ethernet MTU). A record that does not
    /// fit an empty datagram of `limit` bytes still goes, alone, up to `MAX_DATAGRAM_LEN`.
    pub fn with_limit(limit: usize) -> Self {
        let limit = limit.clamp(DATAGRAM_HEADER_LEN + 32, MAX_DATAGRAM_LEN);
        let mut buf = Vec::with_capacity(limit);
        buf.resize(DATAGRAM_HEADER_LEN, 0);
        Self {
            buf,
            session: new_session(),
            limit,
            count: 0,
            finished: false,
        }
    }

    /// The session this writer's datagrams carry.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Sets the session (a sender that resumes its own numbering, tests).
    pub fn set_session(&mut self, session: u64) {
        assert!(session != 0, "session 0 is not a session");
        self.session = session;
    }

    /// The datagram size limit (header included).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Appends an encoded record; false (and nothing appended) if it would not fit.
    pub fn push(&mut self, record: &[u8]) -> bool {
        if self.finished {
            self.clear();
        }
        let limit = if self.count == 0 {
            MAX_DATAGRAM_LEN
        } else {
            self.limit
        };
        if self.buf.len() + record.len() > limit || self.count >= MAX_RECORDS_PER_DATAGRAM {
            return false;
        }
        self.buf.extend_from_slice(record);
        self.count += 1;
        true
    }

    /// Records in the datagram being built.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Writes the header for `sequence` and returns the datagram; the next `push` starts a
    /// new one.
    pub fn finish(&mut self, sequence: u64) -> &[u8] {
        put_u32(&mut self.buf, MAGIC_AT, DATAGRAM_MAGIC);
        put_u16(&mut self.buf, VERSION_AT, DATAGRAM_VERSION);
        put_u16(&mut self.buf, COUNT_AT, self.count);
        put_u64(&mut self.buf, SEQUENCE_AT, sequence);
        put_u64(&mut self.buf, SESSION_AT, self.session);
        self.count = 0;
        self.finished = true;
        &self.buf
    }

    pub fn clear(&mut self) {
        self.buf.truncate(DATAGRAM_HEADER_LEN);
        self.count = 0;
        self.finished = false;
    }
}

/// What a valid datagram became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    /// Routed: `written` records reached rings, `dropped` were lost to full rings.
    Routed { written: u16, dropped: u16 },
    /// Behind the expected sequence (a duplicate or a late datagram): not forwarded, since
    /// its loss was already announced and forwarding it now would reorder the stream.
    Stale,
}

/// Everything the handler owns except the socket and buffer (split so that the receive
/// buffer can be borrowed while the rings are written).
struct Router {
    rings: Vec<Producer>,
    map: ShardMap,
    /// The sequence the next datagram should carry; a sender numbers from 0, so whatever came
    /// before the first datagram received is lost to this run.
    expected: u64,
    /// The sender's session (None before the first datagram), and the one before it: a late
    /// datagram of the ended session is stale, not another restart.
    session: Option<u64>,
    ended_session: Option<u64>,
    /// The socket's cumulative kernel drop count as of the last datagram read.
    kernel_seen: u32,
    /// Kernel drops not yet matched to a sequence jump.
    kernel_pending: u64,
    stats: FeedStats,
    /// Per shard: receive → ring publication of its records, ns, since the last hand-off.
    receive_to_publish: Vec<Histogram<u64>>,
    /// Per shard: records of the current datagram written to its ring.
    routed: [u32; MAX_SHARDS],
}

impl Router {
    /// `received_ns`: when the datagram was received (`CLOCK_MONOTONIC`); `kernel_drops`: the
    /// socket's cumulative drop count when it was queued (`SO_RXQ_OVFL`).
    fn handle(
        &mut self,
        d: &[u8],
        received_ns: u64,
        kernel_drops: u32,
    ) -> Result<Forwarded, DatagramError> {
        self.stats.datagrams += 1;
        self.kernel_count(kernel_drops);
        let DatagramHeader {
            sequence,
            count,
            session,
        } = match validate_datagram(d) {
            Ok(v) => v,
            Err(e) => {
                self.count_malformed(&e);
                return Err(e);
            }
        };
        let first = || {
            RecordView::parse(&d[DATAGRAM_HEADER_LEN..])
                .map(|v| v.meta)
                .unwrap_or_default()
        };
        let mut restarted = false;
        match self.session {
            Some(s) if s == session => {}
            _ if Some(session) == self.ended_session => {
                self.stats.stale += 1;
                return Ok(Forwarded::Stale);
            }
            Some(s) => {
                // A restarted sender: marked on every shard, then its numbering from 0.
                self.stats.sender_restarts += 1;
                self.stage_gap(
                    GapReason::SenderRestart,
                    self.expected,
                    sequence,
                    0,
                    first(),
                );
                self.ended_session = Some(s);
                self.session = Some(session);
                self.expected = 0;
                restarted = true;
            }
            None => self.session = Some(session),
        }
        // A malformed datagram does not advance `expected`: the next valid one then shows a
        // jump, so whatever the malformed one carried is announced as lost.
        if sequence < self.expected {
            self.stats.stale += 1;
            return Ok(Forwarded::Stale);
        }
        let lost_gap = sequence > self.expected;
        if lost_gap {
            self.announce_loss(self.expected, sequence, first());
        }
        // Drops the kernel counted beyond the jump were datagrams that carried no sequence
        // of this stream (malformed, stale): counted, not announced.
        self.kernel_pending = 0;
        self.expected = sequence.saturating_add(1);

        // Gaps were staged on every shard: publish them all.
        let mut touched = if lost_gap || restarted {
            u64::MAX >> (64 - self.rings.len())
        } else {
            0
        };
        let (mut written, mut dropped) = (0u16, 0u16);
        let mut offset = DATAGRAM_HEADER_LEN;
        for _ in 0..count {
            // Validated above; a failure here would be a bug, so stop rather than guess.
            let Ok(view) = RecordView::parse(&d[offset..]) else {
                break;
            };
            offset += view.bytes.len();
            let shard = self.map.shard_of(view.meta.token_id);
            touched |= 1 << shard;
            match self.rings[shard].stage(view.bytes) {
                Ok(Pushed::Written) => {
                    written += 1;
                    self.routed[shard] += 1;
                }
                Ok(Pushed::Dropped) => dropped += 1,
                Err(PushError::BadRecord { .. } | PushError::TooLarge { .. }) => dropped += 1,
            }
        }
        self.publish(touched, received_ns);
        self.stats.records_written += written as u64;
        self.stats.records_dropped += dropped as u64;
        Ok(Forwarded::Routed { written, dropped })
    }

    /// Publishes every ring the datagram touched, all stamped with one clock read, and
    /// records each shard's records' receive → publish time.
    fn publish(&mut self, mut touched: u64, received_ns: u64) {
        let now = monotonic_ns();
        let latency = now.saturating_sub(received_ns).max(1);
        while touched != 0 {
            let shard = touched.trailing_zeros() as usize;
            let ring = &mut self.rings[shard];
            ring.publish_to(ring.position(), now);
            let routed = std::mem::take(&mut self.routed[shard]);
            if routed > 0 {
                self.receive_to_publish[shard].saturating_record_n(latency, routed as u64);
            }
            touched &= touched - 1;
        }
    }

    /// Takes the socket's cumulative kernel drop count (from a datagram, or read while idle):
    /// what it grew by since the last count was dropped. A datagram queued before an idle
    /// read carries an older count, which is not a step back.
    fn kernel_count(&mut self, cumulative: u32) {
        let grew = cumulative.wrapping_sub(self.kernel_seen);
        if grew == 0 || grew > u32::MAX / 2 {
            return;
        }
        self.kernel_seen = cumulative;
        self.stats.kernel_drops += grew as u64;
        self.kernel_pending += grew as u64;
    }

    /// Datagrams `expected..received` are missing. Every shard gets the gap markers (a lost
    /// datagram may have carried any token): `KernelDrop` for those the kernel dropped here,
    /// `FeedLoss` for the rest (lost upstream); `lost` counts datagrams (records unknown).
    fn announce_loss(&mut self, expected: u64, received: u64, at: Meta) {
        let missing = received - expected;
        let kernel = self.kernel_pending.min(missing);
        self.stats.lost_datagrams += missing;
        self.stats.upstream_lost_datagrams += missing - kernel;
        self.stats.feed_gaps += 1;
        for (reason, lost) in [
            (GapReason::KernelDrop, kernel),
            (GapReason::FeedLoss, missing - kernel),
        ] {
            if lost != 0 {
                self.stage_gap(reason, expected, received, lost, at);
            }
        }
    }

    /// Stages a gap for the whole shard (token 0, the times of `at`) on every ring.
    fn stage_gap(&mut self, reason: GapReason, expected: u64, received: u64, lost: u64, at: Meta) {
        let gap = Record {
            meta: Meta {
                token_id: 0,
                global_tick_id: 0,
                ..at
            },
            body: Body::Gap(Gap {
                reason,
                expected,
                received,
                lost,
            }),
        };
        let mut buf = [0u8; 64];
        let n = gap.encode(&mut buf).expect("a gap record fits 64 bytes");
        for ring in &mut self.rings {
            // A full ring drops it like any record, and its own overrun gap covers it.
            let _ = ring.stage(&buf[..n]);
        }
    }

    fn count_malformed(&mut self, e: &DatagramError) {
        self.stats.malformed += 1;
        let c = match e {
            DatagramError::Truncated { .. } => &mut self.stats.malformed_truncated,
            DatagramError::BadMagic { .. } => &mut self.stats.malformed_magic,
            DatagramError::BadVersion { .. } => &mut self.stats.malformed_version,
            DatagramError::TooManyRecords { .. } => &mut self.stats.malformed_count,
            DatagramError::BadRecord { .. } => &mut self.stats.malformed_record,
            DatagramError::TrailingBytes { .. } => &mut self.stats.malformed_trailing,
        };
        *c += 1;
    }

    fn flush_gaps(&mut self) {
        for ring in &mut self.rings {
            ring.flush_gap();
        }
    }
}

/// Receives feed datagrams on a UDP socket and writes their records into the shard rings.
pub struct FeedHandler {
    socket: UdpSocket,
    receiver: BatchReceiver,
    receive_buffer: ReceiveBuffer,
    /// The kernel's drop count was read since the last datagram.
    idle_counted: bool,
    router: Router,
    /// Where and when the next hand-off goes (`report_to`).
    reporter: Option<(Reporter, u64)>,
}

impl FeedHandler {
    /// `rings[i]` is shard `i`'s producer; `map` must have as many shards. The socket gets
    /// the default receive buffer ([`DEFAULT_RECV_BUFFER_BYTES`]).
    pub fn new(
        socket: UdpSocket,
        rings: Vec<Producer>,
        map: ShardMap,
    ) -> Result<Self, ConfigError> {
        Self::with_receive_buffer(socket, rings, map, DEFAULT_RECV_BUFFER_BYTES)
    }

    /// As [`FeedHandler::new`], asking for a receive buffer of `recv_buffer_bytes` (0: the
    /// kernel's default); see [`crate::socket::prepare`].
    pub fn with_receive_buffer(
        socket: UdpSocket,
        rings: Vec<Producer>,
        map: ShardMap,
        recv_buffer_bytes: usize,
    ) -> Result<Self, ConfigError> {
        if rings.len() != map.shards() {
            return Err(ConfigError::RingCount {
                rings: rings.len(),
                shards: map.shards(),
            });
        }
        let receive_buffer = socket::prepare(&socket, recv_buffer_bytes)
            .map_err(|e| ConfigError::Socket(e.to_string()))?;
        Ok(Self {
            socket,
            receiver: BatchReceiver::new(),
            receive_buffer,
            idle_counted: false,
            router: Router {
                receive_to_publish: rings.iter().map(|_| stage_histogram()).collect(),
                routed: [0; MAX_SHARDS],
                rings,
                map,
                expected: 0,
                session: None,
                ended_session: None,
                kernel_seen: 0,
                kernel_pending: 0,
                stats: FeedStats::default(),
            },
            reporter: None,
        })
    }

    /// The receive buffer asked for and granted.
    pub fn receive_buffer(&self) -> ReceiveBuffer {
        self.receive_buffer
    }

    /// Hands the handler's histograms and counters to the metrics thread every
    /// [`REPORT_EVERY`] while it runs, and once more when it stops.
    pub fn report_to(&mut self, reporter: Reporter) {
        self.reporter = Some((reporter, monotonic_ns() + REPORT_EVERY.as_nanos() as u64));
    }

    /// Receive → publish latencies (ns) per shard since the last hand-off.
    pub fn receive_to_publish(&self) -> &[Histogram<u64>] {
        &self.router.receive_to_publish
    }

    /// Sends the histograms recorded since the last hand-off (replaced by fresh ones: this
    /// allocates, so it runs between datagrams) and the counters, if reporting.
    fn hand_off(&mut self) {
        let Some((reporter, next)) = &mut self.reporter else {
            return;
        };
        let stages = self
            .router
            .receive_to_publish
            .iter_mut()
            .enumerate()
            .map(|(shard, h)| {
                (
                    shard,
                    RECEIVE_TO_PUBLISH,
                    std::mem::replace(h, stage_histogram()),
                )
            })
            .collect();
        reporter.send_feed(FeedSnapshot {
            stages,
            counters: self.router.stats.counter_values(),
            gauges: vec![CounterValue {
                name: "chronicle_feed_receive_buffer_bytes",
                help: "The feed socket's receive buffer as the kernel granted it (SO_RCVBUF).",
                labels: Vec::new(),
                value: self.receive_buffer.granted as u64,
            }],
        });
        *next = monotonic_ns() + REPORT_EVERY.as_nanos() as u64;
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    pub fn stats(&self) -> FeedStats {
        self.router.stats
    }

    pub fn producers(&self) -> &[Producer] {
        &self.router.rings
    }

    /// Validates and routes one datagram received now (what `poll` does with each received
    /// one), as if the kernel had dropped nothing.
    pub fn handle_datagram(&mut self, datagram: &[u8]) -> Result<Forwarded, DatagramError> {
        let seen = self.router.kernel_seen;
        self.router.handle(datagram, monotonic_ns(), seen)
    }

    /// Receives and handles what is queued, up to [`crate::socket::RECV_BATCH`] datagrams, honouring the
    /// socket's blocking mode and timeout. `Ok(false)` if nothing arrived (timeout or
    /// would-block).
    pub fn poll(&mut self) -> io::Result<bool> {
        fail::fail_point!("feed::poll");
        match self.receiver.recv(&self.socket) {
            Ok(n) => {
                self.idle_counted = false;
                // One clock read per batch: the datagrams were all queued by now.
                let received_ns = monotonic_ns();
                for i in 0..n {
                    let r = self.receiver.get(i);
                    // Malformed datagrams are counted in the stats; nothing more to do here.
                    let _ = self.router.handle(r.datagram, received_ns, r.kernel_drops);
                }
                Ok(n > 0)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                // Once per idle spell: drops after the last datagram are counted now rather
                // than when the next datagram shows them (its gap marks them then).
                if !self.idle_counted {
                    self.idle_counted = true;
                    if let Ok(drops) = socket::kernel_drops_now(&self.socket) {
                        self.router.kernel_count(drops);
                    }
                }
                self.router.flush_gaps();
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Runs until `stop` is set. `busy_poll`: a non-blocking socket polled in a spin (lowest
    /// latency, burns the core); otherwise a blocking receive that wakes every 10 ms.
    pub fn run(&mut self, stop: &AtomicBool, busy_poll: bool) -> io::Result<()> {
        if busy_poll {
            self.socket.set_nonblocking(true)?;
        } else {
            self.socket.set_nonblocking(false)?;
            self.socket.set_read_timeout(Some(IDLE_POLL))?;
        }
        while !stop.load(Ordering::Relaxed) {
            if !self.poll()? && busy_poll {
                core::hint::spin_loop();
            }
            if self
                .reporter
                .as_ref()
                .is_some_and(|(_, next)| monotonic_ns() >= *next)
            {
                self.hand_off();
            }
        }
        self.router.flush_gaps();
        self.hand_off();
        Ok(())
    }

    /// Runs the handler on its own thread, pinned to `core` (if given and available), until
    /// `stop` is set; the thread hands the handler back for its final stats.
    pub fn spawn(
        mut self,
        core: Option<usize>,
        busy_poll: bool,
        stop: Arc<AtomicBool>,
    ) -> io::Result<JoinHandle<(FeedHandler, io::Result<()>)>> {
        std::thread::Builder::new()
            .name("chronicle-feed".into())
            .spawn(move || {
                if let Some(core) = core {
                    pin_current_thread(core);
                }
                let result = self.run(&stop, busy_poll);
                (self, result)
            })
    }
}

/// Pins the calling thread to `core`; false if the core does not exist or pinning failed.
pub fn pin_current_thread(core: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}
