//! `verify` and `cat` on damaged partitions, built from generated events (no shared data
//! needed): exit codes, named offsets, and the valid prefix of a torn tail.

mod common;
use chronicle_import::{EventSink, Instrument, PartitionSink};
use chronicle_protocol::{Bbo, Body, Side, Trade, UNDEF};
use chronicle_storage::meta::Source;
use common::*;
use std::path::{Path, PathBuf};

/// A partition of `n` alternating trades and quotes on 2024-08-08; returns its directory.
fn partition(data: &Path, n: u64) -> PathBuf {
    let mut sink = PartitionSink::new(
        data,
        Source {
            kind: "import".into(),
            format: "test".into(),
            file: None,
        },
    )
    .unwrap();
    let h = sink
        .instrument(&Instrument {
            venue: "testvenue".into(),
            raw_symbol: "ABC".into(),
            price_exponent: -2,
            quantity_exponent: 0,
            instrument_class: 0,
            tick_size: UNDEF,
            lot_size: UNDEF,
            expiration_ns: 0,
        })
        .unwrap();
    let t0 = chronicle_storage::utc::parse_time("2024-08-08T12:00:00Z").unwrap();
    for i in 0..n {
        let body = if i % 2 == 0 {
            Body::Trade(Trade {
                aggressor: Side::Bid,
                flags: 0,
                price: 10_000 + i as i64,
                quantity: 3,
                trade_id: i,
            })
        } else {
            Body::Bbo(Bbo {
                bid_price: 9_999,
                bid_quantity: 1,
                ask_price: 10_001,
                ask_quantity: 2,
                update_id: i,
            })
        };
        sink.event(h, t0 + i * 1_000_000, t0 + i * 1_000_000 + 500, body)
            .unwrap();
    }
    sink.finish().unwrap();
    data.join("v1/testvenue/abc/2024-08-08")
}

fn frame_offsets(segment: &Path) -> Vec<u64> {
    let seg = chronicle_storage::segment::Segment::open(segment).unwrap();
    seg.frames().map(|f| f.offset).collect()
}

#[test]
fn clean_torn_and_corrupt() {
    let dir = scratch();
    let part = partition(&dir.path().join("data"), 5_000);
    let p = part.to_str().unwrap();
    let seg = part.join("book.q");
    let out = chronicle(&["verify", p]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("5001 records"),
        "definition + 5000"
    );

    let offsets = frame_offsets(&seg);
    let bytes = std::fs::read(&seg).unwrap();

    // Torn tail: exit 2, the offset named, cat prints the valid prefix.
    std::fs::write(&seg, &bytes[..bytes.len() - 5]).unwrap();
    let out = chronicle(&["verify", p]);
    assert_eq!(out.status.code(), Some(2));
    let last = offsets.last().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("torn tail at byte offset {last}"))
    );
    assert_eq!(chronicle_ok(&["cat", p]).lines().count(), 5000);

    // Damage in the middle: exit 1, file and offset named; cat fails rather than skip.
    let mut b = bytes.clone();
    let victim = offsets[2500] as usize;
    b[victim + 40] ^= 0x10;
    std::fs::write(&seg, &b).unwrap();
    for cmd in [&["verify", p][..], &["cat", p][..]] {
        let out = chronicle(cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("book.q") && err.contains(&format!("corrupt at byte offset {victim}")),
            "{cmd:?}: {err}"
        );
    }
}

#[test]
fn a_lying_index_entry_is_caught() {
    let dir = scratch();
    let part = partition(&dir.path().join("data"), 3_000);
    let idx = part.join("index/time.idx");
    let mut b = std::fs::read(&idx).unwrap();
    assert!(b.len() >= 32 + 2 * 40, "several blocks");
    // Rewrite the first entry's max timestamp and fix its CRC: well-formed, but false.
    let e = 32;
    b[e + 24..e + 32].copy_from_slice(&1u64.to_le_bytes());
    b[e + 16..e + 24].copy_from_slice(&0u64.to_le_bytes());
    let crc = crc32c_of(&b[e..e + 36]);
    b[e + 36..e + 40].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&idx, &b).unwrap();
    let out = chronicle(&["verify", part.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("time.idx"));
}

#[test]
fn cat_without_an_index_scans_and_says_so() {
    let dir = scratch();
    let part = partition(&dir.path().join("data"), 100);
    std::fs::remove_file(part.join("index/time.idx")).unwrap();
    let out = chronicle(&["cat", part.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 101);
    assert!(String::from_utf8_lossy(&out.stderr).contains("index not used"));
}

fn crc32c_of(b: &[u8]) -> u32 {
    // CRC-32C (Castagnoli), bitwise: an independent check of the index's checksum.
    let mut crc = !0u32;
    for &byte in b {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
