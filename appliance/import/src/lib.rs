//! chronicle-import: converts real captures into `.q` partitions.
//!
//! A source ([`binance`], [`dbn`]) decodes a venue's format into instruments and events;
//! the [`PartitionSink`] gives them identity and tick ids and writes the partitions.

pub mod binance;
pub mod dbn;
mod error;
mod sink;
mod source;

pub use error::ImportError;
pub use sink::PartitionSink;
pub use source::{EventSink, Instrument, InstrumentHandle};
