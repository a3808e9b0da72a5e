//! chronicle-derive: the optional Deriver. It turns a partition's records into
//! `derived/book.parquet` for analytics (DuckDB, polars, Spark): one row per record, typed
//! columns per body field, prices and quantities as exact `DECIMAL(18, s)` at the segment's
//! exponents, timestamps as UTC nanoseconds. Schema: `docs/formats/parquet.md`.
//!
//! - [`Deriver`]: fed record by record by whoever iterates (the tier manager during a cold
//!   move, a CLI); bounded memory; the file appears under its name only when complete.
//! - [`derive_partition`]: the same for a whole partition read with `chronicle-reader`.

mod columns;
mod decimal;
mod deriver;
mod error;
mod partition;
mod row;

pub use chronicle_reader::render::Scale;
pub use decimal::PRECISION;
pub use deriver::{DeriveOptions, DeriveStats, Deriver, SCHEMA_VERSION};
pub use error::DeriveError;
pub use partition::derive_partition;

/// Where the Deriver's output lives inside a partition directory.
pub const DERIVED_FILE: &str = "derived/book.parquet";
