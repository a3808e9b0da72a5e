//! The partition sink: gives each instrument its stable identity from `dim_symbol`, assigns
//! every record its token's next global tick id, and routes it to the partition of its
//! exchange-time UTC date. Each partition opens with a `definition` record so it is
//! self-describing. A backfill holds every partition it touches open until the end, so no
//! record of a capture is ever late.

use crate::source::{EventSink, Instrument, InstrumentHandle};
use crate::ImportError;
use chronicle_protocol::{Body, Definition, FixedStr, Meta, Record, MAX_RECORD_LEN};
use chronicle_storage::meta::{Completeness, PartitionMeta, Source};
use chronicle_storage::partition::{partition_dir, PartitionWriter};
use chronicle_storage::segment::SegmentHeader;
use chronicle_storage::symbols::DimSymbol;
use chronicle_storage::utc;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn encode_err(e: chronicle_protocol::EncodeError) -> ImportError {
    ImportError::Encode(e.to_string())
}

struct Token {
    instrument: Instrument,
    token_id: u32,
    next_tick: u64,
}

pub struct PartitionSink {
    data_dir: PathBuf,
    symbols: DimSymbol,
    source: Source,
    tokens: Vec<Token>,
    /// Keyed by (instrument, yyyymmdd): BTreeMap so closing order is deterministic.
    writers: BTreeMap<(InstrumentHandle, u32), PartitionWriter>,
    scratch: Box<[u8; MAX_RECORD_LEN]>,
}

impl PartitionSink {
    pub fn new(data_dir: &Path, source: Source) -> Result<Self, ImportError> {
        Ok(Self {
            data_dir: data_dir.to_owned(),
            symbols: DimSymbol::load(data_dir)?,
            source,
            tokens: Vec::new(),
            writers: BTreeMap::new(),
            scratch: Box::new([0u8; MAX_RECORD_LEN]),
        })
    }

    fn append(
        &mut self,
        handle: InstrumentHandle,
        exchange_ts_ns: u64,
        receive_ts_ns: u64,
        body: Body<'_>,
    ) -> Result<(), ImportError> {
        let date = utc::date_of(exchange_ts_ns);
        let key = (handle, utc::yyyymmdd(date));
        if !self.writers.contains_key(&key) {
            let w = self.open_partition(handle, date, exchange_ts_ns)?;
            self.writers.insert(key, w);
            // Every partition starts with the definition, so it is readable on its own.
            let def = self.definition(handle)?;
            self.append(handle, exchange_ts_ns, receive_ts_ns, Body::Definition(def))?;
        }
        let token = &mut self.tokens[handle];
        let meta = Meta {
            token_id: token.token_id,
            global_tick_id: token.next_tick,
            exchange_ts_ns,
            receive_ts_ns,
        };
        token.next_tick += 1;
        let len = Record { meta, body }
            .encode(&mut self.scratch[..])
            .map_err(encode_err)?;
        let w = self.writers.get_mut(&key).expect("opened above");
        w.append(&self.scratch[..len])?;
        Ok(())
    }

    fn definition(&self, handle: InstrumentHandle) -> Result<Definition, ImportError> {
        let t = &self.tokens[handle];
        let i = &t.instrument;
        Ok(Definition {
            venue: FixedStr::new("venue", &i.venue).map_err(encode_err)?,
            raw_symbol: FixedStr::new("raw_symbol", &i.raw_symbol).map_err(encode_err)?,
            price_exponent: i.price_exponent,
            quantity_exponent: i.quantity_exponent,
            instrument_class: i.instrument_class,
            tick_size: i.tick_size,
            lot_size: i.lot_size,
            symbol_id: t.token_id as u64,
            expiration_ns: i.expiration_ns,
        })
    }

    fn open_partition(
        &mut self,
        handle: InstrumentHandle,
        date: time::Date,
        ts: u64,
    ) -> Result<PartitionWriter, ImportError> {
        let inst = self.tokens[handle].instrument.clone();
        // The directory takes the symbol code valid on that date (SCD2).
        let row = self
            .symbols
            .resolve_or_register(&inst.venue, &inst.raw_symbol, ts)?;
        let dir = partition_dir(&self.data_dir, &inst.venue, &row.symbol_code, date);
        if dir
            .join(chronicle_storage::partition::SEGMENT_FILE)
            .exists()
        {
            return Err(ImportError::Exists(dir));
        }
        let header = SegmentHeader {
            price_exponent: inst.price_exponent,
            quantity_exponent: inst.quantity_exponent,
            symbol_id: row.symbol_id,
            token_id: self.tokens[handle].token_id,
            date: utc::yyyymmdd(date),
            venue: FixedStr::new("venue", &inst.venue).map_err(encode_err)?,
            symbol_code: FixedStr::new("symbol_code", &row.symbol_code).map_err(encode_err)?,
        };
        let meta = PartitionMeta {
            format: chronicle_storage::meta::FORMAT.into(),
            venue: inst.venue.clone(),
            symbol_id: row.symbol_id,
            symbol_version_id: row.symbol_version_id,
            symbol_code: row.symbol_code.clone(),
            raw_symbol: inst.raw_symbol.clone(),
            token_id: self.tokens[handle].token_id,
            date: utc::iso_date(date),
            price_exponent: inst.price_exponent,
            quantity_exponent: inst.quantity_exponent,
            source: self.source.clone(),
            ingest_time: String::new(),
            event_time_range: None,
            records: 0,
            segment_bytes: 0,
            counts: BTreeMap::new(),
            completeness: Completeness::default(),
            late_policy: "reject".into(),
        };
        Ok(PartitionWriter::open(&dir, header, meta)?)
    }

    /// Closes every partition (durably, with its meta.json) and saves dim_symbol.
    pub fn finish(mut self) -> Result<Vec<PartitionMeta>, ImportError> {
        let mut metas = Vec::with_capacity(self.writers.len());
        for (_, w) in std::mem::take(&mut self.writers) {
            metas.push(w.close()?);
        }
        self.symbols.save()?;
        Ok(metas)
    }
}

impl EventSink for PartitionSink {
    fn instrument(&mut self, instrument: &Instrument) -> Result<InstrumentHandle, ImportError> {
        if let Some(h) = self.tokens.iter().position(|t| {
            t.instrument.venue == instrument.venue
                && t.instrument.raw_symbol == instrument.raw_symbol
        }) {
            // A later declaration (a definition arriving mid-capture) refines tick size, lot
            // and expiry for partitions opened from now on; the exponents of records already
            // written cannot change.
            let known = &mut self.tokens[h].instrument;
            if (known.price_exponent, known.quantity_exponent)
                != (instrument.price_exponent, instrument.quantity_exponent)
            {
                return Err(ImportError::Encode(format!(
                    "{}/{} redeclared with exponents {}/{} (was {}/{})",
                    instrument.venue,
                    instrument.raw_symbol,
                    instrument.price_exponent,
                    instrument.quantity_exponent,
                    known.price_exponent,
                    known.quantity_exponent
                )));
            }
            *known = instrument.clone();
            return Ok(h);
        }
        // The token is the instrument's stable symbol_id (as of its first sighting).
        let row = self
            .symbols
            .resolve_or_register(&instrument.venue, &instrument.raw_symbol, 0)?;
        let token_id = u32::try_from(row.symbol_id).map_err(|_| {
            ImportError::Encode(format!(
                "symbol_id {} does not fit a u32 token id",
                row.symbol_id
            ))
        })?;
        let next_tick =
            crate::resume::next_tick(&self.data_dir, &instrument.venue, &row.symbol_code)?;
        self.tokens.push(Token {
            instrument: instrument.clone(),
            token_id,
            next_tick,
        });
        Ok(self.tokens.len() - 1)
    }

    fn event(
        &mut self,
        instrument: InstrumentHandle,
        exchange_ts_ns: u64,
        receive_ts_ns: u64,
        body: Body<'_>,
    ) -> Result<(), ImportError> {
        // Identity is the sink's: a source's definition carries the token's symbol id.
        let body = match body {
            Body::Definition(mut d) => {
                d.symbol_id = self.tokens[instrument].token_id as u64;
                Body::Definition(d)
            }
            b => b,
        };
        self.append(instrument, exchange_ts_ns, receive_ts_ns, body)
    }
}
