//! `chronicle run --config` as the production daemon: normalized records in UDP datagrams on
//! loopback become a partition; SIGTERM makes it flush, close and exit cleanly. A lost
//! datagram (the first one, with the declaration, or a declaration in the middle) never stops
//! a shard: the records are kept and the gap is marked. A shard that fails stops the daemon
//! at once, non-zero, naming the shard and the error.

mod common;
use chronicle_feed::DatagramWriter;
use chronicle_protocol::{
    Body, Declaration, Definition, FixedStr, Meta, Record, Side, Trade, UNDEF,
};
use chronicle_storage::symbols::DimSymbol;
use common::*;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A daemon on a free loopback port, its data directory and a sender.
struct Daemon {
    _dir: tempfile::TempDir,
    data: PathBuf,
    port: u16,
    child: Option<Child>,
    sock: UdpSocket,
}

impl Daemon {
    /// `failpoints`: the `FAILPOINTS` of the daemon (the test build compiles them in).
    fn start(failpoints: Option<&str>) -> Daemon {
        let dir = scratch();
        let data = dir.path().join("data");
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let config = dir.path().join("chronicle.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{}\"\nfeed_cpu = 0\n[input]\nkind = \"udp\"\nbind = \"127.0.0.1:{port}\"\n[[shards]]\ncpu = {}\nring = \"/dev/shm/chronicle-daemon-test-{}-{port}\"\nring_bytes = 1048576\n[metrics]\nenabled = false\n",
                data.display(),
                cores - 1,
                std::process::id()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chronicle"));
        cmd.args(["run", "--config", config.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(f) = failpoints {
            cmd.env("FAILPOINTS", f);
        }
        let child = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(700)); // bound and listening
        Daemon {
            _dir: dir,
            data,
            port,
            child: Some(child),
            sock: UdpSocket::bind("127.0.0.1:0").unwrap(),
        }
    }

    /// Sends `records` as one datagram numbered `seq` (one sender run).
    fn send(&self, seq: u64, records: &[Vec<u8>]) {
        self.send_as(0x5e55_1011, seq, records);
    }

    /// Sends `records` as one datagram numbered `seq` of sender session `session`.
    fn send_as(&self, session: u64, seq: u64, records: &[Vec<u8>]) {
        let mut w = DatagramWriter::new();
        w.set_session(session);
        for r in records {
            assert!(w.push(r), "the test's datagrams hold their records");
        }
        self.sock
            .send_to(w.finish(seq), ("127.0.0.1", self.port))
            .unwrap();
    }

    /// Waits up to `limit` for the daemon to exit by itself.
    fn exit_within(&mut self, limit: Duration) -> Option<Output> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().unwrap();
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return Some(self.child.take().unwrap().wait_with_output().unwrap());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// SIGTERM: flush, close the partitions, snapshot, exit 0.
    fn stop(&mut self) -> Output {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe { libc::kill(self.child.as_ref().unwrap().id() as i32, libc::SIGTERM) };
        let out = self
            .exit_within(Duration::from_secs(20))
            .expect("daemon did not exit after SIGTERM");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn declaration(token: u32, raw: &str) -> Vec<u8> {
    let def = Definition {
        venue: FixedStr::new("venue", "testvenue").unwrap(),
        raw_symbol: FixedStr::new("raw_symbol", raw).unwrap(),
        price_exponent: -2,
        quantity_exponent: 0,
        instrument_class: 0,
        tick_size: UNDEF,
        lot_size: UNDEF,
        symbol_id: token as u64,
        expiration_ns: 0,
    };
    Declaration::live(def).record(token).to_vec().unwrap()
}

fn trade(token: u32, i: u64) -> Vec<u8> {
    let ts = chronicle_storage::utc::parse_time("2024-08-08T12:00:00Z").unwrap() + i * 1_000_000;
    Record {
        meta: Meta {
            token_id: token,
            global_tick_id: 0,
            exchange_ts_ns: ts,
            receive_ts_ns: ts,
        },
        body: Body::Trade(Trade {
            aggressor: Side::Bid,
            flags: 0,
            price: 10_000 + i as i64,
            quantity: 1,
            trade_id: i,
        }),
    }
    .to_vec()
    .unwrap()
}

/// The trade ids and gap lines of a partition, via `chronicle cat`.
fn cat(part: &Path) -> (Vec<u64>, Vec<String>) {
    let lines = chronicle_ok(&["cat", part.to_str().unwrap()]);
    let mut ids = Vec::new();
    let mut gaps = Vec::new();
    for l in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        match v["type"].as_str() {
            Some("trade") => ids.push(v["trade_id"].as_u64().unwrap()),
            Some("gap") => gaps.push(l.to_owned()),
            _ => {}
        }
    }
    (ids, gaps)
}

#[test]
fn udp_records_become_a_partition_and_sigterm_exits_cleanly() {
    let mut d = Daemon::start(None);
    // Identity is the feed's: here the instrument is in dim_symbol before its records arrive.
    let mut symbols = DimSymbol::load(&d.data).unwrap();
    let token = symbols
        .resolve_or_register("testvenue", "XYZ", 0)
        .unwrap()
        .symbol_id as u32;
    symbols.save().unwrap();

    let mut records = vec![declaration(token, "XYZ")];
    records.extend((0..1000).map(|i| trade(token, i)));
    for (seq, chunk) in records.chunks(100).enumerate() {
        d.send(seq as u64, chunk);
    }
    std::thread::sleep(Duration::from_millis(600)); // a few flushes
    let out = d.stop();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("UDP feed"), "{summary}");

    let part = d.data.join("v1/testvenue/xyz/2024-08-08");
    let (ids, gaps) = cat(&part);
    assert_eq!(ids, (0..1000).collect::<Vec<_>>(), "every record once");
    assert!(gaps.is_empty(), "{gaps:?}");
    assert!(part.join("meta.json").exists(), "closed on SIGTERM");
    assert!(
        d.data.join(format!("snapshots/{token}")).is_dir(),
        "engine snapshot on SIGTERM"
    );
    chronicle_ok(&["verify", d.data.to_str().unwrap()]);
}

#[test]
fn a_lost_first_datagram_and_a_lost_declaration_do_not_stop_the_shard() {
    // Nothing in dim_symbol: the daemon takes the feed's identity (token = symbol id).
    let mut d = Daemon::start(None);
    let (a, b) = (7u32, 9u32);
    let mut seq = 0u64;
    let mut next = |d: &Daemon, send: bool, records: &[Vec<u8>]| {
        if send {
            d.send(seq, records);
        }
        seq += 1;
    };
    // Datagram 0 declares A and is lost; A's records come before it is declared again.
    next(&d, false, &[declaration(a, "AAA")]);
    for i in 0..50 {
        next(&d, true, &[trade(a, i)]);
    }
    next(&d, true, &[declaration(a, "AAA")]);
    for i in 50..100 {
        next(&d, true, &[trade(a, i)]);
    }
    // In the middle, B's declaration is lost: A goes on, B's records are kept.
    next(&d, false, &[declaration(b, "BBB")]);
    for i in 100..150 {
        next(&d, true, &[trade(a, i), trade(b, i)]);
    }
    next(&d, true, &[declaration(b, "BBB")]);
    for i in 150..200 {
        next(&d, true, &[trade(a, i), trade(b, i)]);
    }
    std::thread::sleep(Duration::from_millis(600));
    let out = d.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);

    let (ids, gaps) = cat(&d.data.join("v1/testvenue/aaa/2024-08-08"));
    assert_eq!(ids, (0..200).collect::<Vec<_>>(), "A: every record once");
    // A's stream began without its declaration, and later lost a datagram.
    assert_eq!(gaps.len(), 2, "{gaps:?}\n{stderr}");
    assert!(gaps.iter().all(|g| g.contains("feed_loss")), "{gaps:?}");
    assert!(
        gaps[1].contains("\"expected\":102") && gaps[1].contains("\"received\":103"),
        "the lost datagram is named by its sequence: {gaps:?}"
    );

    let (ids, gaps) = cat(&d.data.join("v1/testvenue/bbb/2024-08-08"));
    assert_eq!(ids, (100..200).collect::<Vec<_>>(), "B: every record once");
    assert_eq!(gaps.len(), 1, "B's stream began without its declaration");
    assert!(gaps[0].contains("feed_loss"), "{gaps:?}");
    chronicle_ok(&["verify", d.data.to_str().unwrap()]);
}

#[test]
fn a_failing_shard_stops_the_daemon_within_a_second() {
    // The shard fails at its 21st record.
    let mut d = Daemon::start(Some("shard::handle=20*off->return(injected shard failure)"));
    let mut records = vec![declaration(5, "FFF")];
    records.extend((0..30).map(|i| trade(5, i)));
    d.send(0, &records);
    let sent = Instant::now();
    let out = d
        .exit_within(Duration::from_secs(1))
        .expect("the daemon kept running over a failed shard");
    let took = sent.elapsed();
    assert!(!out.status.success(), "exit status {}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("shard 0 failed") && stderr.contains("injected shard failure"),
        "{stderr}"
    );
    // Its ring went with it: a unit restarting on a failing shard does not fill /dev/shm.
    let ring = format!(
        "/dev/shm/chronicle-daemon-test-{}-{}",
        std::process::id(),
        d.port
    );
    assert!(!Path::new(&ring).exists(), "{ring} left behind");
    eprintln!("daemon exited {took:?} after the failing datagram");
}

#[test]
fn a_restarted_sender_is_marked_and_nothing_is_stored_twice() {
    let mut d = Daemon::start(None);
    // One sender run: the declaration, then trades, numbered from 0 in its session.
    let sender_run = |d: &Daemon, session: u64, ids: std::ops::RangeInclusive<u64>| {
        let mut records = vec![declaration(9, "RST")];
        records.extend(ids.map(|i| trade(9, i)));
        for (seq, chunk) in records.chunks(50).enumerate() {
            d.send_as(session, seq as u64, chunk);
        }
    };
    sender_run(&d, 0xA, 1..=1000);
    std::thread::sleep(Duration::from_millis(500));
    // The sender restarts and replays from the start, then goes on.
    sender_run(&d, 0xB, 1..=1500);
    std::thread::sleep(Duration::from_millis(600));
    let out = d.stop();
    let summary = String::from_utf8_lossy(&out.stdout);
    let (ids, gaps) = cat(&d.data.join("v1/testvenue/rst/2024-08-08"));
    assert!(
        ids == (1..=1500).collect::<Vec<_>>(),
        "every trade once, in order: {} trades stored, first repeat at {:?}",
        ids.len(),
        ids.windows(2).position(|w| w[1] <= w[0])
    );
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(gaps[0].contains("sender_restart"), "{gaps:?}");
    assert!(summary.contains("1 sender restarts"), "{summary}");
    assert!(summary.contains("1000 records already stored"), "{summary}");
}
