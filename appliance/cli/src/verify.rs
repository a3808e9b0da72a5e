use crate::CliResult;
use chronicle_reader::verify::{verify, Verdict};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// A book.q file, a partition directory, or a data directory tree.
    path: PathBuf,
}

pub fn run(a: Args) -> CliResult {
    let report = verify(&a.path)?;
    let (mut records, mut torn) = (0u64, 0usize);
    for (path, v) in &report.files {
        match v {
            Verdict::Ok { records: n, .. } => records += n,
            Verdict::TornTail {
                records: n,
                valid_end,
                file_len,
                reason,
            } => {
                records += n;
                torn += 1;
                eprintln!(
                    "{}: torn tail at byte offset {valid_end} ({} bytes after the last valid record: {reason})",
                    path.display(),
                    file_len - valid_end
                );
            }
        }
    }
    println!(
        "{} segments, {records} records verified, {torn} torn tails",
        report.files.len()
    );
    Ok(if torn > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
