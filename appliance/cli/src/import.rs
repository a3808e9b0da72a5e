use crate::locate::Where;
use crate::progress::{with_progress, Count};
use crate::CliResult;
use chronicle_import::{binance, dbn, CaptureFormat, PartitionSink};
use chronicle_runtime::config::default_venue;
use chronicle_storage::meta::Source;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// `binance-capture` (`<receive ns> <combined-stream JSON>` lines, gzip or plain) or `dbn`
    /// (Databento DBN). Default: from the file name (`.dbn`, `.dbn.zst`, `.dbz` are DBN,
    /// anything else a Binance capture).
    #[arg(long)]
    format: Option<CaptureFormat>,
    /// The capture to import.
    #[arg(long)]
    input: PathBuf,
    #[command(flatten)]
    place: Where,
    /// The venue of a Binance capture (the capture itself does not say).
    #[arg(long, default_value_t = default_venue())]
    venue: String,
}

pub fn run(a: Args) -> CliResult {
    let format = a.format.unwrap_or_else(|| CaptureFormat::of_path(&a.input));
    let source = Source {
        kind: "import".into(),
        format: format.name().into(),
        file: Some(a.input.display().to_string()),
    };
    let data_dir = a.place.data_dir()?;
    let _lock = chronicle_storage::fsutil::lock_dir(&data_dir, "chronicle import")?;
    let mut sink = PartitionSink::new(&data_dir, source)?;
    match format {
        CaptureFormat::BinanceCapture => {
            let s = with_progress("importing", Count::Bytes, |p| {
                binance::import_with_progress(&a.input, &a.venue, &mut sink, p)
            })?;
            eprintln!(
                "read {} lines: {} trades, {} bbo, {} mark prices, {} snapshots, {} depth messages \
                 ({} dropped before sync) -> {} level updates, {} gaps",
                s.lines, s.trades, s.bbos, s.mark_prices, s.snapshots, s.depth_messages,
                s.depth_messages_dropped, s.level_updates, s.gaps
            );
            for (kind, n) in &s.skipped {
                eprintln!("skipped {n} `{kind}` messages: chronicle has no record kind for them");
            }
        }
        CaptureFormat::Dbn => {
            let s = with_progress("importing", Count::Bytes, |p| {
                dbn::import_with_progress(&a.input, &mut sink, p)
            })?;
            eprintln!("{s}");
        }
    }
    for m in sink.finish()? {
        let range = m
            .event_time_range
            .as_ref()
            .map(|r| format!("{} .. {}", r.first, r.last))
            .unwrap_or_default();
        println!(
            "{}/{}/{}: {} records, {} bytes, {}{}",
            m.venue,
            m.symbol_code,
            m.date,
            m.records,
            m.segment_bytes,
            range,
            if m.completeness.complete {
                ""
            } else {
                " (incomplete: gaps)"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
