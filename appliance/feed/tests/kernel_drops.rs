//! The feed socket under load, on real loopback sockets: the feed thread is stalled (fail
//! point `feed::poll`) while a sender pushes a known number of datagrams, then released.
//! With a buffer large enough every datagram arrives; with one forced small, the kernel drops
//! some, and the gap markers and counters report exactly the number the sender sent and the
//! handler did not receive. The receive buffer the kernel granted is read from the socket, and
//! the warning appears when the request exceeds `net.core.rmem_max`.
//!
//! Fail points are process-wide: this file's tests run one at a time (`SERIAL`).
#![cfg(not(loom))]

mod common;

use chronicle_feed::layout::MIN_SHM_CAPACITY;
use chronicle_feed::socket::{self, receive_buffer_bytes};
use chronicle_feed::*;
use chronicle_protocol::*;
use common::*;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

/// What reached the ring, and what the handler announced as lost.
#[derive(Debug, Default)]
struct Outcome {
    received: u64,
    /// Sum of `lost` over `kernel_drop` gaps, and over `feed_loss` gaps.
    kernel_lost: u64,
    upstream_lost: u64,
    stats: FeedStats,
}

/// Sends `n` datagrams of one trade each while the feed thread is stalled, releases it, then
/// sends one more datagram (a drop is seen when the next datagram arrives) and stops.
fn stalled_burst(recv_buffer_bytes: usize, n: u64) -> Outcome {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = shm_dir();
    let path = ring_path(&dir, "shard0");
    let ring = create(&path, MIN_SHM_CAPACITY * 64, Access::Owner).unwrap();
    let mut consumer = attach(&path, &AttachOptions::default()).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let handler = FeedHandler::with_receive_buffer(
        socket,
        vec![ring],
        ShardMap::modulo(1).unwrap(),
        recv_buffer_bytes,
    )
    .unwrap();

    fail::cfg("feed::poll", "pause").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let feed = handler.spawn(None, false, stop.clone()).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut w = DatagramWriter::new();
    let send = |w: &mut DatagramWriter, seq: u64| {
        assert!(w.push(&trade(1, seq)));
        sender.send_to(w.finish(seq), addr).unwrap();
    };
    for seq in 0..n {
        send(&mut w, seq);
    }
    fail::remove("feed::poll");

    // Drain the ring while the handler catches up, then send the datagram that shows the
    // loss at the end of the burst, and drain until it is in.
    let mut out = Outcome::default();
    let mut last_seen = None;
    let mut probe_sent = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while last_seen != Some(n) {
        assert!(Instant::now() < deadline, "the probe never arrived");
        match consumer.pop().unwrap() {
            Some(v) => match v.decode().unwrap().body {
                Body::Trade(t) => {
                    out.received += 1;
                    last_seen = Some(t.trade_id);
                }
                Body::Gap(g) => match g.reason {
                    GapReason::KernelDrop => out.kernel_lost += g.lost,
                    GapReason::FeedLoss => out.upstream_lost += g.lost,
                    r => panic!("unexpected gap reason {r:?}"),
                },
                b => panic!("unexpected record {b:?}"),
            },
            None => {
                if !probe_sent {
                    std::thread::sleep(Duration::from_millis(200));
                    send(&mut w, n);
                    probe_sent = true;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (handler, result) = feed.join().unwrap();
    result.unwrap();
    out.stats = handler.stats();
    out
}

#[test]
fn a_large_buffer_carries_a_stalled_feed_through_the_burst() {
    let n = 20_000;
    let o = stalled_burst(64 << 20, n);
    assert_eq!(o.received, n + 1, "{o:?}");
    assert_eq!((o.kernel_lost, o.upstream_lost), (0, 0), "{o:?}");
    assert_eq!(o.stats.kernel_drops, 0);
    assert_eq!(o.stats.lost_datagrams, 0);
}

#[test]
fn a_small_buffer_loses_exactly_what_the_gaps_and_counters_report() {
    let n = 20_000;
    // The smallest buffer the kernel grants: it holds a few datagrams.
    let o = stalled_burst(1, n);
    let sent = n + 1;
    let missing = sent - o.received;
    assert!(
        missing > 0,
        "a tiny buffer must lose part of a 20k burst: {o:?}"
    );
    assert_eq!(o.kernel_lost, missing, "kernel_drop gaps: {o:?}");
    assert_eq!(o.upstream_lost, 0, "nothing was lost upstream: {o:?}");
    assert_eq!(o.stats.kernel_drops, missing, "{o:?}");
    assert_eq!(o.stats.lost_datagrams, missing, "{o:?}");
    assert_eq!(o.stats.upstream_lost_datagrams, 0, "{o:?}");
    let values = o.stats.counter_values();
    let value = |name: &str| values.iter().find(|c| c.name == name).unwrap().value;
    assert_eq!(value("chronicle_feed_kernel_drops_total"), missing);
}

#[test]
fn upstream_loss_and_kernel_drops_stay_apart() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = shm_dir();
    let path = ring_path(&dir, "shard0");
    let ring = create(&path, MIN_SHM_CAPACITY, Access::Owner).unwrap();
    let mut consumer = attach(&path, &AttachOptions::default()).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    let addr = socket.local_addr().unwrap();
    let mut handler =
        FeedHandler::with_receive_buffer(socket, vec![ring], ShardMap::modulo(1).unwrap(), 1)
            .unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut w = DatagramWriter::new();
    // Sequences 0..=9, then 10..=14 never sent (lost upstream), then a burst the small
    // buffer cannot hold, then one the handler reads after draining.
    let mut sent = Vec::new();
    for seq in (0..10).chain(15..5_015) {
        assert!(w.push(&trade(1, seq)));
        sender.send_to(w.finish(seq), addr).unwrap();
        sent.push(seq);
    }
    let mut handled = 0;
    while handler.poll().unwrap() {
        handled += 1;
    }
    assert!(handled > 0);
    assert!(w.push(&trade(1, 5_015)));
    sender.send_to(w.finish(5_015), addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !handler.poll().unwrap() {
        assert!(Instant::now() < deadline, "the probe never arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    let st = handler.stats();
    let received = st.records_written;
    assert_eq!(st.lost_datagrams, 5_016 - received, "{st:?}");
    assert_eq!(st.upstream_lost_datagrams, 5, "{st:?}");
    assert_eq!(st.kernel_drops, 5_016 - received - 5, "{st:?}");
    let mut gaps = Vec::new();
    while let Some(v) = consumer.pop().unwrap() {
        if let Body::Gap(g) = v.decode().unwrap().body {
            gaps.push(g);
        }
    }
    let sum = |r| {
        gaps.iter()
            .filter(|g| g.reason == r)
            .map(|g| g.lost)
            .sum::<u64>()
    };
    assert_eq!(sum(GapReason::FeedLoss), 5, "{gaps:?}");
    assert_eq!(sum(GapReason::KernelDrop), st.kernel_drops, "{gaps:?}");
}

#[test]
fn the_granted_buffer_is_read_from_the_socket() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rb = socket::prepare(&socket, 8 << 20).unwrap();
    assert_eq!(rb.granted, receive_buffer_bytes(&socket).unwrap());
    if rb.forced {
        // SO_RCVBUFFORCE ignores rmem_max; Linux reports twice the value set.
        assert!(rb.granted >= rb.requested, "{rb:?}");
        assert!(rb.warning().is_none());
    }
    assert!(
        socket::prepare(&socket, socket::MAX_RECV_BUFFER_BYTES + 1).is_err(),
        "a request above the kernel's limit is refused"
    );
}

/// Drops `CAP_NET_ADMIN` from the calling thread's effective set (credentials are per thread
/// on Linux), so that `SO_RCVBUFFORCE` is refused as for an unprivileged daemon.
fn drop_net_admin() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    let mut h = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget/capset on this thread with a v3 header and two data words.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()),
            0
        );
        d[0].effective &= !(1 << CAP_NET_ADMIN);
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr()),
            0
        );
    }
}

#[test]
fn a_request_above_rmem_max_without_the_capability_warns() {
    let rmem_max: usize = std::fs::read_to_string(socket::RMEM_MAX_PATH)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let request = (rmem_max * 4).min(socket::MAX_RECV_BUFFER_BYTES);
    let rb = std::thread::spawn(move || {
        drop_net_admin();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rb = socket::prepare(&socket, request).unwrap();
        assert_eq!(rb.granted, receive_buffer_bytes(&socket).unwrap());
        rb
    })
    .join()
    .unwrap();
    assert!(!rb.forced, "SO_RCVBUFFORCE needs CAP_NET_ADMIN: {rb:?}");
    assert!(rb.granted < rb.requested, "capped by rmem_max: {rb:?}");
    let w = rb.warning().expect("a short grant warns");
    assert!(w.contains("net.core.rmem_max"), "{w}");
    assert!(w.contains(&rmem_max.to_string()), "{w}");
}
