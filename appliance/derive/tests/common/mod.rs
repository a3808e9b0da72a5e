//! Helpers shared by the Deriver's tests: scratch space, synthetic partitions holding every
//! record kind, and `cat`'s reading of a partition.
#![allow(dead_code)] // each test file uses its own subset

use chronicle_protocol::*;
use chronicle_reader::render::{self, Scale};
use chronicle_reader::{Partition, TimeRange};
use chronicle_storage::meta::{Completeness, PartitionMeta, Source};
use chronicle_storage::partition::PartitionWriter;
use chronicle_storage::segment::SegmentHeader;
use serde_json::Value;
use std::ops::ControlFlow;
use std::path::Path;

/// A scratch directory on the real disk (not tmpfs), removed on drop.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch dir")
}

/// A type id no build knows: such records are kept as header-only rows.
pub const FUTURE_TYPE_ID: u16 = 0x7777;

/// splitmix64: reproducible values.
pub fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A header-only record of a type id newer than this build (its framing is valid).
fn future_record(meta: Meta) -> Vec<u8> {
    let mut b = vec![0u8; 40];
    b[0..2].copy_from_slice(&FUTURE_TYPE_ID.to_le_bytes());
    b[2..4].copy_from_slice(&40u16.to_le_bytes());
    b[4..8].copy_from_slice(&meta.token_id.to_le_bytes());
    b[8..16].copy_from_slice(&meta.global_tick_id.to_le_bytes());
    b[16..24].copy_from_slice(&meta.exchange_ts_ns.to_le_bytes());
    b[24..32].copy_from_slice(&meta.receive_ts_ns.to_le_bytes());
    b[32..40].copy_from_slice(&0xdead_beef_u64.to_le_bytes());
    b
}

/// The token of [`synthetic_partition`]'s records.
pub const TOKEN: u32 = 7;

/// Writes a partition of `n` records into `dir` at the given exponents, cycling through every
/// record kind (and a future type id) with reproducible values: negative and UNDEF prices,
/// sub-microsecond receive times, multi-chunk snapshots. Returns the records' encodings.
pub fn synthetic_partition(dir: &Path, price_exponent: i8, quantity_exponent: i8, n: u64) {
    let header = SegmentHeader {
        price_exponent,
        quantity_exponent,
        symbol_id: 42,
        token_id: TOKEN,
        date: 20240808,
        venue: FixedStr::new("venue", "synthetic").unwrap(),
        symbol_code: FixedStr::new("symbol_code", "synusd").unwrap(),
    };
    let meta = PartitionMeta {
        format: chronicle_storage::meta::FORMAT.into(),
        venue: "synthetic".into(),
        symbol_id: 42,
        symbol_version_id: 1,
        symbol_code: "synusd".into(),
        raw_symbol: "SYNUSD".into(),
        token_id: TOKEN,
        date: "2024-08-08".into(),
        price_exponent,
        quantity_exponent,
        source: Source {
            kind: "import".into(),
            format: "synthetic".into(),
            file: None,
        },
        ingest_time: String::new(),
        event_time_range: None,
        records: 0,
        segment_bytes: 0,
        counts: Default::default(),
        completeness: Completeness::default(),
        late_policy: "reject".into(),
    };
    let mut w = PartitionWriter::open(dir, header, meta).unwrap();
    let mut rng = 0x5eed_u64;
    let t0 = 1_723_075_200_000_000_000u64; // 2024-08-08T00:00:00Z
    let mut levels = Vec::new();
    for i in 0..n {
        let meta = Meta {
            token_id: TOKEN,
            global_tick_id: 1000 + 3 * i,
            exchange_ts_ns: t0 + i * 1_000_000 + next(&mut rng) % 1000,
            receive_ts_ns: t0 + i * 1_000_000 + 1_234_567 + next(&mut rng) % 1000,
        };
        let r = next(&mut rng);
        let price = 600_000 + (r % 2000) as i64;
        let qty = 1 + (r >> 20) as i64 % 5000;
        let side = if r & 1 == 0 { Side::Bid } else { Side::Ask };
        levels.clear();
        levels.extend((0..(r % 7 + 1)).map(|k| Level {
            price: price - k as i64,
            quantity: qty + k as i64,
        }));
        let body = match i % 11 {
            0 => Body::Definition(Definition {
                venue: FixedStr::new("venue", "synthetic").unwrap(),
                raw_symbol: FixedStr::new("raw_symbol", "SYNUSD").unwrap(),
                price_exponent,
                quantity_exponent,
                instrument_class: if i % 2 == 0 { b'F' } else { 0 },
                tick_size: 1,
                lot_size: 10,
                symbol_id: 42,
                expiration_ns: if i % 2 == 0 {
                    0
                } else {
                    t0 + 86_400_000_000_123
                },
            }),
            1 | 2 => Body::LevelUpdate(LevelUpdate {
                side,
                flags: (r >> 8) as u8 & 1,
                price,
                quantity: if r.is_multiple_of(5) { 0 } else { qty },
                first_update_id: i,
                last_update_id: i + 2,
                prev_update_id: i.saturating_sub(1),
            }),
            3 => Body::Trade(Trade {
                aggressor: side,
                flags: 0,
                price,
                quantity: qty,
                trade_id: 5_000_000 + i,
            }),
            4 => Body::Bbo(Bbo {
                bid_price: price,
                bid_quantity: qty,
                ask_price: if r.is_multiple_of(3) {
                    UNDEF
                } else {
                    price + 1
                },
                ask_quantity: if r.is_multiple_of(3) { UNDEF } else { qty + 1 },
                update_id: i,
            }),
            5 => Body::OpenInterest(OpenInterest {
                open_interest: qty * 1000,
                mark_price: price,
                index_price: if r.is_multiple_of(2) {
                    UNDEF
                } else {
                    price - 3
                },
                funding_rate_e9: (r % 20_000) as i64 - 10_000,
                next_funding_ts_ns: if r.is_multiple_of(2) {
                    0
                } else {
                    t0 + 28_800_000_000_000
                },
            }),
            6 | 7 => Body::BookSnapshot(BookSnapshot {
                update_id: i,
                chunk: (i % 11 - 6) as u16,
                flags: if i % 11 == 7 {
                    BookSnapshot::FLAG_LAST_CHUNK
                } else {
                    0
                } | if r.is_multiple_of(2) {
                    BookSnapshot::FLAG_INJECTED
                } else {
                    0
                },
                bid_count: (levels.len() / 2) as u16,
                ask_count: (levels.len() - levels.len() / 2) as u16,
                levels: Levels::Slice(&levels),
            }),
            8 => Body::Gap(Gap {
                reason: [
                    GapReason::SequenceBreak,
                    GapReason::RingOverrun,
                    GapReason::FeedLoss,
                    GapReason::KernelDrop,
                ][(r % 4) as usize],
                expected: i,
                received: i + r % 9,
                lost: r % 4,
            }),
            9 => Body::Order(Order {
                action: [OrderAction::Add, OrderAction::Cancel, OrderAction::Fill]
                    [(r % 3) as usize],
                side,
                flags: (r >> 3) as u8,
                // Calendar spreads trade at negative prices.
                price: -price / 100,
                quantity: qty,
                order_id: r >> 1,
                sequence: i,
            }),
            _ if i % 2 == 0 => Body::Heartbeat(Heartbeat { sequence: i }),
            _ => {
                w.append(&future_record(meta)).unwrap();
                continue;
            }
        };
        w.append(&Record { meta, body }.to_vec().unwrap()).unwrap();
    }
    w.close().unwrap();
}

/// The partition as `chronicle cat` prints it: the reader's scan and `render::jsonl`, parsed.
pub fn cat(partition: &Path) -> Vec<Value> {
    let part = Partition::open(partition).unwrap();
    let h = part.body.header();
    let scale = Scale {
        price_exponent: h.price_exponent,
        quantity_exponent: h.quantity_exponent,
    };
    let mut rows = Vec::new();
    part.scan(TimeRange::ALL, |f| {
        rows.push(serde_json::from_str(&render::jsonl(&f.record, scale)).unwrap());
        ControlFlow::Continue(())
    })
    .unwrap();
    rows
}
