//! DBN importer: Databento Binary Encoding files (`.dbn`, `.dbn.zst`, legacy `.dbz`; DBN
//! versions 1 to 3, read through the `dbn` crate, which upgrades older records to version 3)
//! into chronicle events.
//!
//! | DBN schema (record)              | chronicle event                                        |
//! |----------------------------------|--------------------------------------------------------|
//! | mbo                              | `Order`                                                |
//! | mbp-1, mbp-10: A/C/M             | `LevelUpdate` (aggregate quantity from the record)     |
//! | mbp-1, mbp-10: T                 | `Trade`                                                |
//! | mbp-1, mbp-10: R (clear)         | `BookSnapshot` of the record's levels (empty: cleared) |
//! | mbp-1, mbp-10: F, N              | skipped, counted                                       |
//! | tbbo                             | `Bbo` (the book before the trade), then `Trade`        |
//! | trades                           | `Trade`                                                |
//! | bbo-1s, bbo-1m, cbbo-1s, cbbo-1m | `Bbo`                                                  |
//! | cmbp-1                           | `Trade` for T, otherwise `Bbo` (consolidated top)      |
//! | tcbbo                            | `Bbo` (before the trade), then `Trade`                 |
//! | statistics: open interest (new)  | `OpenInterest`; other statistics skipped, counted      |
//! | definition (v1, v2, v3)          | `Definition` (and the instrument is re-declared)       |
//! | ohlcv-*, status, imbalance       | `ImportError::Unsupported`: chronicle stores events    |
//!
//! Prices stay the DBN mantissas (fixed 1e-9, so every instrument has price exponent -9) and
//! sizes are whole units (quantity exponent 0); DBN's `UNDEF_PRICE` is chronicle's `UNDEF`.
//! Every event has `exchange_ts_ns = ts_event` and `receive_ts_ns = ts_recv`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use chronicle_protocol::{
    Bbo, Body, BookSnapshot, Definition, FixedStr, Level, LevelUpdate, Levels, OpenInterest, Order,
    OrderAction, Side, Trade, UNDEF,
};
use dbn::decode::dbn::fsm::{DbnFsm, ProcessResult};
use dbn::decode::{DbnMetadata, DecodeRecordRef, DynDecoder};
use dbn::{
    BboMsg, BidAskPair, CbboMsg, Cmbp1Msg, ConsolidatedBidAskPair, HasRType, InstrumentDefMsg,
    MboMsg, Mbp10Msg, Mbp1Msg, Metadata, RType, RecordRef, SType, Schema, StatMsg, StatType,
    StatUpdateAction, TradeMsg, TsSymbolMap, VersionUpgradePolicy, UNDEF_PRICE, UNDEF_TIMESTAMP,
};

use crate::progress::{size_of, Counted};
use crate::{EventSink, ImportError, Instrument, InstrumentHandle};

/// DBN prices are integers in units of 1e-9.
const PRICE_EXPONENT: i8 = -9;
/// The newest DBN version whose records this importer maps.
const MAX_DBN_VERSION: u8 = 3;

/// What an import read and wrote. Maps are ordered so the summary prints deterministically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbnSummary {
    /// The metadata's dataset (`GLBX.MDP3`).
    pub dataset: String,
    /// The chronicle venue derived from it (`glbx`).
    pub venue: String,
    /// The metadata's schema (`mbp-10`); `None` for a file that mixes schemas.
    pub schema: Option<&'static str>,
    /// The file's DBN version before upgrading; `None` for legacy DBZ.
    pub dbn_version: Option<u8>,
    /// Records decoded.
    pub records: u64,
    /// Distinct instruments declared to the sink.
    pub instruments: usize,
    /// Records read per DBN rtype name (`mbo`, `mbp-0` for trades, `mbp-10`, `tbbo`,
    /// `instrument-def`, ...).
    pub read: BTreeMap<&'static str, u64>,
    /// Events written per chronicle kind (`order`, `level_update`, ...).
    pub written: BTreeMap<&'static str, u64>,
    /// Records that produced no event, per reason.
    pub skipped: BTreeMap<&'static str, u64>,
}

impl std::fmt::Display for DbnSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let schema = self.schema.unwrap_or("mixed schemas");
        match self.dbn_version {
            Some(v) => write!(f, "{} ({}) {schema}, DBN v{v}: ", self.dataset, self.venue)?,
            None => write!(f, "{} ({}) {schema}, DBZ: ", self.dataset, self.venue)?,
        }
        write!(
            f,
            "{} records {:?} -> {:?}",
            self.records, self.read, self.written
        )?;
        write!(f, " for {} instruments", self.instruments)?;
        if !self.skipped.is_empty() {
            write!(f, "; skipped {:?}", self.skipped)?;
        }
        Ok(())
    }
}

/// Imports one DBN file into `sink`, in file order.
///
/// The venue is the metadata's dataset up to its first dot, lowercased (`GLBX.MDP3` ->
/// `glbx`, `XNAS.ITCH` -> `xnas`): a dataset is a venue plus a feed, and instruments belong
/// to the venue, whichever feed carried them. An instrument's raw symbol is the symbology
/// mapping of its instrument id on the record's date when the metadata maps raw symbols to
/// instrument ids (or back), or a live symbol-mapping record did; otherwise the instrument id
/// in decimal. Definition records declare their own raw symbol.
///
/// Errors: `Io` if the file cannot be read, `Unsupported` for DBN version 4 or a schema with
/// no chronicle record kind (bars, status, imbalance), `Input` (naming `metadata` or the
/// 0-based record index) for corrupt, malformed or truncated input. Events already handed to
/// the sink stay there.
pub fn import(path: &Path, sink: &mut dyn EventSink) -> Result<DbnSummary, ImportError> {
    import_with_progress(path, sink, &|_, _| {})
}

/// [`import`], telling `progress(done, total)` the bytes of the file read.
pub fn import_with_progress(
    path: &Path,
    sink: &mut dyn EventSink,
    progress: &dyn Fn(u64, u64),
) -> Result<DbnSummary, ImportError> {
    let size = size_of(path);
    let read = |n| progress(n, size);
    let file = File::open(path).map_err(|source| io_error(path, source))?;
    let mut file = BufReader::with_capacity(1 << 16, Counted::new(file, &read));
    let magic = file.fill_buf().map_err(|source| io_error(path, source))?;
    if is_dbz(magic) {
        return import_dbz(path, file, sink);
    }
    let stream: Box<dyn Read> = if magic.starts_with(&ZSTD_MAGIC) {
        let z = zstd::stream::read::Decoder::with_buffer(file);
        Box::new(z.map_err(|e| read_error(path, "metadata", e))?)
    } else {
        Box::new(file)
    };
    let mut stream = BufReader::with_capacity(1 << 16, stream);
    let head = stream
        .fill_buf()
        .map_err(|e| read_error(path, "metadata", e))?;
    if let [b'D', b'B', b'N', v, ..] = *head {
        if v > MAX_DBN_VERSION {
            let msg =
                format!("DBN version {v}: only versions 1 to {MAX_DBN_VERSION} are supported");
            return Err(unsupported(path, msg));
        }
    }
    // Driving the dbn crate's state machine ourselves, rather than its `Decoder`, lets a
    // file that ends inside a record (or a zstd frame) fail instead of ending quietly.
    let mut fsm = DbnFsm::builder()
        .upgrade_policy(VersionUpgradePolicy::UpgradeToV3)
        .build()
        .map_err(|e| dbn_error(path, "metadata", e))?;
    let mut importer: Option<Importer> = None;
    loop {
        match fsm.process() {
            ProcessResult::ReadMore(_) => {
                let read = loop {
                    match stream.read(fsm.space()) {
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        r => break r,
                    }
                };
                let n = read.map_err(|e| read_error(path, &position(importer.as_ref()), e))?;
                if n == 0 {
                    return match importer {
                        Some(i) if fsm.data().is_empty() => Ok(i.finish()),
                        _ => Err(ImportError::Input {
                            path: path.to_owned(),
                            at: position(importer.as_ref()),
                            msg: "file ends inside it (truncated)".into(),
                        }),
                    };
                }
                fsm.fill(n);
            }
            ProcessResult::Metadata(meta) => {
                importer = Some(Importer::new(path, &meta, fsm.input_dbn_version())?);
            }
            ProcessResult::Record(()) => {
                // The state machine yields the metadata first, and a record with `Record`.
                let (Some(importer), Some(rec)) = (importer.as_mut(), fsm.last_record()) else {
                    return Err(dbn_error(
                        path,
                        "metadata",
                        dbn::Error::decode("no metadata"),
                    ));
                };
                importer.summary.records += 1;
                importer.record(rec, sink)?;
            }
            ProcessResult::Err(e) => return Err(dbn_error(path, &position(importer.as_ref()), e)),
        }
    }
}

/// Legacy DBZ (zstd with the metadata in a skippable frame), through the dbn crate's own
/// decoder, which ends quietly at a truncated last record.
fn import_dbz(
    path: &Path,
    file: BufReader<Counted<'_, File>>,
    sink: &mut dyn EventSink,
) -> Result<DbnSummary, ImportError> {
    let mut decoder = DynDecoder::inferred_with_buffer(file, VersionUpgradePolicy::UpgradeToV3)
        .map_err(|e| dbn_error(path, "metadata", e))?;
    let mut importer = Importer::new(path, decoder.metadata(), None)?;
    loop {
        let at = position(Some(&importer));
        let Some(rec) = decoder
            .decode_record_ref()
            .map_err(|e| dbn_error(path, &at, e))?
        else {
            return Ok(importer.finish());
        };
        importer.summary.records += 1;
        importer.record(rec, sink)?;
    }
}

/// Where decoding is: in the metadata, or at the next record's 0-based index.
fn position(importer: Option<&Importer>) -> String {
    match importer {
        Some(i) => format!("record {}", i.summary.records),
        None => "metadata".into(),
    }
}

/// The fields MBP-1 and MBP-10 records share.
struct MbpEvent {
    ts_recv: u64,
    price: i64,
    size: u32,
    action: u8,
    side: u8,
    flags: u8,
    sequence: u32,
}

/// Builds an [`MbpEvent`] from an MBP-1 or MBP-10 record, which share these fields.
macro_rules! mbp_event {
    ($m:expr) => {
        MbpEvent {
            ts_recv: $m.ts_recv,
            price: $m.price,
            size: $m.size,
            action: $m.action as u8,
            side: $m.side as u8,
            flags: $m.flags.raw(),
            sequence: $m.sequence,
        }
    };
}

struct Importer<'p> {
    path: &'p Path,
    tbbo_schema: bool,
    tcbbo_schema: bool,
    symbols: TsSymbolMap,
    /// Handles by raw symbol: one instrument per (venue, raw symbol).
    handles: HashMap<String, InstrumentHandle>,
    /// Handles of instrument ids without a symbol mapping (spares formatting the id per record).
    unmapped: HashMap<u32, InstrumentHandle>,
    summary: DbnSummary,
}

impl<'p> Importer<'p> {
    fn new(path: &'p Path, meta: &Metadata, version: Option<u8>) -> Result<Self, ImportError> {
        let bad_meta = |msg: String| ImportError::Input {
            path: path.to_owned(),
            at: "metadata".into(),
            msg,
        };
        if let Some(
            schema @ (Schema::Ohlcv1S
            | Schema::Ohlcv1M
            | Schema::Ohlcv1H
            | Schema::Ohlcv1D
            | Schema::OhlcvEod
            | Schema::Status
            | Schema::Imbalance),
        ) = meta.schema
        {
            return Err(unsupported(
                path,
                format!("schema {schema} has no chronicle record kind (chronicle stores events)"),
            ));
        }
        let venue = meta
            .dataset
            .split('.')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if venue.is_empty() || venue.len() > 16 || !venue.bytes().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(bad_meta(format!(
                "dataset {:?} does not name a venue",
                meta.dataset
            )));
        }
        // Only mappings between raw symbols and instrument ids name instruments: a parent or
        // continuous symbol (`ES.FUT`, `ES.c.0`) covers several contracts whose prices differ.
        let raw_mappings = matches!(
            (meta.stype_in, meta.stype_out),
            (Some(SType::RawSymbol), SType::InstrumentId)
                | (Some(SType::InstrumentId), SType::RawSymbol)
        );
        let symbols = if raw_mappings {
            TsSymbolMap::from_metadata(meta).map_err(|e| bad_meta(e.to_string()))?
        } else {
            TsSymbolMap::new()
        };
        Ok(Self {
            path,
            tbbo_schema: meta.schema == Some(Schema::Tbbo),
            tcbbo_schema: meta.schema == Some(Schema::Tcbbo),
            symbols,
            handles: HashMap::new(),
            unmapped: HashMap::new(),
            summary: DbnSummary {
                dataset: meta.dataset.clone(),
                venue,
                schema: meta.schema.map(|s| s.as_str()),
                dbn_version: version,
                ..DbnSummary::default()
            },
        })
    }

    fn finish(mut self) -> DbnSummary {
        self.summary.instruments = self.handles.len();
        self.summary
    }

    fn record(&mut self, rec: RecordRef<'_>, sink: &mut dyn EventSink) -> Result<(), ImportError> {
        let raw = rec.header().rtype;
        let Ok(rtype) = RType::try_from(raw) else {
            return Err(self.input(format!("unknown rtype {raw:#04x}")));
        };
        // DBN 1-3 carry TBBO and TCBBO records under the MBP-1 and CMBP-1 rtypes.
        let tbbo = rtype == RType::Tbbo || (rtype == RType::Mbp1 && self.tbbo_schema);
        let tcbbo = rtype == RType::Tcbbo || (rtype == RType::Cmbp1 && self.tcbbo_schema);
        let kind = match rtype {
            _ if tbbo => "tbbo",
            _ if tcbbo => "tcbbo",
            other => other.as_str(),
        };
        *self.summary.read.entry(kind).or_default() += 1;
        #[allow(deprecated)] // old DBN files still carry the deprecated record types
        match rtype {
            RType::Mbo => {
                let m: &MboMsg = self.get(rec)?;
                let body = Body::Order(Order {
                    action: OrderAction::from_byte(m.action as u8).map_err(|e| self.input(e))?,
                    side: self.side(m.side as u8)?,
                    // The Order body mirrors DBN MBO, so it keeps DBN's flag bits.
                    flags: m.flags.raw(),
                    price: m.price,
                    quantity: quantity(m.size),
                    order_id: m.order_id,
                    sequence: m.sequence as u64,
                });
                self.emit(sink, rec, m.ts_recv, body)
            }
            RType::Mbp0 => {
                let m: &TradeMsg = self.get(rec)?;
                let trade = self.trade(m.side as u8, m.flags.raw(), m.price, m.size, m.sequence)?;
                self.emit(sink, rec, m.ts_recv, trade)
            }
            RType::Mbp1 | RType::Tbbo => {
                let m: &Mbp1Msg = self.get(rec)?;
                self.mbp(sink, rec, mbp_event!(m), &m.levels, tbbo)
            }
            RType::Mbp10 => {
                let m: &Mbp10Msg = self.get(rec)?;
                self.mbp(sink, rec, mbp_event!(m), &m.levels, false)
            }
            RType::Bbo1S | RType::Bbo1M => {
                let m: &BboMsg = self.get(rec)?;
                // The record's price, size and side repeat the interval's last trade, which
                // the trades schema carries as an event of its own.
                let bbo = bbo(&m.levels[0], m.sequence as u64);
                self.emit(sink, rec, m.ts_recv, bbo)
            }
            RType::Cbbo1S | RType::Cbbo1M => {
                let m: &CbboMsg = self.get(rec)?;
                self.emit(sink, rec, m.ts_recv, cbbo(&m.levels[0]))
            }
            RType::Cmbp1 | RType::Tcbbo => {
                let m: &Cmbp1Msg = self.get(rec)?;
                // A consolidated level mixes venues, so the event's own level has no aggregate
                // quantity to report: a book event becomes the consolidated top of book.
                if m.action as u8 != b'T' {
                    return self.emit(sink, rec, m.ts_recv, cbbo(&m.levels[0]));
                }
                if tcbbo {
                    self.emit(sink, rec, m.ts_recv, cbbo(&m.levels[0]))?;
                }
                let trade = self.trade(m.side as u8, m.flags.raw(), m.price, m.size, 0)?;
                self.emit(sink, rec, m.ts_recv, trade)
            }
            RType::Statistics => {
                let m: &StatMsg = self.get(rec)?;
                if m.stat_type != StatType::OpenInterest as u16 {
                    return self.skip("statistics other than open interest");
                }
                if m.update_action != StatUpdateAction::New as u8 {
                    return self.skip("open interest deletion");
                }
                let oi = Body::OpenInterest(OpenInterest {
                    // DBN's UNDEF_STAT_QUANTITY is i64::MAX, chronicle's UNDEF.
                    open_interest: m.quantity,
                    mark_price: UNDEF,
                    index_price: UNDEF,
                    funding_rate_e9: UNDEF,
                    next_funding_ts_ns: 0,
                });
                self.emit(sink, rec, m.ts_recv, oi)
            }
            RType::InstrumentDef => {
                let m: &InstrumentDefMsg = self.get(rec)?;
                self.definition(sink, m)
            }
            // Live captures announce raw symbols in-band; they apply to later records.
            RType::SymbolMapping => self.symbols.on_record(rec).map_err(|e| self.input(e)),
            RType::System | RType::Error => self.skip("gateway message"),
            RType::Ohlcv1S
            | RType::Ohlcv1M
            | RType::Ohlcv1H
            | RType::Ohlcv1D
            | RType::OhlcvEod
            | RType::OhlcvDeprecated
            | RType::Status
            | RType::Imbalance => Err(unsupported(
                self.path,
                format!(
                    "record {}: {kind} records have no chronicle record kind",
                    self.summary.records - 1
                ),
            )),
        }
    }

    /// An MBP-1 / MBP-10 event. A book action becomes a `LevelUpdate` whose quantity is the
    /// aggregate at the event's price after the event, read from the record's own levels. A
    /// trade becomes a `Trade`; a fill is skipped because it is the passive side of a print
    /// already reported by its trade record, and counting both would double the volume.
    fn mbp(
        &mut self,
        sink: &mut dyn EventSink,
        rec: RecordRef<'_>,
        e: MbpEvent,
        levels: &[BidAskPair],
        tbbo: bool,
    ) -> Result<(), ImportError> {
        match e.action {
            b'A' | b'C' | b'M' => {
                let side = self.side(e.side)?;
                if side == Side::None || e.price == UNDEF_PRICE {
                    return self.skip("book event without side or price");
                }
                let Some(quantity) = level_quantity(levels, side, e.price) else {
                    return self.skip("book event beyond the record's depth");
                };
                let flags = if e.flags & dbn::flags::LAST != 0 {
                    LevelUpdate::FLAG_LAST_IN_MESSAGE
                } else {
                    0
                };
                // DBN sequences are per venue channel, not per instrument, so there is no
                // previous id to chain to: `prev_update_id` 0 means unknown.
                let seq = e.sequence as u64;
                let update = Body::LevelUpdate(LevelUpdate {
                    side,
                    flags,
                    price: e.price,
                    quantity,
                    first_update_id: seq,
                    last_update_id: seq,
                    prev_update_id: 0,
                });
                self.emit(sink, rec, e.ts_recv, update)
            }
            b'T' => {
                // TBBO's level is the book just before the trade, so it goes first.
                if tbbo {
                    self.emit(sink, rec, e.ts_recv, bbo(&levels[0], e.sequence as u64))?;
                }
                let trade = self.trade(e.side, e.flags, e.price, e.size, e.sequence)?;
                self.emit(sink, rec, e.ts_recv, trade)
            }
            b'R' => {
                // The levels after a clear: usually none, which tells a reader the book is empty.
                let side = |bid: bool| {
                    levels
                        .iter()
                        .map(move |l| {
                            if bid {
                                (l.bid_px, l.bid_sz)
                            } else {
                                (l.ask_px, l.ask_sz)
                            }
                        })
                        .take_while(|&(px, _)| px != UNDEF_PRICE)
                        .map(|(price, sz)| Level {
                            price,
                            quantity: quantity(sz),
                        })
                };
                let book: Vec<Level> = side(true).chain(side(false)).collect();
                let bid_count = side(true).count() as u16;
                let snapshot = Body::BookSnapshot(BookSnapshot {
                    update_id: e.sequence as u64,
                    chunk: 0,
                    flags: BookSnapshot::FLAG_LAST_CHUNK,
                    bid_count,
                    ask_count: book.len() as u16 - bid_count,
                    levels: Levels::Slice(&book),
                });
                self.emit(sink, rec, e.ts_recv, snapshot)
            }
            b'F' => self.skip("fill (its trade record is the print)"),
            b'N' => self.skip("book event without action"),
            other => Err(self.input(format!("bad action byte {other:#04x}"))),
        }
    }

    fn definition(
        &mut self,
        sink: &mut dyn EventSink,
        m: &InstrumentDefMsg,
    ) -> Result<(), ImportError> {
        let own = m.raw_symbol().map_err(|e| self.input(e))?;
        let raw_symbol = if own.is_empty() {
            let mapped = self
                .symbols
                .get_for_ts(m.ts_recv, m.hd.instrument_id)
                .cloned();
            mapped.unwrap_or_else(|| m.hd.instrument_id.to_string())
        } else {
            own.to_owned()
        };
        let instrument = Instrument {
            venue: self.summary.venue.clone(),
            raw_symbol,
            price_exponent: PRICE_EXPONENT,
            quantity_exponent: 0,
            instrument_class: m.instrument_class as u8,
            tick_size: m.min_price_increment,
            // DBN's lot fields are minimum order sizes and round lots, not a size increment.
            lot_size: UNDEF,
            expiration_ns: if m.expiration == UNDEF_TIMESTAMP {
                0
            } else {
                m.expiration
            },
        };
        // A symbol chronicle cannot carry (over 32 bytes, not ASCII); the venue was checked.
        let encode = |e: chronicle_protocol::EncodeError| {
            let at = self.summary.records - 1;
            ImportError::Encode(format!("{}: record {at}: {e}", self.path.display()))
        };
        let definition = Body::Definition(Definition {
            venue: FixedStr::new("venue", &instrument.venue).map_err(encode)?,
            raw_symbol: FixedStr::new("raw_symbol", &instrument.raw_symbol).map_err(encode)?,
            price_exponent: PRICE_EXPONENT,
            quantity_exponent: 0,
            instrument_class: instrument.instrument_class,
            tick_size: instrument.tick_size,
            lot_size: instrument.lot_size,
            // Symbol ids belong to the sink, which owns identity.
            symbol_id: 0,
            expiration_ns: instrument.expiration_ns,
        });
        // Declared on every definition so the sink sees the richest description even when
        // data records declared the instrument first.
        let handle = sink.instrument(&instrument)?;
        self.handles.insert(instrument.raw_symbol, handle);
        self.write(sink, handle, m.hd.ts_event, m.ts_recv, definition)
    }

    fn trade(
        &self,
        side: u8,
        flags: u8,
        price: i64,
        size: u32,
        seq: u32,
    ) -> Result<Body<'static>, ImportError> {
        Ok(Body::Trade(Trade {
            // DBN's trade side is the aggressor's, chronicle's convention too.
            aggressor: self.side(side)?,
            flags: if flags & dbn::flags::LAST != 0 {
                LevelUpdate::FLAG_LAST_IN_MESSAGE
            } else {
                0
            },
            price,
            quantity: quantity(size),
            // DBN has no trade id; the venue's message sequence is the closest identity.
            trade_id: seq as u64,
        }))
    }

    fn emit(
        &mut self,
        sink: &mut dyn EventSink,
        rec: RecordRef<'_>,
        ts_recv: u64,
        body: Body<'_>,
    ) -> Result<(), ImportError> {
        let hd = rec.header();
        // Symbology is dated by the index timestamp, ts_recv (ts_event when it is missing).
        let index_ts = if ts_recv == UNDEF_TIMESTAMP {
            hd.ts_event
        } else {
            ts_recv
        };
        let handle = self.handle(sink, hd.instrument_id, index_ts)?;
        self.write(sink, handle, hd.ts_event, ts_recv, body)
    }

    fn write(
        &mut self,
        sink: &mut dyn EventSink,
        handle: InstrumentHandle,
        ts_event: u64,
        ts_recv: u64,
        body: Body<'_>,
    ) -> Result<(), ImportError> {
        if ts_event == UNDEF_TIMESTAMP {
            return Err(self.input("ts_event is undefined: no exchange time to partition by"));
        }
        sink.event(handle, ts_event, ts_recv, body)?;
        *self.summary.written.entry(body.kind()).or_default() += 1;
        Ok(())
    }

    /// The instrument of a data record: its symbology mapping on the record's date, else its
    /// instrument id in decimal. Declared to the sink on first use.
    fn handle(
        &mut self,
        sink: &mut dyn EventSink,
        instrument_id: u32,
        index_ts: u64,
    ) -> Result<InstrumentHandle, ImportError> {
        let mapped = self.symbols.get_for_ts(index_ts, instrument_id);
        let cached = match mapped {
            Some(symbol) => self.handles.get(symbol.as_str()),
            None => self.unmapped.get(&instrument_id),
        };
        if let Some(&handle) = cached {
            return Ok(handle);
        }
        let is_mapped = mapped.is_some();
        let raw_symbol = mapped.cloned().unwrap_or_else(|| instrument_id.to_string());
        let handle = match self.handles.get(&raw_symbol) {
            Some(&handle) => handle,
            None => {
                let handle = sink.instrument(&Instrument {
                    venue: self.summary.venue.clone(),
                    raw_symbol: raw_symbol.clone(),
                    price_exponent: PRICE_EXPONENT,
                    quantity_exponent: 0,
                    instrument_class: 0,
                    tick_size: UNDEF,
                    lot_size: UNDEF,
                    expiration_ns: 0,
                })?;
                self.handles.insert(raw_symbol, handle);
                handle
            }
        };
        if !is_mapped {
            self.unmapped.insert(instrument_id, handle);
        }
        Ok(handle)
    }

    /// The record as `T`; a record too short for its rtype is corrupt (`try_get` checks the
    /// length, where `get` would panic).
    fn get<'a, T: HasRType<Header = dbn::RecordHeader>>(
        &self,
        rec: RecordRef<'a>,
    ) -> Result<&'a T, ImportError> {
        rec.try_get::<T>().map_err(|e| self.input(e))
    }

    fn side(&self, c: u8) -> Result<Side, ImportError> {
        Side::from_byte("side", c).map_err(|e| self.input(e))
    }

    /// Counts a record that produces no event.
    fn skip(&mut self, reason: &'static str) -> Result<(), ImportError> {
        *self.summary.skipped.entry(reason).or_default() += 1;
        Ok(())
    }

    /// Bad input at the record being imported.
    fn input(&self, msg: impl Display) -> ImportError {
        ImportError::Input {
            path: self.path.to_owned(),
            at: format!("record {}", self.summary.records.saturating_sub(1)),
            msg: msg.to_string(),
        }
    }
}

/// The aggregate quantity at `price` on `side` after an MBP event, from the record's levels
/// (best first). A price among them has its level's size. An absent price was removed (0)
/// when the record shows that side completely (fewer levels than its depth) or shows a level
/// worse than the price; otherwise the price lies beyond the record's depth, its aggregate is
/// unknown and the result is `None` (the event's own size is an order's, not the level's).
fn level_quantity(levels: &[BidAskPair], side: Side, price: i64) -> Option<i64> {
    let mut shown = 0;
    let mut worst = None;
    for l in levels {
        let (px, sz) = if side == Side::Bid {
            (l.bid_px, l.bid_sz)
        } else {
            (l.ask_px, l.ask_sz)
        };
        if px == UNDEF_PRICE {
            break;
        }
        if px == price {
            return Some(quantity(sz));
        }
        shown += 1;
        worst = Some(px);
    }
    let beyond = shown == levels.len()
        && worst.is_some_and(|w| {
            if side == Side::Bid {
                price < w
            } else {
                price > w
            }
        });
    (!beyond).then_some(0)
}

/// A DBN size; `u32::MAX` is DBN's undefined order size.
fn quantity(size: u32) -> i64 {
    if size == u32::MAX {
        UNDEF
    } else {
        size as i64
    }
}

/// An empty DBN side has price `UNDEF_PRICE` and size 0; chronicle's has both `UNDEF`.
fn side_of(px: i64, sz: u32) -> (i64, i64) {
    if px == UNDEF_PRICE {
        (UNDEF, UNDEF)
    } else {
        (px, quantity(sz))
    }
}

/// Builds a `Bbo` body from a DBN top-of-book pair, plain or consolidated (different types
/// with the same field names).
macro_rules! top_of_book {
    ($l:expr, $update_id:expr) => {{
        let (bid_price, bid_quantity) = side_of($l.bid_px, $l.bid_sz);
        let (ask_price, ask_quantity) = side_of($l.ask_px, $l.ask_sz);
        Body::Bbo(Bbo {
            bid_price,
            bid_quantity,
            ask_price,
            ask_quantity,
            update_id: $update_id,
        })
    }};
}

fn bbo(l: &BidAskPair, update_id: u64) -> Body<'static> {
    top_of_book!(l, update_id)
}

/// Consolidated records carry no sequence, so the update id is 0 (unknown).
fn cbbo(l: &ConsolidatedBidAskPair) -> Body<'static> {
    top_of_book!(l, 0)
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// DBZ starts with a zstd skippable frame (magic 0x184D2A50 to 0x184D2A5F, little-endian).
fn is_dbz(head: &[u8]) -> bool {
    matches!(head, [m, 0x2a, 0x4d, 0x18, ..] if m & 0xf0 == 0x50)
}

/// A read error of the (decompressed) stream: the operating system's are `Io`; the rest
/// come from a corrupt or truncated zstd stream and are bad input.
fn read_error(path: &Path, at: &str, source: std::io::Error) -> ImportError {
    if source.raw_os_error().is_some() {
        io_error(path, source)
    } else {
        ImportError::Input {
            path: path.to_owned(),
            at: at.to_owned(),
            msg: source.to_string(),
        }
    }
}

fn io_error(path: &Path, source: std::io::Error) -> ImportError {
    ImportError::Io {
        path: path.to_owned(),
        source,
    }
}

fn unsupported(path: &Path, msg: String) -> ImportError {
    ImportError::Unsupported {
        path: PathBuf::from(path),
        msg,
    }
}

/// A decoder error: bad framing or metadata is bad input; a read error is classed by
/// [`read_error`].
fn dbn_error(path: &Path, at: &str, e: dbn::Error) -> ImportError {
    match e {
        dbn::Error::Io { source, .. } => read_error(path, at, source),
        e => ImportError::Input {
            path: path.to_owned(),
            at: at.to_owned(),
            msg: e.to_string(),
        },
    }
}
