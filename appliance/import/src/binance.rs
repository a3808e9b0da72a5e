//! Binance combined-stream captures: one message a line, `<receive ns> <json>`, where the
//! JSON is the `{"stream": ..., "data": ...}` envelope (`depthUpdate`, `trade`,
//! `bookTicker`, `markPriceUpdate`) or a REST depth snapshot (`{"lastUpdateId": ...}`).
//!
//! The book is synchronised by update id as Binance documents for USDⓈ-M futures: diffs
//! are buffered until the snapshot, those with `u` < `lastUpdateId` are dropped, the first
//! applied diff must straddle `lastUpdateId`, and every later diff's `pu` must equal the
//! previous diff's `u`. A break is recorded as a gap marker; the diffs after it are kept
//! (the data is real) and continuity is checked again from there.
//!
//! Exchange time is Binance's transaction time `T` (ms), never the local receive time.

use crate::progress::{size_of, Counted};
use crate::source::{EventSink, Instrument, InstrumentHandle};
use crate::ImportError;
use chronicle_protocol::{
    parse_scaled, significant_decimals, Bbo, Body, BookSnapshot, Gap, GapReason, Level,
    LevelUpdate, Levels, OpenInterest, Side, Trade, UNDEF,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Diff messages held while waiting for the first snapshot: a limit, not a guess — Binance
/// sends a snapshot within seconds; a capture that has none gets a clear error.
const MAX_BUFFERED_DIFFS: usize = 100_000;
const NS_PER_MS: u64 = 1_000_000;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    stream: Option<&'a str>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(rename = "lastUpdateId")]
    last_update_id: Option<u64>,
    #[serde(rename = "T")]
    transaction_ms: Option<u64>,
    #[serde(borrow, default)]
    bids: Vec<[&'a str; 2]>,
    #[serde(borrow, default)]
    asks: Vec<[&'a str; 2]>,
}

#[derive(Deserialize)]
struct EventType<'a> {
    #[serde(rename = "e")]
    event: &'a str,
    #[serde(rename = "s")]
    symbol: &'a str,
}

#[derive(Deserialize)]
struct DepthUpdate<'a> {
    #[serde(rename = "T")]
    transaction_ms: u64,
    #[serde(rename = "U")]
    first: u64,
    #[serde(rename = "u")]
    last: u64,
    #[serde(rename = "pu")]
    prev: u64,
    #[serde(borrow, rename = "b")]
    bids: Vec<[&'a str; 2]>,
    #[serde(borrow, rename = "a")]
    asks: Vec<[&'a str; 2]>,
}

#[derive(Deserialize)]
struct TradeMsg<'a> {
    #[serde(rename = "T")]
    trade_ms: u64,
    #[serde(rename = "t")]
    id: u64,
    #[serde(rename = "p")]
    price: &'a str,
    #[serde(rename = "q")]
    qty: &'a str,
    #[serde(rename = "m")]
    buyer_is_maker: bool,
}

#[derive(Deserialize)]
struct BookTicker<'a> {
    #[serde(rename = "T")]
    transaction_ms: u64,
    #[serde(rename = "u")]
    update_id: u64,
    #[serde(rename = "b")]
    bid: &'a str,
    #[serde(rename = "B")]
    bid_qty: &'a str,
    #[serde(rename = "a")]
    ask: &'a str,
    #[serde(rename = "A")]
    ask_qty: &'a str,
}

#[derive(Deserialize)]
struct MarkPrice<'a> {
    #[serde(rename = "E")]
    event_ms: u64,
    #[serde(rename = "p")]
    mark: &'a str,
    #[serde(rename = "i", default)]
    index: Option<&'a str>,
    #[serde(rename = "r", default)]
    funding: Option<&'a str>,
    #[serde(rename = "T", default)]
    next_funding_ms: Option<u64>,
}

/// What an import read and wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BinanceSummary {
    pub lines: u64,
    pub trades: u64,
    pub bbos: u64,
    pub mark_prices: u64,
    pub snapshots: u64,
    pub depth_messages: u64,
    /// Level updates written (they survived book synchronisation).
    pub level_updates: u64,
    /// Diff messages dropped by synchronisation (older than the snapshot).
    pub depth_messages_dropped: u64,
    pub gaps: u64,
    /// Lines of streams chronicle has no record kind for, by event type.
    pub skipped: BTreeMap<String, u64>,
}

/// A diff waiting for the snapshot, kept as its raw line so nothing is parsed twice in
/// the steady state.
struct Pending {
    line_no: u64,
    receive_ns: u64,
    json: String,
}

enum Sync {
    /// No snapshot yet: diffs wait.
    Waiting(Vec<Pending>),
    /// Snapshot applied: diffs older than it are dropped, the first kept one must straddle it.
    Straddle { snapshot_id: u64 },
    /// `u` of the last applied diff: the next diff's `pu` must equal it.
    Live { last_u: u64 },
}

struct SymbolState {
    handle: InstrumentHandle,
    sync: Sync,
}

/// Decodes capture lines for one venue, given each symbol's exponents.
pub struct Decoder {
    venue: String,
    path: PathBuf,
    exponents: BTreeMap<String, (i8, i8)>,
    symbols: BTreeMap<String, SymbolState>,
    levels: Vec<Level>,
    pub summary: BinanceSummary,
}

impl Decoder {
    pub fn new(venue: &str, path: &Path, exponents: BTreeMap<String, (i8, i8)>) -> Self {
        Self {
            venue: venue.to_owned(),
            path: path.to_owned(),
            exponents,
            symbols: BTreeMap::new(),
            levels: Vec::new(),
            summary: BinanceSummary::default(),
        }
    }

    fn err(&self, line_no: u64, msg: impl Into<String>) -> ImportError {
        ImportError::Input {
            path: self.path.clone(),
            at: format!("line {line_no}"),
            msg: msg.into(),
        }
    }

    fn state(
        &mut self,
        symbol: &str,
        sink: &mut dyn EventSink,
        line_no: u64,
    ) -> Result<&mut SymbolState, ImportError> {
        if !self.symbols.contains_key(symbol) {
            let (pe, qe) = *self.exponents.get(symbol).ok_or_else(|| {
                self.err(line_no, format!("symbol {symbol} has no known exponents"))
            })?;
            let handle = sink.instrument(&Instrument {
                venue: self.venue.clone(),
                raw_symbol: symbol.to_owned(),
                price_exponent: pe,
                quantity_exponent: qe,
                instrument_class: 0,
                tick_size: UNDEF,
                lot_size: UNDEF,
                expiration_ns: 0,
            })?;
            self.symbols.insert(
                symbol.to_owned(),
                SymbolState {
                    handle,
                    sync: Sync::Waiting(Vec::new()),
                },
            );
        }
        Ok(self.symbols.get_mut(symbol).expect("inserted above"))
    }

    fn num(&self, line_no: u64, text: &str, exponent: i8) -> Result<i64, ImportError> {
        parse_scaled(text, exponent).map_err(|e| self.err(line_no, e.to_string()))
    }

    /// Decodes one line (`line_no` is 1-based, for errors).
    pub fn line(
        &mut self,
        line_no: u64,
        line: &str,
        sink: &mut dyn EventSink,
    ) -> Result<(), ImportError> {
        self.summary.lines += 1;
        let (ts, json) = line
            .split_once(' ')
            .ok_or_else(|| self.err(line_no, "expected `<receive ns> <json>`"))?;
        let receive_ns: u64 = ts
            .parse()
            .map_err(|_| self.err(line_no, format!("receive time `{ts}` is not an integer")))?;
        let env: Envelope =
            serde_json::from_str(json).map_err(|e| self.err(line_no, format!("JSON: {e}")))?;
        if let Some(last_update_id) = env.last_update_id {
            return self.snapshot(line_no, receive_ns, &env, last_update_id, sink);
        }
        let (Some(stream), Some(data)) = (env.stream, env.data) else {
            return Err(self.err(line_no, "neither a stream envelope nor a depth snapshot"));
        };
        let head: EventType = serde_json::from_str(data.get())
            .map_err(|e| self.err(line_no, format!("stream {stream}: {e}")))?;
        // Each kind decodes to its exchange time and body; declaring and emitting are shared.
        let (exchange_ms, body) = match head.event {
            "depthUpdate" => {
                self.summary.depth_messages += 1;
                let st = self.state(head.symbol, sink, line_no)?;
                if let Sync::Waiting(buf) = &mut st.sync {
                    if buf.len() >= MAX_BUFFERED_DIFFS {
                        return Err(self.err(line_no, format!(
                            "{MAX_BUFFERED_DIFFS} depth diffs of {} arrived before any REST snapshot", head.symbol
                        )));
                    }
                    buf.push(Pending {
                        line_no,
                        receive_ns,
                        json: data.get().to_owned(),
                    });
                    return Ok(());
                }
                return self.depth(line_no, receive_ns, head.symbol, data.get(), sink);
            }
            "trade" => {
                let m: TradeMsg = self.parse(line_no, data)?;
                let (pe, qe) = self.exponents_of(head.symbol, line_no)?;
                let body = Body::Trade(Trade {
                    aggressor: if m.buyer_is_maker {
                        Side::Ask
                    } else {
                        Side::Bid
                    },
                    flags: 0,
                    price: self.num(line_no, m.price, pe)?,
                    quantity: self.num(line_no, m.qty, qe)?,
                    trade_id: m.id,
                });
                self.summary.trades += 1;
                (m.trade_ms, body)
            }
            "bookTicker" => {
                let m: BookTicker = self.parse(line_no, data)?;
                let (pe, qe) = self.exponents_of(head.symbol, line_no)?;
                let body = Body::Bbo(Bbo {
                    bid_price: self.num(line_no, m.bid, pe)?,
                    bid_quantity: self.num(line_no, m.bid_qty, qe)?,
                    ask_price: self.num(line_no, m.ask, pe)?,
                    ask_quantity: self.num(line_no, m.ask_qty, qe)?,
                    update_id: m.update_id,
                });
                self.summary.bbos += 1;
                (m.transaction_ms, body)
            }
            "markPriceUpdate" => {
                let m: MarkPrice = self.parse(line_no, data)?;
                let (pe, _) = self.exponents_of(head.symbol, line_no)?;
                let opt = |s: Option<&str>, e: i8| s.map_or(Ok(UNDEF), |s| self.num(line_no, s, e));
                let body = Body::OpenInterest(OpenInterest {
                    open_interest: UNDEF,
                    mark_price: self.num(line_no, m.mark, pe)?,
                    index_price: opt(m.index, pe)?,
                    funding_rate_e9: opt(m.funding, -9)?,
                    next_funding_ts_ns: m.next_funding_ms.unwrap_or(0) * NS_PER_MS,
                });
                self.summary.mark_prices += 1;
                (m.event_ms, body)
            }
            other => {
                *self.summary.skipped.entry(other.to_owned()).or_default() += 1;
                return Ok(());
            }
        };
        let h = self.state(head.symbol, sink, line_no)?.handle;
        sink.event(h, exchange_ms * NS_PER_MS, receive_ns, body)
    }

    fn parse<'j, T: Deserialize<'j>>(
        &self,
        line_no: u64,
        data: &'j RawValue,
    ) -> Result<T, ImportError> {
        serde_json::from_str(data.get()).map_err(|e| self.err(line_no, format!("JSON: {e}")))
    }

    fn exponents_of(&self, symbol: &str, line_no: u64) -> Result<(i8, i8), ImportError> {
        self.exponents
            .get(symbol)
            .copied()
            .ok_or_else(|| self.err(line_no, format!("symbol {symbol} has no known exponents")))
    }

    fn snapshot(
        &mut self,
        line_no: u64,
        receive_ns: u64,
        env: &Envelope,
        last_update_id: u64,
        sink: &mut dyn EventSink,
    ) -> Result<(), ImportError> {
        // A REST snapshot names no symbol: it belongs to the capture's only depth stream.
        let symbol = match self.symbols.keys().collect::<Vec<_>>().as_slice() {
            [one] => (*one).clone(),
            _ => {
                return Err(self.err(
                    line_no,
                    "a REST depth snapshot needs exactly one symbol in the capture before it",
                ))
            }
        };
        let (pe, qe) = self.exponents_of(&symbol, line_no)?;
        let exchange_ns = env
            .transaction_ms
            .ok_or_else(|| self.err(line_no, "snapshot has no `T`"))?
            * NS_PER_MS;
        let mut levels = std::mem::take(&mut self.levels);
        levels.clear();
        for [p, q] in env.bids.iter().chain(env.asks.iter()) {
            levels.push(Level {
                price: self.num(line_no, p, pe)?,
                quantity: self.num(line_no, q, qe)?,
            });
        }
        let handle = self.state(&symbol, sink, line_no)?.handle;
        // Bids then asks, at most MAX_LEVELS a chunk; an empty book is one empty chunk.
        let max = BookSnapshot::MAX_LEVELS;
        let chunks = levels.len().div_ceil(max).max(1);
        for i in 0..chunks {
            let (start, end) = (i * max, ((i + 1) * max).min(levels.len()));
            let bids_here = env.bids.len().clamp(start, end) - start;
            sink.event(
                handle,
                exchange_ns,
                receive_ns,
                Body::BookSnapshot(BookSnapshot {
                    update_id: last_update_id,
                    chunk: i as u16,
                    flags: if i + 1 == chunks {
                        BookSnapshot::FLAG_LAST_CHUNK
                    } else {
                        0
                    },
                    bid_count: bids_here as u16,
                    ask_count: (end - start - bids_here) as u16,
                    levels: Levels::Slice(&levels[start..end]),
                }),
            )?;
        }
        self.levels = levels;
        self.summary.snapshots += 1;
        let st = self.symbols.get_mut(&symbol).expect("state exists");
        let previous = std::mem::replace(
            &mut st.sync,
            Sync::Straddle {
                snapshot_id: last_update_id,
            },
        );
        if let Sync::Waiting(pending) = previous {
            for p in pending {
                self.depth(p.line_no, p.receive_ns, &symbol, &p.json, sink)?;
            }
        }
        Ok(())
    }

    /// Applies one diff of a symbol that has a snapshot.
    fn depth(
        &mut self,
        line_no: u64,
        receive_ns: u64,
        symbol: &str,
        json: &str,
        sink: &mut dyn EventSink,
    ) -> Result<(), ImportError> {
        let m: DepthUpdate =
            serde_json::from_str(json).map_err(|e| self.err(line_no, format!("JSON: {e}")))?;
        let (pe, qe) = self.exponents_of(symbol, line_no)?;
        let exchange_ns = m.transaction_ms * NS_PER_MS;
        let st = self.symbols.get_mut(symbol).expect("state exists");
        let handle = st.handle;
        let gap = match st.sync {
            Sync::Waiting(_) => unreachable!("waiting diffs are buffered by the caller"),
            Sync::Straddle { snapshot_id } if m.last < snapshot_id => {
                self.summary.depth_messages_dropped += 1;
                return Ok(());
            }
            Sync::Straddle { snapshot_id } => {
                (m.first > snapshot_id).then_some((snapshot_id, m.first))
            }
            Sync::Live { last_u } => (m.prev != last_u).then_some((last_u, m.prev)),
        };
        st.sync = Sync::Live { last_u: m.last };
        if let Some((expected, received)) = gap {
            self.summary.gaps += 1;
            sink.event(
                handle,
                exchange_ns,
                receive_ns,
                Body::Gap(Gap {
                    reason: GapReason::SequenceBreak,
                    expected,
                    received,
                    lost: 0,
                }),
            )?;
        }
        let total = m.bids.len() + m.asks.len();
        let sides = m
            .bids
            .iter()
            .map(|l| (Side::Bid, l))
            .chain(m.asks.iter().map(|l| (Side::Ask, l)));
        for (i, (side, [p, q])) in sides.enumerate() {
            let body = Body::LevelUpdate(LevelUpdate {
                side,
                flags: if i + 1 == total {
                    LevelUpdate::FLAG_LAST_IN_MESSAGE
                } else {
                    0
                },
                price: self.num(line_no, p, pe)?,
                quantity: self.num(line_no, q, qe)?,
                first_update_id: m.first,
                last_update_id: m.last,
                prev_update_id: m.prev,
            });
            sink.event(handle, exchange_ns, receive_ns, body)?;
        }
        self.summary.level_updates += total as u64;
        Ok(())
    }

    /// Ends the capture: a symbol still waiting for its snapshot lost its diffs, say so.
    pub fn finish(self) -> Result<BinanceSummary, ImportError> {
        for (symbol, st) in &self.symbols {
            if let Sync::Waiting(p) = &st.sync {
                if !p.is_empty() {
                    return Err(self.err(p[0].line_no, format!(
                        "{} depth diffs of {symbol} but no REST snapshot to synchronise the book", p.len()
                    )));
                }
            }
        }
        Ok(self.summary)
    }
}

/// Opens a capture, gzip or plain (by magic); `read` is told the file's bytes read so far.
pub fn open_capture<'a>(
    path: &Path,
    read: &'a dyn Fn(u64),
) -> Result<Box<dyn BufRead + 'a>, ImportError> {
    let io = |source| ImportError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(io)?;
    let f = Counted::new(std::fs::File::open(path).map_err(io)?, read);
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(f),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, f))
    })
}

/// Calls `f(line_no, line)` for every non-empty line; `read` as for [`open_capture`].
fn for_each_line(
    path: &Path,
    read: &dyn Fn(u64),
    mut f: impl FnMut(u64, &str) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let mut r = open_capture(path, read)?;
    let mut line = String::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        let n = r.read_line(&mut line).map_err(|e| ImportError::Input {
            path: path.to_owned(),
            at: format!("line {}", line_no + 1),
            msg: e.to_string(),
        })?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        let l = line.trim_end_matches(['\n', '\r']);
        if !l.is_empty() {
            f(line_no, l)?;
        }
    }
}

/// Finds each symbol's exponents: the most decimals any of its prices (quantities) carries,
/// trailing zeros ignored, so that every value is an exact integer mantissa. `read` as for
/// [`open_capture`].
pub fn scan_exponents(
    path: &Path,
    read: &dyn Fn(u64),
) -> Result<BTreeMap<String, (i8, i8)>, ImportError> {
    let mut out: BTreeMap<String, (u8, u8)> = BTreeMap::new();
    let mut last_symbol: Option<String> = None;
    for_each_line(path, read, |line_no, line| {
        let bad = |msg: String| ImportError::Input {
            path: path.to_owned(),
            at: format!("line {line_no}"),
            msg,
        };
        let json = line
            .split_once(' ')
            .map(|(_, j)| j)
            .ok_or_else(|| bad("expected `<receive ns> <json>`".into()))?;
        let env: Envelope = serde_json::from_str(json).map_err(|e| bad(format!("JSON: {e}")))?;
        let mut note = |symbol: &str, prices: &[&str], qtys: &[&str]| {
            let e = out.entry(symbol.to_owned()).or_default();
            for p in prices {
                e.0 = e.0.max(significant_decimals(p));
            }
            for q in qtys {
                e.1 = e.1.max(significant_decimals(q));
            }
        };
        if env.last_update_id.is_some() {
            if let Some(s) = &last_symbol {
                let (p, q): (Vec<&str>, Vec<&str>) = env
                    .bids
                    .iter()
                    .chain(&env.asks)
                    .map(|[p, q]| (*p, *q))
                    .unzip();
                note(s, &p, &q);
            }
            return Ok(());
        }
        let Some(data) = env.data else { return Ok(()) };
        let v: serde_json::Value =
            serde_json::from_str(data.get()).map_err(|e| bad(format!("JSON: {e}")))?;
        let Some(symbol) = v.get("s").and_then(|s| s.as_str()) else {
            return Ok(());
        };
        let strs = |k: &str| -> Vec<&str> {
            match v.get(k) {
                Some(serde_json::Value::String(s)) => vec![s.as_str()],
                Some(serde_json::Value::Array(levels)) => {
                    levels.iter().filter_map(|l| l.get(0)?.as_str()).collect()
                }
                _ => vec![],
            }
        };
        let qty_of_levels = |k: &str| -> Vec<&str> {
            v.get(k)
                .and_then(|l| l.as_array())
                .map_or(vec![], |levels| {
                    levels.iter().filter_map(|l| l.get(1)?.as_str()).collect()
                })
        };
        match v.get("e").and_then(|e| e.as_str()) {
            Some("depthUpdate") => {
                let (mut p, mut q) = (strs("b"), qty_of_levels("b"));
                p.extend(strs("a"));
                q.extend(qty_of_levels("a"));
                note(symbol, &p, &q);
            }
            Some("trade") => note(symbol, &strs("p"), &strs("q")),
            Some("bookTicker") => note(
                symbol,
                &[strs("b"), strs("a")].concat(),
                &[strs("B"), strs("A")].concat(),
            ),
            Some("markPriceUpdate") => note(symbol, &[strs("p"), strs("i")].concat(), &[]),
            _ => {}
        }
        last_symbol = Some(symbol.to_owned());
        Ok(())
    })?;
    out.into_iter()
        .map(|(s, (p, q))| {
            if p.max(q) > 18 {
                return Err(ImportError::Input {
                    path: path.to_owned(),
                    at: format!("symbol {s}"),
                    msg: format!(
                        "{} decimals: more than the 18 a 64-bit mantissa carries",
                        p.max(q)
                    ),
                });
            }
            Ok((s, (-(p as i8), -(q as i8))))
        })
        .collect()
}

/// Imports a whole capture into `sink`.
pub fn import(
    path: &Path,
    venue: &str,
    sink: &mut dyn EventSink,
) -> Result<BinanceSummary, ImportError> {
    import_with_progress(path, venue, sink, &|_, _| {})
}

/// [`import`], telling `progress(done, total)` the bytes of the file read: it is read twice
/// (the exponents, then the events), so `total` is twice its size.
pub fn import_with_progress(
    path: &Path,
    venue: &str,
    sink: &mut dyn EventSink,
    progress: &dyn Fn(u64, u64),
) -> Result<BinanceSummary, ImportError> {
    let size = size_of(path);
    let exponents = scan_exponents(path, &|n| progress(n, 2 * size))?;
    let mut d = Decoder::new(venue, path, exponents);
    let events = |n| progress(size + n, 2 * size);
    for_each_line(path, &events, |line_no, line| d.line(line_no, line, sink))?;
    d.finish()
}
