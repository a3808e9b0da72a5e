//! The record header and whole-record encode/decode.

use crate::body::Body;
use crate::error::{DecodeError, EncodeError};
use crate::wire::*;

/// Bytes of the common header every record starts with.
pub const HEADER_LEN: usize = 32;

/// Byte offsets of the header fields (`docs/formats/protocol.md`, "Header").
pub mod header {
    /// `u16` type id.
    pub const TYPE_ID: usize = 0;
    /// `u16` length of the whole record, header included.
    pub const LENGTH: usize = 2;
    /// `u32`.
    pub const TOKEN_ID: usize = 4;
    /// `u64`.
    pub const GLOBAL_TICK_ID: usize = 8;
    /// `u64`.
    pub const EXCHANGE_TS_NS: usize = 16;
    /// `u64`.
    pub const RECEIVE_TS_NS: usize = 24;
}

const _: () = assert!(tiles(
    &[
        (header::TYPE_ID, 2),
        (header::LENGTH, 2),
        (header::TOKEN_ID, 4),
        (header::GLOBAL_TICK_ID, 8),
        (header::EXCHANGE_TS_NS, 8),
        (header::RECEIVE_TS_NS, 8),
    ],
    HEADER_LEN
));

/// The largest record: the u16 length field rounded down to a multiple of 8.
pub const MAX_RECORD_LEN: usize = 65528;

/// Type ids. A new version of a message gets a new id; ids are never reused.
pub mod type_id {
    pub const LEVEL_UPDATE_V1: u16 = 0x0001;
    pub const TRADE_V1: u16 = 0x0002;
    pub const BBO_V1: u16 = 0x0003;
    pub const OPEN_INTEREST_V1: u16 = 0x0004;
    pub const BOOK_SNAPSHOT_V1: u16 = 0x0005;
    pub const GAP_V1: u16 = 0x0006;
    pub const HEARTBEAT_V1: u16 = 0x0007;
    pub const DEFINITION_V1: u16 = 0x0008;
    pub const ORDER_V1: u16 = 0x0009;
    pub const DECLARATION_V1: u16 = 0x000A;

    /// Every known type id, in id order.
    pub const ALL: [u16; 10] = [
        LEVEL_UPDATE_V1,
        TRADE_V1,
        BBO_V1,
        OPEN_INTEREST_V1,
        BOOK_SNAPSHOT_V1,
        GAP_V1,
        HEARTBEAT_V1,
        DEFINITION_V1,
        ORDER_V1,
        DECLARATION_V1,
    ];

    /// The type id a snake_case name names ([`name`]'s inverse).
    pub fn by_name(name: &str) -> Option<u16> {
        ALL.into_iter().find(|&id| self::name(id) == Some(name))
    }

    /// The snake_case name of a known type id.
    pub fn name(id: u16) -> Option<&'static str> {
        Some(match id {
            LEVEL_UPDATE_V1 => "level_update",
            TRADE_V1 => "trade",
            BBO_V1 => "bbo",
            OPEN_INTEREST_V1 => "open_interest",
            BOOK_SNAPSHOT_V1 => "book_snapshot",
            GAP_V1 => "gap",
            HEARTBEAT_V1 => "heartbeat",
            DEFINITION_V1 => "definition",
            ORDER_V1 => "order",
            DECLARATION_V1 => "declaration",
            _ => return None,
        })
    }
}

/// The header fields every record carries besides its type and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    pub token_id: u32,
    /// Strictly increasing within one token's log; assigned by the refinery.
    pub global_tick_id: u64,
    /// Venue time, ns since the Unix epoch, UTC. Partitions are cut on this.
    pub exchange_ts_ns: u64,
    /// Local receive time, ns since the Unix epoch.
    pub receive_ts_ns: u64,
}

impl Meta {
    fn read(b: &[u8]) -> Self {
        Self {
            token_id: u32_at(b, header::TOKEN_ID),
            global_tick_id: u64_at(b, header::GLOBAL_TICK_ID),
            exchange_ts_ns: u64_at(b, header::EXCHANGE_TS_NS),
            receive_ts_ns: u64_at(b, header::RECEIVE_TS_NS),
        }
    }

    /// Writes these fields into the header of `record` (at least [`HEADER_LEN`] bytes), leaving
    /// its type id, length and body as they are. [`Record::encode`] writes its header with it,
    /// and the replay source re-stamps the records it holds encoded (each copy's token and
    /// times). The refinery patches nothing in place: it gives the decoded record its tick id
    /// and encodes it anew.
    pub fn write_into(&self, record: &mut [u8]) {
        assert!(record.len() >= HEADER_LEN, "record shorter than its header");
        put_u32(record, header::TOKEN_ID, self.token_id);
        put_u64(record, header::GLOBAL_TICK_ID, self.global_tick_id);
        put_u64(record, header::EXCHANGE_TS_NS, self.exchange_ts_ns);
        put_u64(record, header::RECEIVE_TS_NS, self.receive_ts_ns);
    }
}

/// A record whose framing (type id and length) is valid, with its body not yet decoded.
/// Readers use it to pass over type ids newer than themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub type_id: u16,
    pub meta: Meta,
    /// The whole record, header included.
    pub bytes: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// Validates the header at the start of `buf` and borrows the record it announces.
    pub fn parse(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::Truncated {
                need: HEADER_LEN,
                have: buf.len(),
            });
        }
        let length = u16_at(buf, header::LENGTH);
        let len = length as usize;
        if !(HEADER_LEN..=MAX_RECORD_LEN).contains(&len) || !len.is_multiple_of(8) {
            return Err(DecodeError::BadLength { length });
        }
        if buf.len() < len {
            return Err(DecodeError::Truncated {
                need: len,
                have: buf.len(),
            });
        }
        Ok(Self {
            type_id: u16_at(buf, header::TYPE_ID),
            meta: Meta::read(buf),
            bytes: &buf[..len],
        })
    }

    pub fn decode(&self) -> Result<Record<'a>, DecodeError> {
        Ok(Record {
            meta: self.meta,
            body: Body::read(self.type_id, self.bytes)?,
        })
    }
}

/// A decoded record. `Copy`: book levels stay borrowed from the source buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub meta: Meta,
    pub body: Body<'a>,
}

impl<'a> Record<'a> {
    /// Decodes the record at the start of `buf` (which may hold more after it; the record's
    /// length is `encoded_len()`).
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        RecordView::parse(buf)?.decode()
    }

    pub fn encoded_len(&self) -> usize {
        self.body.encoded_len()
    }

    /// Encodes into the start of `out`, returning the bytes written. Never allocates.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        self.body.check()?;
        let len = self.encoded_len();
        debug_assert!(len.is_multiple_of(8) && len <= MAX_RECORD_LEN);
        if out.len() < len {
            return Err(EncodeError::BufferTooSmall {
                need: len,
                have: out.len(),
            });
        }
        let b = &mut out[..len];
        b.fill(0);
        put_u16(b, header::TYPE_ID, self.body.type_id());
        put_u16(b, header::LENGTH, len as u16);
        self.meta.write_into(b);
        self.body.write(b);
        Ok(len)
    }

    /// Encodes into a fresh vector; for tests and tools, not the hot path.
    pub fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = vec![0u8; self.encoded_len()];
        self.encode(&mut v)?;
        Ok(v)
    }
}
