//! chronicle-storage: the on-disk truth of Zone 2 (`docs/formats/`).
//!
//! - [`segment`]: the `.q` file: a checksummed header, then length-and-CRC32C framed
//!   protocol records. A torn tail is cut back; damage before the tail is an error.
//! - [`index`]: the sparse time index (`index/time.idx`), exchange time → byte offset.
//! - [`partition`]: `{data_dir}/v1/{venue}/{symbol_code}/{YYYY-MM-DD}/` and its writer.
//! - [`meta`]: `meta.json`, provenance and completeness.
//! - [`symbols`]: `dim_symbol`, the SCD2 symbol table.
//!
//! Byte layouts: `docs/formats/segment.md` and `docs/formats/index.md`.

mod error;
pub mod fsutil;
pub mod index;
pub mod meta;
pub mod partition;
pub mod segment;
pub mod symbols;
pub mod utc;

pub use error::StorageError;
