//! Helpers shared by the feed tests: records with a sequence number, ring paths in /dev/shm.
#![allow(dead_code)] // each test file uses its own subset

use chronicle_protocol::*;
use std::path::PathBuf;

/// A heartbeat (40 bytes) carrying `seq` in its body and tick id.
pub fn heartbeat(seq: u64) -> [u8; 40] {
    let mut b = [0u8; 40];
    Record {
        meta: Meta {
            token_id: 1 + (seq % 7) as u32,
            global_tick_id: seq,
            exchange_ts_ns: 1_000 + seq,
            receive_ts_ns: 2_000 + seq,
        },
        body: Body::Heartbeat(Heartbeat { sequence: seq }),
    }
    .encode(&mut b)
    .unwrap();
    b
}

/// A 64-byte trade for `token` carrying `seq`.
pub fn trade(token: u32, seq: u64) -> Vec<u8> {
    Record {
        meta: Meta {
            token_id: token,
            global_tick_id: seq,
            exchange_ts_ns: 1_700_000_000_000_000_000 + seq,
            receive_ts_ns: 1_700_000_000_000_000_100 + seq,
        },
        body: Body::Trade(Trade {
            aggressor: Side::Bid,
            flags: 0,
            price: 100 + seq as i64,
            quantity: 1,
            trade_id: seq,
        }),
    }
    .to_vec()
    .unwrap()
}

/// A record whose length depends on `seq` (48..=48+16*levels bytes), to vary frame sizes.
pub fn snapshot(seq: u64, levels: usize) -> Vec<u8> {
    let lv: Vec<Level> = (0..levels)
        .map(|i| Level {
            price: seq as i64 + i as i64,
            quantity: i as i64,
        })
        .collect();
    Record {
        meta: Meta {
            token_id: 3,
            global_tick_id: seq,
            exchange_ts_ns: 10 + seq,
            receive_ts_ns: 20 + seq,
        },
        body: Body::BookSnapshot(BookSnapshot {
            update_id: seq,
            chunk: 0,
            flags: BookSnapshot::FLAG_LAST_CHUNK,
            bid_count: levels as u16,
            ask_count: 0,
            levels: Levels::Slice(&lv),
        }),
    }
    .to_vec()
    .unwrap()
}

/// The gap of a record, if it is one.
pub fn gap_of(view: &RecordView<'_>) -> Option<Gap> {
    match view.decode().ok()?.body {
        Body::Gap(g) => Some(g),
        _ => None,
    }
}

/// A fresh directory under /dev/shm (removed on drop).
pub fn shm_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("chronicle-feed-test-")
        .tempdir_in("/dev/shm")
        .expect("tempdir in /dev/shm")
}

pub fn ring_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}
