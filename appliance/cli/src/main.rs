//! `chronicle`: the appliance's command line.

mod cat;
mod import;
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
    /// Convert a real capture into partitions under DATA_DIR/v1/{venue}/{symbol}/{date}/.
    Import(import::Args),
    /// Print the records of a partition in order, optionally limited to a time range.
    Cat(cat::Args),
    /// Check every record of a segment, a partition or a tree. Exit 1 on corruption
    /// (naming file and offset), 2 if only torn tails were found, 0 if all is clean.
    Verify(verify::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Import(a) => import::run(a),
        Command::Cat(a) => cat::run(a),
        Command::Verify(a) => verify::run(a),
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
