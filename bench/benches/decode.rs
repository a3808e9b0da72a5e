//! Decode throughput of a real `.q` segment, with the `dbn` crate on the same events as the
//! reference.
//!
//! Setup (not timed): the Binance USD-M BTCUSDT capture in `shared/data/` is imported through
//! the library (`chronicle_import::binance` into a `PartitionSink`) into a temp dir, and the
//! largest partition's `book.q` (2024-08-08) is read into memory. From its records:
//!
//! - `.q` segment: the whole file as written (every record kind);
//! - `.q` same events: a segment holding only the trade, bbo and level-update frames (the
//!   same bytes, copied), so that it decodes exactly the events the DBN stream holds;
//! - DBN: those events encoded with the `dbn` crate into an uncompressed in-memory DBN
//!   stream (metadata + records, DBN version 3), one record per event:
//!
//!   | chronicle      | DBN record (schema)      | why |
//!   |----------------|--------------------------|-----|
//!   | `Trade`        | `TradeMsg` (trades)      | DBN's record for a trade print: price, size, aggressor side. 48 bytes. |
//!   | `Bbo`          | `BboMsg` (bbo-1s rtype)  | The DBN record whose payload is exactly a top of book (`levels[0]`: bid/ask price and size) plus a sequence, with no book event to invent. DBN defines it for *sampled* BBOs; here every bookTicker update becomes one. `Mbp1Msg` would be the event-driven alternative, also 80 bytes, so the size comparison does not depend on this choice. |
//!   | `LevelUpdate`  | `Mbp1Msg` (mbp-1)        | A level update is an L2, market-by-price event (side, price, new aggregate size), which is DBN's MBP family; MBO is L3 (per order, with an order id chronicle does not have). MBP-1 is the smallest MBP record (80 bytes: the event plus the BBO after it, filled here with the latest bookTicker). Action `A`/`M`/`C` from a set of live levels, `depth` 0 (unknown). `MboMsg` (56 bytes) would be the smallest record able to carry it; the summary also prints what that would give. |
//!
//!   Values: prices rescaled to DBN's fixed 1e-9; sizes are the chronicle quantity mantissas
//!   (DBN sizes are u32 with no exponent; they fit); the 64-bit venue update ids / trade ids
//!   are truncated to DBN's u32 `sequence` and `prev_update_id`/`first_update_id` dropped:
//!   DBN carries less per event.
//!
//! Timed work per iteration: `.q`: `FrameIter` (frame length and CRC32C check, record header
//! validation) then the record's decode (`RecordView::decode`, what `Record::decode` does
//! after the header check the frame walk already did) of every record; DBN:
//! `DbnDecoder::new` (metadata) then `decode_record_ref` + `RecordRef::get` of every record.
//! Both sum the price field of every trade, bbo (bid) and level update, and the sums are
//! checked to agree (after rescaling) before timing. Both read from memory (`&[u8]`); the DBN
//! decoder copies records into its own buffer, the `.q` decoder borrows them.
//!
//! A summary table is printed to stderr at the end: sizes, bytes/event, criterion's wall-clock
//! medians, and a thread-CPU-time median per pass (a cross-check that other processes on a
//! busy 2-core machine cannot inflate by preempting the bench).
//! Without `shared/data/` the bench skips (`chronicle_testkit::skip`) and exits 0.

use chronicle_bench::thread_cpu_ns;
use chronicle_import::{binance, PartitionSink};
use chronicle_protocol::{Body, Side, UNDEF};
use chronicle_storage::meta::Source;
use chronicle_storage::segment::{
    encode_frame, FrameIter, ScanEnd, SegmentHeader, FRAME_HEADER_LEN, HEADER_LEN,
};
use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use dbn::decode::{DbnDecoder, DecodeRecordRef};
use dbn::encode::{DbnEncoder, EncodeRecord};
use dbn::{
    rtype, BboMsg, BidAskPair, FlagSet, MboMsg, Mbp1Msg, Metadata, RecordHeader, SType, Schema,
    TradeMsg, UNDEF_PRICE,
};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const CAPTURE: &str = "binance-usdm-btcusdt-20240808.gz";
const VENUE: &str = "binance-usdm";
const PUBLISHER_ID: u16 = 1;
const INSTRUMENT_ID: u32 = 1;

struct Data {
    segment_path: String,
    /// The whole `book.q`, as imported.
    q_segment: Vec<u8>,
    q_records: u64,
    /// Records and frame bytes by kind.
    counts: BTreeMap<&'static str, (u64, u64)>,
    /// Header + the frames of trades, bbos and level updates only.
    q_same: Vec<u8>,
    /// Events in `q_same` and in the DBN stream.
    events: u64,
    dbn: Vec<u8>,
    dbn_metadata_len: usize,
    /// Sum of prices (chronicle mantissas) over the comparable events.
    q_sum: i64,
    dbn_sum: i64,
    import_time: Duration,
}

/// `.q`: walk and CRC-check every frame, decode every record, sum prices.
fn decode_q(buf: &[u8]) -> (u64, i64) {
    let mut frames = FrameIter::new(buf, HEADER_LEN);
    let (mut n, mut sum) = (0u64, 0i64);
    for f in frames.by_ref() {
        let rec = f.record.decode().expect("valid record");
        n += 1;
        match rec.body {
            Body::Trade(t) => sum = sum.wrapping_add(t.price),
            Body::Bbo(b) if b.bid_price != UNDEF => sum = sum.wrapping_add(b.bid_price),
            Body::LevelUpdate(l) => sum = sum.wrapping_add(l.price),
            _ => {}
        }
    }
    assert!(
        matches!(frames.end(), Ok(ScanEnd::Clean { .. })),
        "segment not clean"
    );
    (n, sum)
}

/// `.q` frames walked and CRC-checked only (no record parsed): the checksum's share.
fn walk_crc(buf: &[u8]) -> (u64, i64) {
    let (mut at, mut n, mut bad) = (HEADER_LEN, 0u64, 0i64);
    while at + 8 <= buf.len() {
        let len = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        let stored = u32::from_le_bytes(buf[at + 4..at + 8].try_into().unwrap());
        let crc =
            crc32c::crc32c_append(crc32c::crc32c(&buf[at..at + 4]), &buf[at + 8..at + 8 + len]);
        bad += (crc != stored) as i64;
        n += 1;
        at += 8 + len;
    }
    assert_eq!(bad, 0, "every frame's checksum holds");
    (n, bad)
}

/// CRC32C over the whole buffer in one call: the hardware's rate on these bytes.
fn crc_all(buf: &[u8]) -> (u64, i64) {
    (1, crc32c::crc32c(buf) as i64)
}

/// DBN: decode metadata then every record with the dbn crate, sum the same prices.
fn decode_dbn(stream: &[u8]) -> (u64, i64) {
    let mut dec = DbnDecoder::new(stream).expect("DBN metadata");
    let (mut n, mut sum) = (0u64, 0i64);
    while let Some(rec) = dec.decode_record_ref().expect("valid DBN record") {
        n += 1;
        match rec.header().rtype {
            rtype::MBP_0 => sum = sum.wrapping_add(rec.get::<TradeMsg>().expect("trade").price),
            rtype::MBP_1 => sum = sum.wrapping_add(rec.get::<Mbp1Msg>().expect("mbp-1").price),
            rtype::BBO_1S => {
                let px = rec.get::<BboMsg>().expect("bbo").levels[0].bid_px;
                if px != UNDEF_PRICE {
                    sum = sum.wrapping_add(px);
                }
            }
            _ => {}
        }
    }
    (n, sum)
}

fn find_segments(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            find_segments(&p, out);
        } else if p.file_name().is_some_and(|n| n == "book.q") {
            out.push(p);
        }
    }
}

fn side_char(s: Side) -> std::ffi::c_char {
    s.to_byte() as std::ffi::c_char
}

impl Data {
    fn prepare(capture: &Path) -> Self {
        let t0 = std::time::Instant::now();
        let tmp = tempfile::tempdir().expect("temp dir");
        let source = Source {
            kind: "import".into(),
            format: "binance-capture".into(),
            file: Some(capture.display().to_string()),
        };
        let mut sink = PartitionSink::new(tmp.path(), source).expect("sink");
        let summary = binance::import(capture, VENUE, &mut sink).expect("import the capture");
        sink.finish().expect("close partitions");
        let import_time = t0.elapsed();
        eprintln!(
            "setup: imported {} lines of {CAPTURE} in {:.1} s",
            summary.lines,
            import_time.as_secs_f64()
        );

        let mut segments = Vec::new();
        find_segments(tmp.path(), &mut segments);
        let path = segments
            .into_iter()
            .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .expect("the import wrote a segment");
        let segment_path = path
            .strip_prefix(tmp.path())
            .unwrap_or(&path)
            .display()
            .to_string();
        let q_segment = std::fs::read(&path).expect("read book.q");
        let header = SegmentHeader::decode(&q_segment).expect("segment header");
        let price_scale = 10i64.pow((9 + header.price_exponent as i32) as u32);
        let to_dbn_px = |p: i64| {
            if p == UNDEF {
                UNDEF_PRICE
            } else {
                p.checked_mul(price_scale).expect("price fits 1e-9 units")
            }
        };
        let to_dbn_sz = |q: i64| u32::try_from(q).expect("quantity mantissa fits a DBN u32 size");

        let mut q_same = q_segment[..HEADER_LEN].to_vec();
        let mut counts = BTreeMap::new();
        let mut trades = Vec::new();
        let mut bbos = Vec::new();
        let mut updates = Vec::new();
        // In file order: (kind, index into its vec).
        let mut order: Vec<(u8, usize)> = Vec::new();
        let mut live: HashSet<(u8, i64)> = HashSet::new();
        let mut last_bbo = BidAskPair::default();
        let mut q_records = 0u64;
        let mut first_ts = None;
        for f in FrameIter::new(&q_segment, HEADER_LEN) {
            let rec = f.record.decode().expect("valid record");
            q_records += 1;
            let c = counts.entry(rec.body.kind()).or_insert((0u64, 0u64));
            c.0 += 1;
            c.1 += (FRAME_HEADER_LEN + f.record.bytes.len()) as u64;
            let m = rec.meta;
            first_ts.get_or_insert(m.exchange_ts_ns);
            match rec.body {
                Body::Trade(t) => {
                    trades.push(TradeMsg {
                        hd: RecordHeader::new::<TradeMsg>(
                            rtype::MBP_0,
                            PUBLISHER_ID,
                            INSTRUMENT_ID,
                            m.exchange_ts_ns,
                        ),
                        price: to_dbn_px(t.price),
                        size: to_dbn_sz(t.quantity),
                        action: b'T' as _,
                        side: side_char(t.aggressor),
                        flags: FlagSet::new(dbn::flags::LAST),
                        depth: 0,
                        ts_recv: m.receive_ts_ns,
                        ts_in_delta: 0,
                        sequence: t.trade_id as u32,
                    });
                    order.push((0, trades.len() - 1));
                }
                Body::Bbo(b) => {
                    last_bbo = BidAskPair {
                        bid_px: to_dbn_px(b.bid_price),
                        ask_px: to_dbn_px(b.ask_price),
                        bid_sz: if b.bid_quantity == UNDEF {
                            0
                        } else {
                            to_dbn_sz(b.bid_quantity)
                        },
                        ask_sz: if b.ask_quantity == UNDEF {
                            0
                        } else {
                            to_dbn_sz(b.ask_quantity)
                        },
                        bid_ct: 0,
                        ask_ct: 0,
                    };
                    let mut msg = BboMsg::default_for_schema(Schema::Bbo1S);
                    msg.hd = RecordHeader::new::<BboMsg>(
                        rtype::BBO_1S,
                        PUBLISHER_ID,
                        INSTRUMENT_ID,
                        m.exchange_ts_ns,
                    );
                    msg.flags = FlagSet::new(dbn::flags::LAST);
                    msg.ts_recv = m.receive_ts_ns;
                    msg.sequence = b.update_id as u32;
                    msg.levels = [last_bbo.clone()];
                    bbos.push(msg);
                    order.push((1, bbos.len() - 1));
                }
                Body::LevelUpdate(l) => {
                    let key = (l.side.to_byte(), l.price);
                    let action = if l.quantity == 0 {
                        live.remove(&key);
                        b'C'
                    } else if live.insert(key) {
                        b'A'
                    } else {
                        b'M'
                    };
                    let last = l.flags & chronicle_protocol::LevelUpdate::FLAG_LAST_IN_MESSAGE != 0;
                    updates.push(Mbp1Msg {
                        hd: RecordHeader::new::<Mbp1Msg>(
                            rtype::MBP_1,
                            PUBLISHER_ID,
                            INSTRUMENT_ID,
                            m.exchange_ts_ns,
                        ),
                        price: to_dbn_px(l.price),
                        size: to_dbn_sz(l.quantity),
                        action: action as _,
                        side: side_char(l.side),
                        flags: FlagSet::new(if last { dbn::flags::LAST } else { 0 }),
                        depth: 0,
                        ts_recv: m.receive_ts_ns,
                        ts_in_delta: 0,
                        sequence: l.last_update_id as u32,
                        levels: [last_bbo.clone()],
                    });
                    order.push((2, updates.len() - 1));
                }
                Body::BookSnapshot(s) => {
                    // Seeds the live levels (so A/M/C are right); not itself in the DBN stream.
                    live.clear();
                    for (i, lv) in s.levels.iter().enumerate() {
                        let side = if i < s.bid_count as usize {
                            Side::Bid
                        } else {
                            Side::Ask
                        };
                        live.insert((side.to_byte(), lv.price));
                    }
                    continue;
                }
                _ => continue,
            }
            encode_frame(f.record.bytes, &mut q_same);
        }
        let events = order.len() as u64;

        let metadata = Metadata::builder()
            .dataset("BINANCE.USDM")
            .schema(None)
            .start(first_ts.unwrap_or(0))
            .stype_in(Some(SType::RawSymbol))
            .stype_out(SType::InstrumentId)
            .symbols(vec!["BTCUSDT".into()])
            .build();
        let mut dbn = Vec::with_capacity(events as usize * 80 + 1024);
        let dbn_metadata_len;
        {
            let mut enc = DbnEncoder::new(&mut dbn, &metadata).expect("DBN encoder");
            dbn_metadata_len = enc.get_ref().len();
            for &(kind, i) in &order {
                match kind {
                    0 => enc.encode_record(&trades[i]),
                    1 => enc.encode_record(&bbos[i]),
                    _ => enc.encode_record(&updates[i]),
                }
                .expect("encode DBN record");
            }
        }

        let (n_same, q_sum) = decode_q(&q_same);
        let (n_all, q_all_sum) = decode_q(&q_segment);
        let (n_dbn, dbn_sum) = decode_dbn(&dbn);
        assert_eq!(n_all, q_records);
        assert_eq!(n_same, events);
        assert_eq!(n_dbn, events, "DBN stream holds every comparable event");
        assert_eq!(q_all_sum, q_sum, "the extra records carry no summed price");
        assert_eq!(
            dbn_sum,
            q_sum.wrapping_mul(price_scale),
            "DBN and .q decode the same prices"
        );
        Self {
            segment_path,
            q_segment,
            q_records,
            counts,
            q_same,
            events,
            dbn,
            dbn_metadata_len,
            q_sum,
            dbn_sum,
            import_time,
        }
    }
}

/// A benchmark case: name, input, events in it, decoder (returns records and price sum).
type Case<'a> = (&'static str, &'a [u8], u64, DecodeFn);
/// Decodes a whole buffer, returning the records and the price sum.
type DecodeFn = fn(&[u8]) -> (u64, i64);

fn benches(c: &mut Criterion, d: &Data) {
    let cases: [Case<'_>; 3] = [
        ("q_segment", &d.q_segment, d.q_records, decode_q),
        ("q_same_events", &d.q_same, d.events, decode_q),
        ("dbn", &d.dbn, d.events, decode_dbn),
    ];
    let mut g = c.benchmark_group("decode_records");
    for (name, buf, n, f) in cases {
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::from_parameter(name), buf, |b, buf| {
            b.iter(|| f(black_box(buf)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("decode_bytes");
    for (name, buf, _, f) in cases {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), buf, |b, buf| {
            b.iter(|| f(black_box(buf)))
        });
    }
    g.finish();
}

const CPU_PASSES: usize = 15;

/// Median thread CPU time (ns) of one decode pass: a cross-check of criterion's wall-clock
/// figures that other processes on a busy machine cannot inflate by preempting the bench.
fn cpu_median_ns(f: DecodeFn, buf: &[u8]) -> f64 {
    black_box(f(black_box(buf)));
    let mut t: Vec<f64> = (0..CPU_PASSES)
        .map(|_| {
            let t0 = thread_cpu_ns();
            black_box(f(black_box(buf)));
            thread_cpu_ns() - t0
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[CPU_PASSES / 2]
}

/// The median time per iteration (ns) criterion recorded in this run, if it ran that bench.
fn median_ns(group: &str, bench: &str, since: SystemTime) -> Option<f64> {
    let root = match std::env::var_os("CRITERION_HOME") {
        Some(h) => PathBuf::from(h),
        None => Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()?
            .join("criterion"),
    };
    let path = root.join(group).join(bench).join("new/estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn summary(d: &Data, since: SystemTime) {
    let q_same_frames = (d.q_same.len() - HEADER_LEN) as f64;
    let dbn_records = (d.dbn.len() - d.dbn_metadata_len) as f64;
    let ev = d.events as f64;
    let kinds: Vec<String> = d
        .counts
        .iter()
        .map(|(k, (n, b))| format!("{k} {n} x {:.0} B", *b as f64 / *n as f64))
        .collect();
    let count = |k: &str| d.counts.get(k).map_or(0, |c| c.0);
    let (lu, tr, bb) = (count("level_update"), count("trade"), count("bbo"));
    let mbo_alt = (dbn_records
        - lu as f64 * (std::mem::size_of::<Mbp1Msg>() - std::mem::size_of::<MboMsg>()) as f64)
        / ev;
    let e = |s: &str| eprintln!("{s}");
    e("");
    e("==================== chronicle-bench decode: summary ====================");
    e(&format!(
        "segment: {} ({} bytes)",
        d.segment_path,
        d.q_segment.len()
    ));
    e(&format!(
        "records: {} (frames: {})",
        d.q_records,
        kinds.join(", ")
    ));
    e(&format!(
        "comparable events (trade + bbo + level_update, in the DBN stream): {} = {tr} + {bb} + {lu}",
        d.events
    ));
    e(&format!(
        "price sums agree: .q {} (mantissas) / DBN {} (1e-9 units, wrapping i64)",
        d.q_sum, d.dbn_sum
    ));
    e("");
    e(&format!(
        "{:<15} {:>7} {:>9} {:>7} | {:>9} {:>8} {:>5} | {:>9} {:>8} {:>5}",
        "stream",
        "events",
        "bytes",
        "B/event",
        "wall med",
        "ev/s",
        "GB/s",
        "CPU med",
        "ev/s",
        "GB/s"
    ));
    let rows: [(&str, &str, u64, &[u8], DecodeFn); 3] = [
        (
            ".q segment",
            "q_segment",
            d.q_records,
            &d.q_segment,
            decode_q,
        ),
        (
            ".q same events",
            "q_same_events",
            d.events,
            &d.q_same,
            decode_q,
        ),
        ("DBN", "dbn", d.events, &d.dbn, decode_dbn),
    ];
    for (label, bench, n, buf, f) in rows {
        let bytes = buf.len();
        let per_event = bytes as f64 / n as f64;
        let rate = |ns: f64, per: f64| format!("{:.1}M", per / ns * 1e3);
        let (med, eps) = match median_ns("decode_records", bench, since) {
            Some(ns) => (format!("{:.1} ms", ns / 1e6), rate(ns, n as f64)),
            None => ("n/a".into(), "n/a".into()),
        };
        let gbs = median_ns("decode_bytes", bench, since)
            .map_or("n/a".into(), |ns| format!("{:.2}", bytes as f64 / ns));
        let cpu = cpu_median_ns(f, buf);
        e(&format!(
            "{label:<15} {n:>7} {bytes:>9} {per_event:>7.2} | {med:>9} {eps:>8} {gbs:>5} | {:>9} {:>8} {:>5.2}",
            format!("{:.1} ms", cpu / 1e6),
            rate(cpu, n as f64),
            bytes as f64 / cpu,
        ));
    }
    let decode = cpu_median_ns(decode_q, &d.q_same);
    let walk = cpu_median_ns(walk_crc, &d.q_same);
    let crc = cpu_median_ns(crc_all, &d.q_same);
    e(&format!(
        "where .q same events' decode goes (CPU medians): {:.1} ms in all; frame walk + CRC32C \
         check {:.1} ms ({:.0} %); CRC32C of the same bytes in one call {:.1} ms ({:.2} GB/s, the \
         hardware's rate); record parse + decode the other {:.1} ms",
        decode / 1e6,
        walk / 1e6,
        100.0 * walk / decode,
        crc / 1e6,
        d.q_same.len() as f64 / crc,
        (decode - walk) / 1e6
    ));
    e("");
    e(&format!(
        "bytes/event, records only: .q {:.2} (frames, incl. the 8-byte frame header) vs DBN {:.2} \
         (TradeMsg {}, BboMsg {}, Mbp1Msg {}; DBN metadata {} bytes not counted)",
        q_same_frames / ev,
        dbn_records / ev,
        std::mem::size_of::<TradeMsg>(),
        std::mem::size_of::<BboMsg>(),
        std::mem::size_of::<Mbp1Msg>(),
        d.dbn_metadata_len
    ));
    e(&format!(
        "with MboMsg ({} B) instead of Mbp1Msg for level updates DBN would be {:.2} B/event",
        std::mem::size_of::<MboMsg>(),
        mbo_alt
    ));
    e(&format!(
        "wall med = criterion's median wall time per pass over the whole buffer (ev/s from the \
         Elements group, GB/s from the Bytes group); CPU med = median thread CPU time of {CPU_PASSES} \
         passes, insensitive to other processes taking the core; GB = 1e9 bytes; import setup \
         took {:.1} s",
        d.import_time.as_secs_f64()
    ));
    e("=========================================================================");
}

fn main() {
    let Some(capture) = chronicle_testkit::shared_data(CAPTURE) else {
        return;
    };
    let since = SystemTime::now();
    let data = Data::prepare(&capture);
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    benches(&mut c, &data);
    c.final_summary();
    summary(&data, since);
}
