//! The replay source: the stream it emits is exactly what the importer decodes (record for
//! record, identity from dim_symbol), each token is declared before its first event, fan-out
//! multiplies tokens, loops stay in time order, a stored partition replays as stored, and
//! the real BTCUSDT capture gives the importer's record count.

use chronicle_import::binance;
use chronicle_import::{EventSink, ImportError, Instrument, InstrumentHandle, PartitionSink};
use chronicle_protocol::{type_id, Body, Declaration, Meta, Record, RecordView};
use chronicle_replay::source::TokenInfo;
use chronicle_replay::{write_capture, Input, ReplaySource, SourceOptions, SyntheticConfig};
use chronicle_storage::meta::Source;
use chronicle_storage::symbols::DimSymbol;
use chronicle_testkit::shared_data;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const VENUE: &str = "binance-usdm";
const REAL: &str = "binance-usdm-btcusdt-20240808.gz";

fn short(seconds: u64) -> SyntheticConfig {
    SyntheticConfig {
        duration_ns: seconds * 1_000_000_000,
        ..SyntheticConfig::default()
    }
}

/// What the importer hands a sink: each event encoded with token 0 and tick 0.
#[derive(Default)]
struct Recorder {
    instruments: Vec<Instrument>,
    events: Vec<Vec<u8>>,
    by_kind: BTreeMap<&'static str, u64>,
}

impl EventSink for Recorder {
    fn instrument(&mut self, i: &Instrument) -> Result<InstrumentHandle, ImportError> {
        Ok(match self.instruments.iter().position(|k| k == i) {
            Some(h) => h,
            None => {
                self.instruments.push(i.clone());
                self.instruments.len() - 1
            }
        })
    }

    fn event(
        &mut self,
        _: InstrumentHandle,
        exchange_ts_ns: u64,
        receive_ts_ns: u64,
        body: Body<'_>,
    ) -> Result<(), ImportError> {
        *self.by_kind.entry(body.kind()).or_default() += 1;
        let r = Record {
            meta: Meta {
                token_id: 0,
                global_tick_id: 0,
                exchange_ts_ns,
                receive_ts_ns,
            },
            body,
        };
        self.events.push(r.to_vec().expect("encodes"));
        Ok(())
    }
}

fn import(path: &Path) -> Recorder {
    let mut r = Recorder::default();
    binance::import(path, VENUE, &mut r).expect("the importer reads the capture");
    r
}

/// A record with token id and tick id zeroed (the importer's view of it).
fn anonymous(record: &[u8]) -> Vec<u8> {
    let mut v = record.to_vec();
    let view = RecordView::parse(record).expect("a valid record");
    Meta {
        token_id: 0,
        global_tick_id: 0,
        ..view.meta
    }
    .write_into(&mut v);
    v
}

struct Item {
    record: Vec<u8>,
    token_id: u32,
    declaration: bool,
    pass: u32,
}

fn drain(s: &mut ReplaySource) -> Vec<Item> {
    let mut out = Vec::new();
    while let Some(i) = s.next() {
        out.push(Item {
            record: i.record.to_vec(),
            token_id: i.token_id,
            declaration: i.declaration,
            pass: i.pass,
        });
    }
    out
}

fn meta(r: &[u8]) -> Meta {
    RecordView::parse(r).expect("valid").meta
}

/// Checks the shape every stream has: declarations are live `declaration` records naming
/// their own token; events have tick 0; every token is declared before its first
/// event; every record decodes. Returns the declarations by token.
fn check_stream(items: &[Item], tokens: &[TokenInfo]) -> BTreeMap<u32, usize> {
    let mut declared = BTreeMap::new();
    for (n, it) in items.iter().enumerate() {
        let rec = Record::decode(&it.record).expect("every record decodes");
        assert_eq!(rec.meta.token_id, it.token_id);
        assert!(tokens.iter().any(|t| t.token_id == it.token_id));
        if it.declaration {
            assert_eq!(rec.meta.global_tick_id, 0);
            assert_eq!((rec.meta.exchange_ts_ns, rec.meta.receive_ts_ns), (0, 0));
            let Body::Declaration(Declaration {
                definition: d,
                start_tick: 0,
                durable_tick: 0,
            }) = rec.body
            else {
                panic!("declaration {n} is not a live declaration")
            };
            let t = tokens.iter().find(|t| t.token_id == it.token_id).unwrap();
            assert_eq!(d.symbol_id, it.token_id as u64);
            assert_eq!(d.raw_symbol.as_str(), Some(t.raw_symbol.as_str()));
            assert_eq!(d.venue.as_str(), Some(t.venue.as_str()));
            declared.entry(it.token_id).or_insert(n);
        } else {
            assert_eq!(rec.meta.global_tick_id, 0, "the refinery assigns tick ids");
            assert!(
                declared.contains_key(&it.token_id),
                "record {n}: token {} has an event before its declaration",
                it.token_id
            );
        }
    }
    assert_eq!(declared.len(), tokens.len(), "every token is declared");
    declared
}

#[test]
fn synthetic_stream_is_the_importers_stream_with_identity() {
    let cfg = short(5);
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("synthetic.txt");
    write_capture(&cfg, std::fs::File::create(&capture).unwrap()).unwrap();
    let imported = import(&capture);

    let data = dir.path().join("data");
    let mut s = ReplaySource::open(Input::Synthetic(cfg), VENUE, Some(&data)).unwrap();
    let tokens = s.tokens();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].raw_symbol, "BTCUSDT");
    // Identity: the token is BTCUSDT's symbol_id, saved in the data dir's dim_symbol.
    let dim = DimSymbol::load(&data).unwrap();
    let row = dim.resolve(VENUE, "BTCUSDT", 0).expect("registered");
    assert_eq!(row.symbol_id, tokens[0].token_id as u64);

    let items = drain(&mut s);
    let declared = check_stream(&items, &tokens);
    assert_eq!(
        declared[&tokens[0].token_id], 0,
        "the declaration comes first"
    );
    let events: Vec<&Item> = items.iter().filter(|i| !i.declaration).collect();
    let summary = s.summary();
    assert_eq!(summary.events, imported.events.len() as u64);
    assert_eq!(
        summary.by_kind, imported.by_kind,
        "trades + bbo + level updates + snapshots, as the importer counts them"
    );
    assert_eq!(events.len(), imported.events.len());
    for (n, (e, want)) in events.iter().zip(&imported.events).enumerate() {
        assert_eq!(
            &anonymous(&e.record),
            want,
            "event {n} differs from the importer's"
        );
    }
    // The declaration carries the model's exponents and the time of the first event.
    let Body::Declaration(d) = Record::decode(&items[0].record).unwrap().body else {
        unreachable!()
    };
    let def = d.definition;
    assert_eq!((def.price_exponent, def.quantity_exponent), (-1, -3));
    // A live feed's declaration: no resume point.
    assert_eq!((d.start_tick, d.durable_tick), (0, 0));
    let m = meta(&items[0].record);
    assert_eq!((m.exchange_ts_ns, m.receive_ts_ns), (0, 0));

    // A second source over the same data dir resolves the same token.
    let again = ReplaySource::open(Input::Synthetic(short(1)), VENUE, Some(&data)).unwrap();
    assert_eq!(again.tokens(), tokens);
}

#[test]
fn fan_out_declares_n_tokens_and_emits_every_event_once_per_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut one = ReplaySource::open(Input::Synthetic(short(2)), VENUE, Some(&data)).unwrap();
    let single: Vec<Item> = drain(&mut one)
        .into_iter()
        .filter(|i| !i.declaration)
        .collect();

    let mut opts = SourceOptions::new(VENUE, Some(&data));
    opts.tokens = 3;
    let mut s = ReplaySource::open_with(Input::Synthetic(short(2)), &opts).unwrap();
    let tokens = s.tokens();
    let names: Vec<&str> = tokens.iter().map(|t| t.raw_symbol.as_str()).collect();
    assert_eq!(names, ["BTCUSDT-0", "BTCUSDT-1", "BTCUSDT-2"]);
    let mut ids: Vec<u32> = tokens.iter().map(|t| t.token_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "distinct tokens");
    assert!(!ids.contains(&one.tokens()[0].token_id));
    let dim = DimSymbol::load(&data).unwrap();
    for t in &tokens {
        assert_eq!(
            dim.resolve(VENUE, &t.raw_symbol, 0).unwrap().symbol_id,
            t.token_id as u64
        );
    }

    let items = drain(&mut s);
    let declared = check_stream(&items, &tokens);
    // The three declarations lead the stream.
    assert_eq!(declared.values().copied().max(), Some(2));
    assert_eq!(s.total_events(), 3 * single.len() as u64);
    assert_eq!(s.total_declarations(), 3);
    for t in &tokens {
        let mine: Vec<Vec<u8>> = items
            .iter()
            .filter(|i| !i.declaration && i.token_id == t.token_id)
            .map(|i| anonymous(&i.record))
            .collect();
        assert_eq!(mine.len(), single.len());
        for (a, b) in mine.iter().zip(&single) {
            assert_eq!(a, &anonymous(&b.record));
        }
    }
    // Copies of one event are back to back.
    let events: Vec<&Item> = items.iter().filter(|i| !i.declaration).collect();
    for chunk in events.chunks(3) {
        let r: Vec<Vec<u8>> = chunk.iter().map(|i| anonymous(&i.record)).collect();
        assert!(r.iter().all(|x| x == &r[0]));
    }
}

#[test]
fn loops_shift_time_so_every_pass_follows_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = SourceOptions::new(VENUE, Some(&dir.path().join("data")));
    opts.tokens = 2;
    opts.loops = 3;
    let mut s = ReplaySource::open_with(Input::Synthetic(short(2)), &opts).unwrap();
    let shift = s.summary().loop_shift_ns;
    let (r0, r1) = s.summary().receive_ns.unwrap();
    let (e0, e1) = s.summary().exchange_ns.unwrap();
    assert_eq!(shift, (r1 - r0).max(e1 - e0) + 1_000_000);
    let tokens = s.tokens();
    let items = drain(&mut s);
    check_stream(&items, &tokens);
    assert_eq!(
        items.iter().filter(|i| i.declaration).count(),
        2,
        "declared once"
    );
    assert_eq!(
        items.iter().filter(|i| !i.declaration).count() as u64,
        s.total_events()
    );
    assert_eq!(s.total_events(), 2 * 3 * s.summary().events);
    for t in &tokens {
        let mine: Vec<&Item> = items
            .iter()
            .filter(|i| !i.declaration && i.token_id == t.token_id)
            .collect();
        let per_pass = mine.len() / 3;
        // Pass p is pass 0 shifted by p * shift, record for record.
        for (n, it) in mine.iter().enumerate() {
            let base = meta(&mine[n % per_pass].record);
            let m = meta(&it.record);
            let p = it.pass as u64;
            assert_eq!(p, (n / per_pass) as u64);
            assert_eq!(m.exchange_ts_ns, base.exchange_ts_ns + p * shift);
            assert_eq!(m.receive_ts_ns, base.receive_ts_ns + p * shift);
        }
        // Every pass lies after the previous one on both clocks.
        for p in 0..2u32 {
            let range = |pass: u32, f: fn(&Meta) -> u64| {
                let v: Vec<u64> = mine
                    .iter()
                    .filter(|i| i.pass == pass)
                    .map(|i| f(&meta(&i.record)))
                    .collect();
                (*v.iter().min().unwrap(), *v.iter().max().unwrap())
            };
            for f in [|m: &Meta| m.exchange_ts_ns, |m: &Meta| m.receive_ts_ns] {
                let (_, max) = range(p, f);
                let (min, _) = range(p + 1, f);
                assert!(max < min, "pass {} starts before pass {p} ends", p + 1);
            }
        }
    }
}

#[test]
fn seconds_keep_a_prefix_of_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = SourceOptions::new(VENUE, Some(&dir.path().join("data")));
    opts.max_capture_ns = Some(1_000_000_000);
    let mut s = ReplaySource::open_with(Input::Synthetic(short(3)), &opts).unwrap();
    let mut full = ReplaySource::open(
        Input::Synthetic(short(3)),
        VENUE,
        Some(&dir.path().join("data")),
    )
    .unwrap();
    let (first, last) = s.summary().receive_ns.unwrap();
    assert!(last - first <= 1_000_000_000);
    assert!(s.summary().truncated > 0);
    assert_eq!(
        s.summary().events + s.summary().truncated,
        full.summary().events
    );
    let a = drain(&mut s);
    let b = drain(&mut full);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.record, y.record, "a prefix of the full stream");
    }
}

fn partitions(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() == "book.q" && !p.to_string_lossy().contains("/late/")
            {
                out.push(p.parent().unwrap().to_owned());
            }
        }
    }
    out.sort();
    out
}

/// A copy of the partition in `warm` as the tier manager leaves it on the cold tier:
/// `book.q.zst` and its `.idx`, with the time index and meta beside them (no `book.q`).
fn archived(warm: &Path, cold_root: &Path) -> PathBuf {
    let cold = cold_root.join(warm.file_name().unwrap());
    std::fs::create_dir_all(cold.join("index")).unwrap();
    chronicle_archive::seekable::transcode(
        &warm.join("book.q"),
        &cold.join(chronicle_archive::ARCHIVE_FILE),
        &cold.join(chronicle_archive::ARCHIVE_INDEX_FILE),
        &Default::default(),
    )
    .unwrap();
    for f in ["meta.json", "index/time.idx"] {
        std::fs::copy(warm.join(f), cold.join(f)).unwrap();
    }
    cold
}

#[test]
fn a_stored_partition_replays_as_stored_without_injected_snapshots() {
    // 40 s from 23:59:30: two partitions, and the refinery injects a snapshot at 00:00.
    let cfg = short(40);
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("synthetic.txt");
    write_capture(&cfg, std::fs::File::create(&capture).unwrap()).unwrap();
    let stored = dir.path().join("stored");
    let mut sink = PartitionSink::new(
        &stored,
        Source {
            kind: "import".into(),
            format: "binance-capture".into(),
            file: None,
        },
    )
    .unwrap();
    binance::import(&capture, VENUE, &mut sink).unwrap();
    let metas = sink.finish().unwrap();
    let parts = partitions(&stored);
    assert_eq!(parts.len(), 2, "the capture crosses UTC midnight");

    let data = dir.path().join("data");
    let mut from_model = ReplaySource::open(Input::Synthetic(cfg), VENUE, Some(&data)).unwrap();
    let want: Vec<Vec<u8>> = drain(&mut from_model)
        .iter()
        .filter(|i| !i.declaration)
        .map(|i| i.record.clone())
        .collect();

    let mut got = Vec::new();
    let mut injected = 0;
    for (p, m) in parts.iter().zip(&metas) {
        let mut s =
            ReplaySource::open(Input::Partition(p.clone()), "ignored", Some(&data)).unwrap();
        assert_eq!(
            s.tokens(),
            from_model.tokens(),
            "same identity from the definition"
        );
        let sum = s.summary().clone();
        assert_eq!(sum.format, "q");
        assert_eq!(sum.declarations, 1);
        // The definition that opens the partition became the declaration.
        assert_eq!(sum.events + 1 + sum.skipped_injected, m.records);
        injected += sum.skipped_injected;
        let items = drain(&mut s);
        assert!(items[0].declaration);
        // The same partition on the cold tier (seekable zstd) replays the same stream.
        let cold = archived(p, &dir.path().join("cold"));
        let mut c = ReplaySource::open(Input::Partition(cold), "ignored", Some(&data)).unwrap();
        assert_eq!(c.summary().skipped_injected, sum.skipped_injected);
        let cold_items = drain(&mut c);
        assert_eq!(cold_items.len(), items.len());
        for (w, k) in items.iter().zip(&cold_items) {
            assert_eq!((w.declaration, &w.record), (k.declaration, &k.record));
        }
        got.extend(
            items
                .into_iter()
                .filter(|i| !i.declaration)
                .map(|i| i.record),
        );
    }
    assert!(injected >= 1, "the midnight injection was left out");
    assert_eq!(got.len(), want.len());
    for (n, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g, w,
            "record {n}: the partition replays what the capture does"
        );
    }
}

#[test]
fn real_capture_gives_the_importers_record_count() {
    let Some(path) = shared_data(REAL) else {
        return;
    };
    let imported = import(&path);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = SourceOptions::new(VENUE, Some(&dir.path().join("data")));
    opts.tokens = 2;
    opts.loops = 2;
    let mut s = ReplaySource::open_with(Input::Binance(path), &opts).unwrap();
    let sum = s.summary().clone();
    let b = sum.binance.as_ref().unwrap();
    assert_eq!(
        sum.events,
        b.trades + b.bbos + b.level_updates + b.snapshots + b.gaps,
        "trades + bbo + level updates + snapshots (+ gaps)"
    );
    assert_eq!(sum.events, imported.events.len() as u64);
    assert_eq!(sum.by_kind, imported.by_kind);
    // docs/import.md: 21,313 trades, 66,089 BBOs, 1 snapshot, 443,262 level updates.
    assert_eq!(sum.events, 21_313 + 66_089 + 1 + 443_262);
    assert_eq!(s.total_events(), 4 * sum.events);
    let tokens = s.tokens();
    assert_eq!(tokens.len(), 2);
    // Streamed (2 tokens x 2 passes is 2.1 M records): token 0's first pass is the
    // importer's stream record for record; declarations lead; pass 1 follows pass 0.
    let t0 = tokens[0].token_id;
    let (mut items, mut n, mut declarations) = (0u64, 0usize, 0u64);
    // Per token and pass: (max exchange, max receive, min exchange, min receive).
    let mut ranges: BTreeMap<(u32, u32), (u64, u64, u64, u64)> = BTreeMap::new();
    while let Some(it) = s.next() {
        items += 1;
        let m = meta(it.record);
        if it.declaration {
            declarations += 1;
            assert_eq!(items, declarations, "declarations come first");
            assert_eq!(
                RecordView::parse(it.record).unwrap().type_id,
                type_id::DECLARATION_V1
            );
            continue;
        }
        assert_eq!(m.global_tick_id, 0);
        if it.token_id == t0 && it.pass == 0 {
            assert_eq!(anonymous(it.record), imported.events[n], "event {n}");
            n += 1;
        }
        let r = ranges
            .entry((it.token_id, it.pass))
            .or_insert((0, 0, u64::MAX, u64::MAX));
        r.0 = r.0.max(m.exchange_ts_ns);
        r.1 = r.1.max(m.receive_ts_ns);
        r.2 = r.2.min(m.exchange_ts_ns);
        r.3 = r.3.min(m.receive_ts_ns);
    }
    assert_eq!(declarations, 2);
    assert_eq!(items, s.total_events() + s.total_declarations());
    assert_eq!(n, imported.events.len());
    for t in &tokens {
        let (p0, p1) = (ranges[&(t.token_id, 0)], ranges[&(t.token_id, 1)]);
        assert!(
            p0.0 < p1.2 && p0.1 < p1.3,
            "pass 1 starts after pass 0 ends"
        );
    }
}

#[test]
fn dbn_files_replay_the_importers_events() {
    let Some(dir) = shared_data("dbn") else {
        return;
    };
    let mut checked = 0;
    for name in [
        "test_data.mbo.dbn",
        "test_data.definition.v3.dbn.zst",
        "test_data.mbp-10.v3.dbn.zst",
    ] {
        let Some(path) = shared_data(&format!("dbn/{name}")) else {
            continue;
        };
        let mut r = Recorder::default();
        let summary = chronicle_import::dbn::import(&path, &mut r).unwrap();
        let data = tempfile::tempdir().unwrap();
        let mut opts = SourceOptions::new("ignored", Some(data.path()));
        opts.tokens = 2;
        let mut s = ReplaySource::open_with(Input::Dbn(path.clone()), &opts).unwrap();
        assert_eq!(s.summary().events, r.events.len() as u64, "{name}");
        assert_eq!(s.summary().by_kind, r.by_kind, "{name}");
        assert_eq!(s.summary().instruments, summary.instruments, "{name}");
        let tokens = s.tokens();
        assert!(tokens.iter().all(|t| t.venue == summary.venue));
        let items = drain(&mut s);
        check_stream(&items, &tokens);
        assert_eq!(
            items.len() as u64,
            s.total_events() + s.total_declarations()
        );
        // Definitions in the stream name the token they were emitted for.
        for it in items.iter().filter(|i| !i.declaration) {
            if let Body::Definition(d) = Record::decode(&it.record).unwrap().body {
                let t = tokens.iter().find(|t| t.token_id == it.token_id).unwrap();
                assert_eq!(d.symbol_id, it.token_id as u64);
                assert_eq!(d.raw_symbol.as_str(), Some(t.raw_symbol.as_str()));
            }
        }
        checked += 1;
    }
    assert!(checked > 0, "no DBN fixture found in {}", dir.display());
}
