//! The replay source: an input turned into the stream a feed would deliver — encoded
//! protocol records in capture order, ready for a ring or a datagram.
//!
//! The source is an [`EventSink`]: the importers (`chronicle_import::binance`, `dbn`) decode
//! the capture into it exactly as they do for `chronicle import`. Identity is the data
//! directory's `dim_symbol`, as for an import: on `instrument()` the source resolves (or
//! registers) the instrument and saves the table before any of its data is emitted; the
//! token id is the `symbol_id`. It then emits a **declaration** (a `declaration` record of the
//! instrument's definition, [`Declaration::live`]: no resume point, as a live feed's), which
//! tells the appliance's refinery "declare this token", not "store this event". Every event
//! becomes a record of its token with `global_tick_id` 0 (the refinery assigns tick ids) and
//! the capture's exchange and receive times.
//!
//! **Memory.** The whole capture is decoded at [`ReplaySource::open`] into one buffer of
//! encoded records (the BTCUSDT capture: 530,667 records, 45 MB). Decoding JSON while
//! sending would put tens of microseconds of parsing (a 600-level depth message) in the
//! middle of the pacing loop; from the buffer, the next record is a copy of ~80 bytes. The
//! buffer also makes `--loop` and `--tokens` free: both replay the same bytes, patching
//! the token id and the timestamps of the copy being emitted. A capture that does not fit
//! in memory can be replayed in pieces (`--seconds` truncates; split the file).
//!
//! **Fan-out** (`tokens` > 1): token k (0-based) is the instrument with raw symbol
//! `{SYMBOL}-{k}`, registered and declared on its own; every event is emitted once per token,
//! the copies back to back (they share the event's receive time).
//!
//! **Loop** (`loops` > 1): the capture is played `loops` times; pass p shifts exchange and
//! receive times by p × (span + 1 ms), where span is the larger of the capture's exchange
//! and receive time spans, so every pass lies strictly after the previous one on both
//! clocks. Declarations are emitted in the first pass only.

use crate::synthetic::{SyntheticConfig, SyntheticFeed};
use crate::Error;
use chronicle_import::binance::{self, BinanceSummary};
use chronicle_import::dbn::{self, DbnSummary};
use chronicle_import::{EventSink, ImportError, Instrument, InstrumentHandle};
use chronicle_protocol::wire::put_u16;
use chronicle_protocol::{
    header, type_id, Body, BookSnapshot, Declaration, Definition, FixedStr, Meta, Record,
    RecordView, HEADER_LEN, MAX_RECORD_LEN,
};
use chronicle_reader::body::Body as PartitionBody;
use chronicle_reader::Partition;
use chronicle_storage::segment::{ScanEnd, HEADER_LEN as SEGMENT_HEADER_LEN};
use chronicle_storage::symbols::DimSymbol;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Gap between loop passes, on top of the capture's span.
const LOOP_GAP_NS: u64 = 1_000_000;

/// What to replay.
#[derive(Debug, Clone)]
pub enum Input {
    /// A Binance combined-stream capture (`<receive ns> <json>` lines, gzip or plain); the
    /// venue is [`SourceOptions::venue`].
    Binance(PathBuf),
    /// A Databento DBN file; the venue comes from its dataset.
    Dbn(PathBuf),
    /// A stored partition on any local tier (its directory, `book.q` or `book.q.zst`): the
    /// records as stored, declared from the partition's opening `definition`. Book snapshots
    /// the refinery injected (flag bit 1) are left out: the feed never sent them, and the
    /// appliance's own refinery injects its own.
    Partition(PathBuf),
    /// The synthetic model (`crate::synthetic`), decoded line by line through the Binance
    /// decoder with the model's exponents (price −1: tick 0.10; quantity −3: lot 0.001).
    Synthetic(SyntheticConfig),
}

impl Input {
    /// The format name, as `chronicle replay --format` spells it.
    pub fn format(&self) -> &'static str {
        match self {
            Input::Binance(_) => "binance-capture",
            Input::Dbn(_) => "dbn",
            Input::Partition(_) => "q",
            Input::Synthetic(_) => "synthetic",
        }
    }
}

/// How to turn an input into a stream.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Venue of a Binance capture or the synthetic model (`binance-usdm`).
    pub venue: String,
    /// The data directory whose `dim_symbol` gives identity (created if missing); None: token
    /// ids are assigned in memory, nothing is written (a UDP receiver registers what it is
    /// declared under the declared id).
    pub data_dir: Option<PathBuf>,
    /// Distinct tokens per capture instrument (fan-out); 1 keeps the raw symbol as is.
    pub tokens: u32,
    /// Passes over the capture (1: play it once).
    pub loops: u32,
    /// Keep only the capture's first `max_capture_ns` of receive time (a prefix of the
    /// stream: everything after the first event past the limit is left out).
    pub max_capture_ns: Option<u64>,
}

impl SourceOptions {
    pub fn new(venue: &str, data_dir: Option<&Path>) -> Self {
        Self {
            venue: venue.to_owned(),
            data_dir: data_dir.map(Path::to_owned),
            tokens: 1,
            loops: 1,
            max_capture_ns: None,
        }
    }
}

/// One record of the stream.
#[derive(Debug, Clone, Copy)]
pub struct ReplayItem<'a> {
    /// The encoded protocol record (header included), valid until the next call.
    pub record: &'a [u8],
    pub token_id: u32,
    /// A `declaration` record: a control record, not a stream event; not paced.
    pub declaration: bool,
    /// The record's receive time: the capture's, shifted by the loop pass (0 for a
    /// declaration). The schedule paces on it.
    pub capture_receive_ns: u64,
    /// Loop pass, from 0.
    pub pass: u32,
}

/// What the source holds (one pass, before fan-out, unless said otherwise).
#[derive(Debug, Clone, Default)]
pub struct SourceSummary {
    pub format: &'static str,
    /// Instruments of the capture (before fan-out).
    pub instruments: usize,
    /// Declaration points in the capture (an instrument declared again mid-capture, as DBN
    /// definitions do, counts again); each emits one declaration per token.
    pub declarations: u64,
    /// Stream records of one pass, before fan-out.
    pub events: u64,
    /// Those records by kind (`trade`, `bbo`, `level_update`, ...).
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Events left out by `max_capture_ns`.
    pub truncated: u64,
    /// Injected book snapshots left out of a stored partition.
    pub skipped_injected: u64,
    /// A stored partition whose segment ends in a torn tail (replayed up to it).
    pub torn_tail: Option<String>,
    /// Receive and exchange time ranges of the kept events (ns since the epoch).
    pub receive_ns: Option<(u64, u64)>,
    pub exchange_ns: Option<(u64, u64)>,
    /// Shift between loop passes.
    pub loop_shift_ns: u64,
    /// Bytes of encoded records buffered.
    pub bytes: usize,
    pub binance: Option<BinanceSummary>,
    pub dbn: Option<DbnSummary>,
}

impl SourceSummary {
    /// Receive-time span of one pass.
    pub fn receive_span_ns(&self) -> u64 {
        self.receive_ns.map_or(0, |(a, b)| b - a)
    }
}

/// A token the source emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub token_id: u32,
    pub venue: String,
    pub raw_symbol: String,
}

/// One capture instrument and its tokens (one per fan-out copy).
struct Slot {
    instrument: Instrument,
    tokens: Vec<u32>,
    raw_symbols: Vec<FixedStr<32>>,
}

/// The source. Build it with [`open`](Self::open) / [`open_with`](Self::open_with), or
/// with [`new`](Self::new) and any importer feeding it as an [`EventSink`]; then call
/// [`next`](Self::next) until it returns `None`.
pub struct ReplaySource {
    opts: SourceOptions,
    symbols: DimSymbol,
    slots: Vec<Slot>,
    /// Encoded declarations: `decls[i][k]` is declaration point i for fan-out copy k.
    decls: Vec<Vec<Vec<u8>>>,
    /// The capture: records back to back. Events carry their slot index as token id and
    /// tick 0; a declaration point is a bare 32-byte header of type `declaration` with the
    /// index of its declarations (in `decls`) as token id.
    bytes: Vec<u8>,
    summary: SourceSummary,
    first_receive: Option<u64>,
    cut: bool,
    sealed: bool,
    // Cursor.
    pos: usize,
    pass: u32,
    copy: u32,
    scratch: Box<[u8]>,
}

fn encode_err(e: chronicle_protocol::EncodeError) -> ImportError {
    ImportError::Encode(e.to_string())
}

fn span(r: Option<(u64, u64)>) -> u64 {
    r.map_or(0, |(a, b)| b - a)
}

fn widen(r: &mut Option<(u64, u64)>, v: u64) {
    *r = Some(match *r {
        Some((a, b)) => (a.min(v), b.max(v)),
        None => (v, v),
    });
}

impl ReplaySource {
    /// Decodes `input` with default options (one token per instrument, one pass).
    pub fn open(input: Input, venue: &str, data_dir: Option<&Path>) -> Result<Self, Error> {
        Self::open_with(input, &SourceOptions::new(venue, data_dir))
    }

    /// Decodes the whole input into the source's buffer; every input error surfaces here.
    pub fn open_with(input: Input, opts: &SourceOptions) -> Result<Self, Error> {
        let mut s = Self::new(opts.clone())?;
        s.summary.format = input.format();
        match input {
            Input::Binance(path) => {
                let venue = s.opts.venue.clone();
                s.summary.binance = Some(binance::import(&path, &venue, &mut s)?);
            }
            Input::Dbn(path) => s.summary.dbn = Some(dbn::import(&path, &mut s)?),
            Input::Partition(path) => s.load_partition(&path)?,
            Input::Synthetic(cfg) => s.load_synthetic(cfg)?,
        }
        s.seal();
        Ok(s)
    }

    /// An empty source for an importer to feed (see [`EventSink`]).
    pub fn new(opts: SourceOptions) -> Result<Self, Error> {
        if opts.tokens == 0 || opts.loops == 0 {
            return Err(Error::Invalid(
                "tokens and loops must be at least 1".to_owned(),
            ));
        }
        Ok(Self {
            symbols: match &opts.data_dir {
                Some(d) => DimSymbol::load(d)?,
                None => DimSymbol::in_memory(),
            },
            opts,
            slots: Vec::new(),
            decls: Vec::new(),
            bytes: Vec::new(),
            summary: SourceSummary::default(),
            first_receive: None,
            cut: false,
            sealed: false,
            pos: 0,
            pass: 0,
            copy: 0,
            scratch: vec![0u8; MAX_RECORD_LEN].into_boxed_slice(),
        })
    }

    fn load_synthetic(&mut self, cfg: SyntheticConfig) -> Result<(), Error> {
        let path = PathBuf::from(format!("synthetic:{}", cfg.seed));
        // The model's tick is 0.10 and its lot 0.001 (prices are printed with 2 decimals,
        // always on the tick): exactly what `binance::scan_exponents` finds, without a pass.
        let exponents = BTreeMap::from([(cfg.symbol.clone(), (-1i8, -3i8))]);
        let venue = self.opts.venue.clone();
        let mut d = binance::Decoder::new(&venue, &path, exponents);
        for (i, line) in SyntheticFeed::new(cfg).enumerate() {
            d.line(i as u64 + 1, &line, self)?;
        }
        self.summary.binance = Some(d.finish()?);
        Ok(())
    }

    /// A stored partition on any local tier (its directory, `book.q` or `book.q.zst`), read
    /// through the universal reader: checksums verified, damage an error naming the file
    /// and offset, a torn tail replayed up to the tear with a warning.
    fn load_partition(&mut self, path: &Path) -> Result<(), Error> {
        let part = Partition::open(path)?;
        let mut handle = None;
        let mut failed = None;
        let end = part.walk(SEGMENT_HEADER_LEN as u64, |f| {
            match self.take_stored(&mut handle, f.record, path) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        if let ScanEnd::TornTail { valid_end, reason } = end {
            // Only a `book.q` still being appended can end torn: the tier manager archives
            // none, so in a `book.q.zst` it is damage.
            if !matches!(part.body, PartitionBody::Mapped(_)) {
                return Err(part.body.corrupt(valid_end, reason).into());
            }
            self.summary.torn_tail = Some(format!("at offset {valid_end}: {reason}"));
        }
        if handle.is_none() {
            return Err(Error::Invalid(format!(
                "{}: the partition holds no records",
                path.display()
            )));
        }
        Ok(())
    }

    /// One stored record: the first must be the partition's definition (it declares the
    /// instrument); book snapshots the refinery injected are left out; the rest is replayed.
    fn take_stored(
        &mut self,
        handle: &mut Option<InstrumentHandle>,
        view: RecordView<'_>,
        path: &Path,
    ) -> Result<(), Error> {
        let Some(h) = *handle else {
            let decoded = view.decode().map_err(|source| Error::Decode {
                path: path.to_owned(),
                source,
            })?;
            let Body::Definition(d) = decoded.body else {
                return Err(Error::Invalid(format!(
                    "{}: the first record is a {}, not the partition's definition",
                    path.display(),
                    type_id::name(view.type_id).unwrap_or("record of unknown type")
                )));
            };
            let text = |s: Option<&str>, field: &str| {
                s.filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        Error::Invalid(format!("{}: the definition has no {field}", path.display()))
                    })
            };
            let instrument = Instrument {
                venue: text(d.venue.as_str(), "venue")?,
                raw_symbol: text(d.raw_symbol.as_str(), "raw symbol")?,
                price_exponent: d.price_exponent,
                quantity_exponent: d.quantity_exponent,
                instrument_class: d.instrument_class,
                tick_size: d.tick_size,
                lot_size: d.lot_size,
                expiration_ns: d.expiration_ns,
            };
            *handle = Some(self.instrument(&instrument)?);
            return Ok(());
        };
        if view.type_id == type_id::BOOK_SNAPSHOT_V1
            && matches!(view.decode(), Ok(Record { body: Body::BookSnapshot(s), .. })
                if s.flags & BookSnapshot::FLAG_INJECTED != 0)
        {
            self.summary.skipped_injected += 1;
            return Ok(());
        }
        self.push_encoded(h, view);
        Ok(())
    }

    /// Whether an event at `receive_ts_ns` is kept (the truncation rule), noting it.
    fn keep(&mut self, exchange_ts_ns: u64, receive_ts_ns: u64) -> bool {
        if self.cut {
            self.summary.truncated += 1;
            return false;
        }
        let first = *self.first_receive.get_or_insert(receive_ts_ns);
        if let Some(max) = self.opts.max_capture_ns {
            if receive_ts_ns > first.saturating_add(max) {
                self.cut = true;
                self.summary.truncated += 1;
                return false;
            }
        }
        widen(&mut self.summary.receive_ns, receive_ts_ns);
        widen(&mut self.summary.exchange_ns, exchange_ts_ns);
        true
    }

    /// Appends an already encoded event of slot `h` (a stored partition's record).
    fn push_encoded(&mut self, h: usize, view: RecordView<'_>) {
        let m = view.meta;
        if !self.keep(m.exchange_ts_ns, m.receive_ts_ns) {
            return;
        }
        let at = self.bytes.len();
        self.bytes.extend_from_slice(view.bytes);
        Meta {
            token_id: h as u32,
            global_tick_id: 0,
            ..m
        }
        .write_into(&mut self.bytes[at..]);
        self.count(view.type_id);
    }

    fn count(&mut self, type_id: u16) {
        self.summary.events += 1;
        *self
            .summary
            .by_kind
            .entry(type_id::name(type_id).unwrap_or("unknown"))
            .or_default() += 1;
    }

    /// Ends the capture: fixes the loop shift and rewinds. Called by `open`; call it after
    /// feeding a source built with `new` (`next` does, too).
    pub fn seal(&mut self) {
        if !self.sealed {
            self.sealed = true;
            let s = &mut self.summary;
            s.instruments = self.slots.len();
            s.bytes = self.bytes.len();
            s.loop_shift_ns = span(s.receive_ns).max(span(s.exchange_ns)) + LOOP_GAP_NS;
        }
        self.rewind();
    }

    /// Back to the first record of the first pass.
    pub fn rewind(&mut self) {
        self.pos = 0;
        self.pass = 0;
        self.copy = 0;
    }

    pub fn summary(&self) -> &SourceSummary {
        &self.summary
    }

    pub fn options(&self) -> &SourceOptions {
        &self.opts
    }

    /// Every token the source emits, in declaration order (fan-out copies together).
    pub fn tokens(&self) -> Vec<TokenInfo> {
        self.slots
            .iter()
            .flat_map(|s| {
                s.tokens
                    .iter()
                    .zip(&s.raw_symbols)
                    .map(|(&t, raw)| TokenInfo {
                        token_id: t,
                        venue: s.instrument.venue.clone(),
                        raw_symbol: raw.as_str().unwrap_or_default().to_owned(),
                    })
            })
            .collect()
    }

    /// Declaration records a full run emits.
    pub fn total_declarations(&self) -> u64 {
        self.summary.declarations * self.opts.tokens as u64
    }

    /// Stream records (events) a full run emits: events × tokens × loops.
    pub fn total_events(&self) -> u64 {
        self.summary.events * self.opts.tokens as u64 * self.opts.loops as u64
    }

    /// The next record of the stream, `None` at the end. Never fails: the input was decoded
    /// (and checked) by `open`.
    #[allow(clippy::should_implement_trait)] // a lending iterator: the item borrows `self`
    pub fn next(&mut self) -> Option<ReplayItem<'_>> {
        if !self.sealed {
            self.seal();
        }
        let tokens = self.opts.tokens;
        // Find the next (record, copy) to emit; build the item after the loop.
        let (view, k) = loop {
            if self.pos >= self.bytes.len() {
                if self.pass + 1 >= self.opts.loops {
                    self.pass = self.opts.loops;
                    self.pos = self.bytes.len();
                    return None;
                }
                self.pass += 1;
                self.pos = 0;
                self.copy = 0;
                continue;
            }
            let view = RecordView::parse(&self.bytes[self.pos..])
                .expect("the buffer holds the records this source put there");
            let declaration = view.type_id == type_id::DECLARATION_V1;
            if self.copy >= tokens || (declaration && self.pass > 0) {
                self.pos += view.bytes.len();
                self.copy = 0;
                continue;
            }
            let k = self.copy as usize;
            self.copy += 1;
            break (view, k);
        };
        let id = view.meta.token_id as usize;
        if view.type_id == type_id::DECLARATION_V1 {
            let record = &self.decls[id][k][..];
            return Some(ReplayItem {
                record,
                token_id: RecordView::parse(record).expect("encoded").meta.token_id,
                declaration: true,
                capture_receive_ns: 0,
                pass: self.pass,
            });
        }
        let slot = &self.slots[id];
        let token_id = slot.tokens[k];
        let shift = self.summary.loop_shift_ns * self.pass as u64;
        let meta = Meta {
            token_id,
            global_tick_id: 0,
            exchange_ts_ns: view.meta.exchange_ts_ns + shift,
            receive_ts_ns: view.meta.receive_ts_ns + shift,
        };
        let rec = &mut self.scratch[..view.bytes.len()];
        // Only definitions are decoded: every other record is copied and re-stamped.
        let definition = match view.type_id {
            type_id::DEFINITION_V1 => match view.decode() {
                Ok(Record {
                    body: Body::Definition(d),
                    ..
                }) => Some(d),
                _ => None,
            },
            _ => None,
        };
        match definition {
            // A definition in the stream (DBN) names the token it now belongs to.
            Some(d) => {
                let body = Body::Definition(Definition {
                    raw_symbol: slot.raw_symbols[k],
                    symbol_id: token_id as u64,
                    ..d
                });
                Record { meta, body }
                    .encode(rec)
                    .expect("a definition re-encodes at its length");
            }
            None => {
                rec.copy_from_slice(view.bytes);
                meta.write_into(rec);
            }
        }
        Some(ReplayItem {
            record: rec,
            token_id,
            declaration: false,
            capture_receive_ns: meta.receive_ts_ns,
            pass: self.pass,
        })
    }

    /// The raw symbol of fan-out copy `k` of `raw`.
    fn fan_out_symbol(&self, raw: &str, k: u32) -> String {
        if self.opts.tokens == 1 {
            raw.to_owned()
        } else {
            format!("{raw}-{k}")
        }
    }
}

impl EventSink for ReplaySource {
    fn instrument(&mut self, instrument: &Instrument) -> Result<InstrumentHandle, ImportError> {
        let known = self.slots.iter().position(|s| {
            s.instrument.venue == instrument.venue
                && s.instrument.raw_symbol == instrument.raw_symbol
        });
        let h = match known {
            Some(h) => {
                self.slots[h].instrument = instrument.clone();
                h
            }
            None => {
                let mut tokens = Vec::with_capacity(self.opts.tokens as usize);
                let mut raw_symbols = Vec::with_capacity(self.opts.tokens as usize);
                for k in 0..self.opts.tokens {
                    let raw = self.fan_out_symbol(&instrument.raw_symbol, k);
                    raw_symbols.push(FixedStr::new("raw_symbol", &raw).map_err(encode_err)?);
                    let row = self
                        .symbols
                        .resolve_or_register(&instrument.venue, &raw, 0)?;
                    tokens.push(u32::try_from(row.symbol_id).map_err(|_| {
                        ImportError::Encode(format!(
                            "symbol_id {} of {}/{raw} does not fit a u32 token id",
                            row.symbol_id, instrument.venue
                        ))
                    })?);
                }
                // Durable before any of the instrument's records leaves: the appliance
                // resolves the declared symbol in the same table.
                self.symbols.save()?;
                self.slots.push(Slot {
                    instrument: instrument.clone(),
                    tokens,
                    raw_symbols,
                });
                self.slots.len() - 1
            }
        };
        let slot = &self.slots[h];
        let mut set = Vec::with_capacity(slot.tokens.len());
        for (&token_id, &raw_symbol) in slot.tokens.iter().zip(&slot.raw_symbols) {
            let definition = Definition {
                raw_symbol,
                ..instrument.definition(token_id as u64)?
            };
            let record = Declaration::live(definition).record(token_id);
            set.push(record.to_vec().map_err(encode_err)?);
        }
        let index = self.decls.len();
        self.decls.push(set);
        // The declaration point: a bare header (internal to the buffer, never emitted).
        let mut marker = [0u8; HEADER_LEN];
        put_u16(&mut marker, header::TYPE_ID, type_id::DECLARATION_V1);
        put_u16(&mut marker, header::LENGTH, HEADER_LEN as u16);
        Meta {
            token_id: index as u32,
            ..Meta::default()
        }
        .write_into(&mut marker);
        self.bytes.extend_from_slice(&marker);
        self.summary.declarations += 1;
        Ok(h)
    }

    fn event(
        &mut self,
        instrument: InstrumentHandle,
        exchange_ts_ns: u64,
        receive_ts_ns: u64,
        body: Body<'_>,
    ) -> Result<(), ImportError> {
        if !self.keep(exchange_ts_ns, receive_ts_ns) {
            return Ok(());
        }
        let record = Record {
            meta: Meta {
                token_id: instrument as u32,
                global_tick_id: 0,
                exchange_ts_ns,
                receive_ts_ns,
            },
            body,
        };
        let at = self.bytes.len();
        self.bytes.resize(at + record.encoded_len(), 0);
        record.encode(&mut self.bytes[at..]).map_err(encode_err)?;
        self.count(body.type_id());
        Ok(())
    }
}
