use crate::locate::Where;
use crate::CliResult;
use chronicle_reader::render::{self, Scale};
use chronicle_reader::TimeRange;
use chronicle_storage::segment::ScanEnd;
use chronicle_storage::utc;
use clap::ValueEnum;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
}

#[derive(clap::Args)]
pub struct Args {
    /// A partition directory of any tier (or its book.q / book.q.zst), or a partition key
    /// `[v1/]{venue}/{symbol}/{date}` resolved through the configured tiers.
    partition: PathBuf,
    #[command(flatten)]
    place: Where,
    /// Exchange time to start at: ns since the epoch, RFC 3339, or a date.
    #[arg(long, value_parser = parse_time)]
    from: Option<u64>,
    /// Exchange time to end at, inclusive.
    #[arg(long, value_parser = parse_time)]
    to: Option<u64>,
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
}

fn parse_time(s: &str) -> Result<u64, String> {
    utc::parse_time(s)
        .ok_or_else(|| format!("`{s}` is not ns since the epoch, RFC 3339 or YYYY-MM-DD"))
}

pub fn run(a: Args) -> CliResult {
    let part = a.place.open(&a.partition)?;
    if let Some(p) = &part.index_problem {
        eprintln!("chronicle: warning: index not used ({p}); scanning the whole segment");
    }
    let h = part.body.header();
    let scale = Scale {
        price_exponent: h.price_exponent,
        quantity_exponent: h.quantity_exponent,
    };
    let range = TimeRange {
        from: a.from.unwrap_or(0),
        to: a.to.unwrap_or(u64::MAX),
    };
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut written = match a.format {
        Format::Csv => writeln!(out, "{}", render::csv_header()),
        Format::Jsonl => Ok(()),
    };
    let scanned = part.scan(range, |f| {
        written = match a.format {
            Format::Jsonl => writeln!(out, "{}", render::jsonl(&f.record, scale)),
            Format::Csv => writeln!(out, "{}", render::csv(&f.record, scale)),
        };
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    });
    match written.and_then(|()| out.flush()) {
        // A closed pipe (`| head`) ends the output; it is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        r => r?,
    }
    match scanned? {
        ScanEnd::Clean { .. } => Ok(ExitCode::SUCCESS),
        // What came before the damage was printed; the reader says where it stopped and
        // exits as `verify` does on a torn tail.
        ScanEnd::TornTail { valid_end, reason } => {
            eprintln!(
                "chronicle cat: {}: stopped at byte offset {valid_end}, a torn tail ({reason}); \
                 the records printed are those before it",
                part.body.origin().display()
            );
            Ok(ExitCode::from(2))
        }
    }
}
