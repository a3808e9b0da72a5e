use crate::locate::Where;
use crate::CliResult;
use chronicle_reader::verify::{verify, Verdict};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// A book.q or book.q.zst file, a partition directory of any tier, a tree of them, or a
    /// partition key `[v1/]{venue}/{symbol}/{date}` resolved through the configured tiers.
    path: PathBuf,
    #[command(flatten)]
    place: Where,
}

pub fn run(a: Args) -> CliResult {
    let roots = a.place.roots()?;
    let path = match a.path.exists() {
        true => a.path,
        false => a.place.locate(&roots, &a.path)?,
    };
    let report = verify(&path, roots.remote.as_ref())?;
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
