use thiserror::Error;

/// Why a byte slice is not a valid record. Offsets are relative to the record start;
/// the segment layer adds the file offset.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("record truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("record length {length} is invalid (must be a multiple of 8 in 32..=65528)")]
    BadLength { length: u16 },
    #[error("unknown record type id {type_id:#06x}")]
    UnknownType { type_id: u16 },
    #[error("record type {type_id:#06x} must be {expected} bytes long, header says {length}")]
    LengthMismatch {
        type_id: u16,
        expected: usize,
        length: u16,
    },
    #[error("field `{field}` has invalid value {value}")]
    BadField { field: &'static str, value: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("output buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall { need: usize, have: usize },
    #[error("book snapshot with {levels} levels exceeds the {max} that fit one record")]
    TooManyLevels { levels: usize, max: usize },
    #[error("text `{text}` is longer than the {max}-byte field `{field}` or not ASCII")]
    TextTooLong {
        field: &'static str,
        text: String,
        max: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseDecimalError {
    #[error("`{text}` is not a decimal number")]
    Syntax { text: String },
    #[error("`{text}` has more decimals than the exponent {exponent} allows")]
    TooPrecise { text: String, exponent: i8 },
    #[error("`{text}` does not fit a 64-bit integer at exponent {exponent}")]
    Overflow { text: String, exponent: i8 },
}
