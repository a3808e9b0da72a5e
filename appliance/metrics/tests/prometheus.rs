//! A real Prometheus scrapes a real appliance. `tests/prometheus.sh` finds (or installs, from
//! the Debian package) `prometheus` and `promtool`; without them the test skips
//! (`chronicle_testkit::skip`). The appliance is `chronicle_runtime::run::run` in-process with
//! UDP input (the feed handler on a free loopback port), fed by `chronicle replay`'s UDP target
//! with 60 s of the synthetic model at ten times real speed, serving `/metrics` on a free
//! loopback port; Prometheus (temp storage, its own free loopback port, 1 s scrapes,
//! `docs/monitoring/alerts.yml` loaded) scrapes it, and the p99 of the hot path and of the two
//! Zone 1 stages (feed receive → ring publish, ring publish → shard read) are asked through
//! `/api/v1/query`, e.g.
//! `histogram_quantile(0.99, sum by (le) (chronicle_stage_latency_seconds_bucket{stage="hot_path"}))`.
//! A datagram with a bad magic, sent while the appliance runs, must turn
//! `chronicle_feed_malformed_datagrams_total{reason="magic"}` from 0 to 1 in Prometheus.
//! `promtool check metrics` on a scrape must report nothing, and
//! `promtool check rules docs/monitoring/alerts.yml` must pass. Every wait is bounded.

mod common;

use chronicle_replay::{
    play, Input as ReplayInput, Pacing, PlayOptions, ReplaySource, SourceOptions, SyntheticConfig,
    UdpTarget,
};
use chronicle_runtime::config::{Config, Input, ShardConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// The directory holding `prometheus` and `promtool`, or None (the test skips).
fn prometheus_dir() -> Option<PathBuf> {
    let out = Command::new("bash")
        .arg(Path::new(MANIFEST).join("tests/prometheus.sh"))
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Kills the child on drop (the test's panics included).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn query(prom: SocketAddr, q: &str) -> serde_json::Value {
    let (status, body) = common::get(
        prom,
        &format!("/api/v1/query?query={}", common::urlencode(q)),
    )
    .unwrap_or((0, String::new()));
    if status != 200 {
        return serde_json::Value::String(format!("HTTP {status}: {body}"));
    }
    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
}

/// The first sample's value of an instant-vector answer.
fn first_value(v: &serde_json::Value) -> Option<f64> {
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

fn promtool(dir: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut c = Command::new(dir.join("promtool"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    let mut input = c.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = c.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn prometheus_scrapes_the_appliance_and_answers_p99() {
    let Some(dir) = chronicle_testkit::require(
        prometheus_dir(),
        "prometheus and promtool",
        "tests/prometheus.sh installs the Debian package prometheus (as root, with apt)",
    ) else {
        return;
    };
    let alerts = Path::new(MANIFEST).join("../../docs/monitoring/alerts.yml");
    let (ok, out) = promtool(&dir, &["check", "rules", alerts.to_str().unwrap()], None);
    assert!(ok, "promtool check rules: {out}");
    eprintln!("promtool check rules: {}", out.trim());

    let tmp = tempfile::tempdir().unwrap();
    let app: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let prom: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    std::fs::write(
        tmp.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: chronicle\n    static_configs:\n      - targets: ['{app}']\n",
            alerts.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(tmp.path().join("prometheus.log")).unwrap();
    let _prometheus = Killed(
        Command::new(dir.join("prometheus"))
            .arg(format!(
                "--config.file={}",
                tmp.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus starts"),
    );
    let log_text =
        || std::fs::read_to_string(tmp.path().join("prometheus.log")).unwrap_or_default();
    let t = Instant::now();
    while common::get(prom, "/-/ready").map(|r| r.0).ok() != Some(200) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "prometheus not ready:\n{}",
            log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The appliance: UDP input on a free loopback port.
    let feed: SocketAddr = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let mut cfg = Config {
        data_dir: tmp.path().join("data"),
        input: Input::Udp {
            bind: feed.to_string(),
            recv_buffer_bytes: 8 << 20,
        },
        ..Config::default()
    };
    let data_dir = cfg.data_dir.clone();
    let ring = PathBuf::from(format!(
        "/dev/shm/chronicle-metrics-test-{}",
        std::process::id()
    ));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cfg.shards = vec![ShardConfig {
        cpu: cores.saturating_sub(1),
        ring: Some(ring.clone()),
        ring_bytes: 64 << 20,
    }];
    cfg.metrics.listen = app.to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let appliance = {
        let stop = stop.clone();
        std::thread::spawn(move || chronicle_runtime::run::run(&cfg, true, stop))
    };
    /// Stops the appliance; on a failed assertion also removes its ring (the run would).
    struct Stop(Arc<AtomicBool>, PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
            if std::thread::panicking() {
                let _ = std::fs::remove_file(&self.1);
            }
        }
    }
    let stop_guard = Stop(stop.clone(), ring.clone());

    // The feed handler is bound once it reports (every 250 ms).
    let t = Instant::now();
    while !common::get(app, "/metrics")
        .map(|r| r.1.contains("chronicle_feed_report_age_seconds"))
        .unwrap_or(false)
    {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the feed handler never reported"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // 60 s of the synthetic model (~90 k events) at ten times real speed, over UDP, with the
    // appliance's data directory for identity: several scrapes see the counts grow.
    let mut opts = SourceOptions::new("binance-usdm", Some(&data_dir));
    opts.tokens = 1;
    let mut source = ReplaySource::open_with(
        ReplayInput::Synthetic(SyntheticConfig {
            duration_ns: 60_000_000_000,
            ..SyntheticConfig::default()
        }),
        &opts,
    )
    .unwrap();
    let mut target = UdpTarget::connect(feed, 1472).unwrap();
    let replayed = play(
        &mut source,
        &mut target,
        &PlayOptions::new(Pacing::Speed(10.0)),
    )
    .unwrap();
    eprintln!(
        "replayed {} events in {} datagrams over UDP",
        replayed.events,
        target.datagrams()
    );

    // The target is up and the hot path's p99 comes back through the query API.
    // Cumulative buckets, not rate(): a bounded feed may be over before Prometheus's second
    // scrape on a loaded machine, and a rate of nothing has no quantile.
    let q = r#"histogram_quantile(0.99, sum by (le) (chronicle_stage_latency_seconds_bucket{stage="hot_path"}))"#;
    let t = Instant::now();
    let p99 = loop {
        let up = first_value(&query(prom, r#"up{job="chronicle"}"#));
        let v = first_value(&query(prom, q)).filter(|v| v.is_finite() && *v > 0.0);
        if let (Some(1.0), Some(v)) = (up, v) {
            break v;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "no p99 from prometheus (up={up:?}):\n{}",
            log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("prometheus: hot_path p99 = {p99:e} s  ({q})");
    assert!(p99 > 0.0 && p99 < 1.0, "p99 {p99}");
    // The two Zone 1 stages, timed across threads (feed) and processes' clocks (ring stamps).
    for stage in ["receive_to_publish", "publish_to_read"] {
        let q = format!(
            r#"histogram_quantile(0.99, sum by (le) (chronicle_stage_latency_seconds_bucket{{stage="{stage}"}}))"#
        );
        let t = Instant::now();
        let p99 = loop {
            if let Some(v) = first_value(&query(prom, &q)).filter(|v| v.is_finite() && *v > 0.0) {
                break v;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "no {stage} p99 from prometheus"
            );
            std::thread::sleep(Duration::from_millis(500));
        };
        eprintln!("prometheus: {stage} p99 = {p99:e} s");
        assert!(p99 < 1.0, "{stage} p99 {p99}");
    }
    // A malformed datagram while the appliance runs: the live counter goes from 0 to 1.
    let magic = r#"sum(chronicle_feed_malformed_datagrams_total{reason="magic"})"#;
    let wait_for = |want: f64| {
        let t = Instant::now();
        loop {
            if first_value(&query(prom, magic)) == Some(want) {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "{magic} never became {want}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    wait_for(0.0);
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"NOT A FEED DATAGRAM, 16 bytes or more", feed)
        .unwrap();
    wait_for(1.0);
    eprintln!("prometheus: {magic} went 0 -> 1 after a bad datagram");
    for stage in ["engine_update", "buffer_append", "flush_cadence"] {
        let q = format!(
            r#"histogram_quantile(0.99, sum by (le) (rate(chronicle_stage_latency_seconds_bucket{{stage="{stage}"}}[1m])))"#
        );
        eprintln!(
            "prometheus: {stage} p99 = {:?} s",
            first_value(&query(prom, &q))
        );
    }
    let events = first_value(&query(prom, "sum(chronicle_events_total)")).unwrap_or(0.0);
    eprintln!("prometheus: chronicle_events_total = {events}");
    assert!(events > 0.0);
    let hdr = first_value(&query(
        prom,
        r#"chronicle_stage_latency_quantile_seconds{stage="hot_path",quantile="0.99"}"#,
    ));
    eprintln!("prometheus: exact HDR hot_path p99 of the last window = {hdr:?} s");
    // Every expression of the Grafana dashboard is valid PromQL (template variables widened).
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(MANIFEST).join("../../docs/monitoring/grafana-dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut exprs = 0;
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let e = t["expr"]
                .as_str()
                .unwrap()
                .replace("$instance", ".*")
                .replace("$stage", ".*");
            let answer = query(prom, &e);
            assert_eq!(answer["status"], "success", "dashboard query {e}: {answer}");
            exprs += 1;
        }
    }
    eprintln!("grafana dashboard: {exprs} expressions accepted by prometheus");
    let rules = common::get(prom, "/api/v1/rules").unwrap();
    assert!(
        rules.1.contains("ChronicleScrapeDown"),
        "alert rules loaded: {}",
        rules.1
    );

    // promtool has nothing to say about a scrape.
    let (status, scrape) = common::get(app, "/metrics").unwrap();
    assert_eq!(status, 200);
    let (ok, out) = promtool(&dir, &["check", "metrics"], Some(&scrape));
    assert!(
        ok && out.trim().is_empty(),
        "promtool check metrics:\n{out}"
    );
    eprintln!(
        "promtool check metrics: clean ({} bytes scraped)",
        scrape.len()
    );

    // Stop the appliance (it flushes and exits once the replay is consumed); bounded.
    drop(stop_guard);
    let t = Instant::now();
    while !appliance.is_finished() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "appliance did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let summary = appliance.join().unwrap().unwrap();
    assert_eq!(summary.metrics_addr, Some(app));
    assert!(summary.shards[0].events > 0);
    assert!(!summary.shards[0].stats.publish_to_read.hist.is_empty());
}
