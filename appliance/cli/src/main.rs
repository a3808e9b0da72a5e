//! `chronicle`: the appliance's command line.

mod cat;
mod import;
mod locate;
mod ls;
mod progress;
mod replay;
mod run;
mod state;
mod tier;
mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "chronicle", version, about = "Market-data ingestion appliance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance: feed → rings → shards → O_DIRECT segments and snapshots. With no
    /// arguments, a bounded run of the synthetic feed into ./data.
    Run(run::Args),
    /// Play a capture (or the synthetic model) into /dev/shm rings or UDP, paced, with a
    /// pacing-error report.
    Replay(replay::Args),
    /// Convert a real capture into partitions under DATA_DIR/v1/{venue}/{symbol}/{date}/.
    Import(import::Args),
    /// List what is stored: every partition on every tier, open or closed, its records,
    /// exchange-time span and size, and the token's snapshots and the day's audit manifest.
    Ls(ls::Args),
    /// Print the records of a partition in order, optionally limited to a time range.
    Cat(cat::Args),
    /// Check every record of a segment, a partition or a tree. Exit 1 on corruption
    /// (naming file and offset), 2 if only torn tails were found, 0 if all is clean.
    Verify(verify::Args),
    /// The tick engine over the stored logs.
    #[command(subcommand)]
    Engine(EngineCommand),
    /// Engine snapshots.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Print a day's snapshot Merkle root and verify every snapshot of that day against it.
    Audit(state::AuditArgs),
    /// The tier manager: move partitions Warm → Cold → RemoteCold by age (docs/tiers.md).
    #[command(subcommand)]
    Tier(tier::Command),
}

#[derive(Subcommand)]
enum EngineCommand {
    /// Bring every token's engine state up to date with its log (resume from the newest
    /// valid snapshot, replay the rest, snapshot at each cadence boundary).
    Run(state::RunArgs),
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Print every field of a .snap file as JSON.
    Inspect(state::InspectArgs),
}

fn main() -> ExitCode {
    // Output piped into `head` ends quietly, as for any Unix tool, instead of a panic.
    // SAFETY: restoring the default disposition of one signal before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    chronicle_runtime::fail_points_from_env();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Import(a) => import::run(a),
        Command::Ls(a) => ls::run(a),
        Command::Cat(a) => cat::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Engine(EngineCommand::Run(a)) => state::run(a),
        Command::Snapshot(SnapshotCommand::Inspect(a)) => state::inspect(a),
        Command::Audit(a) => state::audit_day(a),
        Command::Tier(c) => tier::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("chronicle: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Errors are reported as text: each layer's error already names file, offset or field.
type CliResult = Result<ExitCode, Box<dyn std::error::Error>>;

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// `--help` describes every argument of every command: each has a doc comment.
    #[test]
    fn every_argument_is_described() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if id != "help" && id != "version" && a.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "chronicle", &mut missing);
        assert!(missing.is_empty(), "undescribed: {missing:#?}");
    }
}
