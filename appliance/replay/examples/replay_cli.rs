//! `chronicle replay` before it is wired into the `chronicle` binary: the very same code
//! (`appliance/cli/src/replay.rs`), behind a stand-alone `main`.
//!
//! ```text
//! cargo build --release -p chronicle-replay --example replay_cli
//! target/release/examples/replay_cli --target shm:/dev/shm/chronicle-replay-test --speed 1
//! ```

#[path = "../../cli/src/progress.rs"]
#[allow(dead_code)] // the CLI's module: replay uses only part of it
mod progress;
#[path = "../../cli/src/replay.rs"]
mod replay;

use clap::Parser;
use std::process::ExitCode;

type CliResult = Result<ExitCode, Box<dyn std::error::Error>>;

#[derive(Parser)]
#[command(name = "chronicle replay", about = "Replay a capture into Zone 1")]
struct Cli {
    #[command(flatten)]
    args: replay::Args,
}

fn main() -> ExitCode {
    match replay::run(Cli::parse().args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("chronicle: {e}");
            ExitCode::FAILURE
        }
    }
}
