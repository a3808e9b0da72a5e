//! chronicle-bench: benchmarks only (see `benches/`). Run with `cargo bench -p chronicle-bench`.
//!
//! - `decode`: decode throughput of a real `.q` segment (the Binance BTCUSDT capture in
//!   `shared/data/`, imported in the bench's setup) against the same events encoded as an
//!   uncompressed DBN stream and decoded with the `dbn` crate.
