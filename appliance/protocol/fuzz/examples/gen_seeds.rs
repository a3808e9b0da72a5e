//! Writes seed inputs into `corpus/<target>/` (git-ignored): one valid encoded record of
//! every kind for `record_decode`, and a valid frame sequence, segment header and time
//! index for the three modes of `segment_scan`. Without them libFuzzer has to discover
//! every record length by itself and rarely reaches the long kinds (a definition is 120
//! bytes). Run from `appliance/protocol/fuzz`: `cargo run --example gen_seeds`.

use chronicle_protocol::{
    Bbo, Body, BookSnapshot, Declaration, Definition, FixedStr, Gap, GapReason, Heartbeat, Level,
    LevelUpdate, Levels, Meta, OpenInterest, Order, OrderAction, Record, Side, Trade, UNDEF,
};
use chronicle_storage::segment::{encode_frame, SegmentHeader};
use std::path::Path;

fn records() -> Vec<Vec<u8>> {
    let levels = [
        Level {
            price: 569_826,
            quantity: 1_234,
        },
        Level {
            price: 569_825,
            quantity: 7,
        },
        Level {
            price: 569_827,
            quantity: 3_000,
        },
    ];
    let definition = Definition {
        venue: FixedStr::new("venue", "binance-usdm").unwrap(),
        raw_symbol: FixedStr::new("raw_symbol", "BTCUSDT").unwrap(),
        price_exponent: -1,
        quantity_exponent: -3,
        instrument_class: b'F',
        tick_size: 1,
        lot_size: 1,
        symbol_id: 1,
        expiration_ns: 0,
    };
    let bodies = [
        Body::Definition(definition),
        Body::BookSnapshot(BookSnapshot {
            update_id: 5_000_000_001,
            chunk: 0,
            flags: BookSnapshot::FLAG_LAST_CHUNK,
            bid_count: 2,
            ask_count: 1,
            levels: Levels::Slice(&levels),
        }),
        Body::LevelUpdate(LevelUpdate {
            side: Side::Bid,
            flags: LevelUpdate::FLAG_LAST_IN_MESSAGE,
            price: 569_826,
            quantity: 0,
            first_update_id: 5_000_000_002,
            last_update_id: 5_000_000_009,
            prev_update_id: 5_000_000_001,
        }),
        Body::Trade(Trade {
            aggressor: Side::Ask,
            flags: 0,
            price: 569_826,
            quantity: 12,
            trade_id: 42,
        }),
        Body::Bbo(Bbo {
            bid_price: 569_826,
            bid_quantity: 1_234,
            ask_price: UNDEF,
            ask_quantity: UNDEF,
            update_id: 5_000_000_010,
        }),
        Body::OpenInterest(OpenInterest {
            open_interest: UNDEF,
            mark_price: 569_830,
            index_price: 569_800,
            funding_rate_e9: 100_000,
            next_funding_ts_ns: 1_723_104_000_000_000_000,
        }),
        Body::Gap(Gap {
            reason: GapReason::SequenceBreak,
            expected: 5_000_000_009,
            received: 5_000_000_020,
            lost: 0,
        }),
        Body::Heartbeat(Heartbeat { sequence: 7 }),
        Body::Order(Order {
            action: OrderAction::Add,
            side: Side::Bid,
            flags: 0,
            price: 569_826,
            quantity: 5,
            order_id: 99,
            sequence: 1,
        }),
        Body::Declaration(Declaration {
            definition,
            start_tick: 1,
            durable_tick: 0,
        }),
    ];
    bodies
        .iter()
        .enumerate()
        .map(|(i, &body)| {
            let meta = Meta {
                token_id: 1,
                global_tick_id: i as u64,
                exchange_ts_ns: 1_723_075_200_000_000_000 + i as u64 * 1_000_000,
                receive_ts_ns: 1_723_075_200_000_500_000 + i as u64 * 1_000_000,
            };
            Record { meta, body }.to_vec().unwrap()
        })
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let recs = records();

    let rd = corpus.join("record_decode");
    for (i, r) in recs.iter().enumerate() {
        write(&rd, &format!("seed-{i}"), r);
    }

    let ss = corpus.join("segment_scan");
    // Mode 0: frames (flags: fix CRCs, open as a file), then some zero padding.
    let mut frames = vec![0x14u8];
    for r in &recs {
        encode_frame(r, &mut frames);
    }
    write(&ss, "seed-frames", &frames);
    let mut padded = frames.clone();
    padded.extend_from_slice(&[0u8; 24]);
    write(&ss, "seed-frames-padded", &padded);
    // A torn tail: the last frame cut short.
    write(&ss, "seed-frames-torn", &frames[..frames.len() - 20]);

    // Mode 1: a valid segment header (flag 0x04 would fix it up anyway).
    let header = SegmentHeader {
        price_exponent: -1,
        quantity_exponent: -3,
        symbol_id: 1,
        token_id: 1,
        date: 20240808,
        venue: FixedStr::new("venue", "binance-usdm").unwrap(),
        symbol_code: FixedStr::new("symbol_code", "btcusdt").unwrap(),
    };
    let mut h = vec![0x01u8];
    h.extend_from_slice(&header.encode());
    write(&ss, "seed-header", &h);

    // Mode 2 with fix-ups (0x0e: fix CRCs and offsets): block_bytes, entry mask, 3 entries.
    let mut ix = vec![0x0eu8];
    ix.extend_from_slice(&65_536u32.to_le_bytes());
    ix.extend_from_slice(&u64::MAX.to_le_bytes());
    for (records, len) in [(700u32, 65_600u32), (650, 65_544), (10, 880)] {
        let mut e = [0u8; 40];
        e[8..12].copy_from_slice(&len.to_le_bytes());
        e[12..16].copy_from_slice(&records.to_le_bytes());
        e[16..24].copy_from_slice(&1_723_075_200_000_000_000u64.to_le_bytes());
        e[24..32].copy_from_slice(&1_723_075_201_000_000_000u64.to_le_bytes());
        ix.extend_from_slice(&e);
    }
    write(&ss, "seed-index", &ix);

    eprintln!("seeds written under {}", corpus.display());
}
