//! Generated `.q` data for tests that must not depend on `../shared/data`: records of several
//! kinds and lengths (frames are not all alike), written by chronicle-storage's own writers
//! into segments and whole partitions (`book.q`, `index/time.idx`, `meta.json`).

use chronicle_protocol::*;
use chronicle_storage::meta::{Completeness, PartitionMeta, Source};
use chronicle_storage::partition::PartitionWriter;
use chronicle_storage::segment::{SegmentHeader, SegmentWriter};
use std::path::{Path, PathBuf};

pub const TOKEN: u32 = 7;
/// 2024-08-08T00:00:00Z, the day every generated partition belongs to.
pub const DAY_START_NS: u64 = 1_723_075_200_000_000_000;

pub fn header() -> SegmentHeader {
    SegmentHeader {
        price_exponent: -1,
        quantity_exponent: -3,
        symbol_id: 7,
        token_id: TOKEN,
        date: 20240808,
        venue: FixedStr::new("venue", "binance-usdm").unwrap(),
        symbol_code: FixedStr::new("symbol_code", "btcusdt").unwrap(),
    }
}

/// The `meta.json` identity matching [`header`]; its counters are the writer's to fill.
pub fn meta() -> PartitionMeta {
    PartitionMeta {
        format: chronicle_storage::meta::FORMAT.into(),
        venue: "binance-usdm".into(),
        symbol_id: 7,
        symbol_version_id: 1,
        symbol_code: "btcusdt".into(),
        raw_symbol: "BTCUSDT".into(),
        token_id: TOKEN,
        date: "2024-08-08".into(),
        price_exponent: -1,
        quantity_exponent: -3,
        source: Source {
            kind: "import".into(),
            format: "test".into(),
            file: None,
        },
        ingest_time: String::new(),
        event_time_range: None,
        records: 0,
        segment_bytes: 0,
        counts: Default::default(),
        completeness: Completeness::default(),
        late_policy: "reject".into(),
    }
}

/// Record `i` (tick `i + 1`) at exchange time `exchange_ts_ns`: a trade, a quote, a level
/// update or a two-level snapshot chunk, by `i % 4`.
pub fn record(i: u64, exchange_ts_ns: u64) -> Vec<u8> {
    let meta = Meta {
        token_id: TOKEN,
        global_tick_id: i + 1,
        exchange_ts_ns,
        receive_ts_ns: exchange_ts_ns + 1_000,
    };
    let levels = [
        Level {
            price: 618_003,
            quantity: 5,
        },
        Level {
            price: 618_004,
            quantity: 9,
        },
    ];
    let body = match i % 4 {
        0 => Body::Trade(Trade {
            aggressor: Side::Bid,
            flags: 0,
            price: 618_000 + i as i64,
            quantity: 6,
            trade_id: i,
        }),
        1 => Body::Bbo(Bbo {
            bid_price: 1,
            bid_quantity: 2,
            ask_price: 3,
            ask_quantity: 4,
            update_id: i,
        }),
        2 => Body::LevelUpdate(LevelUpdate {
            side: Side::Ask,
            flags: 1,
            price: 5,
            quantity: 0,
            first_update_id: i,
            last_update_id: i,
            prev_update_id: i - 1,
        }),
        _ => Body::BookSnapshot(BookSnapshot {
            update_id: i,
            chunk: 0,
            flags: 1,
            bid_count: 1,
            ask_count: 1,
            levels: Levels::Slice(&levels),
        }),
    };
    Record { meta, body }.to_vec().unwrap()
}

/// A `book.q` of `n` records (record `i` at exchange time `1_000 + i`) in `dir`, synced;
/// returns its path, its bytes and each frame's offset.
pub fn segment(dir: &Path, n: u64) -> (PathBuf, Vec<u8>, Vec<u64>) {
    let path = dir.join("book.q");
    let mut w = SegmentWriter::create(&path, header()).unwrap();
    let offsets = (0..n)
        .map(|i| w.append(&record(i, 1_000 + i)).unwrap())
        .collect();
    w.sync().unwrap();
    (path.clone(), std::fs::read(&path).unwrap(), offsets)
}

/// A closed partition in `dir` (created) holding one [`record`] per exchange time of `times`,
/// in that order; returns `dir`.
pub fn partition(dir: &Path, times: impl IntoIterator<Item = u64>) -> PathBuf {
    let mut w = PartitionWriter::open(dir, header(), meta()).unwrap();
    for (i, ts) in times.into_iter().enumerate() {
        w.append(&record(i as u64, ts)).unwrap();
    }
    w.close().unwrap();
    dir.to_owned()
}
