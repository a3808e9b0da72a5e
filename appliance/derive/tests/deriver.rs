//! The Deriver's contract without DuckDB: nothing under the final name until `finish`, no
//! temp file left behind, errors that name the record (and, through `derive_partition`, the
//! segment and offset), corruption refused.

mod common;
use chronicle_derive::{derive_partition, DeriveError, Deriver, Scale, DERIVED_FILE};
use chronicle_protocol::{Body, Meta, Record, RecordView, Side, Trade};
use common::*;
use std::path::Path;

const SCALE: Scale = Scale {
    price_exponent: -1,
    quantity_exponent: -3,
};

fn trade(tick: u64, quantity: i64) -> Vec<u8> {
    Record {
        meta: Meta {
            token_id: TOKEN,
            global_tick_id: tick,
            exchange_ts_ns: 1_723_161_600_000_000_000 + tick,
            receive_ts_ns: 1_723_161_600_000_000_500 + tick,
        },
        body: Body::Trade(Trade {
            aggressor: Side::Bid,
            flags: 0,
            price: 569_826,
            quantity,
            trade_id: tick,
        }),
    }
    .to_vec()
    .unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn nothing_appears_until_finish_and_a_dropped_deriver_leaves_nothing() {
    let dir = scratch();
    let out = dir.path().join("derived/book.parquet");
    let mut d = Deriver::create(&out, SCALE).unwrap();
    for tick in 1..=1000 {
        d.push(&RecordView::parse(&trade(tick, 6)).unwrap())
            .unwrap();
    }
    assert!(!out.exists(), "no file under the final name before finish");
    assert_eq!(entries(&dir.path().join("derived")), [".book.parquet.tmp"]);
    drop(d); // an error path, or a move abandoned half-way
    assert!(
        entries(&dir.path().join("derived")).is_empty(),
        "the temp file is removed"
    );

    // A crash leaves the temp file; the next attempt overwrites it and renames it away.
    std::fs::write(
        dir.path().join("derived/.book.parquet.tmp"),
        b"left by a crash",
    )
    .unwrap();
    let mut d = Deriver::create(&out, SCALE).unwrap();
    d.push(&RecordView::parse(&trade(1, 6)).unwrap()).unwrap();
    let s = d.finish().unwrap();
    assert_eq!((s.rows, s.row_groups), (1, 1));
    assert_eq!(entries(&dir.path().join("derived")), ["book.parquet"]);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(s.bytes, bytes.len() as u64);
    assert_eq!(
        s.crc32c,
        crc32c::crc32c(&bytes),
        "the checksum covers the whole file"
    );
    assert!(
        bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"),
        "a whole Parquet file"
    );
}

#[test]
fn a_value_the_column_cannot_hold_is_an_error_naming_the_record() {
    let dir = scratch();
    let out = dir.path().join("book.parquet");
    let mut d = Deriver::create(&out, SCALE).unwrap();
    d.push(&RecordView::parse(&trade(1, 6)).unwrap()).unwrap();
    // 10^18 thousandths: a 19-digit mantissa, more than DECIMAL(18, 3) holds.
    let e = d
        .push(&RecordView::parse(&trade(2, 1_000_000_000_000_000_000)).unwrap())
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            DeriveError::Record {
                global_tick_id: 2,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("trade.quantity") && msg.contains("18 digits"),
        "{msg}"
    );
    assert!(msg.contains("book.parquet"), "{msg}");
    // The failed record added nothing: the columns stay aligned and the file is whole.
    d.push(&RecordView::parse(&trade(3, 7)).unwrap()).unwrap();
    assert_eq!(d.finish().unwrap().rows, 2);
}

#[test]
fn derive_partition_names_the_segment_and_offset_and_writes_nothing_on_error() {
    let dir = scratch();
    let part = dir.path().join("part");
    synthetic_partition(&part, -2, -8, 50);
    // Append a record that decodes but does not fit: the error must place it.
    {
        let seg = chronicle_storage::segment::Segment::open(&part.join("book.q")).unwrap();
        let header = seg.header.clone();
        drop(seg);
        let meta = chronicle_storage::meta::PartitionMeta::read(&part.join("meta.json")).unwrap();
        let mut w =
            chronicle_storage::partition::PartitionWriter::open(&part, header, meta).unwrap();
        w.append(&trade(1_000_000, 1_000_000_000_000_000_000))
            .unwrap();
        w.close().unwrap();
    }
    let out = part.join(DERIVED_FILE);
    let e = derive_partition(&part, &out).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(&e, DeriveError::Frame { source, .. }
            if matches!(**source, DeriveError::Record { global_tick_id: 1_000_000, .. })),
        "{msg}"
    );
    assert!(msg.contains("book.q: frame at byte offset"), "{msg}");
    assert!(msg.contains("trade.quantity"), "{msg}");
    assert!(!out.exists());
    assert!(
        entries(&part.join("derived")).is_empty(),
        "no temp file left"
    );
}

#[test]
fn corruption_in_the_segment_is_an_error_not_a_shorter_file() {
    let dir = scratch();
    let part = dir.path().join("part");
    synthetic_partition(&part, -2, -8, 300);
    let q = part.join("book.q");
    let mut bytes = std::fs::read(&q).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40; // inside some frame: its CRC no longer matches
    std::fs::write(&q, &bytes).unwrap();
    let out = part.join(DERIVED_FILE);
    let e = derive_partition(&part, &out).unwrap_err();
    assert!(matches!(e, DeriveError::Read(_)), "{e}");
    assert!(e.to_string().contains("book.q"), "{e}");
    assert!(!out.exists());
}
