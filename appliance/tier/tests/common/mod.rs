//! Helpers shared by the tier manager's tests: a warm root built from the real capture of
//! ../shared/data (or from the synthetic model when it is absent), tier roots, and the
//! invariant every test checks: each unit has exactly one complete copy, and reading it gives
//! the same rendered records as before any move.
#![allow(dead_code)] // each test file uses its own subset

use chronicle_import::PartitionSink;
use chronicle_reader::render::{self, Scale};
use chronicle_reader::{Tier, TierRoots, TimeRange};
use chronicle_storage::meta::Source;
use chronicle_tier::layout::{self, ColdFiles, Unit, WarmFiles};
use chronicle_tier::{TierConfig, TierManager};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

const CAPTURE: &str = "binance-usdm-btcusdt-20240808.gz";

/// A scratch directory on the real disk (not tmpfs), removed on drop.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch dir")
}

pub struct Template {
    _dir: tempfile::TempDir,
    pub warm: PathBuf,
    /// SHA-256 of each unit's `.q` bytes, by unit path.
    pub bodies: BTreeMap<PathBuf, [u8; 32]>,
    /// SHA-256 of each unit's rendered records (jsonl), by unit path.
    pub rendered: BTreeMap<PathBuf, [u8; 32]>,
    pub real: bool,
}

/// The warm root every test copies: the real capture imported once per test binary (its two
/// UTC days), plus a late stream under the first day (a copy of the second day's files, the
/// smaller: the tier manager moves any segment directory the same way). Removed at exit.
pub fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        let dir = scratch();
        remove_at_exit(dir.path());
        let warm = dir.path().join("warm");
        // Without the capture (a skip: the real-data variant does not run), the synthetic
        // model stands in.
        let capture = chronicle_testkit::shared_data(CAPTURE);
        let real = capture.is_some();
        let input = capture.unwrap_or_else(|| {
            let path = dir.path().join("synthetic.capture");
            let cfg = chronicle_replay::SyntheticConfig {
                seed: 7,
                duration_ns: 120_000_000_000,
                ..Default::default()
            };
            let f = std::fs::File::create(&path).unwrap();
            chronicle_replay::write_capture(&cfg, f).unwrap();
            path
        });
        let source = Source {
            kind: "import".into(),
            format: "binance-capture".into(),
            file: Some(input.display().to_string()),
        };
        let mut sink = PartitionSink::new(&warm, source).unwrap();
        chronicle_import::binance::import(&input, "binance-usdm", &mut sink).unwrap();
        sink.finish().unwrap();
        let days = layout::partitions(&warm).unwrap();
        assert!(days.len() >= 2, "the capture spans two UTC days");
        let late = warm.join(days[0].late_of().rel);
        std::fs::create_dir_all(late.join("index")).unwrap();
        for f in ["book.q", "meta.json", "index/time.idx"] {
            std::fs::copy(warm.join(&days[1].rel).join(f), late.join(f)).unwrap();
        }
        let roots = TierRoots::warm_only(warm.clone());
        let units = all_units(&warm);
        let rendered = units
            .iter()
            .map(|u| (u.rel.clone(), render_sha(&roots, u).1))
            .collect();
        let bodies = units
            .iter()
            .map(|u| (u.rel.clone(), body_sha(&roots, u).1))
            .collect();
        Template {
            _dir: dir,
            warm,
            bodies,
            rendered,
            real,
        }
    })
}

/// The template lives in a static, which is never dropped: its directory goes at exit.
fn remove_at_exit(dir: &Path) {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    extern "C" fn remove() {
        if let Some(d) = DIR.get() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    DIR.set(dir.to_owned()).expect("one template per process");
    // SAFETY: registers a function that only touches the static above.
    unsafe { libc::atexit(remove) };
}

/// A fresh copy of the template's warm root and an empty cold root.
pub struct Roots {
    pub dir: tempfile::TempDir,
    pub warm: PathBuf,
    pub cold: PathBuf,
}

impl Roots {
    pub fn new() -> Self {
        let dir = scratch();
        let warm = dir.path().join("warm");
        copy_tree(&template().warm, &warm);
        let cold = dir.path().join("cold");
        Self { dir, warm, cold }
    }

    /// Moves whatever is old enough, now: no age, no late window, no partition kept warm.
    pub fn config(&self) -> TierConfig {
        TierConfig {
            cold_dir: Some(self.cold.clone()),
            warm_to_cold_after_hours: 0,
            keep_newest_per_symbol: 0,
            ..TierConfig::default()
        }
    }

    pub fn manager(&self, cfg: TierConfig) -> TierManager {
        TierManager::new(cfg, &self.warm, Duration::ZERO).unwrap()
    }

    pub fn reader(&self, remote: Option<&chronicle_archive::remote::RemoteConfig>) -> TierRoots {
        TierRoots {
            hot: None,
            warm: self.warm.clone(),
            cold: Some(self.cold.clone()),
            remote: remote.cloned(),
        }
    }
}

/// The pass clock at `ns` since the epoch.
pub fn at(ns: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(ns)
}

/// Sets every warm `book.q`'s mtime (the tests' clocks are in 2024).
pub fn touch_segments(r: &Roots, t: SystemTime) {
    for u in all_units(&r.warm) {
        let f = std::fs::File::options()
            .write(true)
            .open(WarmFiles::new(&r.warm, &u).segment)
            .unwrap();
        f.set_modified(t).unwrap();
    }
}

pub fn pass(m: &TierManager) -> chronicle_tier::PassReport {
    m.pass(SystemTime::now(), &AtomicBool::new(false))
        .expect("a pass runs")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dst = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dst);
        } else {
            std::fs::copy(&p, &dst).unwrap();
        }
    }
}

/// Every unit of the template (partitions and late streams), sorted.
pub fn all_units(warm: &Path) -> Vec<Unit> {
    layout::partitions(warm)
        .unwrap()
        .iter()
        .flat_map(|p| layout::units_of(p, &[warm]))
        .collect()
}

/// The tier the reader resolves `unit` to, and the SHA-256 of its records rendered as
/// `chronicle cat` renders them (jsonl).
pub fn render_sha(roots: &TierRoots, unit: &Unit) -> (Tier, [u8; 32]) {
    let (tier, part) = roots
        .open(&unit.rel)
        .unwrap_or_else(|e| panic!("{}: unreadable: {e}", unit.rel.display()));
    let h = part.body.header();
    let scale = Scale {
        price_exponent: h.price_exponent,
        quantity_exponent: h.quantity_exponent,
    };
    let mut sha = Sha256::new();
    let mut records = 0u64;
    part.scan(TimeRange::ALL, |f| {
        sha.update(render::jsonl(&f.record, scale).as_bytes());
        sha.update(b"\n");
        records += 1;
        ControlFlow::Continue(())
    })
    .unwrap_or_else(|e| panic!("{}: {e}", unit.rel.display()));
    assert!(records > 0, "{}: no records", unit.rel.display());
    (tier, sha.finalize().into())
}

/// The tier the reader resolves `unit` to, and the SHA-256 of the `.q` bytes it reads there
/// (decoded from the archive on Cold and RemoteCold).
pub fn body_sha(roots: &TierRoots, unit: &Unit) -> (Tier, [u8; 32]) {
    let (tier, part) = roots
        .open(&unit.rel)
        .unwrap_or_else(|e| panic!("{}: unreadable: {e}", unit.rel.display()));
    let mut scratch = Vec::new();
    let bytes = part
        .body
        .range(0, part.body.len(), &mut scratch)
        .unwrap_or_else(|e| panic!("{}: {e}", unit.rel.display()));
    (tier, Sha256::digest(bytes).into())
}

/// Which tiers hold a complete copy of `unit`'s records: a warm `book.q` (with meta.json), a
/// cold `.zst` + `.idx` (with meta.json), a stub.
pub fn copies(r: &Roots, unit: &Unit) -> Vec<Tier> {
    let w = WarmFiles::new(&r.warm, unit);
    let c = ColdFiles::new(&r.cold, unit);
    let mut out = Vec::new();
    if w.segment.is_file() {
        out.push(Tier::Warm);
    }
    if c.zst.is_file() && c.idx.is_file() && c.meta.is_file() {
        out.push(Tier::Cold);
    }
    if c.stub.is_file() && c.meta.is_file() {
        out.push(Tier::RemoteCold);
    }
    out
}

/// Every unit reads back, from whatever tier the reader picks, the very `.q` bytes of the
/// template (so the same records); with `render`, also the same `chronicle cat` output.
pub fn assert_readable(r: &Roots, roots: &TierRoots, when: &str) {
    check_readable(r, roots, when, false)
}

fn check_readable(r: &Roots, roots: &TierRoots, when: &str, render: bool) {
    let t = template();
    for unit in all_units(&t.warm) {
        let (tier, got) = body_sha(roots, &unit);
        let copies = copies(r, &unit);
        let rel = unit.rel.display();
        assert_eq!(
            got, t.bodies[&unit.rel],
            "{when}: {rel} read from {tier:?} differs from before the move (copies: {copies:?})"
        );
        if render {
            let (tier, got) = render_sha(roots, &unit);
            assert_eq!(
                got, t.rendered[&unit.rel],
                "{when}: {rel} rendered from {tier:?} differs from before the move"
            );
        }
    }
}

/// The end state: each unit exactly in `tier`, readable with the same records, nothing left
/// behind (no temporary file, intent, or empty warm directory).
pub fn assert_settled(r: &Roots, roots: &TierRoots, tier: Tier, when: &str) {
    for unit in all_units(&template().warm) {
        assert_eq!(
            copies(r, &unit),
            vec![tier],
            "{when}: {} must have exactly one copy",
            unit.rel.display()
        );
        let c = ColdFiles::new(&r.cold, &unit);
        assert_eq!(c.temps().unwrap(), Vec::<PathBuf>::new(), "{when}");
        assert!(!c.intent.exists(), "{when}: {}", c.intent.display());
        if tier != Tier::Warm {
            assert!(
                !r.warm.join(&unit.rel).exists(),
                "{when}: {} left behind",
                r.warm.join(&unit.rel).display()
            );
        }
    }
    check_readable(r, roots, when, true);
}
