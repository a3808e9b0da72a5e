//! The `/metrics` endpoint without an appliance: snapshots handed to the merge thread come out
//! as Prometheus histograms in seconds (buckets down to 50 ns), quantile gauges, `_total`
//! counters and build info; the tiny HTTP server answers GET only, bounds the request head,
//! and says 404/405/431 where it should.

mod common;

use chronicle_metrics::{MetricsServer, ShardCounters, Snapshot};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

fn hist(values: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 100_000_000_000, 3).unwrap();
    for v in values {
        h.record(*v).unwrap();
    }
    h
}

fn wait_for(server: &MetricsServer, needle: &str) -> String {
    let t = Instant::now();
    loop {
        let text = server.render();
        if text.contains(needle) {
            return text;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no {needle} in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn buckets_span_50ns_to_10s() {
    let b = chronicle_metrics::bucket_bounds();
    assert!((b[0] - 5e-8).abs() < 1e-15, "{b:?}");
    assert!((b[b.len() - 1] - 10.0).abs() < 1e-9, "{b:?}");
    assert!(b.windows(2).all(|w| w[0] < w[1]));
    assert!(
        b.iter().filter(|&&x| x < 1e-6).count() >= 6,
        "sub-µs resolution: {b:?}"
    );
}

#[test]
fn snapshots_are_merged_and_served() {
    let server = MetricsServer::start("127.0.0.1:0", Vec::new()).unwrap();
    let r = server.reporter();
    // Two hand-offs of shard 0 and one of shard 1: 300 ns x3, 2 µs x1 on the hot path.
    for (shard, values) in [(0usize, &[300u64, 300][..]), (0, &[2_000]), (1, &[300])] {
        r.send(Snapshot {
            shard,
            stages: vec![("hot_path", hist(values)), ("flush_duration", hist(&[]))],
            counters: ShardCounters {
                events: 7,
                flushes: 2,
                ..Default::default()
            },
        });
    }
    let text = wait_for(&server, "chronicle_metrics_snapshots_total 3");
    let (status, body) = common::get(server.local_addr(), "/metrics").unwrap();
    assert_eq!(status, 200);
    for line in [
        "# TYPE chronicle_stage_latency_seconds histogram",
        "chronicle_stage_latency_seconds_bucket{shard=\"0\",stage=\"hot_path\",le=\"0.0000003\"} 2",
        "chronicle_stage_latency_seconds_bucket{shard=\"0\",stage=\"hot_path\",le=\"0.000002\"} 3",
        "chronicle_stage_latency_seconds_bucket{shard=\"0\",stage=\"hot_path\",le=\"+Inf\"} 3",
        "chronicle_stage_latency_seconds_count{shard=\"0\",stage=\"hot_path\"} 3",
        "chronicle_stage_latency_seconds_count{shard=\"0\",stage=\"flush_duration\"} 0",
        "chronicle_stage_latency_seconds_count{shard=\"1\",stage=\"hot_path\"} 1",
        "chronicle_events_total{shard=\"0\"} 7",
        "chronicle_flushes_total{shard=\"1\"} 2",
        "chronicle_build_info{",
        // Exact HDR quantiles over both shards: 4 samples, max 2 µs.
        "chronicle_stage_latency_quantile_seconds{stage=\"hot_path\",quantile=\"0.5\"} 0.0000003",
        "chronicle_stage_latency_quantile_seconds{stage=\"hot_path\",quantile=\"1\"} 0.000002",
    ] {
        assert!(body.contains(line), "missing `{line}` in:\n{body}");
        assert!(text.contains(line));
    }
    let sum: f64 = body
        .lines()
        .find(|l| {
            l.starts_with("chronicle_stage_latency_seconds_sum{shard=\"0\",stage=\"hot_path\"}")
        })
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!((sum - 2.6e-6).abs() < 1e-8, "sum {sum}");
    // No per-token labels: bounded cardinality.
    assert!(!body.contains("token"));
}

#[test]
fn http_is_get_only_and_bounded() {
    let server = MetricsServer::start("127.0.0.1:0", Vec::new()).unwrap();
    let a = server.local_addr();
    assert!(a.ip().is_loopback());
    assert_eq!(common::get(a, "/nope").unwrap().0, 404);
    assert_eq!(common::get(a, "/").unwrap().0, 200);
    let post = b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi";
    assert_eq!(common::raw(a, post).unwrap().0, 405);
    assert_eq!(common::raw(a, b"garbage\r\n\r\n").unwrap().0, 400);
    let mut huge = b"GET /metrics HTTP/1.1\r\n".to_vec();
    while huge.len() <= chronicle_metrics::MAX_REQUEST_BYTES {
        huge.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    huge.extend_from_slice(b"\r\n");
    // The server answers 431 once its buffer is full; the client may see a reset instead.
    if let Ok((status, _)) = common::raw(a, &huge) {
        assert_eq!(status, 431);
    }
    // A client that never finishes its request is cut off after the read timeout, and the
    // server still answers the next one.
    let t = Instant::now();
    let mut slow = std::net::TcpStream::connect(a).unwrap();
    std::io::Write::write_all(&mut slow, b"GET /metrics HTTP/1.1\r\n").unwrap();
    let (status, _) = common::get(a, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}
