//! The partition sink: gives each instrument its stable identity from `dim_symbol` (the
//! token id is the instrument's `symbol_id`) and hands its events to the refinery, the same
//! one the appliance runs, so an import writes exactly what a live run of the same capture
//! would.

use crate::source::{EventSink, Instrument, InstrumentHandle};
use crate::ImportError;
use chronicle_etl::{Refinery, RefineryConfig};
use chronicle_protocol::{Body, Definition};
use chronicle_storage::meta::{PartitionMeta, Source};
use chronicle_storage::symbols::DimSymbol;
use std::path::Path;

pub struct PartitionSink {
    symbols: DimSymbol,
    refinery: Refinery,
    /// Token id and instrument of each handle.
    tokens: Vec<(u32, Instrument)>,
}

impl PartitionSink {
    pub fn new(data_dir: &Path, source: Source) -> Result<Self, ImportError> {
        Self::with_config(RefineryConfig::new(data_dir.to_owned(), source))
    }

    pub fn with_config(cfg: RefineryConfig) -> Result<Self, ImportError> {
        Ok(Self {
            symbols: DimSymbol::load(&cfg.data_dir)?,
            refinery: Refinery::new(cfg)?,
            tokens: Vec::new(),
        })
    }

    pub fn refinery(&self) -> &Refinery {
        &self.refinery
    }

    /// Closes every partition (durably, with its meta.json).
    pub fn finish(self) -> Result<Vec<PartitionMeta>, ImportError> {
        Ok(self
            .refinery
            .finish()?
            .into_iter()
            .map(|c| c.meta)
            .collect())
    }
}

impl EventSink for PartitionSink {
    fn instrument(&mut self, instrument: &Instrument) -> Result<InstrumentHandle, ImportError> {
        let known = self.tokens.iter().position(|(_, i)| {
            i.venue == instrument.venue && i.raw_symbol == instrument.raw_symbol
        });
        let token_id = match known {
            Some(h) => self.tokens[h].0,
            None => {
                let row = self.symbols.resolve_or_register(
                    &instrument.venue,
                    &instrument.raw_symbol,
                    0,
                )?;
                // Saved before the refinery resolves it: identity is durable before any data.
                self.symbols.save()?;
                u32::try_from(row.symbol_id).map_err(|_| {
                    ImportError::Encode(format!(
                        "symbol_id {} does not fit a u32 token id",
                        row.symbol_id
                    ))
                })?
            }
        };
        // A later declaration (a definition mid-capture) refines the partitions opened after it.
        self.refinery
            .declare(token_id, instrument.definition(token_id as u64)?, None)?;
        Ok(match known {
            Some(h) => {
                self.tokens[h].1 = instrument.clone();
                h
            }
            None => {
                self.tokens.push((token_id, instrument.clone()));
                self.tokens.len() - 1
            }
        })
    }

    fn event(
        &mut self,
        instrument: InstrumentHandle,
        exchange_ts_ns: u64,
        receive_ts_ns: u64,
        body: Body<'_>,
    ) -> Result<(), ImportError> {
        let token_id = self.tokens[instrument].0;
        // Identity is the refinery's: a source's definition carries the token's symbol id.
        let body = match body {
            Body::Definition(d) => Body::Definition(Definition {
                symbol_id: token_id as u64,
                ..d
            }),
            b => b,
        };
        Ok(self
            .refinery
            .push(token_id, exchange_ts_ns, receive_ts_ns, body, &mut |_| {})?)
    }
}
