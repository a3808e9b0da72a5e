//! Measures a Binance USD-M combined-stream capture: the statistics the synthetic feed is
//! fitted to, printed as one markdown table with a column per capture, so the real capture
//! and the synthetic one are compared by the very same code.
//!
//! ```text
//! cargo run --release -p chronicle-replay --example fit_stats -- \
//!     ../shared/data/binance-usdm-btcusdt-20240808.gz synthetic
//! cargo run --release -p chronicle-replay --example fit_stats -- --tables <capture>
//! ```
//!
//! A capture is a path (gzip or plain, by magic) or `synthetic[:SEED]`, which generates the
//! default synthetic capture in memory. `--tables` prints the quantile tables of the first
//! capture as Rust source for `src/synthetic.rs` (`mod fitted`).

use chronicle_replay::synthetic::TABLE_GRID;
use chronicle_replay::{SyntheticConfig, SyntheticFeed};
use serde_json::Value;
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};

/// Level quantities are measured this close to the touch: far stub orders (606 BTC at
/// 1000.00) are not what the book near the market looks like.
const NEAR_TICKS: i64 = 2_000;

fn lines_of(arg: &str) -> Box<dyn Iterator<Item = String>> {
    if let Some(rest) = arg.strip_prefix("synthetic") {
        let mut cfg = SyntheticConfig::default();
        if let Some(seed) = rest.strip_prefix(':') {
            cfg.seed = seed.parse().expect("synthetic:SEED takes an integer seed");
        }
        return Box::new(SyntheticFeed::new(cfg));
    }
    let open = || File::open(arg).unwrap_or_else(|e| panic!("{arg}: {e}"));
    let mut magic = [0u8; 2];
    let gz = open().read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let r: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(open()))
    } else {
        Box::new(open())
    };
    Box::new(
        BufReader::with_capacity(1 << 20, r)
            .lines()
            .map(|l| l.expect("read capture")),
    )
}

/// `"61800.30"` with `decimals` = 2 -> 6180030; exact, no floats.
fn fixed(s: &str, decimals: u32) -> i64 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut v: i64 = int.parse().expect("decimal");
    for i in 0..decimals as usize {
        v = v * 10 + frac.as_bytes().get(i).map_or(0, |b| (b - b'0') as i64);
    }
    v
}
fn ticks(v: &Value) -> i64 {
    fixed(v.as_str().expect("price string"), 2) / 10 // 0.10 tick
}
fn lots(v: &Value) -> i64 {
    fixed(v.as_str().expect("qty string"), 3) // 0.001 lot
}
fn int(v: &Value) -> u64 {
    v.as_u64().expect("integer")
}

struct Bt {
    recv: u64,
    t_ms: u64,
    e_ms: u64,
    bid: (i64, i64),
    ask: (i64, i64),
}

#[derive(Default)]
struct Capture {
    recv: [Vec<u64>; 3], // depth, trade, bookTicker receive times
    offset_us: Vec<i64>, // E - receive
    levels: Vec<i64>,
    zero_levels: u64,
    level_dist: Vec<i64>, // ticks behind the touch (last bookTicker)
    level_lots: Vec<i64>, // non-zero level quantities within NEAR_TICKS of the touch
    depth_e_minus_t: Vec<i64>,
    depth_e_ms: Vec<u64>,
    trade_e_minus_t: Vec<i64>,
    trade_lots: Vec<i64>,
    trade_ticks: Vec<i64>,
    trade_t: HashSet<u64>,
    buyer_maker: u64,
    group_fills: Vec<i64>,
    group_gap: Vec<i64>,
    group: Option<((u64, bool), u64)>, // (T, m) key and first receive of the open group
    bts: Vec<Bt>,
    pu_breaks: u64,
    prev_u: Option<u64>,
    diffs_before_snapshot: u64,
    pre_snapshot_u: Vec<u64>,
    snapshot_id: Option<u64>,
    /// Diffs before the snapshot line with `u` >= `lastUpdateId` (the real capture has them).
    stale_diffs_before_snapshot: u64,
    first_after_straddles: Option<bool>,
}

impl Capture {
    fn line(&mut self, line: &str) {
        let (ts, json) = line.split_once(' ').expect("`<receive ns> <json>`");
        let recv: u64 = ts.parse().expect("receive ns");
        let v: Value = serde_json::from_str(json).expect("JSON");
        if let Some(id) = v.get("lastUpdateId") {
            let id = int(id);
            self.snapshot_id = Some(id);
            self.stale_diffs_before_snapshot =
                self.pre_snapshot_u.iter().filter(|&&u| u >= id).count() as u64;
            return;
        }
        let d = &v["data"];
        let e_ms = int(&d["E"]);
        let t_ms = int(&d["T"]);
        self.offset_us
            .push(e_ms as i64 * 1000 - (recv / 1000) as i64);
        match d["e"].as_str().expect("event type") {
            "depthUpdate" => {
                self.recv[0].push(recv);
                self.depth_e_minus_t.push(e_ms as i64 - t_ms as i64);
                self.depth_e_ms.push(e_ms);
                let (first, last, prev) = (int(&d["U"]), int(&d["u"]), int(&d["pu"]));
                if self.prev_u.is_some_and(|u| u != prev) {
                    self.pu_breaks += 1;
                }
                self.prev_u = Some(last);
                match self.snapshot_id {
                    None => {
                        self.diffs_before_snapshot += 1;
                        self.pre_snapshot_u.push(last);
                    }
                    Some(id) if self.first_after_straddles.is_none() => {
                        self.first_after_straddles = Some(first <= id && id <= last)
                    }
                    _ => {}
                }
                let (bid, ask) = self
                    .bts
                    .last()
                    .map_or((None, None), |b| (Some(b.bid.0), Some(b.ask.0)));
                let mut n = 0;
                for (side, touch, sign) in [("b", bid, -1), ("a", ask, 1)] {
                    for l in d[side].as_array().expect("levels") {
                        n += 1;
                        let q = lots(&l[1]);
                        let dist = touch.map(|t| (ticks(&l[0]) - t) * sign);
                        if q == 0 {
                            self.zero_levels += 1;
                        } else if dist.is_some_and(|d| d <= NEAR_TICKS) {
                            self.level_lots.push(q);
                        }
                        self.level_dist.extend(dist);
                    }
                }
                self.levels.push(n);
            }
            "trade" => {
                self.recv[1].push(recv);
                self.trade_e_minus_t.push(e_ms as i64 - t_ms as i64);
                self.trade_lots.push(lots(&d["q"]));
                self.trade_ticks.push(ticks(&d["p"]));
                self.trade_t.insert(t_ms);
                let m = d["m"].as_bool().expect("m");
                self.buyer_maker += u64::from(m);
                // One taker order = consecutive fills with the same T and aggressor side.
                match self.group {
                    Some((key, _)) if key == (t_ms, m) => {
                        *self.group_fills.last_mut().expect("open group") += 1
                    }
                    other => {
                        if let Some((_, start)) = other {
                            self.group_gap.push((recv - start) as i64);
                        }
                        self.group = Some(((t_ms, m), recv));
                        self.group_fills.push(1);
                    }
                }
            }
            "bookTicker" => {
                self.recv[2].push(recv);
                let bt = Bt {
                    recv,
                    t_ms,
                    e_ms,
                    bid: (ticks(&d["b"]), lots(&d["B"])),
                    ask: (ticks(&d["a"]), lots(&d["A"])),
                };
                self.bts.push(bt);
            }
            _ => {}
        }
    }
}

fn sorted(v: &[i64]) -> Vec<i64> {
    let mut s = v.to_vec();
    s.sort_unstable();
    s
}
/// Quantile at `p` per 100000 of a sorted vector.
fn q(s: &[i64], p: u64) -> i64 {
    if s.is_empty() {
        return 0;
    }
    s[((p as usize * s.len()) / 100_000).min(s.len() - 1)]
}
fn mean(v: &[i64]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64
}
fn cv(v: &[i64]) -> f64 {
    let m = mean(v);
    let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / v.len().max(1) as f64;
    var.sqrt() / m
}
fn gaps(t: &[u64]) -> Vec<i64> {
    t.windows(2).map(|w| w[1] as i64 - w[0] as i64).collect()
}
fn pct(n: u64, of: u64) -> String {
    format!("{:.1}%", 100.0 * n as f64 / of.max(1) as f64)
}
fn share(v: &[i64], f: impl Fn(i64) -> bool) -> String {
    pct(v.iter().filter(|&&x| f(x)).count() as u64, v.len() as u64)
}
/// Quantiles of a sorted vector at `ps` (per 100000), each shown by `show`, joined by " / ".
fn quantiles<D: std::fmt::Display>(s: &[i64], ps: &[u64], show: impl Fn(i64) -> D) -> String {
    let v: Vec<String> = ps.iter().map(|&p| show(q(s, p)).to_string()).collect();
    v.join(" / ")
}
fn us(ns: i64) -> String {
    if ns >= 10_000_000 {
        format!("{:.0} ms", ns as f64 / 1e6)
    } else if ns >= 1_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} µs", ns as f64 / 1e3)
    }
}

impl Capture {
    /// Non-trade bookTicker gaps and same-price touch quantity changes: the quote process.
    fn quote_process(&self) -> (Vec<i64>, Vec<i64>) {
        let quotes: Vec<&Bt> = self
            .bts
            .iter()
            .filter(|b| !self.trade_t.contains(&b.t_ms))
            .collect();
        let gap = quotes
            .windows(2)
            .map(|w| (w[1].recv - w[0].recv) as i64)
            .collect();
        let mut delta = Vec::new();
        for w in quotes.windows(2) {
            let (a, b) = (w[0], w[1]);
            if a.bid.0 == b.bid.0 && a.ask.0 == b.ask.0 {
                for (x, y) in [(a.bid.1, b.bid.1), (a.ask.1, b.ask.1)] {
                    if x != y {
                        delta.push(y - x);
                    }
                }
            }
        }
        (gap, delta)
    }

    /// Standard deviation of the mid change over `secs` seconds, in ticks (exchange time).
    fn mid_vol(&self, secs: u64) -> f64 {
        let mut marks = Vec::new();
        let mut next = 0;
        for b in &self.bts {
            if b.e_ms >= next {
                marks.push(b.bid.0 + b.ask.0); // half-ticks
                next = (b.e_ms / (secs * 1000) + 1) * secs * 1000;
            }
        }
        let d: Vec<i64> = marks.windows(2).map(|w| w[1] - w[0]).collect();
        let m = mean(&d);
        (d.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / d.len().max(1) as f64).sqrt()
            / 2.0
    }

    fn rows(&self) -> Vec<(String, String)> {
        let mut r: Vec<(String, String)> = Vec::new();
        let mut row = |k: &str, v: String| r.push((k.to_owned(), v));
        let all: Vec<u64> = {
            let mut a: Vec<u64> = self.recv.iter().flatten().copied().collect();
            a.sort_unstable();
            a
        };
        let span = all.last().unwrap_or(&0) - all.first().unwrap_or(&0);
        let n: Vec<u64> = self.recv.iter().map(|v| v.len() as u64).collect();
        let total: u64 = n.iter().sum();
        row("duration (receive)", format!("{:.1} s", span as f64 / 1e9));
        for (i, name) in ["depth", "trade", "bookTicker"].iter().enumerate() {
            row(
                &format!("{name} messages"),
                format!(
                    "{} ({}, {:.1}/s)",
                    n[i],
                    pct(n[i], total),
                    n[i] as f64 * 1e9 / span.max(1) as f64
                ),
            );
        }
        for (i, name) in ["depth", "trade", "bookTicker"].iter().enumerate() {
            let g = sorted(&gaps(&self.recv[i]));
            row(
                &format!("{name} inter-arrival p50 / p90 / p99"),
                quantiles(&g, &[50_000, 90_000, 99_000], us),
            );
            row(
                &format!("{name} inter-arrival CV"),
                format!("{:.2}", cv(&g)),
            );
        }
        let lv = sorted(&self.levels);
        let nlv: i64 = lv.iter().sum();
        row(
            "levels per depth message: total / mean",
            format!("{nlv} / {:.1}", mean(&lv)),
        );
        row(
            "levels per depth message p10 / p50 / p90 / p99",
            quantiles(&lv, &[10_000, 50_000, 90_000, 99_000], |x| x),
        );
        row("levels removed (qty 0)", pct(self.zero_levels, nlv as u64));
        let dist = sorted(&self.level_dist);
        row(
            "level distance from touch p10 / p50 / p90 (ticks)",
            quantiles(&dist, &[10_000, 50_000, 90_000], |x| x),
        );
        let ll = sorted(&self.level_lots);
        row(
            "level qty near touch p25 / p50 / p90 (lots)",
            quantiles(&ll, &[25_000, 50_000, 90_000], |x| x),
        );
        let tl = sorted(&self.trade_lots);
        row(
            "trade qty p10 / p50 / p90 / p99 (lots)",
            quantiles(&tl, &[10_000, 50_000, 90_000, 99_000], |x| x),
        );
        row("trade qty mean (lots)", format!("{:.1}", mean(&tl)));
        row("trades buyer-is-maker", pct(self.buyer_maker, n[1]));
        let gf = sorted(&self.group_fills);
        row(
            "fills per taker order mean / p90 / p99",
            format!("{:.2} / {} / {}", mean(&gf), q(&gf, 90_000), q(&gf, 99_000)),
        );
        let step: Vec<i64> = self
            .trade_ticks
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .collect();
        row(
            "trade price step 0 / 1 / 2-5 / >5 ticks",
            format!(
                "{} / {} / {} / {}",
                share(&step, |s| s == 0),
                share(&step, |s| s == 1),
                share(&step, |s| (2..=5).contains(&s)),
                share(&step, |s| s > 5)
            ),
        );
        let sp: Vec<i64> = self.bts.iter().map(|b| b.ask.0 - b.bid.0).collect();
        row(
            "bookTicker spread 1 tick / crossed",
            format!("{} / {}", share(&sp, |s| s == 1), share(&sp, |s| s <= 0)),
        );
        let top = sorted(
            &self
                .bts
                .iter()
                .flat_map(|b| [b.bid.1, b.ask.1])
                .collect::<Vec<_>>(),
        );
        row(
            "touch qty p10 / p50 / p90 (lots)",
            quantiles(&top, &[10_000, 50_000, 90_000], |x| x),
        );
        let mid_moves = self
            .bts
            .windows(2)
            .filter(|w| w[0].bid.0 + w[0].ask.0 != w[1].bid.0 + w[1].ask.0)
            .count() as u64;
        row("bookTickers that move the mid", pct(mid_moves, n[2]));
        row(
            "mid change stdev 1 s / 10 s (ticks)",
            format!("{:.1} / {:.1}", self.mid_vol(1), self.mid_vol(10)),
        );
        let det = sorted(&self.depth_e_minus_t);
        row(
            "depth E-T p50 / p90 (ms)",
            quantiles(&det, &[50_000, 90_000], |x| x),
        );
        row("trade E-T = 0", share(&self.trade_e_minus_t, |x| x == 0));
        let off = sorted(&self.offset_us);
        let ms = |x: i64| format!("{:.1}", x as f64 / 1e3);
        row(
            "E - receive p1 / p10 / p50 / p99 (ms)",
            quantiles(&off, &[1_000, 10_000, 50_000, 99_000], ms),
        );
        row("pu breaks", self.pu_breaks.to_string());
        row(
            "diffs before snapshot (of them u >= lastUpdateId) / first after straddles",
            format!(
                "{} ({}) / {}",
                self.diffs_before_snapshot,
                self.stale_diffs_before_snapshot,
                self.first_after_straddles
                    .map_or("-".into(), |b| b.to_string())
            ),
        );
        r
    }

    fn tables(&self) {
        let (quote_gap, touch_delta) = self.quote_process();
        // Exchange-time gaps: receive-time ones would add the delivery jitter twice.
        let depth_gap: Vec<i64> = gaps(&self.depth_e_ms)
            .iter()
            .map(|g| g * 1_000_000)
            .collect();
        let dist: Vec<i64> = self.level_dist.iter().map(|&d| d.max(1)).collect();
        let print = |name: &str, why: &str, v: &[i64]| {
            let s = sorted(v);
            let k: Vec<String> = TABLE_GRID.iter().map(|&p| q(&s, p).to_string()).collect();
            println!(
                "    /// {why}\n    pub const {name}: Table = Table([{}]);",
                k.join(", ")
            );
        };
        print(
            "QUOTE_GAP_NS",
            "Gap between touch quote changes (bookTickers not caused by a trade).",
            &quote_gap,
        );
        print(
            "TOUCH_DELTA_LOTS",
            "Touch quantity change of a quote that keeps both prices.",
            &touch_delta,
        );
        print(
            "TAKER_GAP_NS",
            "Gap between taker orders (fills sharing T and side are one order).",
            &self.group_gap,
        );
        print(
            "TAKER_FILLS",
            "Fills (trade messages) per taker order.",
            &self.group_fills,
        );
        print("FILL_LOTS", "Quantity of one fill.", &self.trade_lots);
        print("DEPTH_GAP_NS", "Gap between depth diffs.", &depth_gap);
        print("DEPTH_LEVELS", "Levels per depth diff.", &self.levels);
        print(
            "LEVEL_DISTANCE_TICKS",
            "Distance of a diff's level behind its side's touch.",
            &dist,
        );
        print(
            "LEVEL_LOTS",
            "Quantity a diff sets on a level within 2000 ticks of the touch.",
            &self.level_lots,
        );
        let touch: Vec<i64> = self.bts.iter().flat_map(|b| [b.bid.1, b.ask.1]).collect();
        print("TOUCH_LOTS", "Touch quantity (bookTicker B and A).", &touch);
        let step: Vec<i64> = self
            .bts
            .windows(2)
            .map(|w| (w[1].bid.0 + w[1].ask.0 - w[0].bid.0 - w[0].ask.0).abs())
            .filter(|&d| d > 0)
            .collect();
        print(
            "MID_STEP_HALF_TICKS",
            "Size of a mid move between bookTickers, in half ticks.",
            &step,
        );
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let tables = args
        .iter()
        .position(|a| a == "--tables")
        .map(|i| args.remove(i))
        .is_some();
    if args.is_empty() {
        eprintln!("usage: fit_stats [--tables] <capture.gz | capture | synthetic[:SEED]>...");
        std::process::exit(2);
    }
    let caps: Vec<Capture> = args
        .iter()
        .map(|a| {
            let mut c = Capture::default();
            lines_of(a).for_each(|l| c.line(&l));
            c
        })
        .collect();
    if tables {
        caps[0].tables();
        return;
    }
    let names: Vec<String> = args
        .iter()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_owned())
        .collect();
    println!("| statistic | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    let rows: Vec<Vec<(String, String)>> = caps.iter().map(Capture::rows).collect();
    for (i, (k, _)) in rows[0].iter().enumerate() {
        let vals: Vec<&str> = rows.iter().map(|r| r[i].1.as_str()).collect();
        println!("| {k} | {} |", vals.join(" | "));
    }
}
