use crate::locate::Where;
use crate::progress::{with_progress, Count};
use crate::CliResult;
use chronicle_reader::verify::{verify_with_progress, Verdict};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// A book.q or book.q.zst file, a partition directory of any tier, a tree of them, or a
    /// partition key `[v1/]{venue}/{symbol}/{date}` resolved through the configured tiers.
    /// The data directory itself with `--config`: every configured tier.
    path: PathBuf,
    #[command(flatten)]
    place: Where,
    /// Succeed when there is nothing to verify (by default that is an error).
    #[arg(long)]
    allow_empty: bool,
}

pub fn run(a: Args) -> CliResult {
    let roots = a.place.roots()?;
    let targets: Vec<PathBuf> = if a.path.exists() {
        let is_data_dir =
            std::fs::canonicalize(&a.path).ok() == std::fs::canonicalize(&roots.warm).ok();
        if a.place.config.is_some() && is_data_dir {
            std::iter::once(roots.warm.clone())
                .chain(roots.cold.clone().filter(|c| c.exists()))
                .collect()
        } else {
            vec![a.path.clone()]
        }
    } else {
        vec![a.place.locate(&roots, &a.path)?]
    };
    let mut files = Vec::new();
    for t in &targets {
        let report = with_progress("verifying", Count::Items("partitions"), |p| {
            verify_with_progress(t, roots.remote.as_ref(), p)
        })?;
        files.extend(report.files);
    }
    if files.is_empty() && !a.allow_empty {
        let tiers = if a.place.config.is_some() {
            ""
        } else {
            " (partitions the tier manager moved are found with --config naming the appliance's \
             configuration)"
        };
        return Err(format!(
            "{}: nothing to verify: no book.q, book.q.zst or remote stub under it{tiers}",
            a.path.display()
        )
        .into());
    }
    let (mut records, mut torn) = (0u64, 0usize);
    for (path, v) in &files {
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
        files.len()
    );
    Ok(if torn > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
