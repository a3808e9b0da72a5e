//! What every importer hands to the partition writer: instruments and their events, in
//! capture order. Sources decode a venue's format; the sink owns identity (token and
//! symbol ids), tick ids and partitioning, so every source is treated alike.

use chronicle_protocol::{Body, Definition, FixedStr};

use crate::ImportError;

/// An instrument as a source knows it. Prices and quantities of its events are mantissas
/// at these exponents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    /// Stable venue name (`binance-usdm`, `glbx`, ...).
    pub venue: String,
    /// The venue's own symbol (`BTCUSDT`, `ESH1`).
    pub raw_symbol: String,
    pub price_exponent: i8,
    pub quantity_exponent: i8,
    /// DBN's instrument class letter, 0 if unknown.
    pub instrument_class: u8,
    /// In the price scale; `chronicle_protocol::UNDEF` if unknown.
    pub tick_size: i64,
    /// In the quantity scale; `UNDEF` if unknown.
    pub lot_size: i64,
    /// ns since the epoch, 0 if the instrument does not expire.
    pub expiration_ns: u64,
}

impl Instrument {
    /// The `definition` record body of this instrument under `symbol_id` (its token).
    pub fn definition(&self, symbol_id: u64) -> Result<Definition, ImportError> {
        let enc = |e: chronicle_protocol::EncodeError| ImportError::Encode(e.to_string());
        Ok(Definition {
            venue: FixedStr::new("venue", &self.venue).map_err(enc)?,
            raw_symbol: FixedStr::new("raw_symbol", &self.raw_symbol).map_err(enc)?,
            price_exponent: self.price_exponent,
            quantity_exponent: self.quantity_exponent,
            instrument_class: self.instrument_class,
            tick_size: self.tick_size,
            lot_size: self.lot_size,
            symbol_id,
            expiration_ns: self.expiration_ns,
        })
    }
}

/// Index of an instrument declared to a sink.
pub type InstrumentHandle = usize;

/// Receives a capture, event by event.
pub trait EventSink {
    /// Declares an instrument before its first event; declaring the same venue and raw
    /// symbol again returns the same handle.
    fn instrument(&mut self, instrument: &Instrument) -> Result<InstrumentHandle, ImportError>;

    /// One event of a declared instrument. `exchange_ts_ns` chooses the partition.
    fn event(
        &mut self,
        instrument: InstrumentHandle,
        exchange_ts_ns: u64,
        receive_ts_ns: u64,
        body: Body<'_>,
    ) -> Result<(), ImportError>;
}
