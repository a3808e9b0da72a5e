//! chronicle-replay: sources that replay market data into the appliance.
//!
//! [`synthetic`] is a seeded model of Binance USD-M BTCUSDT that writes a capture in the
//! real capture's format, so demos and load tests need no real data and still go through
//! the real importer.

pub mod synthetic;

pub use synthetic::{write_capture, Stats, SyntheticConfig, SyntheticFeed};
