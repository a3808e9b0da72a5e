//! chronicle-protocol: the normalized event records every part of the appliance speaks.
//!
//! A record is a 32-byte [`Meta`] header followed by a fixed-width body chosen by its
//! `u16` type id (see `docs/formats/protocol.md`). All integers are little-endian, every
//! record length is a multiple of 8, prices and quantities are integers scaled by the
//! instrument's decimal exponents. A new version of a message gets a new type id; old ids
//! stay decodable forever.
//!
//! Decoding never allocates, never panics on any input, and borrows variable-length
//! payloads (book levels) from the input buffer.

mod body;
mod decimal;
mod error;
mod fixed_str;
mod record;
pub mod wire;

pub use body::{
    Bbo, Body, BookSnapshot, Declaration, Definition, Gap, GapReason, Heartbeat, Level,
    LevelUpdate, Levels, OpenInterest, Order, OrderAction, Side, Trade,
};
pub use decimal::{format_scaled, parse_scaled, significant_decimals, Scaled, UNDEF};
pub use error::{DecodeError, EncodeError, ParseDecimalError};
pub use fixed_str::FixedStr;
pub use record::{header, type_id, Meta, Record, RecordView, HEADER_LEN, MAX_RECORD_LEN};
