use crate::CliResult;
use chronicle_import::{binance, dbn, PartitionSink};
use chronicle_storage::meta::Source;
use clap::ValueEnum;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// `<receive ns> <combined-stream JSON>` lines, gzip or plain.
    BinanceCapture,
    /// Databento DBN (.dbn, .dbn.zst, legacy .dbz).
    Dbn,
}

#[derive(clap::Args)]
pub struct Args {
    /// Default: from the file name (`.dbn`, `.dbn.zst`, `.dbz` are DBN, anything else a
    /// Binance capture).
    #[arg(long, value_enum)]
    format: Option<Format>,
    #[arg(long)]
    input: PathBuf,
    #[arg(long)]
    data_dir: PathBuf,
    /// Venue name for a Binance capture (the capture itself does not say).
    #[arg(long, default_value = "binance-usdm")]
    venue: String,
}

pub fn run(a: Args) -> CliResult {
    let format = a
        .format
        .unwrap_or(match chronicle_import::CaptureFormat::of_path(&a.input) {
            chronicle_import::CaptureFormat::Dbn => Format::Dbn,
            chronicle_import::CaptureFormat::BinanceCapture => Format::BinanceCapture,
        });
    let format_name = match format {
        Format::BinanceCapture => "binance-capture",
        Format::Dbn => "dbn",
    };
    let source = Source {
        kind: "import".into(),
        format: format_name.into(),
        file: Some(a.input.display().to_string()),
    };
    let _lock = chronicle_storage::fsutil::lock_dir(&a.data_dir, "chronicle import")?;
    let mut sink = PartitionSink::new(&a.data_dir, source)?;
    match format {
        Format::BinanceCapture => {
            let s = binance::import(&a.input, &a.venue, &mut sink)?;
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
        Format::Dbn => {
            let s = dbn::import(&a.input, &mut sink)?;
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
