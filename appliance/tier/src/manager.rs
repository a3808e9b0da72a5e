//! One pass of the tier manager: lock the cold root, reconcile every unit, then the moves
//! that are due, Warm → Cold first, then Cold → RemoteCold, in sorted order, at most
//! `max_moves_per_pass`; every unit considered and not moved is reported with the reason.
//! The same pass runs from `chronicle tier run` and in the appliance.

use crate::cold_to_remote;
use crate::config::TierConfig;
use crate::fsops::RootLock;
use crate::layout::{self, ColdFiles, Unit, WarmFiles};
use crate::not_moved::{self, Held, NotMoved};
use crate::reconcile::{self, Resolution};
use crate::steps::Ctx;
use crate::warm_to_cold::{self, Moved};
use crate::TierError;
use chronicle_archive::remote::RemoteStore;
use chronicle_storage::fsutil::create_dir_durable;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The cold root's lock file (one manager at a time per cold root).
pub const LOCK_FILE: &str = ".tier.lock";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveKind {
    WarmToCold,
    ColdToRemote,
}

impl MoveKind {
    /// The `move` label on `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            MoveKind::WarmToCold => "warm_to_cold",
            MoveKind::ColdToRemote => "cold_to_remote",
        }
    }

    /// What starts a line about a unit of this move.
    fn arrow(self) -> &'static str {
        match self {
            MoveKind::WarmToCold => "warm -> cold  ",
            MoveKind::ColdToRemote => "cold -> remote",
        }
    }
}

/// One attempted move.
#[derive(Debug)]
pub struct MoveOutcome {
    pub kind: MoveKind,
    pub unit: PathBuf,
    pub result: Result<Moved, TierError>,
}

impl MoveOutcome {
    /// The summary line `chronicle tier run` prints.
    pub fn line(&self) -> String {
        let arrow = self.kind.arrow();
        match &self.result {
            Ok(m) => {
                let secs = m.elapsed.as_secs_f64().max(1e-9);
                format!(
                    "{arrow} {}: {} records, {} -> {} bytes ({:.2}x) in {:.3} s, {:.1} MB/s",
                    self.unit.display(),
                    m.records,
                    m.bytes_in,
                    m.bytes_out,
                    m.bytes_in as f64 / m.bytes_out.max(1) as f64,
                    secs,
                    m.bytes_in as f64 / 1e6 / secs
                )
            }
            Err(e) => format!("{arrow} {}: FAILED: {e}", self.unit.display()),
        }
    }
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct PassReport {
    pub resolved: Vec<Resolution>,
    /// Leftovers left as they are (an operator's, or retried next pass), per unit.
    pub unresolved: Vec<(PathBuf, TierError)>,
    pub moves: Vec<MoveOutcome>,
    /// Units considered and left where they are, each with the reason.
    pub not_moved: Vec<Held>,
    /// The pass stopped early (the daemon is stopping).
    pub stopped: bool,
}

impl PassReport {
    pub fn failed(&self) -> usize {
        self.moves.iter().filter(|m| m.result.is_err()).count()
    }

    /// A line per leftover reconciled or left, then per move (what a pass prints).
    pub fn lines(&self) -> Vec<String> {
        let resolved = self.resolved.iter().map(|r| {
            let unit = r.unit.display();
            format!("reconciled     {unit}: {}: {}", r.state.name(), r.action)
        });
        let unresolved =
            (self.unresolved.iter()).map(|(u, e)| format!("unresolved     {}: {e}", u.display()));
        let moves = self.moves.iter().map(MoveOutcome::line);
        resolved.chain(unresolved).chain(moves).collect()
    }

    /// A line per unit not moved, with the reason (`chronicle tier run --verbose`).
    pub fn not_moved_lines(&self) -> Vec<String> {
        (self.not_moved.iter())
            .map(|h| {
                format!(
                    "{} {}: not moved: {}",
                    h.kind.arrow(),
                    h.unit.display(),
                    h.reason
                )
            })
            .collect()
    }

    fn hold(&mut self, kind: MoveKind, unit: PathBuf, reason: NotMoved) {
        self.not_moved.push(Held { kind, unit, reason });
    }

    /// The totals line, then why units were not moved (warm ones, then those not uploaded),
    /// counted by reason.
    pub fn totals(&self) -> String {
        let done = |k: MoveKind| {
            let ok = |m: &&MoveOutcome| m.kind == k && m.result.is_ok();
            self.moves.iter().filter(ok).count()
        };
        let (bytes_in, bytes_out) = (self.moves.iter())
            .filter_map(|m| m.result.as_ref().ok())
            .fold((0, 0), |(i, o), m| (i + m.bytes_in, o + m.bytes_out));
        let mut line = format!(
            "tier pass: {} warm -> cold, {} cold -> remote, {} failed; {bytes_in} bytes read, \
             {bytes_out} bytes written; {} leftovers reconciled, {} unresolved{}",
            done(MoveKind::WarmToCold),
            done(MoveKind::ColdToRemote),
            self.failed(),
            self.resolved.len(),
            self.unresolved.len(),
            if self.stopped { " (stopped)" } else { "" }
        );
        for (kind, what) in [
            (MoveKind::WarmToCold, "not moved"),
            (MoveKind::ColdToRemote, "not uploaded"),
        ] {
            if let Some(s) = not_moved::summary(&self.not_moved, kind) {
                line += &format!("; {what}: {s}");
            }
        }
        line
    }
}

/// Cumulative counters, shared with the metrics endpoint.
#[derive(Debug, Default)]
pub struct TierCounters {
    pub passes: AtomicU64,
    pub warm_to_cold: MoveCounters,
    pub cold_to_remote: MoveCounters,
    pub leftovers_resolved: AtomicU64,
    pub leftovers_unresolved: AtomicU64,
}

#[derive(Debug, Default)]
pub struct MoveCounters {
    pub done: AtomicU64,
    pub failed: AtomicU64,
    /// Bytes read from the source tier by finished moves.
    pub bytes_in: AtomicU64,
    /// Bytes written to the target tier by finished moves.
    pub bytes_out: AtomicU64,
}

impl TierCounters {
    pub fn of(&self, kind: MoveKind) -> &MoveCounters {
        match kind {
            MoveKind::WarmToCold => &self.warm_to_cold,
            MoveKind::ColdToRemote => &self.cold_to_remote,
        }
    }

    fn note(&self, report: &PassReport) {
        let add = |c: &AtomicU64, n: u64| c.fetch_add(n, Ordering::Relaxed);
        add(&self.passes, 1);
        add(&self.leftovers_resolved, report.resolved.len() as u64);
        add(&self.leftovers_unresolved, report.unresolved.len() as u64);
        for m in &report.moves {
            let c = self.of(m.kind);
            match &m.result {
                Ok(moved) => {
                    add(&c.done, 1);
                    add(&c.bytes_in, moved.bytes_in);
                    add(&c.bytes_out, moved.bytes_out);
                }
                Err(_) => {
                    add(&c.failed, 1);
                }
            }
        }
    }
}

pub struct TierManager {
    cfg: TierConfig,
    warm: PathBuf,
    cold: PathBuf,
    grace: Duration,
    store: Option<RemoteStore>,
    counters: Arc<TierCounters>,
}

impl TierManager {
    /// A manager of `warm` (the appliance's data dir) and the config's cold root; `grace` is
    /// the refinery's late window (`[partitions] grace_ms`). Makes no request to the store.
    pub fn new(cfg: TierConfig, warm: &Path, grace: Duration) -> Result<Self, TierError> {
        cfg.validate().map_err(TierError::Config)?;
        let cold = cfg
            .cold_dir
            .clone()
            .ok_or_else(|| TierError::Config("tiers.cold_dir is not set".into()))?;
        let store = cfg.remote.as_ref().map(RemoteStore::connect).transpose()?;
        Ok(Self {
            cfg,
            warm: warm.to_owned(),
            cold,
            grace,
            store,
            counters: Arc::default(),
        })
    }

    /// Uses `store` for RemoteCold instead of connecting with the config's credentials.
    pub fn with_store(mut self, store: RemoteStore) -> Self {
        self.store = Some(store);
        self
    }

    pub fn counters(&self) -> Arc<TierCounters> {
        self.counters.clone()
    }

    pub fn config(&self) -> &TierConfig {
        &self.cfg
    }

    /// One pass at time `now`. `stop` ends it between two steps (what is left half-done is
    /// reconciled by the next pass). Errors: only the cold root being unusable or locked;
    /// everything about one unit is in the report.
    pub fn pass(&self, now: SystemTime, stop: &AtomicBool) -> Result<PassReport, TierError> {
        self.pass_with_progress(now, stop, &|_, _| {})
    }

    /// [`pass`](Self::pass), calling `progress(done, total)` as it goes through the units
    /// due (total grows when the cold units are listed, after the warm moves).
    pub fn pass_with_progress(
        &self,
        now: SystemTime,
        stop: &AtomicBool,
        progress: &dyn Fn(u64, u64),
    ) -> Result<PassReport, TierError> {
        create_dir_durable(&self.cold)?;
        let _lock = RootLock::acquire(&self.cold.join(LOCK_FILE))?;
        let ctx = Ctx {
            cfg: &self.cfg,
            warm: self.warm.clone(),
            cold: self.cold.clone(),
            now,
            grace: self.grace,
            stop,
        };
        let mut report = PassReport::default();
        let result = self.run(&ctx, &mut report, progress);
        self.counters.note(&report);
        match result {
            Err(TierError::Stopped) => {
                report.stopped = true;
                Ok(report)
            }
            r => r.map(|()| report),
        }
    }

    fn run(
        &self,
        ctx: &Ctx,
        report: &mut PassReport,
        progress: &dyn Fn(u64, u64),
    ) -> Result<(), TierError> {
        let store = self.store.as_ref();
        let roots = [self.warm.as_path(), self.cold.as_path()];
        let mut all: BTreeSet<Unit> = BTreeSet::new();
        for root in roots {
            all.extend(layout::partitions(root)?);
        }
        // Reconcile every unit; a unit left unresolved is not moved this pass.
        let mut unsettled: BTreeSet<PathBuf> = BTreeSet::new();
        for p in &all {
            for u in layout::units_of(p, &roots) {
                match reconcile::unit(ctx, store, &u) {
                    Ok(r) => report.resolved.extend(r),
                    Err(TierError::Stopped) => return Err(TierError::Stopped),
                    Err(e) => {
                        unsettled.insert(u.rel.clone());
                        report.unresolved.push((u.rel.clone(), e));
                    }
                }
            }
        }
        let mut budget = self.cfg.max_moves_per_pass;
        // Once a unit ready to move finds the budget spent, no further unit is looked at
        // (checked for closing, or moved): they all wait for the next pass.
        let mut spent = false;
        let warm = self.due_warm(ctx, &unsettled, report)?;
        let (mut done, mut total) = (0, warm.len() as u64);
        for u in warm {
            progress(done, total);
            done += 1;
            if spent {
                report.hold(MoveKind::WarmToCold, u.rel, NotMoved::MaxMoves);
                continue;
            }
            // Closed and quiet, or not yet; one that never will be as it is, is a failure.
            match warm_to_cold::closed_reason(ctx, &u) {
                Ok(Some(why)) => {
                    report.hold(MoveKind::WarmToCold, u.rel, why);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    report.moves.push(MoveOutcome {
                        kind: MoveKind::WarmToCold,
                        unit: u.rel,
                        result: Err(e),
                    });
                    continue;
                }
            }
            if budget == 0 {
                spent = true;
                report.hold(MoveKind::WarmToCold, u.rel, NotMoved::MaxMoves);
                continue;
            }
            budget -= 1;
            attempt(report, MoveKind::WarmToCold, u, |u| {
                warm_to_cold::move_unit(ctx, u)
            })?;
        }
        let Some(store) = store else {
            progress(done, total);
            return Ok(());
        };
        // Listed after the warm moves: a unit just made cold may already be due.
        let cold = self.due_cold(ctx, &unsettled, report)?;
        total += cold.len() as u64;
        for u in cold {
            progress(done, total);
            done += 1;
            if budget == 0 {
                report.hold(MoveKind::ColdToRemote, u.rel, NotMoved::MaxMoves);
                continue;
            }
            budget -= 1;
            attempt(report, MoveKind::ColdToRemote, u, |u| {
                cold_to_remote::move_unit(ctx, store, u)
            })?;
        }
        progress(done, total);
        Ok(())
    }

    /// What holds a partition not yet past both its late window and its age: the later of
    /// the two. None once past both.
    fn too_early(&self, ctx: &Ctx, p: &Unit) -> Option<NotMoved> {
        let late_end = p.day_end_ns() + ctx.grace.as_nanos() as u64;
        let age_end = p.day_end_ns() + self.cfg.warm_to_cold_after().as_nanos() as u64;
        if ctx.now_ns() >= late_end.max(age_end) {
            return None;
        }
        Some(if age_end >= late_end {
            NotMoved::TooYoung { until_ns: age_end }
        } else {
            NotMoved::LateWindow {
                until_ns: late_end,
                written_ns: None,
            }
        })
    }

    /// Warm units old enough for the cold tier, sorted: their partition is past both the age
    /// and the late window, and not among its symbol's newest `keep_newest_per_symbol`. A
    /// partition's late stream follows it. The others are held in `report` with the reason.
    fn due_warm(
        &self,
        ctx: &Ctx,
        unsettled: &BTreeSet<PathBuf>,
        report: &mut PassReport,
    ) -> Result<Vec<Unit>, TierError> {
        let parts = layout::partitions(&self.warm)?;
        let mut by_symbol: BTreeMap<PathBuf, Vec<&Unit>> = BTreeMap::new();
        for p in &parts {
            by_symbol.entry(p.symbol_key()).or_default().push(p);
        }
        let mut due = Vec::new();
        for list in by_symbol.values() {
            let keep = list.len().saturating_sub(self.cfg.keep_newest_per_symbol);
            for (i, p) in list.iter().enumerate() {
                let held = match i < keep {
                    true => self.too_early(ctx, p),
                    false => Some(NotMoved::NewestKept),
                };
                for u in layout::units_of(p, &[&self.warm]) {
                    if !WarmFiles::new(&self.warm, &u).segment.is_file() {
                        continue;
                    }
                    let unresolved = unsettled.contains(&u.rel).then_some(NotMoved::Unresolved);
                    match held.or(unresolved) {
                        Some(why) => report.hold(MoveKind::WarmToCold, u.rel, why),
                        None => due.push(u),
                    }
                }
            }
        }
        due.sort();
        Ok(due)
    }

    /// Cold units (with their `.zst` and `.idx`, no stub, nothing left warm) due for the
    /// object store, sorted; the others of that kind are held in `report` with the reason.
    fn due_cold(
        &self,
        ctx: &Ctx,
        unsettled: &BTreeSet<PathBuf>,
        report: &mut PassReport,
    ) -> Result<Vec<Unit>, TierError> {
        let age = self.cfg.cold_to_remote_after().as_nanos() as u64;
        let mut out = Vec::new();
        for p in layout::partitions(&self.cold)? {
            let until_ns = p.day_end_ns() + age;
            let young = (ctx.now_ns() < until_ns).then_some(NotMoved::TooYoung { until_ns });
            for u in layout::units_of(&p, &[&self.cold]) {
                let c = ColdFiles::new(&self.cold, &u);
                let ready = c.zst.is_file() && c.idx.is_file() && !c.stub.exists();
                if !ready || WarmFiles::new(&self.warm, &u).any() {
                    continue;
                }
                let unresolved = unsettled.contains(&u.rel).then_some(NotMoved::Unresolved);
                match young.or(unresolved) {
                    Some(why) => report.hold(MoveKind::ColdToRemote, u.rel, why),
                    None => out.push(u),
                }
            }
        }
        Ok(out)
    }
}

/// Runs one move, recording its outcome. A stop ends the pass.
fn attempt(
    report: &mut PassReport,
    kind: MoveKind,
    unit: Unit,
    mv: impl FnOnce(&Unit) -> Result<Moved, TierError>,
) -> Result<(), TierError> {
    let result = mv(&unit);
    if let Err(TierError::Stopped) = result {
        return Err(TierError::Stopped);
    }
    report.moves.push(MoveOutcome {
        kind,
        unit: unit.rel,
        result,
    });
    Ok(())
}
