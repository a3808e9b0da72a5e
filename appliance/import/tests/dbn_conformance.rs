//! The DBN importer against the `dbn` crate's own reading of real fixtures: same record
//! count, and every event's fields equal to its record's.

use std::path::{Path, PathBuf};

use chronicle_import::dbn::{import, DbnSummary};
use chronicle_import::{EventSink, ImportError, Instrument, InstrumentHandle};
use chronicle_protocol::{Body, Meta, Record, Side, UNDEF};
use dbn::decode::{DbnMetadata, DecodeRecordRef, DynDecoder};
use dbn::encode::{DbnEncoder, EncodeRecordRef};
use dbn::{
    rtype, BboMsg, BidAskPair, CbboMsg, Cmbp1Msg, InstrumentDefMsg, MboMsg, Mbp10Msg, Mbp1Msg,
    Metadata, RecordBuf, SType, Schema, StatMsg, StatType, TradeMsg, TsSymbolMap,
    VersionUpgradePolicy, MAX_RECORD_LEN, UNDEF_PRICE, UNDEF_TIMESTAMP,
};

const UNSUPPORTED: [&str; 6] = [
    "ohlcv-1d",
    "ohlcv-1h",
    "ohlcv-1m",
    "ohlcv-1s",
    "status",
    "imbalance",
];

/// The fixture files of `../shared/data/dbn`, or `None` (after a skip) where it is absent.
fn fixtures() -> Option<Vec<PathBuf>> {
    let dir = fixture("")?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    Some(files)
}

fn fixture(name: &str) -> Option<PathBuf> {
    chronicle_testkit::shared_data(&format!("dbn/{name}"))
}

fn is_unsupported(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    UNSUPPORTED.iter().any(|s| name.contains(&format!(".{s}.")))
}

/// Keeps instruments and every event encoded as a chronicle record (which also proves the
/// bodies encode).
#[derive(Default)]
struct Collect {
    instruments: Vec<Instrument>,
    events: Vec<Vec<u8>>,
}

impl EventSink for Collect {
    fn instrument(&mut self, i: &Instrument) -> Result<InstrumentHandle, ImportError> {
        let known = self
            .instruments
            .iter()
            .position(|x| x.venue == i.venue && x.raw_symbol == i.raw_symbol);
        Ok(match known {
            Some(h) => {
                self.instruments[h] = i.clone();
                h
            }
            None => {
                self.instruments.push(i.clone());
                self.instruments.len() - 1
            }
        })
    }

    fn event(
        &mut self,
        h: InstrumentHandle,
        exchange_ts_ns: u64,
        receive_ts_ns: u64,
        body: Body<'_>,
    ) -> Result<(), ImportError> {
        assert!(h < self.instruments.len(), "event before its instrument");
        let meta = Meta {
            token_id: h as u32,
            global_tick_id: self.events.len() as u64,
            exchange_ts_ns,
            receive_ts_ns,
        };
        self.events
            .push(Record { meta, body }.to_vec().expect("body encodes"));
        Ok(())
    }
}

fn run(path: &Path) -> (Result<DbnSummary, ImportError>, Collect) {
    let mut sink = Collect::default();
    (import(path, &mut sink), sink)
}

/// What the dbn crate itself reads from the file.
fn dbn_read(path: &Path) -> (Metadata, Vec<RecordBuf>) {
    let mut d = DynDecoder::from_file(path, VersionUpgradePolicy::UpgradeToV3).unwrap();
    let meta = d.metadata().clone();
    let mut records = Vec::new();
    while let Some(r) = d.decode_record_ref().unwrap() {
        records.push(r.to_owned());
    }
    (meta, records)
}

fn side(c: i8) -> Side {
    match c as u8 {
        b'B' => Side::Bid,
        b'A' => Side::Ask,
        _ => Side::None,
    }
}

fn px(p: i64) -> i64 {
    if p == UNDEF_PRICE {
        UNDEF
    } else {
        p
    }
}

/// The expected Bbo fields of a DBN level: (bid px, bid qty, ask px, ask qty).
fn bbo_of(bid_px: i64, bid_sz: u32, ask_px: i64, ask_sz: u32) -> [i64; 4] {
    let q = |p, s: u32| if p == UNDEF_PRICE { UNDEF } else { s as i64 };
    [px(bid_px), q(bid_px, bid_sz), px(ask_px), q(ask_px, ask_sz)]
}

fn bbo_fields(b: Body) -> [i64; 4] {
    let Body::Bbo(b) = b else {
        panic!("expected a bbo, got {b:?}")
    };
    [b.bid_price, b.bid_quantity, b.ask_price, b.ask_quantity]
}

fn assert_trade(b: Body, side_c: i8, price: i64, size: u32, seq: u32) {
    let Body::Trade(t) = b else {
        panic!("expected a trade, got {b:?}")
    };
    assert_eq!(
        (t.aggressor, t.price, t.quantity, t.trade_id),
        (side(side_c), price, size as i64, seq as u64)
    );
}

/// The aggregate quantity the importer must report for a book event: the level's size when
/// the price is shown, else 0 (the fixtures have no events beyond their depth).
fn level_size(levels: &[BidAskPair], s: i8, price: i64) -> i64 {
    let bid = side(s) == Side::Bid;
    levels
        .iter()
        .find(|l| {
            if bid {
                l.bid_px == price
            } else {
                l.ask_px == price
            }
        })
        .map_or(0, |l| if bid { l.bid_sz } else { l.ask_sz } as i64)
}

/// Imports `path` and checks every event against the dbn crate's records, one for one.
fn check_conformance(path: &Path) -> DbnSummary {
    let (result, sink) = run(path);
    let summary = result.unwrap_or_else(|e| panic!("{e}"));
    let (meta, records) = dbn_read(path);
    assert_eq!(summary.records, records.len() as u64, "{}", path.display());
    assert_eq!(summary.read.values().sum::<u64>(), summary.records);
    assert_eq!(
        summary.written.values().sum::<u64>(),
        sink.events.len() as u64
    );
    assert_eq!(summary.instruments, sink.instruments.len());
    let symbols = TsSymbolMap::from_metadata(&meta).unwrap();
    let tbbo = meta.schema == Some(Schema::Tbbo);
    let mut events = sink.events.iter().map(|b| Record::decode(b).unwrap());
    let mut skipped = 0;
    for buf in &records {
        let hd = buf.header();
        let r = buf.as_rec_ref();
        let ts_recv = dbn::Record::raw_index_ts(&r);
        let mapped = symbols.get_for_ts(ts_recv, hd.instrument_id).cloned();
        let mut symbol = mapped.unwrap_or_else(|| hd.instrument_id.to_string());
        if let Some(d) = buf.get::<InstrumentDefMsg>() {
            symbol = d.raw_symbol().unwrap().to_owned();
        }
        // Takes the next event, checking what every event carries.
        let mut next = || {
            let e = events.next().expect("an event for the record");
            assert_eq!(e.meta.exchange_ts_ns, hd.ts_event);
            assert_eq!(e.meta.receive_ts_ns, ts_recv);
            let i = &sink.instruments[e.meta.token_id as usize];
            assert_eq!(
                (i.venue.as_str(), i.raw_symbol.as_str()),
                (summary.venue.as_str(), symbol.as_str())
            );
            assert_eq!((i.price_exponent, i.quantity_exponent), (-9, 0));
            e.body
        };
        match hd.rtype {
            rtype::MBO => {
                let m = buf.get::<MboMsg>().unwrap();
                let Body::Order(o) = next() else {
                    panic!("expected an order")
                };
                assert_eq!(o.action.to_byte(), m.action as u8);
                assert_eq!(o.side, side(m.side));
                assert_eq!((o.price, o.quantity), (m.price, m.size as i64));
                assert_eq!(
                    (o.order_id, o.sequence, o.flags),
                    (m.order_id, m.sequence as u64, m.flags.raw())
                );
            }
            rtype::MBP_0 => {
                let m = buf.get::<TradeMsg>().unwrap();
                assert_trade(next(), m.side, m.price, m.size, m.sequence);
            }
            rtype::MBP_1 | rtype::MBP_10 => {
                let (price, size, action, s, seq, levels) = match buf.get::<Mbp10Msg>() {
                    Some(m) => (m.price, m.size, m.action, m.side, m.sequence, &m.levels[..]),
                    None => {
                        let m = buf.get::<Mbp1Msg>().unwrap();
                        (m.price, m.size, m.action, m.side, m.sequence, &m.levels[..])
                    }
                };
                match action as u8 {
                    b'T' => {
                        if tbbo {
                            let l = &levels[0];
                            assert_eq!(
                                bbo_fields(next()),
                                bbo_of(l.bid_px, l.bid_sz, l.ask_px, l.ask_sz)
                            );
                        }
                        assert_trade(next(), s, price, size, seq);
                    }
                    b'A' | b'C' | b'M' => {
                        let Body::LevelUpdate(u) = next() else {
                            panic!("expected a level update")
                        };
                        assert_eq!((u.side, u.price), (side(s), price));
                        assert_eq!(u.quantity, level_size(levels, s, price));
                        assert_eq!(
                            (u.first_update_id, u.last_update_id),
                            (seq as u64, seq as u64)
                        );
                    }
                    other => panic!("fixture action {other} not covered"),
                }
            }
            rtype::BBO_1S | rtype::BBO_1M => {
                let l = &buf.get::<BboMsg>().unwrap().levels[0];
                assert_eq!(
                    bbo_fields(next()),
                    bbo_of(l.bid_px, l.bid_sz, l.ask_px, l.ask_sz)
                );
            }
            rtype::CBBO_1S | rtype::CBBO_1M => {
                let l = &buf.get::<CbboMsg>().unwrap().levels[0];
                assert_eq!(
                    bbo_fields(next()),
                    bbo_of(l.bid_px, l.bid_sz, l.ask_px, l.ask_sz)
                );
            }
            rtype::CMBP_1 => {
                let m = buf.get::<Cmbp1Msg>().unwrap();
                let l = &m.levels[0];
                if m.action as u8 == b'T' {
                    assert_trade(next(), m.side, m.price, m.size, 0);
                } else {
                    assert_eq!(
                        bbo_fields(next()),
                        bbo_of(l.bid_px, l.bid_sz, l.ask_px, l.ask_sz)
                    );
                }
            }
            rtype::STATISTICS => {
                let m = buf.get::<StatMsg>().unwrap();
                if m.stat_type == StatType::OpenInterest as u16 {
                    let Body::OpenInterest(oi) = next() else {
                        panic!("expected open interest")
                    };
                    assert_eq!(oi.open_interest, m.quantity);
                } else {
                    skipped += 1;
                }
            }
            rtype::INSTRUMENT_DEF => {
                let m = buf.get::<InstrumentDefMsg>().unwrap();
                let Body::Definition(d) = next() else {
                    panic!("expected a definition")
                };
                assert_eq!(d.raw_symbol.as_str(), Some(m.raw_symbol().unwrap()));
                assert_eq!(d.venue.as_str(), Some(summary.venue.as_str()));
                assert_eq!((d.price_exponent, d.quantity_exponent), (-9, 0));
                assert_eq!(
                    (d.tick_size, d.instrument_class),
                    (m.min_price_increment, m.instrument_class as u8)
                );
                let expiration = if m.expiration == UNDEF_TIMESTAMP {
                    0
                } else {
                    m.expiration
                };
                assert_eq!(d.expiration_ns, expiration);
                let i = &sink.instruments[symbol_handle(&sink, &symbol)];
                assert_eq!(
                    (i.tick_size, i.expiration_ns),
                    (d.tick_size, d.expiration_ns)
                );
            }
            other => panic!("fixture rtype {other:#x} not covered"),
        }
    }
    assert!(events.next().is_none(), "events without a record");
    assert_eq!(summary.skipped.values().sum::<u64>(), skipped);
    summary
}

fn symbol_handle(sink: &Collect, symbol: &str) -> usize {
    sink.instruments
        .iter()
        .position(|i| i.raw_symbol == symbol)
        .unwrap()
}

#[test]
fn supported_fixtures_conform() {
    let Some(files) = fixtures() else { return };
    let mut checked = 0;
    for path in files.iter().filter(|p| !is_unsupported(p)) {
        let s = check_conformance(path);
        eprintln!("{}: {s:?}", path.file_name().unwrap().to_string_lossy());
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} supported fixtures");
}

#[test]
fn fixture_details() {
    let Some(dir) = fixture("") else { return };
    let (s, sink) = run(&dir.join("test_data.mbo.v3.dbn.zst"));
    let s = s.unwrap();
    assert_eq!(
        (s.dataset.as_str(), s.venue.as_str(), s.schema),
        ("GLBX.MDP3", "glbx", Some("mbo"))
    );
    assert_eq!(s.dbn_version, Some(3));
    let shown = s.to_string();
    assert!(
        shown.starts_with("GLBX.MDP3 (glbx) mbo, DBN v3: 2 records"),
        "{shown}"
    );
    assert_eq!(sink.instruments.len(), 1);
    assert_eq!(sink.instruments[0].raw_symbol, "ESH1");
    assert_eq!(sink.instruments[0].tick_size, UNDEF);
    // No symbology in the metadata: the instrument id names the instrument.
    let (s, sink) = run(&dir.join("test_data.statistics.v3.dbn.zst"));
    assert_eq!(
        s.unwrap()
            .skipped
            .get("statistics other than open interest"),
        Some(&2)
    );
    assert_eq!(
        sink.instruments.len(),
        0,
        "nothing written, nothing declared"
    );
    // One definition per day of MSFT, each under the symbol it names.
    let (s, sink) = run(&dir.join("test_data.definition.v1.dbn.zst"));
    assert_eq!(
        (s.unwrap().venue.as_str(), sink.instruments.len()),
        ("xnas", 1)
    );
    assert_eq!(sink.instruments[0].raw_symbol, "MSFT");
    let (s, _) = run(&dir.join("test_data.mbo.dbz"));
    assert_eq!(
        s.unwrap().dbn_version,
        None,
        "legacy DBZ has no DBN version"
    );
    let (s, _) = run(&dir.join("test_data.mbp-10.v1.dbn.zst"));
    assert_eq!(s.unwrap().dbn_version, Some(1));
}

/// Every encoding and version of the same data gives the same events, and a second import
/// of a file gives exactly the first one's.
#[test]
fn encodings_versions_and_reruns_agree() {
    let Some(dir) = fixture("") else { return };
    for group in [
        &[
            "test_data.mbo.dbn",
            "test_data.mbo.dbz",
            "test_data.mbo.v3.dbn.zst",
        ][..],
        &[
            "test_data.mbp-10.v1.dbn.zst",
            "test_data.mbp-10.v2.dbn.zst",
            "test_data.mbp-10.v3.dbn.zst",
        ],
        &[
            "test_data.definition.v1.dbn.zst",
            "test_data.definition.v2.dbn.zst",
            "test_data.definition.v3.dbn.zst",
        ],
    ] {
        let first = run(&dir.join(group[0])).1;
        assert!(!first.events.is_empty());
        for name in group.iter().chain(&group[..1]) {
            let other = run(&dir.join(name)).1;
            assert_eq!(
                (&other.events, &other.instruments),
                (&first.events, &first.instruments),
                "{name}"
            );
        }
    }
}

#[test]
fn unsupported_schemas_are_refused() {
    let Some(files) = fixtures() else { return };
    let unsupported: Vec<_> = files.iter().filter(|p| is_unsupported(p)).collect();
    assert_eq!(unsupported.len(), UNSUPPORTED.len());
    for path in unsupported {
        let (result, sink) = run(path);
        match result {
            Err(ImportError::Unsupported { path: p, msg }) => {
                assert_eq!(&p, path);
                let schema = UNSUPPORTED.iter().find(|s| msg.contains(*s));
                assert!(schema.is_some(), "{msg} names no schema");
            }
            other => panic!("{}: {other:?}", path.display()),
        }
        assert!(sink.events.is_empty() && sink.instruments.is_empty());
    }
}

/// Every truncation and every single-byte corruption of a few fixtures gives an `Input`
/// error or a clean result; never a panic, and never more records than the original. (A
/// plain file cut on a record boundary, or a legacy DBZ file cut anywhere, reads as shorter.)
#[test]
fn corrupt_copies_fail_cleanly() {
    let Some(dir) = fixture("") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut errors = 0;
    for name in [
        "test_data.mbo.dbn",
        "test_data.mbo.dbz",
        "test_data.mbp-10.v1.dbn.zst",
        "test_data.definition.v1.dbn.zst",
        "test_data.tbbo.v3.dbn.zst",
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let total = dbn_read(&dir.join(name)).1.len() as u64;
        let copy = tmp.path().join(name);
        let cut = (0..bytes.len()).map(|n| bytes[..n].to_vec());
        let flipped = (0..bytes.len()).map(|i| {
            let mut b = bytes.clone();
            b[i] ^= 0xa5;
            b
        });
        for (k, variant) in cut.chain(flipped).enumerate() {
            std::fs::write(&copy, &variant).unwrap();
            match run(&copy).0 {
                Ok(s) => {
                    // A cut zstd stream cannot end on a record boundary unnoticed.
                    if k < bytes.len() && name.ends_with(".zst") {
                        assert_eq!(s.records, total, "{name} cut at {k}");
                    }
                    assert!(
                        s.records <= total || k >= bytes.len(),
                        "{name} variant {k}: {s:?}"
                    );
                    assert_eq!(s.read.values().sum::<u64>(), s.records);
                }
                Err(ImportError::Input { path, at, msg }) => {
                    assert_eq!(path, copy);
                    assert!(at == "metadata" || at.starts_with("record "), "{at}: {msg}");
                    errors += 1;
                }
                // A corrupted schema field can name a schema chronicle refuses.
                Err(ImportError::Unsupported { .. }) => {}
                Err(e) => panic!("{name} variant {k}: {e:?}"),
            }
        }
    }
    assert!(errors > 0);
}

/// A file cut inside its last record names that record.
#[test]
fn truncated_record_is_named() {
    let Some(path) = fixture("test_data.mbo.dbn") else {
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("cut.dbn");
    std::fs::write(&copy, &bytes[..bytes.len() - 10]).unwrap();
    match run(&copy) {
        (Err(ImportError::Input { at, .. }), sink) => {
            assert_eq!(at, "record 1");
            assert_eq!(sink.events.len(), 1, "the whole first record was imported");
        }
        (other, _) => panic!("{other:?}"),
    }
}

// Synthetic files for what the fixtures lack: open interest, fills, clears, levels beyond
// the record's depth, and instruments without symbology.

fn write_dbn(path: &Path, schema: Schema, records: &[RecordBuf]) {
    let meta = Metadata::builder()
        .dataset("GLBX.MDP3")
        .schema(Some(schema))
        .start(0)
        .stype_in(Some(SType::InstrumentId))
        .stype_out(SType::InstrumentId)
        .build();
    let mut enc = DbnEncoder::new(std::fs::File::create(path).unwrap(), &meta).unwrap();
    for r in records {
        enc.encode_record_ref(r.as_rec_ref()).unwrap();
    }
}

fn level(bid: (i64, u32), ask: (i64, u32)) -> BidAskPair {
    BidAskPair {
        bid_px: bid.0,
        bid_sz: bid.1,
        ask_px: ask.0,
        ask_sz: ask.1,
        ..Default::default()
    }
}

fn mbp10(
    action: u8,
    s: u8,
    price: i64,
    size: u32,
    levels: &[BidAskPair],
) -> RecordBuf<MAX_RECORD_LEN> {
    let mut m = Mbp10Msg::default();
    m.hd.instrument_id = 7;
    m.hd.ts_event = 1_000;
    m.ts_recv = 2_000;
    (m.action, m.side, m.price, m.size, m.sequence) = (action as i8, s as i8, price, size, 42);
    m.flags = dbn::FlagSet::new(dbn::flags::LAST);
    let empty = level((UNDEF_PRICE, 0), (UNDEF_PRICE, 0));
    for (i, l) in m.levels.iter_mut().enumerate() {
        *l = levels.get(i).cloned().unwrap_or(empty.clone());
    }
    RecordBuf::from(m)
}

#[test]
fn mbp_book_events() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("mbp10.dbn");
    // Bids 100 down to 91 (all ten shown), asks 101 and 102 (the whole side).
    let full: Vec<BidAskPair> = (0..10)
        .map(|i| {
            level(
                (100 - i, 10 + i as u32),
                if i < 2 {
                    (101 + i, 5)
                } else {
                    (UNDEF_PRICE, 0)
                },
            )
        })
        .collect();
    let records = [
        mbp10(b'A', b'B', 95, 3, &full),        // shown: level size 15
        mbp10(b'C', b'A', 103, 1, &full),       // ask side fully shown, 103 absent: removed
        mbp10(b'C', b'B', 95, 1, &[]),          // no bids at all: removed
        mbp10(b'C', b'B', 90, 1, &full),        // worse than the tenth bid: unknown
        mbp10(b'F', b'B', 100, 1, &full),       // a fill: its trade is the print
        mbp10(b'T', b'A', 100, 2, &full),       // a trade: sell aggressor
        mbp10(b'R', b'N', UNDEF_PRICE, 0, &[]), // clear: empty snapshot
    ];
    write_dbn(&path, Schema::Mbp10, &records);
    let (s, sink) = run(&path);
    let s = s.unwrap();
    assert_eq!(sink.instruments[0].raw_symbol, "7");
    let bodies: Vec<Body> = sink
        .events
        .iter()
        .map(|b| Record::decode(b).unwrap().body)
        .collect();
    let level_qty = |b: &Body| match b {
        Body::LevelUpdate(u) => (u.side, u.price, u.quantity, u.flags),
        other => panic!("{other:?}"),
    };
    assert_eq!(level_qty(&bodies[0]), (Side::Bid, 95, 15, 1));
    assert_eq!(level_qty(&bodies[1]), (Side::Ask, 103, 0, 1));
    assert_eq!(level_qty(&bodies[2]), (Side::Bid, 95, 0, 1));
    assert_trade(bodies[3], b'A' as i8, 100, 2, 42);
    let Body::BookSnapshot(snap) = bodies[4] else {
        panic!("{:?}", bodies[4])
    };
    assert_eq!((snap.bid_count, snap.ask_count, snap.update_id), (0, 0, 42));
    assert_eq!(bodies.len(), 5);
    assert_eq!(
        s.skipped.get("book event beyond the record's depth"),
        Some(&1)
    );
    assert_eq!(
        s.skipped.get("fill (its trade record is the print)"),
        Some(&1)
    );
    assert_eq!(s.records, 7);
}

#[test]
fn open_interest_statistics() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("stats.dbn");
    let stat = |stat_type: StatType, update_action: u8, quantity: i64| {
        let mut m = StatMsg::default();
        m.hd.instrument_id = 9;
        (m.stat_type, m.update_action, m.quantity) = (stat_type as u16, update_action, quantity);
        (m.hd.ts_event, m.ts_recv) = (5, 6);
        RecordBuf::from(m)
    };
    let records = [
        stat(StatType::OpenInterest, 1, 12_345),
        stat(StatType::OpenInterest, 2, 12_345),
        stat(StatType::SettlementPrice, 1, 0),
    ];
    write_dbn(&path, Schema::Statistics, &records);
    let (s, sink) = run(&path);
    let s = s.unwrap();
    assert_eq!(sink.events.len(), 1);
    let r = Record::decode(&sink.events[0]).unwrap();
    let Body::OpenInterest(oi) = r.body else {
        panic!("{:?}", r.body)
    };
    assert_eq!((oi.open_interest, oi.mark_price), (12_345, UNDEF));
    assert_eq!((r.meta.exchange_ts_ns, r.meta.receive_ts_ns), (5, 6));
    assert_eq!(s.skipped.values().sum::<u64>(), 2);
}

/// A definition whose raw symbol chronicle cannot carry fails as `Encode`, naming the record.
#[test]
fn overlong_definition_symbol() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("def.dbn");
    let mut d = InstrumentDefMsg::default();
    d.hd.instrument_id = 3;
    for (c, b) in d.raw_symbol.iter_mut().zip([b'X'; 40]) {
        *c = b as i8;
    }
    write_dbn(&path, Schema::Definition, &[RecordBuf::from(d)]);
    match run(&path).0 {
        Err(ImportError::Encode(msg)) => assert!(msg.contains("record 0"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn dbn_version_4_is_unsupported() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("v4.dbn");
    std::fs::write(&path, b"DBN\x04\x00\x00\x00\x00").unwrap();
    match run(&path).0 {
        Err(ImportError::Unsupported { msg, .. }) => assert!(msg.contains("version 4"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_file_is_io() {
    let mut sink = Collect::default();
    let r = import(Path::new("/nonexistent/x.dbn.zst"), &mut sink);
    assert!(matches!(r, Err(ImportError::Io { .. })), "{r:?}");
}
