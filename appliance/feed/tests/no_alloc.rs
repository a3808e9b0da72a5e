//! The hot path allocates nothing: push, stage/publish, pop (records, wrap markers, overrun
//! gaps, faults) and the feed handler's datagram path, counted by a global allocator.
#![cfg(not(loom))]

mod common;

use chronicle_feed::layout::MIN_SHM_CAPACITY;
use chronicle_feed::*;
use chronicle_testkit::alloc::{allocations, CountingAllocator};
use common::*;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn exercise(p: &mut Producer, c: &mut Consumer, rounds: u64) -> (u64, u64) {
    let records: Vec<Vec<u8>> = vec![heartbeat(0).to_vec(), trade(9, 1), snapshot(2, 5)];
    let (mut popped, mut dropped) = (0, 0);
    let n = allocations(|| {
        for round in 0..rounds {
            // Overfill on purpose every 16th round: drops, then gap markers.
            let burst = if round % 16 == 0 { 20_000 } else { 40 };
            for i in 0..burst {
                let r = &records[(i % 3) as usize];
                if p.push(r).unwrap() == Pushed::Dropped {
                    dropped += 1;
                }
            }
            p.stage(&records[0]).unwrap();
            p.publish();
            while let Some(v) = c.pop().unwrap() {
                popped += v.bytes.len() as u64 / 8;
            }
            p.flush_gap();
        }
    });
    assert_eq!(n, 0, "the ring hot path allocated {n} times");
    (popped, dropped)
}

#[test]
fn shm_ring_push_pop_allocate_nothing() {
    let dir = shm_dir();
    let path = ring_path(&dir, "r");
    let mut p = create(&path, MIN_SHM_CAPACITY, Access::Owner).unwrap();
    let mut c = attach(&path, &AttachOptions::default()).unwrap();
    let (popped, dropped) = exercise(&mut p, &mut c, 200);
    assert!(popped > 0 && dropped > 0, "exercised records and overruns");
    assert!(p.stats().overrun_gaps > 0);
}

#[test]
fn mem_ring_push_pop_allocate_nothing() {
    let (mut p, mut c) = mem_ring(1 << 16);
    let (popped, dropped) = exercise(&mut p, &mut c, 200);
    assert!(popped > 0 && dropped > 0);
}

#[test]
fn faults_and_resync_allocate_nothing() {
    let dir = shm_dir();
    let path = ring_path(&dir, "f");
    let mut p = create(&path, MIN_SHM_CAPACITY, Access::Owner).unwrap();
    let mut c = attach(&path, &AttachOptions::default()).unwrap();
    p.push(&heartbeat(1)).unwrap();
    // A bad frame length at ring position 0 (file offset 4096).
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&44u64.to_le_bytes(), 4096).unwrap();
    let n = allocations(|| {
        assert!(c.pop().is_err());
        assert!(c.pop().is_err());
        c.resync().unwrap();
        assert!(c.pop().unwrap().is_some()); // the synthesized gap
        p.push(&heartbeat(2)).unwrap();
        assert!(c.pop().unwrap().is_some());
    });
    assert_eq!(n, 0);
}

#[test]
fn feed_datagram_path_allocates_nothing() {
    let dir = shm_dir();
    let rings: Vec<Producer> = (0..2)
        .map(|i| {
            create(
                &ring_path(&dir, &format!("s{i}")),
                MIN_SHM_CAPACITY,
                Access::Owner,
            )
            .unwrap()
        })
        .collect();
    let mut consumers: Vec<Consumer> = (0..2)
        .map(|i| {
            attach(
                &ring_path(&dir, &format!("s{i}")),
                &AttachOptions::default(),
            )
            .unwrap()
        })
        .collect();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut feed = FeedHandler::new(socket, rings, ShardMap::modulo(2).unwrap()).unwrap();
    // Datagrams prepared outside the measured region.
    let mut w = DatagramWriter::new();
    let mut datagrams = Vec::new();
    for seq in 0..64u64 {
        for t in 0..10 {
            assert!(w.push(&trade(t, seq * 10 + t as u64)));
        }
        // Every 8th sequence number skipped: feed-loss gaps.
        let s = seq + seq / 8;
        datagrams.push(w.finish(s).to_vec());
    }
    let mut bad = datagrams[0].clone();
    bad[0] ^= 0xFF;
    let n = allocations(|| {
        for d in &datagrams {
            feed.handle_datagram(d).unwrap();
            assert!(feed.handle_datagram(&bad).is_err());
            assert!(feed.handle_datagram(&d[..20]).is_err());
            for c in &mut consumers {
                while c.pop().unwrap().is_some() {}
            }
        }
    });
    assert_eq!(n, 0, "the datagram path allocated {n} times");
    assert!(feed.stats().feed_gaps > 0 && feed.stats().malformed > 0);
}
