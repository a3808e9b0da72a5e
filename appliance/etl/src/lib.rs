//! chronicle-etl: the refinery. It turns a token's normalized events into its
//! canonical Zone 2 stream: assigns GlobalTickIds, reconstructs the book and injects a book
//! snapshot every 60 s, opens each partition with a definition, and routes every record to
//! the partition of its exchange-time UTC date — keeping the previous day open for an hour of
//! stragglers and turning away (or setting aside) anything later. Import and the appliance
//! share it, so both write the same records in the same order.

pub mod book;
mod error;
pub mod refinery;
pub mod resume;
pub mod side;
pub mod stored;

pub use error::EtlError;
pub use refinery::{
    Appended, Backend, Closed, Counters, LatePolicy, PartitionKey, Prepared, Refinery,
    RefineryConfig, ReplayResume,
};
