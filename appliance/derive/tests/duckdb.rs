//! DuckDB reads the derived Parquet and agrees with `chronicle cat`.
//!
//! `tests/duckdb.sh` installs DuckDB's Python package (pinned) into `target/test-tools/duckdb`;
//! without it the tests skip (`chronicle_testkit::skip`). `tests/duckdb_query.py` runs the SQL. The expected side
//! is `cat`'s reading of the partition (the reader's scan and `render::jsonl`, parsed back
//! from JSON), never the Deriver's: per type, row counts, exact sums/min/max of every decimal,
//! integer and timestamp column, distinct strings, true-counts, snapshot levels; then whole
//! rows compared column by column; then the schema's types, row groups and footer metadata.

mod common;
use chronicle_derive::{derive_partition, DeriveOptions, Deriver, Scale};
use chronicle_protocol::type_id;
use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Int,
    Decimal,
    Bool,
    Time,
    /// `cat` prints 0 for unknown; the column holds null.
    TimeOrZero,
    Levels,
}
use Kind::*;

/// Every column, in schema order, and what it holds. `cat`'s key is the same name (with
/// `_ns` for timestamps).
const COLUMNS: &[(&str, Kind)] = &[
    ("type", Text),
    ("type_id", Int),
    ("token_id", Int),
    ("global_tick_id", Int),
    ("exchange_ts", Time),
    ("receive_ts", Time),
    ("side", Text),
    ("aggressor", Text),
    ("action", Text),
    ("price", Decimal),
    ("quantity", Decimal),
    ("bid_price", Decimal),
    ("bid_quantity", Decimal),
    ("ask_price", Decimal),
    ("ask_quantity", Decimal),
    ("trade_id", Int),
    ("order_id", Int),
    ("update_id", Int),
    ("first_update_id", Int),
    ("last_update_id", Int),
    ("prev_update_id", Int),
    ("last_in_message", Bool),
    ("sequence", Int),
    ("open_interest", Decimal),
    ("mark_price", Decimal),
    ("index_price", Decimal),
    ("funding_rate", Decimal),
    ("next_funding_ts", TimeOrZero),
    ("chunk", Int),
    ("last_chunk", Bool),
    ("injected", Bool),
    ("reason", Text),
    ("expected", Int),
    ("received", Int),
    ("lost", Int),
    ("venue", Text),
    ("raw_symbol", Text),
    ("price_exponent", Int),
    ("quantity_exponent", Int),
    ("instrument_class", Text),
    ("tick_size", Decimal),
    ("lot_size", Decimal),
    ("symbol_id", Int),
    ("expiration", TimeOrZero),
    ("flags", Int),
    ("bids", Levels),
    ("asks", Levels),
];

fn cat_key(col: &str, kind: Kind) -> String {
    match kind {
        Time | TimeOrZero => format!("{col}_ns"),
        _ => col.to_owned(),
    }
}

// ---- exact decimals, for the expected side ----

/// `m × 10^-scale`, exact.
#[derive(Debug, Clone, Copy)]
struct Dec {
    m: i128,
    scale: u32,
}

impl Dec {
    fn parse(s: &str) -> Dec {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let m: i128 = format!("{int}{frac}")
            .parse()
            .unwrap_or_else(|_| panic!("decimal {s}"));
        Dec {
            m,
            scale: frac.len() as u32,
        }
    }

    fn at(self, scale: u32) -> i128 {
        self.m * 10i128.pow(scale - self.scale)
    }

    fn add(self, o: Dec) -> Dec {
        let scale = self.scale.max(o.scale);
        Dec {
            m: self.at(scale) + o.at(scale),
            scale,
        }
    }

    fn cmp(self, o: Dec) -> std::cmp::Ordering {
        let scale = self.scale.max(o.scale);
        self.at(scale).cmp(&o.at(scale))
    }

    /// Canonical text: no trailing fractional zeros, so `1.50` and `1.5` compare equal.
    fn canonical(self) -> String {
        let (mut m, mut scale) = (self.m, self.scale);
        while scale > 0 && m % 10 == 0 {
            m /= 10;
            scale -= 1;
        }
        let sign = if m < 0 { "-" } else { "" };
        let a = m.unsigned_abs();
        let p = 10u128.pow(scale);
        if scale == 0 {
            format!("{sign}{a}")
        } else {
            format!("{sign}{}.{:0w$}", a / p, a % p, w = scale as usize)
        }
    }
}

/// A number printed by `cat` (JSON number or decimal string), exact.
fn number(v: &Value) -> Dec {
    match v {
        Value::Number(n) => Dec::parse(&n.to_string()),
        Value::String(s) => Dec::parse(s),
        v => panic!("not a number: {v}"),
    }
}

fn canonical_number(v: &Value) -> Value {
    match v {
        Value::Null => Value::Null,
        v => Value::String(number(v).canonical()),
    }
}

/// A `cat` row's value for a column, in the canonical form both sides are compared in.
fn cat_value(row: &Value, col: &str, kind: Kind) -> Value {
    let v = row.get(cat_key(col, kind)).cloned().unwrap_or(Value::Null);
    if col == "type_id" && v.is_null() {
        // `cat` names known types; their ids are the protocol's.
        let name = row["type"].as_str().unwrap();
        let id = (0..=u16::MAX)
            .find(|&id| type_id::name(id) == Some(name))
            .unwrap();
        return json!(id.to_string());
    }
    canonical(v, kind)
}

fn canonical(v: Value, kind: Kind) -> Value {
    match (kind, &v) {
        (TimeOrZero, Value::Number(n)) if n.as_u64() == Some(0) => Value::Null,
        (Int | Decimal | Time | TimeOrZero, _) => canonical_number(&v),
        (Levels, Value::Array(levels)) => Value::Array(
            levels
                .iter()
                .map(|l| Value::Array(l.as_array().unwrap().iter().map(canonical_number).collect()))
                .collect(),
        ),
        _ => v,
    }
}

// ---- the expected summary, from cat ----

#[derive(Default)]
struct Acc {
    count: u64,
    sum: Option<Dec>,
    min: Option<Dec>,
    max: Option<Dec>,
    trues: u64,
    distinct: BTreeSet<String>,
    levels: u64,
    level_price: Option<Dec>,
    level_qty: Option<Dec>,
}

fn add(a: &mut Option<Dec>, d: Dec) {
    *a = Some(a.map_or(d, |s| s.add(d)));
}

fn opt(d: Option<Dec>) -> String {
    d.map_or("null".into(), Dec::canonical)
}

/// The aggregates of one column over one type's rows, by name.
fn summarize(kind: Kind, a: &Acc) -> Vec<(&'static str, String)> {
    let mut v = vec![("count", a.count.to_string())];
    match kind {
        Text => v.push((
            "distinct",
            if a.distinct.is_empty() {
                "null".into()
            } else {
                a.distinct.iter().cloned().collect::<Vec<_>>().join("|")
            },
        )),
        Int | Decimal | Time | TimeOrZero => {
            v.push(("sum", opt(a.sum)));
            v.push(("min", opt(a.min)));
            v.push(("max", opt(a.max)));
        }
        Bool => v.push(("true", a.trues.to_string())),
        Levels => {
            v.push((
                "levels",
                if a.count == 0 {
                    "null".into()
                } else {
                    a.levels.to_string()
                },
            ));
            v.push(("sum_price", opt(a.level_price)));
            v.push(("sum_quantity", opt(a.level_qty)));
        }
    }
    v
}

type Summary = BTreeMap<String, String>;

fn expected_summary(rows: &[Value]) -> Summary {
    let mut acc: BTreeMap<(String, &str), Acc> = BTreeMap::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for row in rows {
        let ty = row["type"].as_str().unwrap().to_owned();
        *counts.entry(ty.clone()).or_default() += 1;
        for &(col, kind) in COLUMNS {
            let a = acc.entry((ty.clone(), col)).or_default();
            let v = cat_value(row, col, kind);
            if v.is_null() {
                continue;
            }
            a.count += 1;
            match kind {
                Text => {
                    a.distinct.insert(v.as_str().unwrap().to_owned());
                }
                Bool => a.trues += v.as_bool().unwrap() as u64,
                Levels => {
                    for l in v.as_array().unwrap() {
                        a.levels += 1;
                        add(&mut a.level_price, number(&l[0]));
                        add(&mut a.level_qty, number(&l[1]));
                    }
                }
                _ => {
                    let d = number(&v);
                    add(&mut a.sum, d);
                    a.min = Some(a.min.map_or(d, |m| if d.cmp(m).is_lt() { d } else { m }));
                    a.max = Some(a.max.map_or(d, |m| if d.cmp(m).is_gt() { d } else { m }));
                }
            }
        }
    }
    let mut s: Summary = counts
        .iter()
        .map(|(t, n)| (format!("{t}/rows"), n.to_string()))
        .collect();
    for ((ty, col), a) in &acc {
        let kind = COLUMNS.iter().find(|c| c.0 == *col).unwrap().1;
        for (agg, v) in summarize(kind, a) {
            s.insert(format!("{ty}/{agg}({col})"), v);
        }
    }
    s
}

// ---- DuckDB ----

/// DuckDB's Python, installed by `tests/duckdb.sh` if missing; `None` (after a skip) when it
/// cannot be had.
fn duckdb() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../test-tools/duckdb");
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/duckdb.sh"))
        .arg(&venv)
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/duckdb.sh");
    if out.status.code() == Some(3) {
        chronicle_testkit::skip(
            "DuckDB 2.0.0 (PyPI)",
            "tests/duckdb.sh installs it into target/test-tools/duckdb (python3 -m venv, PyPI)",
        );
        return None;
    }
    assert!(
        out.status.success(),
        "tests/duckdb.sh failed: {}",
        out.status
    );
    Some(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()))
}

struct Answer {
    rows: Vec<Vec<Value>>,
}

/// Runs `queries` (`{f}`: the file as a table, `{path}`: its quoted path) in one DuckDB session.
fn query(python: &Path, file: &Path, queries: &[String]) -> Vec<Answer> {
    use std::io::Write;
    let queries: Vec<String> = queries
        .iter()
        .map(|q| q.replace("{path}", &format!("'{}'", file.display())))
        .collect();
    let mut child = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/duckdb_query.py"))
        .arg(file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run duckdb_query.py");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&queries).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "DuckDB failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Answer {
            rows: r
                .as_array()
                .unwrap()
                .iter()
                .map(|row| row.as_array().unwrap().clone())
                .collect(),
        })
        .collect()
}

fn quote(col: &str) -> String {
    format!("\"{col}\"")
}

/// The aggregates of `summarize`, in SQL, all as text.
fn aggregates(col: &str, kind: Kind) -> Vec<(&'static str, String)> {
    let c = quote(col);
    let mut v = vec![("count", format!("count({c})"))];
    let num = |e: &str| -> Vec<(&'static str, String)> {
        vec![
            ("sum", format!("CAST(sum({e}) AS VARCHAR)")),
            ("min", format!("CAST(min({e}) AS VARCHAR)")),
            ("max", format!("CAST(max({e}) AS VARCHAR)")),
        ]
    };
    match kind {
        Text => v.push((
            "distinct",
            format!("string_agg(DISTINCT {c}, '|' ORDER BY {c})"),
        )),
        Int | Decimal => v.extend(num(&c)),
        Time | TimeOrZero => v.extend(num(&format!("epoch_ns({c})"))),
        Bool => v.push(("true", format!("count(*) FILTER (WHERE {c})"))),
        Levels => {
            v.push(("levels", format!("sum(len({c}))")));
            for (name, field) in [("sum_price", "price"), ("sum_quantity", "quantity")] {
                v.push((
                    name,
                    format!(
                        "CAST(sum(list_sum(list_transform({c}, lambda l: l.{field}))) AS VARCHAR)"
                    ),
                ));
            }
        }
    }
    v
}

fn as_text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

fn duckdb_summary(python: &Path, file: &Path) -> Summary {
    let mut names = Vec::new();
    let mut exprs = vec!["type".to_owned(), "CAST(count(*) AS VARCHAR)".to_owned()];
    for &(col, kind) in COLUMNS {
        for (agg, e) in aggregates(col, kind) {
            names.push((format!("{agg}({col})"), kind));
            exprs.push(e);
        }
    }
    let sql = format!(
        "SELECT {} FROM {{f}} GROUP BY type ORDER BY type",
        exprs.join(", ")
    );
    let a = query(python, file, &[sql]).remove(0);
    let mut s = Summary::new();
    for row in &a.rows {
        let ty = row[0].as_str().unwrap();
        s.insert(format!("{ty}/rows"), as_text(&row[1]));
        for ((name, kind), v) in names.iter().zip(&row[2..]) {
            let text = as_text(v);
            let numeric = !matches!(kind, Text | Bool)
                && !name.starts_with("count")
                && !name.starts_with("levels");
            let text = if numeric && text != "null" {
                Dec::parse(&text).canonical()
            } else {
                text
            };
            s.insert(format!("{ty}/{name}"), text);
        }
    }
    s
}

/// The SQL that shows a column the way `cat_value` does.
fn shown(col: &str, kind: Kind) -> String {
    let c = quote(col);
    match kind {
        Text | Bool => c,
        Int | Decimal => format!("CAST({c} AS VARCHAR)"),
        Time | TimeOrZero => format!("CAST(epoch_ns({c}) AS VARCHAR)"),
        Levels => format!(
            "list_transform({c}, lambda l: [CAST(l.price AS VARCHAR), CAST(l.quantity AS VARCHAR)])"
        ),
    }
}

/// Whole rows, picked by tick id, compared column by column with `cat`.
fn compare_rows(python: &Path, file: &Path, cat: &[Value]) -> usize {
    let mut picks: BTreeSet<usize> = [0, cat.len() - 1].into();
    let mut seen = BTreeSet::new();
    for (i, row) in cat.iter().enumerate() {
        // The first row of each kind (and of each snapshot flavour).
        let key = format!("{}{}", row["type"], row["injected"]);
        if seen.insert(key) {
            picks.insert(i);
        }
    }
    let mut rng = 7;
    picks.extend((0..40).map(|_| (next(&mut rng) % cat.len() as u64) as usize));
    let ticks: Vec<String> = picks
        .iter()
        .map(|&i| cat[i]["global_tick_id"].to_string())
        .collect();
    let exprs: Vec<String> = COLUMNS.iter().map(|&(c, k)| shown(c, k)).collect();
    let sql = format!(
        "SELECT {} FROM {{f}} WHERE global_tick_id IN ({}) ORDER BY global_tick_id",
        exprs.join(", "),
        ticks.join(", ")
    );
    let got = query(python, file, &[sql]).remove(0).rows;
    assert_eq!(got.len(), picks.len(), "one row per picked tick");
    for (&i, got) in picks.iter().zip(&got) {
        let want = &cat[i];
        // Every field `cat` shows has its column.
        for k in want.as_object().unwrap().keys() {
            assert!(
                COLUMNS.iter().any(|&(c, kind)| cat_key(c, kind) == *k),
                "cat field {k} has no column"
            );
        }
        for (&(col, kind), g) in COLUMNS.iter().zip(got) {
            assert_eq!(
                canonical(g.clone(), kind),
                cat_value(want, col, kind),
                "column {col} of {want}"
            );
        }
    }
    picks.len()
}

/// Derives `partition`, then checks everything DuckDB says about the file against `cat`.
fn check(python: &Path, partition: &Path, out: &Path, opts: Option<DeriveOptions>) -> Summary {
    let cat = common::cat(partition);
    let stats = match opts {
        None => derive_partition(partition, out).unwrap(),
        Some(opts) => {
            // The same records through the record-by-record API, as the tier manager drives it.
            let part = chronicle_reader::Partition::open(partition).unwrap();
            let h = part.body.header();
            let scale = Scale {
                price_exponent: h.price_exponent,
                quantity_exponent: h.quantity_exponent,
            };
            let mut d = Deriver::create_with(out, scale, opts).unwrap();
            part.scan(chronicle_reader::TimeRange::ALL, |f| {
                d.push(&f.record).unwrap();
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
            d.finish().unwrap()
        }
    };
    assert_eq!(stats.rows, cat.len() as u64);
    assert_eq!(stats.bytes, std::fs::metadata(out).unwrap().len());

    let h = chronicle_reader::Partition::open(partition)
        .unwrap()
        .body
        .header()
        .clone();
    let scale = |e: i8| (-(e as i16)).max(0);
    let meta = query(
        python,
        out,
        &[
            "DESCRIBE SELECT * FROM {f}".into(),
            "SELECT count(DISTINCT row_group_id), CAST(max(row_group_num_rows) AS VARCHAR) \
             FROM parquet_metadata({path})"
                .into(),
            "SELECT decode(key), decode(value) FROM parquet_kv_metadata({path}) ORDER BY 1".into(),
        ],
    );
    let described: Vec<(String, String)> = meta[0]
        .rows
        .iter()
        .map(|r| (as_text(&r[0]), as_text(&r[1])))
        .collect();
    let names: Vec<&str> = described.iter().map(|d| d.0.as_str()).collect();
    let want: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
    assert_eq!(names, want, "the schema's columns");
    let ty = |col: &str| described.iter().find(|d| d.0 == col).unwrap().1.clone();
    assert_eq!(
        ty("price"),
        format!("DECIMAL(18,{})", scale(h.price_exponent))
    );
    assert_eq!(
        ty("quantity"),
        format!("DECIMAL(18,{})", scale(h.quantity_exponent))
    );
    assert_eq!(ty("funding_rate"), "DECIMAL(18,9)");
    assert_eq!(
        ty("bids"),
        format!(
            "STRUCT(price DECIMAL(18,{}), quantity DECIMAL(18,{}))[]",
            scale(h.price_exponent),
            scale(h.quantity_exponent)
        )
    );
    assert!(
        ty("exchange_ts").starts_with("TIMESTAMP"),
        "{}",
        ty("exchange_ts")
    );
    let groups = &meta[1].rows[0];
    assert_eq!(groups[0], json!(stats.row_groups), "row groups");
    if let Some(opts) = opts {
        let max: usize = as_text(&groups[1]).parse().unwrap();
        assert!(max <= opts.row_group_rows, "a row group of {max} rows");
    }
    let kv: BTreeMap<String, String> = meta[2]
        .rows
        .iter()
        .map(|r| (as_text(&r[0]), as_text(&r[1])))
        .collect();
    assert_eq!(kv["chronicle.schema"], chronicle_derive::SCHEMA_VERSION);
    assert_eq!(kv["chronicle.price_exponent"], h.price_exponent.to_string());
    assert_eq!(
        kv["chronicle.quantity_exponent"],
        h.quantity_exponent.to_string()
    );

    let expected = expected_summary(&cat);
    let got = duckdb_summary(python, out);
    let differ: Vec<String> = expected
        .keys()
        .chain(got.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| got.get(*k) != expected.get(*k))
        .map(|k| format!("{k}: DuckDB {:?}, cat {:?}", got.get(k), expected.get(k)))
        .collect();
    assert!(
        differ.is_empty(),
        "DuckDB's aggregates differ from cat's:\n{}",
        differ.join("\n")
    );
    let rows = compare_rows(python, out, &cat);
    let types: Vec<String> = ["exchange_ts", "price", "quantity", "funding_rate", "bids"]
        .iter()
        .map(|c| format!("{c} {}", ty(c)))
        .collect();
    eprintln!(
        "{}: {} rows, {} row groups, {} bytes; DuckDB agreed on {} aggregates and {rows} whole rows; {}",
        partition.display(),
        stats.rows,
        stats.row_groups,
        stats.bytes,
        expected.len(),
        types.join(", ")
    );
    expected
}

#[test]
fn duckdb_agrees_with_cat_on_synthetic_partitions() {
    let Some(python) = duckdb() else {
        return;
    };
    let dir = scratch();
    // Negative exponents, and a positive one (a venue quoting quantities in hundreds).
    for (i, (pe, qe)) in [(-2, -8), (-1, 2)].into_iter().enumerate() {
        let part = dir.path().join(format!("p{i}"));
        synthetic_partition(&part, pe, qe, 700);
        let opts = DeriveOptions {
            row_group_rows: 128,
            ..DeriveOptions::default()
        };
        let s = check(
            &python,
            &part,
            &part.join(chronicle_derive::DERIVED_FILE),
            Some(opts),
        );
        // The synthetic mix reaches every kind and every column.
        for kind in [
            "trade",
            "bbo",
            "level_update",
            "book_snapshot",
            "gap",
            "heartbeat",
            "definition",
            "order",
            "open_interest",
            "unknown",
        ] {
            assert!(s.contains_key(&format!("{kind}/rows")), "{kind} missing");
        }
        assert_ne!(
            s["bbo/count(ask_price)"], s["bbo/rows"],
            "some BBO asks are empty"
        );
        assert_ne!(s["open_interest/count(next_funding_ts)"], "0");
    }
}

const CAPTURE: &str = "binance-usdm-btcusdt-20240808.gz";

#[test]
fn duckdb_agrees_with_cat_on_the_binance_capture() {
    let Some(capture) = chronicle_testkit::shared_data(CAPTURE) else {
        return;
    };
    let Some(python) = duckdb() else {
        return;
    };
    let dir = scratch();
    let data = dir.path().join("data");
    let mut sink = chronicle_import::PartitionSink::new(
        &data,
        chronicle_storage::meta::Source {
            kind: "import".into(),
            format: "binance-capture".into(),
            file: Some(capture.display().to_string()),
        },
    )
    .unwrap();
    chronicle_import::binance::import(&capture, "binance-usdm", &mut sink).unwrap();
    sink.finish().unwrap();
    let mut trades = 0;
    for date in ["2024-08-08", "2024-08-09"] {
        let part = data.join("v1/binance-usdm/btcusdt").join(date);
        let out = part.join(chronicle_derive::DERIVED_FILE);
        let s = check(&python, &part, &out, None);
        trades += s.get("trade/rows").map_or(0, |n| n.parse::<u64>().unwrap());
        let shown: Vec<String> = s
            .iter()
            .filter(|(k, v)| {
                *v != "null"
                    && (k.ends_with("/rows")
                        || k.starts_with("trade/sum(")
                        || k.contains("(exchange_ts)") && !k.contains("/sum(")
                        || k.contains("/sum_"))
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        eprintln!(
            "{date}: book.q {} bytes, book.parquet {} bytes; {}",
            std::fs::metadata(part.join("book.q")).unwrap().len(),
            std::fs::metadata(&out).unwrap().len(),
            shown.join(" ")
        );
    }
    assert_eq!(trades, 21_313, "the capture's trades (its README)");
}
