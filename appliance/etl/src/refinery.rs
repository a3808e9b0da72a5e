use crate::book::{Book, MAX_LEVELS_PER_SIDE};
use crate::resume::resume;
use crate::resume::Resume;
use crate::EtlError;
use chronicle_protocol::{
    Body, BookSnapshot, Declaration, Definition, FixedStr, Gap, GapReason, Level, Levels, Meta,
    Record, MAX_RECORD_LEN,
};
use chronicle_storage::meta::{Completeness, PartitionMeta, Source};
use chronicle_storage::partition::{partition_dir, PartitionPaths, PartitionWriter, SEGMENT_FILE};
use chronicle_storage::segment::{frame_len, SegmentHeader};
use chronicle_storage::symbols::{DimSymbol, SymbolRow};
use chronicle_storage::utc;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use time::Date;

/// Where a partition's late stream lives: `{date}/late/{book.q, meta.json, index/}`.
pub const LATE_DIR: &str = "late";
const NS_PER_DAY: u64 = 86_400_000_000_000;

/// What happens to a record whose day closed (more than the grace after its midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatePolicy {
    /// Counted and dropped: partitions stay immutable once closed.
    Reject,
    /// Written to the day's separate `late/` stream, outside the canonical log.
    LateStream,
}

impl LatePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            LatePolicy::Reject => "reject",
            LatePolicy::LateStream => "late_stream",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RefineryConfig {
    pub data_dir: PathBuf,
    pub source: Source,
    /// Book snapshot injection period in exchange time (60 s by default: `docs/config.md`); 0
    /// disables it.
    pub inject_every_ns: u64,
    /// How long after midnight the previous day still takes records (1 h by default).
    pub grace_ns: u64,
    pub late_policy: LatePolicy,
    /// Reopen existing partitions (the appliance restarting) instead of refusing (an import).
    pub append_existing: bool,
    pub backend: Backend,
}

/// Who writes the partition files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Each partition writer writes its own files through the page cache, and syncs once this
    /// many bytes are pending (import, tools).
    PageCache { sync_every_bytes: usize },
    /// The partition writers only buffer: one owner (the appliance's flush writer) takes their
    /// bytes with `seal` and creates, writes and closes the files. A day the data directory
    /// does not have yet opens without touching the disk.
    Sealed,
}

impl RefineryConfig {
    pub fn new(data_dir: PathBuf, source: Source) -> Self {
        Self {
            data_dir,
            source,
            inject_every_ns: 60_000_000_000,
            grace_ns: 3_600_000_000_000,
            late_policy: LatePolicy::Reject,
            append_existing: false,
            backend: Backend::PageCache {
                sync_every_bytes: 8 << 20,
            },
        }
    }
}

/// One record as appended: what the engine and the flush bookkeeping need.
pub struct Appended<'a> {
    pub record: &'a Record<'a>,
    pub date: Date,
    /// Segment offset just past the record's frame.
    pub end_offset: u64,
    /// Written to a late stream: not part of the token's canonical log.
    pub late: bool,
}

/// A partition the refinery closed: its files and final meta; with [`Backend::Sealed`], the
/// index entries and `meta.json` its files' owner still has to write.
#[derive(Debug, Clone)]
pub struct Closed {
    pub paths: PartitionPaths,
    pub meta: PartitionMeta,
    pub index_tail: Vec<u8>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub records: u64,
    pub injected_snapshots: u64,
    pub late_rejected: u64,
    pub late_streamed: u64,
    pub partitions_opened: u64,
    pub partitions_closed: u64,
    /// With [`Backend::Sealed`]: partitions on disk that a declaration did not open ahead (an
    /// older day, or one already closed), opened on the caller's thread when a record came.
    pub partitions_reopened: u64,
    /// Records already stored that a restarted sender sent again: not stored twice
    /// (`stored.rs`).
    pub duplicates: u64,
}

/// See [`Refinery::declare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayResume {
    pub start_tick: u64,
    pub durable_tick: u64,
}

impl ReplayResume {
    /// The resume point a declaration carries; None from a live feed (start tick 0).
    pub fn of(d: &Declaration) -> Option<Self> {
        (d.start_tick != 0).then_some(Self {
            start_tick: d.start_tick,
            durable_tick: d.durable_tick,
        })
    }
}

struct Token {
    definition: Definition,
    /// The latest day (`YYYYMMDD`) the data directory held for it at its declaration: a later
    /// day is a new partition.
    last_day_on_disk: u32,
    next_tick: u64,
    /// Records up to this tick id are already durable: re-derived, not written.
    durable_tick: u64,
    /// Largest exchange time seen: the token's clock for grace and injection.
    watermark: u64,
    /// The venue ids stored, for a restarted sender's records sent again.
    stored: crate::stored::Stored,
    book: Book,
}

/// Closed late streams kept ready (sealed, no descriptor: a few hundred bytes each) for a
/// later late record of their day.
pub const MAX_READY_LATE_STREAMS: usize = 1024;

/// A partition writer's key: token, `YYYYMMDD`, late stream or not. Ordered, so flushing and
/// closing walk partitions deterministically.
pub type PartitionKey = (u32, u32, bool);
type Key = PartitionKey;

pub struct Refinery {
    cfg: RefineryConfig,
    symbols: DimSymbol,
    tokens: BTreeMap<u32, Token>,
    writers: BTreeMap<Key, PartitionWriter>,
    /// Sealed writers that take their key's next append without touching the disk: existing
    /// open partitions a declaration prepared, and late streams closed in this run (a later
    /// late record of their day reopens them; their file is the flush writer's). At most
    /// [`MAX_READY_LATE_STREAMS`] late streams are kept; past it the oldest day's is dropped
    /// and a later record of that day reopens its file (`partitions_reopened`).
    ready: BTreeMap<Key, PartitionWriter>,
    /// Partitions this run has started (their definition record is assigned), written to
    /// or, when re-deriving, already durable. A day's partition leaves it when it closes (no
    /// record of that day reaches it again: later ones are late); late streams stay.
    seen: std::collections::BTreeSet<Key>,
    /// Late streams this run created and closed: their file exists, so a later late record of
    /// their day reopens it instead of creating it. One key per day that had late records.
    closed_late: std::collections::BTreeSet<Key>,
    scratch: Box<[u8; MAX_RECORD_LEN]>,
    /// Scratch for an injected snapshot's levels, reserved once.
    levels: Vec<Level>,
    pub counters: Counters,
}

fn encode_err(e: impl std::fmt::Display) -> EtlError {
    EtlError::Encode(e.to_string())
}

impl Refinery {
    pub fn new(cfg: RefineryConfig) -> Result<Self, EtlError> {
        Ok(Self {
            symbols: DimSymbol::load(&cfg.data_dir)?,
            cfg,
            tokens: BTreeMap::new(),
            writers: BTreeMap::new(),
            ready: BTreeMap::new(),
            seen: std::collections::BTreeSet::new(),
            closed_late: std::collections::BTreeSet::new(),
            scratch: Box::new([0u8; MAX_RECORD_LEN]),
            levels: Vec::with_capacity(2 * MAX_LEVELS_PER_SIDE),
            counters: Counters::default(),
        })
    }

    pub fn config(&self) -> &RefineryConfig {
        &self.cfg
    }

    /// Declares (or refines) a token from its definition. A new token continues its log where
    /// the data directory left it. Exponents of a known token cannot change.
    ///
    /// `replay`: this run re-derives the token's stream from the start of a replayed input
    /// that an earlier, interrupted run began: `start_tick` is the first tick id that run
    /// assigned, records up to `durable_tick` are already on disk and are recomputed (book,
    /// clock, tick ids) but not written again.
    pub fn declare(
        &mut self,
        token_id: u32,
        definition: Definition,
        replay: Option<ReplayResume>,
    ) -> Result<(), EtlError> {
        if let Some(t) = self.tokens.get_mut(&token_id) {
            let old = &t.definition;
            if (old.price_exponent, old.quantity_exponent)
                != (definition.price_exponent, definition.quantity_exponent)
            {
                return Err(EtlError::Identity(format!(
                    "token {token_id} redeclared with exponents {}/{} (was {}/{})",
                    definition.price_exponent,
                    definition.quantity_exponent,
                    old.price_exponent,
                    old.quantity_exponent
                )));
            }
            t.definition = Definition {
                symbol_id: token_id as u64,
                ..definition
            };
            return Ok(());
        }
        let (p, _) = Self::prepare(&self.cfg, &mut self.symbols, token_id, definition, replay)?;
        self.install(p);
        Ok(())
    }

    /// Whether the token is declared.
    pub fn knows(&self, token_id: u32) -> bool {
        self.tokens.contains_key(&token_id)
    }

    /// The disk work of a new token's declaration, on any thread: its `dim_symbol` row (the
    /// table reloaded if it lacks it: the bool says so), where its log continues, and with
    /// [`Backend::Sealed`] its open partitions on disk, repaired and recounted. [`Self::install`]
    /// then takes it without touching the disk.
    pub fn prepare(
        cfg: &RefineryConfig,
        symbols: &mut DimSymbol,
        token_id: u32,
        definition: Definition,
        replay: Option<ReplayResume>,
    ) -> Result<(Prepared, bool), EtlError> {
        let (venue, raw) = Self::names(&definition)?;
        let (row, reloaded) = symbol_row(symbols, &cfg.data_dir, &venue, &raw, 0)?;
        let resume = resume(
            &cfg.data_dir,
            &venue,
            &row.symbol_code,
            replay.map(|p| p.start_tick),
        )?;
        let definition = Definition {
            symbol_id: token_id as u64,
            ..definition
        };
        let mut partitions = Vec::new();
        if cfg.backend == Backend::Sealed && cfg.append_existing {
            for day_dir in &resume.latest_days {
                let Some(date) = day_name(day_dir) else {
                    continue;
                };
                let (row, _) =
                    symbol_row(symbols, &cfg.data_dir, &venue, &raw, utc::midnight_ns(date))?;
                if unit_dir(&cfg.data_dir, &venue, &row, date, false) != *day_dir {
                    continue;
                }
                for late in [false, true] {
                    let dir = unit_dir(&cfg.data_dir, &venue, &row, date, late);
                    let paths = PartitionPaths::new(&dir);
                    // A closed day (meta.json written) is left alone unless a record comes.
                    if !paths.segment.exists() || paths.meta.exists() {
                        continue;
                    }
                    let (header, meta) = identity(cfg, token_id, &definition, &row, date)?;
                    let w = PartitionWriter::open(&dir, header, meta)?.into_sealed();
                    partitions.push(((token_id, utc::yyyymmdd(date), late), w));
                }
            }
        }
        Ok((
            Prepared {
                token_id,
                definition,
                replay,
                resume,
                symbols: None,
                partitions,
            },
            reloaded,
        ))
    }

    /// Declares a prepared token (no disk access).
    pub fn install(&mut self, p: Prepared) {
        if let Some(symbols) = p.symbols {
            self.symbols = symbols;
        }
        // The appliance under a live feed: its sender may be sending what is stored already
        // (it kept running, or restarted, while this process was down).
        let mut stored = p.resume.stored;
        if self.cfg.backend == Backend::Sealed && p.replay.is_none() {
            stored.check_all();
        }
        let last_day_on_disk = p
            .resume
            .latest_days
            .last()
            .and_then(|d| day_name(d))
            .map_or(0, utc::yyyymmdd);
        self.tokens.insert(
            p.token_id,
            Token {
                definition: p.definition,
                last_day_on_disk,
                next_tick: p.replay.map_or(p.resume.next_tick, |r| r.start_tick),
                durable_tick: p.replay.map_or(0, |r| r.durable_tick),
                watermark: p.resume.watermark_ns,
                stored,
                book: Book::new(),
            },
        );
        self.ready.extend(p.partitions);
    }

    /// A definition's venue and raw symbol, both required.
    pub fn names(d: &Definition) -> Result<(String, String), EtlError> {
        match (d.venue.as_str(), d.raw_symbol.as_str()) {
            (Some(v), Some(r)) if !v.is_empty() && !r.is_empty() => {
                Ok((v.to_owned(), r.to_owned()))
            }
            _ => Err(EtlError::Identity(
                "definition without venue or raw symbol".into(),
            )),
        }
    }

    /// The dim_symbol row of `(venue, raw)` at `ts`, reloading the table once if another
    /// process (the feed) registered the symbol since it was loaded.
    fn symbol_row(&mut self, venue: &str, raw: &str, ts: u64) -> Result<SymbolRow, EtlError> {
        Ok(symbol_row(&mut self.symbols, &self.cfg.data_dir, venue, raw, ts)?.0)
    }

    /// Refines one event into the stream: late check, book injection at a minute boundary,
    /// book update, tick id, append. `on` sees every record appended (the definition that opens
    /// a partition and injected snapshots included), in order. No allocation once the token's
    /// partitions are open.
    pub fn push(
        &mut self,
        token_id: u32,
        exchange_ts_ns: u64,
        receive_ts_ns: u64,
        body: Body<'_>,
        on: &mut dyn FnMut(&Appended<'_>),
    ) -> Result<(), EtlError> {
        let grace = self.cfg.grace_ns;
        let every = self.cfg.inject_every_ns;
        let t = self
            .tokens
            .get_mut(&token_id)
            .ok_or(EtlError::UnknownToken(token_id))?;
        if t.stored.already_stored(&body) {
            self.counters.duplicates += 1;
            return Ok(());
        }
        // A gap without times (the feed knew none: its datagram began with a declaration)
        // marks the token's stream where it stands; a token with no stream yet has nothing
        // to mark.
        let (exchange_ts_ns, receive_ts_ns) = match body {
            Body::Gap(_) if exchange_ts_ns == 0 && t.watermark == 0 => return Ok(()),
            Body::Gap(_) if exchange_ts_ns == 0 => (t.watermark, t.watermark),
            _ => (exchange_ts_ns, receive_ts_ns),
        };
        t.stored.note(&body);
        if let Body::Gap(Gap {
            reason: GapReason::SenderRestart,
            ..
        }) = body
        {
            t.stored.check_all();
        }
        let day_start = exchange_ts_ns - exchange_ts_ns % NS_PER_DAY;
        // The day closes `grace` after its end, by the token's clock.
        let late = t.watermark >= day_start + NS_PER_DAY + grace;
        if late {
            return match self.cfg.late_policy {
                LatePolicy::Reject => {
                    self.counters.late_rejected += 1;
                    Ok(())
                }
                LatePolicy::LateStream => {
                    self.counters.late_streamed += 1;
                    self.append(token_id, true, exchange_ts_ns, receive_ts_ns, body, on)
                }
            };
        }
        if every > 0
            && t.book.synced()
            && t.watermark > 0
            && exchange_ts_ns / every > t.watermark / every
        {
            self.inject(token_id, exchange_ts_ns, receive_ts_ns, on)?;
        }
        let t = self.tokens.get_mut(&token_id).expect("checked above");
        t.watermark = t.watermark.max(exchange_ts_ns);
        t.book.apply(&body);
        self.append(token_id, false, exchange_ts_ns, receive_ts_ns, body, on)
    }

    /// Writes the reconstructed book as snapshot records (chunked), marked injected.
    fn inject(
        &mut self,
        token_id: u32,
        ts: u64,
        recv: u64,
        on: &mut dyn FnMut(&Appended<'_>),
    ) -> Result<(), EtlError> {
        let mut levels = std::mem::take(&mut self.levels);
        levels.clear();
        let book = &self.tokens[&token_id].book;
        let (bids, asks) = book.levels();
        levels.extend(bids);
        let bid_total = levels.len();
        levels.extend(asks);
        let update_id = book.update_id;
        let max = BookSnapshot::MAX_LEVELS;
        let chunks = levels.len().div_ceil(max).max(1);
        for i in 0..chunks {
            let (start, end) = (i * max, ((i + 1) * max).min(levels.len()));
            let bids_here = bid_total.clamp(start, end) - start;
            let flags = BookSnapshot::FLAG_INJECTED
                | if i + 1 == chunks {
                    BookSnapshot::FLAG_LAST_CHUNK
                } else {
                    0
                };
            let body = Body::BookSnapshot(BookSnapshot {
                update_id,
                chunk: i as u16,
                flags,
                bid_count: bids_here as u16,
                ask_count: (end - start - bids_here) as u16,
                levels: Levels::Slice(&levels[start..end]),
            });
            self.append(token_id, false, ts, recv, body, on)?;
        }
        self.levels = levels;
        self.counters.injected_snapshots += 1;
        Ok(())
    }

    fn append(
        &mut self,
        token_id: u32,
        late: bool,
        ts: u64,
        recv: u64,
        body: Body<'_>,
        on: &mut dyn FnMut(&Appended<'_>),
    ) -> Result<(), EtlError> {
        let date = utc::date_of(ts);
        let key = (token_id, utc::yyyymmdd(date), late);
        if self.seen.insert(key) {
            // Every partition starts with the definition, so it is readable on its own.
            let def = self.tokens[&token_id].definition;
            self.append(token_id, late, ts, recv, Body::Definition(def), on)?;
        }
        let t = self.tokens.get_mut(&token_id).expect("declared");
        if t.next_tick <= t.durable_tick {
            t.next_tick += 1;
            return Ok(());
        }
        if !self.writers.contains_key(&key) {
            let w = self.open_partition(token_id, date, late, ts)?;
            self.writers.insert(key, w);
            self.counters.partitions_opened += 1;
        }
        let t = self.tokens.get_mut(&token_id).expect("declared");
        let meta = Meta {
            token_id,
            global_tick_id: t.next_tick,
            exchange_ts_ns: ts,
            receive_ts_ns: recv,
        };
        t.next_tick += 1;
        let record = Record { meta, body };
        let len = record.encode(&mut self.scratch[..]).map_err(encode_err)?;
        let w = self.writers.get_mut(&key).expect("opened above");
        let offset = w.append(&self.scratch[..len])?;
        self.counters.records += 1;
        on(&Appended {
            record: &record,
            date,
            end_offset: offset + frame_len(len) as u64,
            late,
        });
        if let Backend::PageCache { sync_every_bytes } = self.cfg.backend {
            if w.pending().1.len() >= sync_every_bytes {
                w.sync()?;
            }
        }
        Ok(())
    }

    /// The partition directory of a token's day: the symbol code valid on that date (SCD2).
    fn dir_of(
        &mut self,
        token_id: u32,
        date: Date,
        late: bool,
        ts: u64,
    ) -> Result<PathBuf, EtlError> {
        let (venue, raw) = Self::names(&self.tokens[&token_id].definition)?;
        let row = self.symbol_row(&venue, &raw, ts)?;
        Ok(unit_dir(&self.cfg.data_dir, &venue, &row, date, late))
    }

    fn open_partition(
        &mut self,
        token_id: u32,
        date: Date,
        late: bool,
        ts: u64,
    ) -> Result<PartitionWriter, EtlError> {
        let key = (token_id, utc::yyyymmdd(date), late);
        if let Some(w) = self.ready.remove(&key) {
            return Ok(w);
        }
        let def = self.tokens[&token_id].definition;
        let (venue, raw) = Self::names(&def)?;
        let row = self.symbol_row(&venue, &raw, ts)?;
        let dir = unit_dir(&self.cfg.data_dir, &venue, &row, date, late);
        let (header, meta) = identity(&self.cfg, token_id, &def, &row, date)?;
        // A day after every day on disk is new: no file to look at. (Its owner creates the
        // files exclusively, so a wrong guess is an error, never an overwrite.)
        if self.cfg.backend == Backend::Sealed
            && key.1 > self.tokens[&token_id].last_day_on_disk
            && !self.closed_late.contains(&key)
        {
            return Ok(PartitionWriter::create_sealed(&dir, header, meta));
        }
        if !self.cfg.append_existing && dir.join(SEGMENT_FILE).exists() {
            return Err(EtlError::Exists(dir));
        }
        let w = PartitionWriter::open(&dir, header, meta)?;
        Ok(if self.cfg.backend == Backend::Sealed {
            self.counters.partitions_reopened += 1;
            w.into_sealed()
        } else {
            w
        })
    }

    /// Open partitions, in key order (for the flush).
    pub fn partitions_mut(&mut self) -> impl Iterator<Item = &mut PartitionWriter> {
        self.writers.values_mut()
    }

    /// The open partitions whose day (plus grace) has passed by their token's clock: nothing
    /// is appended to them any more (a later record of that day is late).
    pub fn expired(&self) -> Vec<PartitionKey> {
        let grace = self.cfg.grace_ns;
        self.writers
            .keys()
            .filter(|(token, day, _)| {
                let date = utc::from_yyyymmdd(*day).expect("keys hold valid dates");
                self.tokens[token].watermark >= utc::midnight_ns(date) + NS_PER_DAY + grace
            })
            .copied()
            .collect()
    }

    /// Closes these partitions (keys from [`Self::expired`]; one already closed is skipped).
    pub fn close_partitions(&mut self, keys: &[PartitionKey]) -> Result<Vec<Closed>, EtlError> {
        let mut closed = Vec::with_capacity(keys.len());
        for &k in keys {
            if self.writers.contains_key(&k) {
                closed.push(self.close(k)?);
            }
        }
        Ok(closed)
    }

    /// Closes the partitions whose day (plus grace) has passed by their token's clock.
    pub fn close_expired(&mut self) -> Result<Vec<Closed>, EtlError> {
        let expired = self.expired();
        self.close_partitions(&expired)
    }

    fn close(&mut self, key: Key) -> Result<Closed, EtlError> {
        let mut w = self.writers.remove(&key).expect("key exists");
        let late = key.2;
        if late {
            self.closed_late.insert(key);
        } else {
            let removed = self.seen.remove(&key);
            assert!(removed, "an open partition was started: {key:?}");
        }
        self.counters.partitions_closed += 1;
        let paths = w.paths().clone();
        let c = w.close()?;
        // A late stream takes records of its day for as long as they come.
        if w.is_sealed() && late {
            self.ready.insert(key, w);
            let kept = self.ready.keys().filter(|k| k.2).count();
            if kept > MAX_READY_LATE_STREAMS {
                let oldest = self
                    .ready
                    .keys()
                    .filter(|k| k.2)
                    .min_by_key(|k| (k.1, k.0))
                    .copied()
                    .expect("more than the bound are kept");
                self.ready.remove(&oldest);
            }
        }
        Ok(Closed {
            meta: c.meta,
            paths,
            index_tail: c.index_tail,
        })
    }

    /// Closes every open partition (end of an import or a bounded run, SIGTERM).
    pub fn close_all(&mut self) -> Result<Vec<Closed>, EtlError> {
        // A partition re-derived entirely from disk (an interrupted run made it durable but
        // died before closing it) still needs its meta.json.
        let unfinished: Vec<Key> = self
            .seen
            .iter()
            .filter(|k| !self.writers.contains_key(k) && !self.closed_late.contains(k))
            .copied()
            .collect();
        for (token, day, late) in unfinished {
            let date = utc::from_yyyymmdd(day).expect("keys hold valid dates");
            if self
                .dir_of(token, date, late, utc::midnight_ns(date))?
                .join(chronicle_storage::meta::FILE_NAME)
                .exists()
            {
                continue;
            }
            let w = self.open_partition(token, date, late, utc::midnight_ns(date))?;
            self.writers.insert((token, day, late), w);
        }
        let keys: Vec<Key> = self.writers.keys().copied().collect();
        keys.into_iter().map(|k| self.close(k)).collect()
    }

    pub fn finish(mut self) -> Result<Vec<Closed>, EtlError> {
        self.close_all()
    }
}

/// A declaration's disk work, done by [`Refinery::prepare`].
pub struct Prepared {
    token_id: u32,
    definition: Definition,
    replay: Option<ReplayResume>,
    resume: Resume,
    /// A newer `dim_symbol` table for the refinery (when the preparer reloaded its own).
    pub symbols: Option<DimSymbol>,
    partitions: Vec<(Key, PartitionWriter)>,
}

/// The row of `(venue, raw)` valid at `ts`, reloading `symbols` once if it lacks it (another
/// process, the feed, may have registered the symbol since): the bool says it reloaded.
fn symbol_row(
    symbols: &mut DimSymbol,
    data_dir: &Path,
    venue: &str,
    raw: &str,
    ts: u64,
) -> Result<(SymbolRow, bool), EtlError> {
    if let Some(r) = symbols.resolve(venue, raw, ts) {
        return Ok((r.clone(), false));
    }
    *symbols = DimSymbol::load(data_dir)?;
    let row = symbols.resolve(venue, raw, ts).cloned().ok_or_else(|| {
        EtlError::Identity(format!(
            "{venue}/{raw} has no dim_symbol row valid at {ts} ns"
        ))
    })?;
    Ok((row, true))
}

/// The directory of a partition (`late`: its late stream) of the symbol version `row` on
/// `date`: the symbol code valid on that date (SCD2).
fn unit_dir(data_dir: &Path, venue: &str, row: &SymbolRow, date: Date, late: bool) -> PathBuf {
    let dir = partition_dir(data_dir, venue, &row.symbol_code, date);
    if late {
        dir.join(LATE_DIR)
    } else {
        dir
    }
}

/// The date a `YYYY-MM-DD` partition directory holds.
fn day_name(dir: &Path) -> Option<Date> {
    utc::parse_iso_date(dir.file_name()?.to_str()?)
}

/// A partition's segment header and starting meta.
fn identity(
    cfg: &RefineryConfig,
    token_id: u32,
    def: &Definition,
    row: &SymbolRow,
    date: Date,
) -> Result<(SegmentHeader, PartitionMeta), EtlError> {
    let (venue, raw) = Refinery::names(def)?;
    let header = SegmentHeader {
        price_exponent: def.price_exponent,
        quantity_exponent: def.quantity_exponent,
        symbol_id: row.symbol_id,
        token_id,
        date: utc::yyyymmdd(date),
        venue: FixedStr::new("venue", &venue).map_err(encode_err)?,
        symbol_code: FixedStr::new("symbol_code", &row.symbol_code).map_err(encode_err)?,
    };
    let meta = PartitionMeta {
        format: chronicle_storage::meta::FORMAT.into(),
        venue,
        symbol_id: row.symbol_id,
        symbol_version_id: row.symbol_version_id,
        symbol_code: row.symbol_code.clone(),
        raw_symbol: raw,
        token_id,
        date: utc::iso_date(date),
        price_exponent: def.price_exponent,
        quantity_exponent: def.quantity_exponent,
        source: cfg.source.clone(),
        ingest_time: String::new(),
        event_time_range: None,
        records: 0,
        segment_bytes: 0,
        counts: BTreeMap::new(),
        completeness: Completeness::default(),
        late_policy: cfg.late_policy.as_str().into(),
    };
    Ok((header, meta))
}
