//! `chronicle cat`: the records of a partition, or of a symbol's days across the tiers, in
//! order, limited to a time range and record types.

use crate::locate::{Target, Where};
use crate::CliResult;
use chronicle_protocol::type_id;
use chronicle_reader::render::{self, Scale};
use chronicle_reader::{Partition, TimeRange};
use chronicle_storage::meta::PartitionMeta;
use chronicle_storage::segment::{ScanEnd, HEADER_LEN};
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
    /// A partition: its directory on any tier (or its book.q / book.q.zst), or a key
    /// `[v1/]{venue}/{symbol}/{date}[/late]` resolved through the configured tiers. Or a
    /// symbol: a key `[v1/]{venue}/{symbol}` or its directory, read day after day across the
    /// tiers (only the days the time range touches).
    target: PathBuf,
    #[command(flatten)]
    place: Where,
    /// Exchange time to start at: ns since the epoch, RFC 3339, or a date.
    #[arg(long, value_parser = parse_time)]
    from: Option<u64>,
    /// Exchange time to end at, inclusive (a date means its midnight).
    #[arg(long, value_parser = parse_time)]
    to: Option<u64>,
    /// Only records of these types, comma-separated: level_update, trade, bbo, open_interest,
    /// book_snapshot, gap, heartbeat, definition, order.
    #[arg(long = "type", value_name = "TYPES", value_delimiter = ',', value_parser = parse_type)]
    types: Vec<u16>,
    /// Output: JSON lines, or CSV with a header line.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
}

fn parse_time(s: &str) -> Result<u64, String> {
    utc::parse_time(s)
        .ok_or_else(|| format!("`{s}` is not ns since the epoch, RFC 3339 or YYYY-MM-DD"))
}

fn parse_type(s: &str) -> Result<u16, String> {
    type_id::by_name(s).ok_or_else(|| {
        let names: Vec<&str> = type_id::ALL
            .iter()
            .filter_map(|&t| type_id::name(t))
            .collect();
        format!("`{s}` is not a record type ({})", names.join(", "))
    })
}

/// Writes the frames a scan hands it, counting them; a failed write ends the scan and is kept.
struct Printer<W: Write> {
    out: W,
    format: Format,
    types: Vec<u16>,
    printed: u64,
    failed: Option<std::io::Error>,
}

impl<W: Write> Printer<W> {
    /// Prints the records of `part` in `range`; a torn tail is returned, damage is an error.
    fn partition(
        &mut self,
        part: &Partition,
        range: TimeRange,
    ) -> Result<ScanEnd, Box<dyn std::error::Error>> {
        if let Some(p) = &part.index_problem {
            eprintln!(
                "chronicle cat: warning: {}: index not used ({p}); scanning the whole segment",
                part.paths.dir.display()
            );
        }
        let h = part.body.header();
        let scale = Scale {
            price_exponent: h.price_exponent,
            quantity_exponent: h.quantity_exponent,
        };
        let end = part.scan(range, |f| {
            let view = &f.record;
            if !self.types.is_empty() && !self.types.contains(&view.type_id) {
                return ControlFlow::Continue(());
            }
            let written = match self.format {
                Format::Jsonl => writeln!(self.out, "{}", render::jsonl(view, scale)),
                Format::Csv => writeln!(self.out, "{}", render::csv(view, scale)),
            };
            match written {
                Ok(()) => {
                    self.printed += 1;
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    self.failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        Ok(end)
    }
}

pub fn run(a: Args) -> CliResult {
    let range = TimeRange {
        from: a.from.unwrap_or(0),
        to: a.to.unwrap_or(u64::MAX),
    };
    if range.from > range.to {
        return Err(format!(
            "--from {} is after --to {}: an empty range",
            utc::rfc3339(range.from),
            utc::rfc3339(range.to)
        )
        .into());
    }
    let target = a.place.target(&a.target)?;
    let parts = match target {
        Target::Partition(p) => vec![p],
        Target::Symbol { roots, key } => {
            let days = roots.days(&key)?;
            let (first, last) = (
                utc::iso_date(utc::date_of(range.from)),
                utc::iso_date(utc::date_of(range.to)),
            );
            let chosen: Vec<&String> = days
                .iter()
                .filter(|d| (&first..=&last).contains(d))
                .collect();
            if chosen.is_empty() {
                let stored = match (days.first(), days.last()) {
                    (Some(f), Some(l)) => format!("its {} days are {f} .. {l}", days.len()),
                    _ => "no day of it is stored".to_owned(),
                };
                return Err(format!(
                    "{}: no stored day in {first} .. {last}: {stored}",
                    a.target.display()
                )
                .into());
            }
            let mut parts = Vec::with_capacity(chosen.len());
            for day in chosen {
                parts.push(roots.open(&key.join(day))?.1);
            }
            parts
        }
    };
    let mut p = Printer {
        out: BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
        format: a.format,
        types: a.types,
        printed: 0,
        failed: None,
    };
    if let Format::Csv = p.format {
        p.failed = writeln!(p.out, "{}", render::csv_header()).err();
    }
    let mut torn = None;
    for part in &parts {
        if p.failed.is_some() {
            break;
        }
        if let ScanEnd::TornTail { valid_end, reason } = p.partition(part, range)? {
            torn = Some((part, valid_end, reason));
            break;
        }
    }
    let failed = p.failed.take().map_or_else(|| p.out.flush(), Err);
    match failed {
        // A closed pipe (`| head`) ends the output; it is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        r => r?,
    }
    // What came before the damage was printed; the reader says where it stopped and exits as
    // `verify` does on a torn tail.
    if let Some((part, valid_end, reason)) = torn {
        eprintln!(
            "chronicle cat: {}: stopped at byte offset {valid_end}, a torn tail ({reason}); \
             the records printed are those before it",
            part.body.origin().display()
        );
        return Ok(ExitCode::from(2));
    }
    if p.printed == 0 {
        // Nothing matched: say what is there, as a filter that selects nothing is most often
        // a mistyped range or type.
        let held: Vec<String> = parts.iter().map(held).collect::<Result<_, _>>()?;
        return Err(format!(
            "{}: no record matched{}; stored: {}",
            a.target.display(),
            if a.from.is_some() || a.to.is_some() || !p.types.is_empty() {
                " the range and types asked for"
            } else {
                ""
            },
            held.join("; ")
        )
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

/// A partition's records and exchange-time span: from `meta.json` once closed, else by a
/// walk of its frames.
fn held(part: &Partition) -> Result<String, Box<dyn std::error::Error>> {
    let (records, span) = if part.paths.meta.is_file() {
        let m = PartitionMeta::read(&part.paths.meta)?;
        (
            m.records,
            m.event_time_range.map(|r| (r.first_ns, r.last_ns)),
        )
    } else {
        let (mut n, mut span) = (0u64, None::<(u64, u64)>);
        part.walk(HEADER_LEN as u64, |f| {
            let t = f.record.meta.exchange_ts_ns;
            n += 1;
            span = Some(span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
            ControlFlow::Continue(())
        })?;
        (n, span)
    };
    let span = span.map_or(String::new(), |(a, b)| {
        format!(" from {} to {}", utc::rfc3339(a), utc::rfc3339(b))
    });
    Ok(format!(
        "{} holds {records} records{span}",
        part.paths.dir.display()
    ))
}
