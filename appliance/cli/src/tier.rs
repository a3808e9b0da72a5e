//! `chronicle tier run [--config FILE]`: one pass of the tier manager, the same pass the
//! appliance runs every `tiers.scan_interval_s` (`docs/tiers.md`).

use crate::progress::{with_progress, Count};
use crate::CliResult;
use chronicle_runtime::config::Config;
use chronicle_tier::TierManager;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

#[derive(clap::Subcommand)]
pub enum Command {
    /// One pass: reconcile what an interrupted move left, then the moves that are due
    /// (Warm → Cold, Cold → RemoteCold). A line per move and totals, with the units not moved
    /// counted by reason; exit 1 if a move failed or a leftover needs an operator.
    Run(RunArgs),
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// The appliance's TOML (`data_dir`, `[partitions] grace_ms`, `[tiers]`); without it,
    /// the embedded defaults (which set no cold root).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Also a line per unit not moved, with why (too young, newest kept, late window, not
    /// closed, unresolved, max_moves_per_pass).
    #[arg(long, short)]
    verbose: bool,
}

pub fn run(c: Command) -> CliResult {
    let Command::Run(a) = c;
    let cfg = Config::load(a.config.as_deref())?;
    let grace = Duration::from_millis(cfg.partitions.grace_ms);
    let manager = TierManager::new(cfg.tiers.clone(), &cfg.data_dir, grace)?;
    let report = with_progress("tier pass", Count::Items("units"), |p| {
        manager.pass_with_progress(SystemTime::now(), &AtomicBool::new(false), p)
    })?;
    for line in report.lines() {
        println!("{line}");
    }
    if a.verbose {
        for line in report.not_moved_lines() {
            println!("{line}");
        }
    }
    println!("{}", report.totals());
    Ok(if report.failed() > 0 || !report.unresolved.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
