//! `chronicle ls`: what is stored, on every tier. One row per partition (a venue's symbol's
//! day, or its late stream): where it lives (warm, cold, remote), open or closed, its records
//! and exchange-time span, its size, and what the engine side holds for it (the token's
//! snapshots, the day's audit manifest). From `meta.json` when the partition is closed; an
//! open one (being written) is read from its index, which covers its sealed blocks only, so its
//! count is a lower bound and says so.

use crate::locate::Where;
use crate::CliResult;
use chronicle_archive::stub::RemoteStub;
use chronicle_archive::{ARCHIVE_FILE, ARCHIVE_INDEX_FILE, STUB_FILE};
use chronicle_reader::TierRoots;
use chronicle_storage::index::TimeIndex;
use chronicle_storage::meta::PartitionMeta;
use chronicle_storage::partition::PartitionPaths;
use chronicle_storage::utc;
use chronicle_tier::layout::partitions;
use clap::ValueEnum;
use std::path::Path;
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// Only partitions whose key `{venue}/{symbol}/{date}` starts with this (for example
    /// `binance-usdm/btcusdt`).
    prefix: Option<String>,
    #[command(flatten)]
    place: Where,
    /// Output: an aligned table, or a JSON array with one object per partition.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

struct Row {
    venue: String,
    symbol: String,
    date: String,
    late: bool,
    tier: &'static str,
    closed: bool,
    /// Exact from `meta.json`; for an open partition, those of its indexed blocks.
    records: u64,
    exact: bool,
    span: Option<(u64, u64)>,
    bytes: u64,
    token: Option<u32>,
    snapshots: usize,
    manifest: bool,
}

impl Row {
    fn key(&self) -> String {
        format!("{}/{}/{}", self.venue, self.symbol, self.date)
    }
}

pub fn run(a: Args) -> CliResult {
    let roots = a.place.roots()?;
    if !roots.warm.is_dir() {
        return Err(format!("{}: no such data directory", roots.warm.display()).into());
    }
    let mut rows = Vec::new();
    for (tier_root, in_cold) in [(Some(&roots.warm), false), (roots.cold.as_ref(), true)] {
        let Some(root) = tier_root else {
            continue;
        };
        // The tier manager's walk: `v1/{venue}/{symbol}/{YYYY-MM-DD}`, sorted.
        for unit in partitions(root).map_err(|e| e.to_string())? {
            // `rel` is `v1/{venue}/{symbol}/{date}`.
            let names: Vec<String> = unit
                .rel
                .iter()
                .skip(1)
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            let [venue, symbol, date] = names.as_slice() else {
                continue;
            };
            for u in [unit.clone(), unit.late_of()] {
                if let Some(row) = row(
                    &roots,
                    &root.join(&u.rel),
                    in_cold,
                    u.late,
                    venue,
                    symbol,
                    date,
                )? {
                    rows.push(row);
                }
            }
        }
    }
    if let Some(p) = &a.prefix {
        let p = p.trim_start_matches("v1/");
        rows.retain(|r| r.key().starts_with(p));
    }
    rows.sort_by(|x, y| {
        (&x.venue, &x.symbol, &x.date, x.late, x.tier)
            .cmp(&(&y.venue, &y.symbol, &y.date, y.late, y.tier))
    });
    match a.format {
        Format::Table => print_table(&rows),
        Format::Json => print_json(&rows)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// The row of the partition in `dir`, if one is there.
fn row(
    roots: &TierRoots,
    dir: &Path,
    in_cold: bool,
    late: bool,
    venue: &str,
    symbol: &str,
    date: &str,
) -> Result<Option<Row>, String> {
    let paths = PartitionPaths::new(dir);
    let (tier, bytes) = if in_cold && dir.join(ARCHIVE_FILE).is_file() {
        (
            "cold",
            file_len(&dir.join(ARCHIVE_FILE)) + file_len(&dir.join(ARCHIVE_INDEX_FILE)),
        )
    } else if in_cold && dir.join(STUB_FILE).is_file() {
        let stub = RemoteStub::read(&dir.join(STUB_FILE)).map_err(|e| e.to_string())?;
        ("remote", stub.data.size + stub.index.size)
    } else if !in_cold && paths.segment.is_file() {
        ("warm", file_len(&paths.segment))
    } else {
        return Ok(None);
    };
    let (closed, records, exact, span, token) = if paths.meta.is_file() {
        let m = PartitionMeta::read(&paths.meta).map_err(|e| e.to_string())?;
        let span = m.event_time_range.map(|r| (r.first_ns, r.last_ns));
        (true, m.records, true, span, Some(m.token_id))
    } else {
        // Being written: what its index covers so far.
        let index = TimeIndex::read(&paths.index).ok();
        let entries = index.map(|i| i.entries).unwrap_or_default();
        let records = entries.iter().map(|e| u64::from(e.records)).sum();
        let span = entries
            .iter()
            .map(|e| (e.min_exchange_ts, e.max_exchange_ts))
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
        let token = chronicle_storage::segment::Segment::open(&paths.segment)
            .ok()
            .map(|s| s.header.token_id);
        (false, records, false, span, token)
    };
    let snapshots = token.map_or(0, |t| {
        std::fs::read_dir(roots.warm.join("snapshots").join(t.to_string())).map_or(0, |d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "snap"))
                .count()
        })
    });
    let manifest = roots
        .warm
        .join("snapshots/manifest")
        .join(format!("{date}.manifest"))
        .is_file();
    Ok(Some(Row {
        venue: venue.into(),
        symbol: symbol.into(),
        date: date.into(),
        late,
        tier,
        closed,
        records,
        exact,
        span,
        bytes,
        token,
        snapshots,
        manifest,
    }))
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<40} {:<5} {:<6} {:<6} {:>12} {:<30} {:<30} {:>12} {:>5} {:>8}",
        "partition",
        "late",
        "tier",
        "state",
        "records",
        "first (UTC)",
        "last (UTC)",
        "bytes",
        "snaps",
        "manifest"
    );
    for r in rows {
        let (first, last) = r.span.map_or((String::new(), String::new()), |(a, b)| {
            (utc::rfc3339(a), utc::rfc3339(b))
        });
        println!(
            "{:<40} {:<5} {:<6} {:<6} {:>12} {:<30} {:<30} {:>12} {:>5} {:>8}",
            r.key(),
            if r.late { "late" } else { "" },
            r.tier,
            if r.closed { "closed" } else { "open" },
            if r.exact {
                r.records.to_string()
            } else {
                format!("≥{}", r.records)
            },
            first,
            last,
            r.bytes,
            r.snapshots,
            if r.manifest { "yes" } else { "no" },
        );
    }
    eprintln!("{} partitions", rows.len());
}

fn print_json(rows: &[Row]) -> Result<(), String> {
    let v: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "venue": r.venue,
                "symbol": r.symbol,
                "date": r.date,
                "late": r.late,
                "tier": r.tier,
                "state": if r.closed { "closed" } else { "open" },
                "records": r.records,
                "records_exact": r.exact,
                "first_exchange_ns": r.span.map(|s| s.0),
                "last_exchange_ns": r.span.map(|s| s.1),
                "bytes": r.bytes,
                "token_id": r.token,
                "snapshots": r.snapshots,
                "audit_manifest": r.manifest,
            })
        })
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
    );
    Ok(())
}
