//! `chronicle run --config` as the production daemon: normalized records in UDP datagrams on
//! loopback become a partition; SIGTERM makes it flush, close and exit cleanly.

mod common;
use chronicle_feed::DatagramWriter;
use chronicle_protocol::{Body, Definition, FixedStr, Meta, Record, Side, Trade, UNDEF};
use chronicle_storage::symbols::DimSymbol;
use common::*;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn udp_records_become_a_partition_and_sigterm_exits_cleanly() {
    let dir = scratch();
    let data = dir.path().join("data");
    // Identity is the feed's: the instrument is in dim_symbol before its records arrive.
    let mut symbols = DimSymbol::load(&data).unwrap();
    let token = symbols
        .resolve_or_register("testvenue", "XYZ", 0)
        .unwrap()
        .symbol_id as u32;
    symbols.save().unwrap();
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
            "data_dir = \"{}\"\nfeed_cpu = 0\n[input]\nkind = \"udp\"\nbind = \"127.0.0.1:{port}\"\n[[shards]]\ncpu = {}\nring = \"/dev/shm/chronicle-daemon-test-{}\"\nring_bytes = 1048576\n[metrics]\nenabled = false\n",
            data.display(),
            cores - 1,
            std::process::id()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args(["run", "--config", config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700)); // bound and listening

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let t0 = chronicle_storage::utc::parse_time("2024-08-08T12:00:00Z").unwrap();
    let def = Definition {
        venue: FixedStr::new("venue", "testvenue").unwrap(),
        raw_symbol: FixedStr::new("raw_symbol", "XYZ").unwrap(),
        price_exponent: -2,
        quantity_exponent: 0,
        instrument_class: 0,
        tick_size: UNDEF,
        lot_size: UNDEF,
        symbol_id: token as u64,
        expiration_ns: 0,
    };
    let declare = Record {
        meta: Meta {
            token_id: token,
            global_tick_id: u64::MAX,
            exchange_ts_ns: 0,
            receive_ts_ns: 0,
        },
        body: Body::Definition(def),
    };
    let mut records = vec![declare.to_vec().unwrap()];
    for i in 0..1000u64 {
        let ts = t0 + i * 1_000_000;
        let trade = Body::Trade(Trade {
            aggressor: Side::Bid,
            flags: 0,
            price: 10_000 + i as i64,
            quantity: 1,
            trade_id: i,
        });
        records.push(
            Record {
                meta: Meta {
                    token_id: token,
                    global_tick_id: 0,
                    exchange_ts_ns: ts,
                    receive_ts_ns: ts,
                },
                body: trade,
            }
            .to_vec()
            .unwrap(),
        );
    }
    let mut w = DatagramWriter::new();
    let mut seq = 0u64;
    for r in &records {
        if !w.push(r) {
            sock.send_to(w.finish(seq), ("127.0.0.1", port)).unwrap();
            seq += 1;
            assert!(w.push(r));
        }
    }
    sock.send_to(w.finish(seq), ("127.0.0.1", port)).unwrap();
    std::thread::sleep(Duration::from_millis(600)); // a few flushes

    // SIGTERM: flush, close the partition, snapshot, exit 0.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "daemon did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("UDP feed"), "{summary}");

    let part = data.join("v1/testvenue/xyz/2024-08-08");
    let lines = chronicle_ok(&["cat", part.to_str().unwrap()]);
    let trades = lines
        .lines()
        .filter(|l| l.contains("\"type\":\"trade\""))
        .count();
    assert_eq!(trades, 1000, "every datagram record arrived once");
    assert!(part.join("meta.json").exists(), "closed on SIGTERM");
    assert!(
        data.join(format!("snapshots/{token}")).is_dir(),
        "engine snapshot on SIGTERM"
    );
    chronicle_ok(&["verify", data.to_str().unwrap()]);
}
