//! The synthetic capture: deterministic, in the real capture's exact shape, internally
//! consistent (update ids, snapshot, book vs bookTicker vs trades) and near the real
//! capture's statistics.

use chronicle_replay::{write_capture, SyntheticConfig, SyntheticFeed};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The default capture, generated once for all tests.
fn default_capture() -> &'static [String] {
    static LINES: OnceLock<Vec<String>> = OnceLock::new();
    LINES.get_or_init(|| SyntheticFeed::new(SyntheticConfig::default()).collect())
}

fn short(seed: u64) -> Vec<String> {
    let cfg = SyntheticConfig {
        seed,
        duration_ns: 5_000_000_000,
        ..SyntheticConfig::default()
    };
    SyntheticFeed::new(cfg).collect()
}

fn split(line: &str) -> (u64, Value) {
    let (ts, json) = line.split_once(' ').expect("`<receive ns> <json>`");
    (
        ts.parse().expect("receive ns"),
        serde_json::from_str(json).expect("JSON"),
    )
}

/// Exact decimal to integer: "61800.30" with 2 decimals -> 6180030.
fn fixed(v: &Value, decimals: usize) -> i64 {
    let s = v.as_str().expect("a decimal string");
    let (int, frac) = s.split_once('.').expect("a decimal point");
    assert_eq!(
        frac.len(),
        decimals,
        "{s}: Binance prints {decimals} decimals"
    );
    assert!(
        int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()),
        "{s}"
    );
    format!("{int}{frac}").parse().expect("digits")
}
fn ticks(v: &Value) -> i64 {
    let cents = fixed(v, 2);
    assert_eq!(cents % 10, 0, "{v}: off the 0.10 tick");
    cents / 10
}
fn lots(v: &Value) -> i64 {
    fixed(v, 3)
}
fn int(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{v}: not an unsigned integer"))
}
fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn same_seed_same_capture_other_seed_other_capture() {
    assert_eq!(short(7), short(7));
    assert_ne!(short(7), short(8));
    let mut bytes = Vec::new();
    let stats = write_capture(&SyntheticConfig::default(), &mut bytes).unwrap();
    let lines = default_capture();
    assert_eq!(bytes, (lines.join("\n") + "\n").into_bytes());
    assert_eq!(stats.lines, lines.len() as u64);
    assert_eq!(stats.bytes, bytes.len() as u64);
    assert_eq!(stats.snapshots, 1);
    assert_eq!(
        stats.depth_messages + stats.trades + stats.book_tickers + 1,
        stats.lines
    );
}

#[test]
fn every_line_has_the_real_capture_shape() {
    let mut last_receive = 0;
    let mut last_e = BTreeMap::new();
    let mut snapshots = 0;
    for line in default_capture() {
        assert!(!line.contains('\n'));
        let (receive, v) = split(line);
        assert!(receive > last_receive, "lines are in receive order");
        last_receive = receive;
        if v.get("lastUpdateId").is_some() {
            snapshots += 1;
            assert_eq!(keys(&v), ["lastUpdateId", "E", "T", "bids", "asks"]);
            assert!(int(&v["E"]) >= int(&v["T"]));
            for (side, descending) in [("bids", true), ("asks", false)] {
                let levels = v[side].as_array().unwrap();
                assert_eq!(levels.len(), 1000, "REST limit=1000");
                let p: Vec<i64> = levels.iter().map(|l| ticks(&l[0])).collect();
                assert!(p
                    .windows(2)
                    .all(|w| (w[0] > w[1]) == descending && w[0] != w[1]));
                assert!(levels.iter().all(|l| lots(&l[1]) > 0));
            }
            continue;
        }
        assert_eq!(keys(&v), ["stream", "data"]);
        let (stream, d) = (v["stream"].as_str().unwrap(), &v["data"]);
        assert_eq!(d["s"], "BTCUSDT");
        let e = int(&d["E"]);
        assert!(e >= int(&d["T"]), "published after the event");
        // Each stream is in exchange-time order (the streams need not be).
        assert!(
            e >= *last_e.get(stream).unwrap_or(&0),
            "{stream} out of order"
        );
        last_e.insert(stream.to_owned(), e);
        match stream {
            "btcusdt@depth@0ms" => {
                assert_eq!(keys(d), ["e", "E", "T", "s", "U", "u", "pu", "b", "a"]);
                assert_eq!(d["e"], "depthUpdate");
                for side in ["b", "a"] {
                    let levels = d[side].as_array().unwrap();
                    let p: Vec<i64> = levels.iter().map(|l| ticks(&l[0])).collect();
                    assert!(
                        p.windows(2).all(|w| w[0] < w[1]),
                        "ascending, no duplicates"
                    );
                    assert!(p.iter().all(|&p| p > 0));
                    levels.iter().for_each(|l| _ = lots(&l[1]));
                }
            }
            "btcusdt@trade" => {
                assert_eq!(keys(d), ["e", "E", "T", "s", "t", "p", "q", "X", "m"]);
                assert_eq!(d["e"], "trade");
                assert_eq!(d["X"], "MARKET");
                assert!(d["m"].is_boolean());
                assert!(ticks(&d["p"]) > 0 && lots(&d["q"]) > 0);
                int(&d["t"]);
            }
            "btcusdt@bookTicker" => {
                assert_eq!(keys(d), ["e", "u", "s", "b", "B", "a", "A", "T", "E"]);
                assert_eq!(d["e"], "bookTicker");
                assert!(ticks(&d["b"]) < ticks(&d["a"]), "never crossed");
                assert!(lots(&d["B"]) > 0 && lots(&d["A"]) > 0);
                int(&d["u"]);
            }
            other => panic!("unexpected stream {other}"),
        }
    }
    assert_eq!(snapshots, 1);
}

#[test]
fn update_ids_chain_and_the_snapshot_is_straddled() {
    let snapshot_id = default_capture()
        .iter()
        .find_map(|l| split(l).1.get("lastUpdateId").map(int))
        .expect("a snapshot");
    let mut prev_u: Option<u64> = None;
    let mut snapshot: Option<u64> = None;
    let (mut before, mut first_after) = (0, None);
    let mut last_bt_u = 0;
    let mut last_trade_id = 0;
    for line in default_capture() {
        let (_, v) = split(line);
        if let Some(id) = v.get("lastUpdateId") {
            snapshot = Some(int(id));
            continue;
        }
        let d = &v["data"];
        match d["e"].as_str().unwrap() {
            "depthUpdate" => {
                let (first, last, pu) = (int(&d["U"]), int(&d["u"]), int(&d["pu"]));
                assert!(pu < first && first <= last, "U..u follows pu");
                if let Some(p) = prev_u {
                    assert_eq!(pu, p, "pu is the previous diff's u");
                }
                prev_u = Some(last);
                match snapshot {
                    None => before += 1,
                    Some(_) if first_after.is_none() => first_after = Some((first, last)),
                    Some(_) => {}
                }
                if snapshot.is_none() {
                    assert!(
                        last < snapshot_id,
                        "a diff before the snapshot line reaches past it"
                    );
                }
            }
            "bookTicker" => {
                let u = int(&d["u"]);
                assert!(u > last_bt_u, "bookTicker ids increase");
                last_bt_u = u;
            }
            "trade" => {
                let t = int(&d["t"]);
                assert!(
                    last_trade_id == 0 || t == last_trade_id + 1,
                    "trade ids are consecutive"
                );
                last_trade_id = t;
            }
            _ => unreachable!(),
        }
    }
    let id = snapshot.expect("a snapshot");
    assert_eq!(id, snapshot_id);
    assert_eq!(before, SyntheticConfig::default().snapshot_after_diffs);
    let (first, last) = first_after.expect("diffs after the snapshot");
    assert!(
        first <= id && id <= last,
        "the first diff after the snapshot straddles it"
    );
}

type Book = BTreeMap<i64, i64>;

fn apply(book: &mut Book, levels: &Value) {
    for l in levels.as_array().unwrap() {
        match lots(&l[1]) {
            0 => book.remove(&ticks(&l[0])),
            q => book.insert(ticks(&l[0]), q),
        };
    }
}

/// Rebuilds the book as a client would (snapshot, then diffs synchronised by update id)
/// and checks it against every bookTicker and trade.
#[test]
fn book_tickers_and_trades_agree_with_the_depth_book() {
    let lines: Vec<(u64, Value)> = default_capture().iter().map(|l| split(l)).collect();
    // bookTickers by update id: (u, [bid, bid qty, ask, ask qty]).
    let tops: Vec<(u64, [i64; 4])> = lines
        .iter()
        .filter(|(_, v)| {
            v.get("stream")
                .is_some_and(|s| s.as_str().unwrap().ends_with("@bookTicker"))
        })
        .map(|(_, v)| {
            let d = &v["data"];
            (
                int(&d["u"]),
                [ticks(&d["b"]), lots(&d["B"]), ticks(&d["a"]), lots(&d["A"])],
            )
        })
        .collect();
    let top_at = |u: u64| {
        tops[..tops.partition_point(|t| t.0 <= u)]
            .last()
            .expect("a bookTicker before")
            .1
    };
    let (mut bids, mut asks, mut synced): (Book, Book, Option<u64>) = Default::default();
    let mut checked = 0;
    for (_, v) in &lines {
        if let Some(id) = v.get("lastUpdateId") {
            apply(&mut bids, &v["bids"]);
            apply(&mut asks, &v["asks"]);
            synced = Some(int(id));
            let top = top_at(int(id));
            assert_eq!(
                (top[0], top[2]),
                (
                    *bids.last_key_value().unwrap().0,
                    *asks.first_key_value().unwrap().0
                )
            );
            continue;
        }
        let d = &v["data"];
        if d["e"] != "depthUpdate" || synced.is_none_or(|id| int(&d["u"]) < id) {
            continue;
        }
        apply(&mut bids, &d["b"]);
        apply(&mut asks, &d["a"]);
        let (b, bq) = bids.last_key_value().map(|(p, q)| (*p, *q)).unwrap();
        let (a, aq) = asks.first_key_value().map(|(p, q)| (*p, *q)).unwrap();
        assert!(b < a, "the depth book never crosses");
        // The latest bookTicker at or before this diff's last id shows this very touch.
        assert_eq!(top_at(int(&d["u"])), [b, bq, a, aq], "diff u={}", d["u"]);
        checked += 1;
    }
    assert!(checked > 1000, "checked {checked} diffs");

    // Trades: a taker order's first fill is at the touch the last bookTicker showed, and
    // later fills walk away from it.
    let mut touch = [0i64; 4];
    let mut order: Option<(u64, bool, i64)> = None; // (T, buyer is maker, last price)
    for (_, v) in &lines {
        let Some(d) = v.get("data") else { continue };
        match d["e"].as_str().unwrap() {
            "bookTicker" => {
                touch = [ticks(&d["b"]), lots(&d["B"]), ticks(&d["a"]), lots(&d["A"])];
                order = None;
            }
            "trade" => {
                let (t, m, p) = (int(&d["T"]), d["m"].as_bool().unwrap(), ticks(&d["p"]));
                match order {
                    Some((ot, om, last)) if (ot, om) == (t, m) => {
                        assert!(
                            if m { p <= last } else { p >= last },
                            "a sweep walks away from the touch"
                        );
                    }
                    _ => assert_eq!(
                        p,
                        if m { touch[0] } else { touch[2] },
                        "a taker order starts at the touch"
                    ),
                }
                order = Some((t, m, p));
            }
            _ => {}
        }
    }
}

fn pct(n: usize, of: usize) -> f64 {
    100.0 * n as f64 / of as f64
}

fn quantile(mut v: Vec<i64>, p: f64) -> i64 {
    v.sort_unstable();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

/// Targets from the real capture (docs/synthetic-feed.md), with tolerances wide enough for
/// a minute of a heavy-tailed process, narrow enough to catch a broken model.
#[test]
fn statistics_are_near_the_real_capture() {
    let (mut depth, mut trades, mut tickers) = (0, 0, 0);
    let (mut levels, mut removed) = (0, 0);
    let (mut trade_lots, mut buyer_maker, mut steps) = (Vec::new(), 0, Vec::new());
    let (mut one_tick, mut offsets) = (0, Vec::new());
    let mut last_price = None;
    for line in default_capture() {
        let (receive, v) = split(line);
        let Some(d) = v.get("data") else { continue };
        offsets.push((int(&d["E"]) * 1_000_000) as i64 - receive as i64);
        match d["e"].as_str().unwrap() {
            "depthUpdate" => {
                depth += 1;
                for l in d["b"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .chain(d["a"].as_array().unwrap())
                {
                    levels += 1;
                    removed += usize::from(lots(&l[1]) == 0);
                }
            }
            "trade" => {
                trades += 1;
                trade_lots.push(lots(&d["q"]));
                buyer_maker += usize::from(d["m"].as_bool().unwrap());
                let p = ticks(&d["p"]);
                steps.extend(last_price.map(|l: i64| (p - l).abs()));
                last_price = Some(p);
            }
            _ => {
                tickers += 1;
                one_tick += usize::from(ticks(&d["a"]) - ticks(&d["b"]) == 1);
            }
        }
    }
    let all = depth + trades + tickers;
    let near = |what: &str, got: f64, want: f64, tolerance: f64| {
        assert!(
            (got - want).abs() <= tolerance,
            "{what}: {got:.2}, real {want} ± {tolerance}"
        );
    };
    // Message mix (real: 6,551 / 21,313 / 66,089 in 345 s).
    near("depth share %", pct(depth, all), 7.0, 1.5);
    near("trade share %", pct(trades, all), 22.7, 6.0);
    near("bookTicker share %", pct(tickers, all), 70.3, 6.0);
    near("depth diffs per s", depth as f64 / 60.0, 19.0, 1.0);
    // Depth: 443,521 levels in 6,551 diffs, 21.6% removals.
    near("levels per diff", levels as f64 / depth as f64, 67.7, 12.0);
    near("removed %", pct(removed, levels), 21.6, 3.0);
    // Trades: size p50 16 lots, p90 265; 64% zero price steps. The model is side-neutral
    // (the real 54.9% buyer-is-maker is that capture's falling market), so 50%.
    near(
        "trade qty p50",
        quantile(trade_lots.clone(), 0.5) as f64,
        16.0,
        6.0,
    );
    near(
        "trade qty p90",
        quantile(trade_lots, 0.9) as f64,
        265.0,
        120.0,
    );
    near("buyer-is-maker %", pct(buyer_maker, trades), 50.0, 15.0);
    near(
        "zero price steps %",
        pct(steps.iter().filter(|&&s| s == 0).count(), steps.len()),
        64.3,
        15.0,
    );
    near("one-tick spread %", pct(one_tick, tickers), 94.2, 5.0);
    // Local clock ~1.27 s behind exchange time.
    near(
        "E - receive p50 (ms)",
        quantile(offsets, 0.5) as f64 / 1e6,
        1269.5,
        5.0,
    );
}

/// The default capture crosses UTC midnight in exchange time, and the clock offset puts
/// messages of the 9th (by exchange time) at receive times of the 8th, as in the real
/// capture: partitioning must use exchange time.
#[test]
fn exchange_and_receive_time_disagree_across_midnight() {
    const MIDNIGHT_MS: u64 = 1_723_161_600_000; // 2024-08-09T00:00:00Z
    let split_lines: Vec<(u64, u64)> = default_capture()
        .iter()
        .filter_map(|l| {
            let (receive, v) = split(l);
            v.get("data").map(|d| (receive, int(&d["E"])))
        })
        .collect();
    assert!(
        split_lines.first().unwrap().1 < MIDNIGHT_MS && split_lines.last().unwrap().1 > MIDNIGHT_MS
    );
    let disagree = split_lines
        .iter()
        .filter(|(r, e)| *e >= MIDNIGHT_MS && *r < MIDNIGHT_MS * 1_000_000)
        .count();
    assert!(
        disagree > 100,
        "{disagree} messages are on the 9th by exchange time, the 8th by receive time"
    );
}
