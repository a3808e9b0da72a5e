//! The UDP feed handler on real loopback sockets: valid batches reach their shards' rings in
//! order; malformed datagrams (bad magic, version, truncated, bad record length, unknown
//! record type, trailing bytes) are counted and dropped, never forwarded; a sequence jump
//! puts a `FeedLoss` gap into every shard; full rings drop and announce with `RingOverrun`.
#![cfg(not(loom))]

mod common;

use chronicle_feed::feed::{ConfigError, Forwarded, DATAGRAM_HEADER_LEN};
use chronicle_feed::layout::MIN_SHM_CAPACITY;
use chronicle_feed::*;
use chronicle_protocol::*;
use common::*;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Rig {
    _dir: tempfile::TempDir,
    feed: Option<FeedHandler>,
    consumers: Vec<Consumer>,
}

fn rig(shards: usize, map: ShardMap) -> Rig {
    let dir = shm_dir();
    let rings = (0..shards)
        .map(|i| {
            create(
                &ring_path(&dir, &format!("shard{i}")),
                MIN_SHM_CAPACITY,
                Access::Owner,
            )
            .unwrap()
        })
        .collect();
    let consumers = (0..shards)
        .map(|i| {
            attach(
                &ring_path(&dir, &format!("shard{i}")),
                &AttachOptions::default(),
            )
            .unwrap()
        })
        .collect();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    Rig {
        _dir: dir,
        feed: Some(FeedHandler::new(socket, rings, map).unwrap()),
        consumers,
    }
}

fn drain(c: &mut Consumer) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(v) = c.pop().unwrap() {
        out.push(v.bytes.to_vec());
        assert!(
            c.published_ns().is_some(),
            "the handler stamps every publication"
        );
    }
    out
}

/// The session of the tests' sender (one run of it).
const SESSION: u64 = 0x5e55_1011;

fn datagram(seq: u64, records: &[Vec<u8>]) -> Vec<u8> {
    datagram_of(SESSION, seq, records)
}

fn datagram_of(session: u64, seq: u64, records: &[Vec<u8>]) -> Vec<u8> {
    let mut w = DatagramWriter::new();
    w.set_session(session);
    for r in records {
        assert!(w.push(r));
    }
    w.finish(seq).to_vec()
}

#[test]
fn batches_over_loopback_arrive_in_order_on_their_shards() {
    // Token 7 pinned to shard 0 by the table; the rest by token % 3.
    let map = ShardMap::with_table(3, [(7, 0)]).unwrap();
    let mut rig = rig(3, map.clone());
    let feed = rig.feed.take().unwrap();
    let addr = feed.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = feed.spawn(Some(0), false, stop.clone()).unwrap();

    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tokens = [1u32, 2, 3, 4, 5, 7, 10];
    let (datagrams, per) = (300u64, 8u64);
    let mut expected: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 3];
    let mut got: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 3];
    for seq in 0..datagrams {
        let records: Vec<Vec<u8>> = (0..per)
            .map(|i| {
                let n = seq * per + i;
                trade(tokens[(n % tokens.len() as u64) as usize], n)
            })
            .collect();
        for r in &records {
            let token = RecordView::parse(r).unwrap().meta.token_id;
            expected[map.shard_of(token)].push(r.clone());
        }
        sender.send_to(&datagram(seq, &records), addr).unwrap();
        // Keep the socket buffer from overflowing: loopback drops only when it is full.
        if seq % 16 == 15 {
            std::thread::sleep(Duration::from_millis(2));
        }
        for (s, c) in rig.consumers.iter_mut().enumerate() {
            got[s].extend(drain(c));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.iter().map(Vec::len).sum::<usize>() < (datagrams * per) as usize {
        assert!(Instant::now() < deadline, "records missing");
        for (s, c) in rig.consumers.iter_mut().enumerate() {
            got[s].extend(drain(c));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    let (feed, result) = handle.join().unwrap();
    result.unwrap();
    assert_eq!(got, expected, "every record on its shard, in order, no gap");
    assert!(expected.iter().all(|e| !e.is_empty()));
    let stats = feed.stats();
    assert_eq!(stats.datagrams, datagrams);
    assert_eq!(stats.records_written, datagrams * per);
    assert_eq!(
        (stats.malformed, stats.feed_gaps, stats.records_dropped),
        (0, 0, 0)
    );
    // Every record's receive → publish time, on its shard.
    for (s, e) in expected.iter().enumerate() {
        assert_eq!(
            feed.receive_to_publish()[s].len(),
            e.len() as u64,
            "shard {s}"
        );
    }
}

#[test]
fn the_running_handler_hands_latencies_and_counters_to_metrics() {
    let mut rig = rig(2, ShardMap::modulo(2).unwrap());
    let mut feed = rig.feed.take().unwrap();
    let metrics = chronicle_metrics::MetricsServer::start("127.0.0.1:0", Vec::new()).unwrap();
    feed.report_to(metrics.reporter());
    let addr = feed.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = feed.spawn(None, false, stop.clone()).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for seq in 0..20u64 {
        let records: Vec<Vec<u8>> = (0..4).map(|i| trade(1 + i as u32, seq * 4 + i)).collect();
        sender.send_to(&datagram(seq, &records), addr).unwrap();
    }
    let mut bad = datagram(20, &[trade(1, 99)]);
    bad[0] ^= 0xff;
    sender.send_to(&bad, addr).unwrap();
    // Live: the counters and histograms reach /metrics while the handler runs.
    let want = [
        "chronicle_feed_datagrams_total 21",
        "chronicle_feed_records_total 80",
        r#"chronicle_feed_malformed_datagrams_total{reason="magic"} 1"#,
        r#"chronicle_feed_malformed_datagrams_total{reason="record"} 0"#,
        r#"chronicle_stage_latency_seconds_count{shard="0",stage="receive_to_publish"} 40"#,
        r#"chronicle_stage_latency_seconds_count{shard="1",stage="receive_to_publish"} 40"#,
        "chronicle_feed_report_age_seconds",
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = metrics.render();
        if want.iter().all(|w| text.contains(w)) {
            break text;
        }
        assert!(Instant::now() < deadline, "missing {want:?} in\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!handle.is_finished(), "reported before the handler stopped");
    assert!(text.contains(
        r#"chronicle_stage_latency_quantile_seconds{stage="receive_to_publish",quantile="0.99"}"#
    ));
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap().1.unwrap();
    for c in &mut rig.consumers {
        assert_eq!(drain(c).len(), 40);
    }
}

fn record_with(type_id: u16, len: u16) -> Vec<u8> {
    let mut r = trade(1, 1);
    r[0..2].copy_from_slice(&type_id.to_le_bytes());
    r[2..4].copy_from_slice(&len.to_le_bytes());
    r
}

#[test]
fn malformed_datagrams_are_counted_and_dropped() {
    let mut rig = rig(2, ShardMap::modulo(2).unwrap());
    let mut feed = rig.feed.take().unwrap();
    let good = vec![trade(1, 1), trade(2, 2), heartbeat(3).to_vec()];
    let valid = datagram(0, &good);

    type Case = (&'static str, Vec<u8>, fn(&DatagramError) -> bool);
    let mut cases: Vec<Case> = Vec::new();
    cases.push(("empty", vec![], |e| {
        matches!(e, DatagramError::Truncated { len: 0 })
    }));
    cases.push(("short header", valid[..15].to_vec(), |e| {
        matches!(e, DatagramError::Truncated { .. })
    }));
    let mut d = valid.clone();
    d[0] = b'X';
    cases.push(("bad magic", d, |e| {
        matches!(e, DatagramError::BadMagic { .. })
    }));
    let mut d = valid.clone();
    d[4] = 1; // version 1 had no session
    cases.push(("bad version", d, |e| {
        matches!(e, DatagramError::BadVersion { found: 1 })
    }));
    let mut d = valid.clone();
    d[6..8].copy_from_slice(&5000u16.to_le_bytes());
    cases.push(("absurd count", d, |e| {
        matches!(e, DatagramError::TooManyRecords { .. })
    }));
    let mut d = valid.clone();
    d[6..8].copy_from_slice(&4u16.to_le_bytes());
    cases.push(("count beyond records", d, |e| {
        matches!(
            e,
            DatagramError::BadRecord {
                index: 3,
                error: DecodeError::Truncated { .. },
                ..
            }
        )
    }));
    cases.push(
        ("record cut short", valid[..valid.len() - 8].to_vec(), |e| {
            matches!(
                e,
                DatagramError::BadRecord {
                    index: 2,
                    error: DecodeError::Truncated { .. },
                    ..
                }
            )
        }),
    );
    let mut d = valid.clone();
    d.extend_from_slice(&[0u8; 8]);
    cases.push(("trailing bytes", d, |e| {
        matches!(e, DatagramError::TrailingBytes { extra: 8, .. })
    }));
    cases.push((
        "record length not a multiple of 8",
        datagram(0, &[trade(1, 1), record_with(2, 60)]),
        |e| {
            matches!(
                e,
                DatagramError::BadRecord {
                    index: 1,
                    error: DecodeError::BadLength { length: 60 },
                    ..
                }
            )
        },
    ));
    cases.push((
        "record length disagrees with type",
        datagram(0, &[record_with(2, 56)[..56].to_vec()]),
        |e| {
            matches!(
                e,
                DatagramError::BadRecord {
                    error: DecodeError::LengthMismatch { .. },
                    ..
                }
            )
        },
    ));
    cases.push((
        "unknown record type",
        datagram(0, &[trade(1, 1), record_with(0x7777, 64)]),
        |e| {
            matches!(
                e,
                DatagramError::BadRecord {
                    index: 1,
                    error: DecodeError::UnknownType { type_id: 0x7777 },
                    ..
                }
            )
        },
    ));
    let mut bad_side = trade(1, 1);
    bad_side[32] = b'Z';
    cases.push(("invalid field", datagram(0, &[bad_side]), |e| {
        matches!(
            e,
            DatagramError::BadRecord {
                error: DecodeError::BadField { .. },
                ..
            }
        )
    }));

    for (name, d, expect) in &cases {
        let e = feed
            .handle_datagram(d)
            .err()
            .unwrap_or_else(|| panic!("{name}: accepted"));
        assert!(expect(&e), "{name}: {e}");
    }
    let s = feed.stats();
    assert_eq!(s.malformed, cases.len() as u64);
    assert_eq!(
        s.malformed_truncated
            + s.malformed_magic
            + s.malformed_version
            + s.malformed_count
            + s.malformed_record
            + s.malformed_trailing,
        s.malformed
    );
    assert_eq!(s.records_written, 0);
    for c in &mut rig.consumers {
        assert!(
            drain(c).is_empty(),
            "nothing of a malformed datagram was forwarded"
        );
    }

    // Over the socket too: malformed ones counted, the valid one forwarded.
    let addr = feed.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = feed.spawn(None, true, stop.clone()).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (_, d, _) in &cases {
        sender.send_to(d, addr).unwrap();
    }
    sender.send_to(&valid, addr).unwrap();
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while got < good.len() {
        assert!(Instant::now() < deadline);
        for c in &mut rig.consumers {
            got += drain(c).len();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (feed, result) = handle.join().unwrap();
    result.unwrap();
    assert_eq!(feed.stats().malformed, 2 * cases.len() as u64);
    assert_eq!(feed.stats().records_written, good.len() as u64);
    assert_eq!(got, good.len());
}

#[test]
fn sequence_jump_puts_a_feed_loss_gap_on_every_shard() {
    let mut rig = rig(3, ShardMap::modulo(3).unwrap());
    let mut feed = rig.feed.take().unwrap();
    let r = |n: u64| trade((n % 3) as u32, n);
    // A sender numbers from 0: 0..=9 were lost before the first datagram that came.
    assert_eq!(
        feed.handle_datagram(&datagram(10, &[r(0), r(1), r(2)]))
            .unwrap(),
        Forwarded::Routed {
            written: 3,
            dropped: 0
        }
    );
    // 11 and 12 lost in transport; 13 arrives.
    feed.handle_datagram(&datagram(13, &[r(3), r(4)])).unwrap();
    // A duplicate of 13 and a late 12: stale, not forwarded.
    assert_eq!(
        feed.handle_datagram(&datagram(13, &[r(3)])).unwrap(),
        Forwarded::Stale
    );
    assert_eq!(
        feed.handle_datagram(&datagram(12, &[r(5)])).unwrap(),
        Forwarded::Stale
    );
    // A malformed datagram (number 14) then 15: 14's content is announced lost too.
    let mut bad = datagram(14, &[r(6)]);
    bad[DATAGRAM_HEADER_LEN] = 0x77;
    assert!(feed.handle_datagram(&bad).is_err());
    feed.handle_datagram(&datagram(15, &[r(7)])).unwrap();

    let s = feed.stats();
    assert_eq!(
        (s.lost_datagrams, s.feed_gaps, s.stale, s.malformed),
        (13, 3, 2, 1)
    );
    assert_eq!(
        (s.upstream_lost_datagrams, s.kernel_drops),
        (13, 0),
        "nothing here went through a socket"
    );
    for (shard, c) in rig.consumers.iter_mut().enumerate() {
        let recs = drain(c);
        let mut gaps = Vec::new();
        let mut ticks = Vec::new();
        for b in &recs {
            let v = RecordView::parse(b).unwrap();
            match gap_of(&v) {
                Some(g) => {
                    assert_eq!(g.reason, GapReason::FeedLoss);
                    assert_eq!(v.meta.token_id, 0);
                    assert_eq!(g.lost, g.received - g.expected, "datagrams lost");
                    gaps.push((g.expected, g.received, ticks.len()));
                }
                None => ticks.push(v.meta.global_tick_id),
            }
        }
        // Per shard: its records of 10, then the gap 11..13, its records of 13, gap 14..15.
        let of = |range: std::ops::Range<u64>| {
            range.filter(|n| n % 3 == shard as u64).collect::<Vec<_>>()
        };
        let mut want = of(0..3);
        let first_gap_at = want.len();
        want.extend(of(3..5));
        let second_gap_at = want.len();
        want.extend(of(7..8));
        assert_eq!(ticks, want, "shard {shard}");
        assert_eq!(
            gaps,
            vec![(0, 10, 0), (11, 13, first_gap_at), (14, 15, second_gap_at)],
            "shard {shard}"
        );
    }
}

#[test]
fn full_rings_drop_and_announce_the_overrun() {
    let mut rig = rig(1, ShardMap::modulo(1).unwrap());
    let mut feed = rig.feed.take().unwrap();
    let mut seq = 0;
    let mut n = 0u64;
    // Nobody consumes: the ring fills, the feed keeps going.
    while feed.stats().records_dropped < 100 {
        let recs: Vec<Vec<u8>> = (0..10).map(|i| trade(1, n + i)).collect();
        n += 10;
        feed.handle_datagram(&datagram(seq, &recs)).unwrap();
        seq += 1;
    }
    let dropped = feed.stats().records_dropped;
    let written = feed.stats().records_written;
    assert_eq!(feed.producers()[0].stats().dropped, dropped);
    let mut next = 0;
    let mut lost = 0;
    for b in drain(&mut rig.consumers[0]) {
        let v = RecordView::parse(&b).unwrap();
        assert!(
            gap_of(&v).is_none(),
            "no gap before the consumer catches up"
        );
        assert_eq!(v.meta.global_tick_id, next);
        next += 1;
    }
    // The next datagram goes in behind the overrun gap.
    let recs: Vec<Vec<u8>> = (0..10).map(|i| trade(1, n + i)).collect();
    feed.handle_datagram(&datagram(seq, &recs)).unwrap();
    for b in drain(&mut rig.consumers[0]) {
        let v = RecordView::parse(&b).unwrap();
        if let Some(g) = gap_of(&v) {
            assert_eq!(g.reason, GapReason::RingOverrun);
            assert_eq!(g.expected, next);
            lost += g.lost;
            next = g.received;
        } else {
            assert_eq!(v.meta.global_tick_id, next);
            next += 1;
        }
    }
    assert_eq!(lost, dropped);
    assert_eq!(next, n + 10);
    assert_eq!(written + dropped, n);
}

#[test]
fn shard_map_is_validated() {
    assert!(matches!(
        ShardMap::modulo(0),
        Err(ConfigError::ShardCount(0))
    ));
    assert!(matches!(
        ShardMap::modulo(65),
        Err(ConfigError::ShardCount(65))
    ));
    assert!(matches!(
        ShardMap::with_table(2, [(5, 2)]),
        Err(ConfigError::ShardOutOfRange { token: 5, .. })
    ));
    assert!(matches!(
        ShardMap::with_table(2, [(5, 1), (5, 0)]),
        Err(ConfigError::DuplicateToken(5))
    ));
    let m = ShardMap::with_table(4, [(9, 3), (100, 0)]).unwrap();
    assert_eq!(
        (m.shard_of(9), m.shard_of(100), m.shard_of(6), m.shard_of(7)),
        (3, 0, 2, 3)
    );
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (p, _c) = mem_ring(1 << 12);
    assert!(matches!(
        FeedHandler::new(socket, vec![p], ShardMap::modulo(2).unwrap()),
        Err(ConfigError::RingCount {
            rings: 1,
            shards: 2
        })
    ));
}

#[test]
fn a_restarted_sender_is_a_new_session_marked_on_every_shard() {
    let mut rig = rig(2, ShardMap::modulo(2).unwrap());
    let mut feed = rig.feed.take().unwrap();
    let r = |n: u64| trade((n % 2) as u32, n);
    let (old, new) = (SESSION, SESSION + 1);
    for seq in 0..3 {
        feed.handle_datagram(&datagram_of(old, seq, &[r(seq)]))
            .unwrap();
    }
    // The sender restarts: its numbering starts again at 0, in a new session. Not stale,
    // not a loss: a restart, marked on every shard before the new session's records.
    assert!(matches!(
        feed.handle_datagram(&datagram_of(new, 0, &[r(10), r(11)]))
            .unwrap(),
        Forwarded::Routed { written: 2, .. }
    ));
    feed.handle_datagram(&datagram_of(new, 1, &[r(12)]))
        .unwrap();
    // A late datagram of the ended session: stale, not another restart.
    assert_eq!(
        feed.handle_datagram(&datagram_of(old, 3, &[r(3)])).unwrap(),
        Forwarded::Stale
    );
    let s = feed.stats();
    assert_eq!(
        (
            s.sender_restarts,
            s.stale,
            s.lost_datagrams,
            s.records_written
        ),
        (1, 1, 0, 6)
    );
    for c in rig.consumers.iter_mut() {
        let recs: Vec<_> = drain(c)
            .iter()
            .map(|b| {
                let v = RecordView::parse(b).unwrap();
                match gap_of(&v) {
                    Some(g) => {
                        assert_eq!(v.meta.token_id, 0, "the whole shard");
                        assert_eq!((g.expected, g.received, g.lost), (3, 0, 0));
                        g.reason.name().to_string()
                    }
                    None => "record".to_string(),
                }
            })
            .collect();
        let restart = recs.iter().position(|r| r == "sender_restart");
        assert_eq!(
            recs.iter().filter(|r| *r == "sender_restart").count(),
            1,
            "{recs:?}"
        );
        // Old-session records before the marker, new-session ones after it.
        let restart = restart.unwrap();
        assert!(restart >= 1 && restart < recs.len() - 1, "{recs:?}");
    }
}
