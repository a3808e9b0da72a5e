//! Record bodies. Offsets are absolute within the record (the header takes bytes 0..32).

use crate::error::{DecodeError, EncodeError};
use crate::fixed_str::FixedStr;
use crate::record::{type_id, HEADER_LEN, MAX_RECORD_LEN};
use crate::wire::*;

/// Book side, or the aggressor side of a trade (DBN's convention: `B` bid/buy, `A` ask/sell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Bid,
    Ask,
    None,
}

impl Side {
    pub fn to_byte(self) -> u8 {
        match self {
            Side::Bid => b'B',
            Side::Ask => b'A',
            Side::None => b'N',
        }
    }

    pub fn from_byte(field: &'static str, b: u8) -> Result<Self, DecodeError> {
        match b {
            b'B' => Ok(Side::Bid),
            b'A' => Ok(Side::Ask),
            b'N' => Ok(Side::None),
            v => Err(DecodeError::BadField {
                field,
                value: v as u64,
            }),
        }
    }
}

/// L2 aggregate level update: the new total quantity at `price` (0 removes the level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelUpdate {
    pub side: Side,
    pub flags: u8,
    pub price: i64,
    pub quantity: i64,
    /// The venue's first update id of the message that carried this level (Binance `U`).
    pub first_update_id: u64,
    /// The venue's final update id of that message (Binance `u`).
    pub last_update_id: u64,
    /// The final update id of the venue's previous message (Binance `pu`).
    pub prev_update_id: u64,
}

impl LevelUpdate {
    /// Set on the last level of a venue message: the book is consistent after it.
    pub const FLAG_LAST_IN_MESSAGE: u8 = 1;
    pub(crate) const LEN: usize = 80;

    fn read(b: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            side: Side::from_byte("level_update.side", b[32])?,
            flags: b[33],
            price: i64_at(b, 40),
            quantity: i64_at(b, 48),
            first_update_id: u64_at(b, 56),
            last_update_id: u64_at(b, 64),
            prev_update_id: u64_at(b, 72),
        })
    }

    fn write(&self, b: &mut [u8]) {
        b[32] = self.side.to_byte();
        b[33] = self.flags;
        put_i64(b, 40, self.price);
        put_i64(b, 48, self.quantity);
        put_u64(b, 56, self.first_update_id);
        put_u64(b, 64, self.last_update_id);
        put_u64(b, 72, self.prev_update_id);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trade {
    /// Side of the aggressor (the taker): `Bid` means a buyer lifted the offer.
    pub aggressor: Side,
    pub flags: u8,
    pub price: i64,
    pub quantity: i64,
    pub trade_id: u64,
}

impl Trade {
    pub(crate) const LEN: usize = 64;

    fn read(b: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            aggressor: Side::from_byte("trade.aggressor", b[32])?,
            flags: b[33],
            price: i64_at(b, 40),
            quantity: i64_at(b, 48),
            trade_id: u64_at(b, 56),
        })
    }

    fn write(&self, b: &mut [u8]) {
        b[32] = self.aggressor.to_byte();
        b[33] = self.flags;
        put_i64(b, 40, self.price);
        put_i64(b, 48, self.quantity);
        put_u64(b, 56, self.trade_id);
    }
}

/// Best bid and offer. An empty side has price and quantity `UNDEF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bbo {
    pub bid_price: i64,
    pub bid_quantity: i64,
    pub ask_price: i64,
    pub ask_quantity: i64,
    pub update_id: u64,
}

impl Bbo {
    pub(crate) const LEN: usize = 72;

    fn read(b: &[u8]) -> Self {
        Self {
            bid_price: i64_at(b, 32),
            bid_quantity: i64_at(b, 40),
            ask_price: i64_at(b, 48),
            ask_quantity: i64_at(b, 56),
            update_id: u64_at(b, 64),
        }
    }

    fn write(&self, b: &mut [u8]) {
        put_i64(b, 32, self.bid_price);
        put_i64(b, 40, self.bid_quantity);
        put_i64(b, 48, self.ask_price);
        put_i64(b, 56, self.ask_quantity);
        put_u64(b, 64, self.update_id);
    }
}

/// Open interest and mark price of a derivative. Unknown fields are `UNDEF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenInterest {
    /// In the instrument's quantity scale.
    pub open_interest: i64,
    /// In the instrument's price scale.
    pub mark_price: i64,
    pub index_price: i64,
    /// Funding rate in units of 1e-9 (fixed scale, not the instrument's).
    pub funding_rate_e9: i64,
    /// Next funding time, ns since the epoch (0: unknown).
    pub next_funding_ts_ns: u64,
}

impl OpenInterest {
    pub(crate) const LEN: usize = 72;

    fn read(b: &[u8]) -> Self {
        Self {
            open_interest: i64_at(b, 32),
            mark_price: i64_at(b, 40),
            index_price: i64_at(b, 48),
            funding_rate_e9: i64_at(b, 56),
            next_funding_ts_ns: u64_at(b, 64),
        }
    }

    fn write(&self, b: &mut [u8]) {
        put_i64(b, 32, self.open_interest);
        put_i64(b, 40, self.mark_price);
        put_i64(b, 48, self.index_price);
        put_i64(b, 56, self.funding_rate_e9);
        put_u64(b, 64, self.next_funding_ts_ns);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub price: i64,
    pub quantity: i64,
}

/// The levels of a book snapshot: borrowed from a decoded record (zero-copy) or from the
/// caller's slice when encoding.
#[derive(Debug, Clone, Copy)]
pub enum Levels<'a> {
    Encoded(&'a [u8]),
    Slice(&'a [Level]),
}

impl<'a> Levels<'a> {
    pub fn len(&self) -> usize {
        match self {
            Levels::Encoded(b) => b.len() / 16,
            Levels::Slice(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> Option<Level> {
        match self {
            Levels::Encoded(b) => b.get(i * 16..i * 16 + 16).map(|l| Level {
                price: i64_at(l, 0),
                quantity: i64_at(l, 8),
            }),
            Levels::Slice(s) => s.get(i).copied(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Level> + '_ {
        (0..self.len()).map(move |i| self.get(i).expect("index below len"))
    }
}

impl PartialEq for Levels<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Levels<'_> {}

/// A full or partial picture of the book: `bid_count` bids (best first) then `ask_count`
/// asks (best first). A book deeper than one record spans several chunks, numbered from 0;
/// the last one has `FLAG_LAST_CHUNK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookSnapshot<'a> {
    pub update_id: u64,
    pub chunk: u16,
    pub flags: u16,
    pub bid_count: u16,
    pub ask_count: u16,
    pub levels: Levels<'a>,
}

impl<'a> BookSnapshot<'a> {
    pub const FLAG_LAST_CHUNK: u16 = 1;
    /// Made by chronicle's refinery from its reconstructed book (every 60 s), not sent by
    /// the venue.
    pub const FLAG_INJECTED: u16 = 2;
    pub(crate) const FIXED_LEN: usize = 48;
    /// Levels that fit one record.
    pub const MAX_LEVELS: usize = (MAX_RECORD_LEN - Self::FIXED_LEN) / 16;

    pub fn bids(&self) -> impl Iterator<Item = Level> + '_ {
        self.levels.iter().take(self.bid_count as usize)
    }

    pub fn asks(&self) -> impl Iterator<Item = Level> + '_ {
        self.levels.iter().skip(self.bid_count as usize)
    }

    pub(crate) fn encoded_len(&self) -> usize {
        Self::FIXED_LEN + 16 * self.levels.len()
    }

    fn read(b: &'a [u8]) -> Result<Self, DecodeError> {
        let bid_count = u16_at(b, 40);
        let ask_count = u16_at(b, 42);
        let levels = &b[Self::FIXED_LEN..];
        if levels.len() != 16 * (bid_count as usize + ask_count as usize) {
            return Err(DecodeError::LengthMismatch {
                type_id: type_id::BOOK_SNAPSHOT_V1,
                expected: Self::FIXED_LEN + 16 * (bid_count as usize + ask_count as usize),
                length: b.len() as u16,
            });
        }
        Ok(Self {
            update_id: u64_at(b, 32),
            bid_count,
            ask_count,
            chunk: u16_at(b, 44),
            flags: u16_at(b, 46),
            levels: Levels::Encoded(levels),
        })
    }

    fn check(&self) -> Result<(), EncodeError> {
        let n = self.levels.len();
        if n > Self::MAX_LEVELS || n != self.bid_count as usize + self.ask_count as usize {
            return Err(EncodeError::TooManyLevels {
                levels: n,
                max: Self::MAX_LEVELS,
            });
        }
        Ok(())
    }

    fn write(&self, b: &mut [u8]) {
        put_u64(b, 32, self.update_id);
        put_u16(b, 40, self.bid_count);
        put_u16(b, 42, self.ask_count);
        put_u16(b, 44, self.chunk);
        put_u16(b, 46, self.flags);
        for (i, l) in self.levels.iter().enumerate() {
            let at = Self::FIXED_LEN + 16 * i;
            put_i64(b, at, l.price);
            put_i64(b, at + 8, l.quantity);
        }
    }
}

/// Why a stream is known to be incomplete at this point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// The venue's update-id continuity broke (Binance `pu` != previous `u`).
    SequenceBreak = 1,
    /// A Zone 1 ring was full and the feed dropped records rather than block.
    RingOverrun = 2,
    /// Transport loss (datagram sequence jump) before normalization, upstream of this box.
    FeedLoss = 3,
    /// The receiving socket's buffer overflowed: the kernel dropped the datagrams.
    KernelDrop = 4,
    /// The feed's sender restarted (a new session in the datagram header): what its old
    /// session sent after the last datagram received is unknown, and the new one may send
    /// records already stored again (`expected`/`received`: the old session's next sequence,
    /// the new session's first).
    SenderRestart = 5,
}

impl GapReason {
    fn from_u16(v: u16) -> Result<Self, DecodeError> {
        match v {
            1 => Ok(Self::SequenceBreak),
            2 => Ok(Self::RingOverrun),
            3 => Ok(Self::FeedLoss),
            4 => Ok(Self::KernelDrop),
            5 => Ok(Self::SenderRestart),
            v => Err(DecodeError::BadField {
                field: "gap.reason",
                value: v as u64,
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::SequenceBreak => "sequence_break",
            Self::RingOverrun => "ring_overrun",
            Self::FeedLoss => "feed_loss",
            Self::KernelDrop => "kernel_drop",
            Self::SenderRestart => "sender_restart",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub reason: GapReason,
    /// The id that continuity required (for a sequence break, the previous `u`).
    pub expected: u64,
    /// The id that arrived instead.
    pub received: u64,
    /// Records known lost (0 when the venue cannot tell).
    pub lost: u64,
}

impl Gap {
    pub(crate) const LEN: usize = 64;

    fn read(b: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            reason: GapReason::from_u16(u16_at(b, 32))?,
            expected: u64_at(b, 40),
            received: u64_at(b, 48),
            lost: u64_at(b, 56),
        })
    }

    fn write(&self, b: &mut [u8]) {
        put_u16(b, 32, self.reason as u16);
        put_u64(b, 40, self.expected);
        put_u64(b, 48, self.received);
        put_u64(b, 56, self.lost);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub sequence: u64,
}

impl Heartbeat {
    pub(crate) const LEN: usize = 40;
}

/// Instrument definition: what the scaled integers of this token mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Definition {
    pub venue: FixedStr<16>,
    pub raw_symbol: FixedStr<32>,
    pub price_exponent: i8,
    pub quantity_exponent: i8,
    /// DBN's instrument class letter (`F` future, `K` stock, `X` FX/crypto spot, ...), 0 if unknown.
    pub instrument_class: u8,
    pub tick_size: i64,
    pub lot_size: i64,
    pub symbol_id: u64,
    /// ns since the epoch; 0 for instruments that do not expire (perpetuals, spot).
    pub expiration_ns: u64,
}

impl Definition {
    pub(crate) const LEN: usize = 120;
    /// Exponents beyond this would overflow when formatting an i64 mantissa.
    pub const MAX_EXPONENT: i8 = 18;

    fn read(b: &[u8]) -> Result<Self, DecodeError> {
        let check_exp = |field, v: i8| {
            if v.unsigned_abs() > Self::MAX_EXPONENT as u8 {
                Err(DecodeError::BadField {
                    field,
                    value: v as u8 as u64,
                })
            } else {
                Ok(v)
            }
        };
        Ok(Self {
            venue: FixedStr::from_bytes(&b[32..48]),
            raw_symbol: FixedStr::from_bytes(&b[48..80]),
            price_exponent: check_exp("definition.price_exponent", b[80] as i8)?,
            quantity_exponent: check_exp("definition.quantity_exponent", b[81] as i8)?,
            instrument_class: b[82],
            tick_size: i64_at(b, 88),
            lot_size: i64_at(b, 96),
            symbol_id: u64_at(b, 104),
            expiration_ns: u64_at(b, 112),
        })
    }

    fn write(&self, b: &mut [u8]) {
        b[32..48].copy_from_slice(self.venue.bytes());
        b[48..80].copy_from_slice(self.raw_symbol.bytes());
        b[80] = self.price_exponent as u8;
        b[81] = self.quantity_exponent as u8;
        b[82] = self.instrument_class;
        put_i64(b, 88, self.tick_size);
        put_i64(b, 96, self.lot_size);
        put_u64(b, 104, self.symbol_id);
        put_u64(b, 112, self.expiration_ns);
    }
}

/// Order-level (L3, "market by order") action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAction {
    Add,
    Cancel,
    Modify,
    Clear,
    Trade,
    Fill,
    None,
}

impl OrderAction {
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Add => b'A',
            Self::Cancel => b'C',
            Self::Modify => b'M',
            Self::Clear => b'R',
            Self::Trade => b'T',
            Self::Fill => b'F',
            Self::None => b'N',
        }
    }

    pub fn from_byte(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            b'A' => Self::Add,
            b'C' => Self::Cancel,
            b'M' => Self::Modify,
            b'R' => Self::Clear,
            b'T' => Self::Trade,
            b'F' => Self::Fill,
            b'N' => Self::None,
            v => {
                return Err(DecodeError::BadField {
                    field: "order.action",
                    value: v as u64,
                })
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Cancel => "cancel",
            Self::Modify => "modify",
            Self::Clear => "clear",
            Self::Trade => "trade",
            Self::Fill => "fill",
            Self::None => "none",
        }
    }
}

/// Market-by-order event (DBN MBO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub action: OrderAction,
    pub side: Side,
    pub flags: u8,
    pub price: i64,
    pub quantity: i64,
    pub order_id: u64,
    /// The venue's message sequence number.
    pub sequence: u64,
}

impl Order {
    pub(crate) const LEN: usize = 72;

    fn read(b: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            action: OrderAction::from_byte(b[32])?,
            side: Side::from_byte("order.side", b[33])?,
            flags: b[34],
            price: i64_at(b, 40),
            quantity: i64_at(b, 48),
            order_id: u64_at(b, 56),
            sequence: u64_at(b, 64),
        })
    }

    fn write(&self, b: &mut [u8]) {
        b[32] = self.action.to_byte();
        b[33] = self.side.to_byte();
        b[34] = self.flags;
        put_i64(b, 40, self.price);
        put_i64(b, 48, self.quantity);
        put_u64(b, 56, self.order_id);
        put_u64(b, 64, self.sequence);
    }
}

/// Every record kind this version of the protocol knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    LevelUpdate(LevelUpdate),
    Trade(Trade),
    Bbo(Bbo),
    OpenInterest(OpenInterest),
    BookSnapshot(BookSnapshot<'a>),
    Gap(Gap),
    Heartbeat(Heartbeat),
    Definition(Definition),
    Order(Order),
}

impl<'a> Body<'a> {
    pub fn type_id(&self) -> u16 {
        match self {
            Body::LevelUpdate(_) => type_id::LEVEL_UPDATE_V1,
            Body::Trade(_) => type_id::TRADE_V1,
            Body::Bbo(_) => type_id::BBO_V1,
            Body::OpenInterest(_) => type_id::OPEN_INTEREST_V1,
            Body::BookSnapshot(_) => type_id::BOOK_SNAPSHOT_V1,
            Body::Gap(_) => type_id::GAP_V1,
            Body::Heartbeat(_) => type_id::HEARTBEAT_V1,
            Body::Definition(_) => type_id::DEFINITION_V1,
            Body::Order(_) => type_id::ORDER_V1,
        }
    }

    /// The snake_case name used by `chronicle cat`.
    pub fn kind(&self) -> &'static str {
        type_id::name(self.type_id()).expect("every body has a name")
    }

    pub fn encoded_len(&self) -> usize {
        match self {
            Body::LevelUpdate(_) => LevelUpdate::LEN,
            Body::Trade(_) => Trade::LEN,
            Body::Bbo(_) => Bbo::LEN,
            Body::OpenInterest(_) => OpenInterest::LEN,
            Body::BookSnapshot(s) => s.encoded_len(),
            Body::Gap(_) => Gap::LEN,
            Body::Heartbeat(_) => Heartbeat::LEN,
            Body::Definition(_) => Definition::LEN,
            Body::Order(_) => Order::LEN,
        }
    }

    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        match self {
            Body::BookSnapshot(s) => s.check(),
            _ => Ok(()),
        }
    }

    /// Decodes the body of a record whose header and total length were validated.
    pub(crate) fn read(type_id: u16, b: &'a [u8]) -> Result<Self, DecodeError> {
        let fixed = |expected: usize| {
            if b.len() == expected {
                Ok(())
            } else {
                Err(DecodeError::LengthMismatch {
                    type_id,
                    expected,
                    length: b.len() as u16,
                })
            }
        };
        Ok(match type_id {
            type_id::LEVEL_UPDATE_V1 => {
                fixed(LevelUpdate::LEN)?;
                Body::LevelUpdate(LevelUpdate::read(b)?)
            }
            type_id::TRADE_V1 => {
                fixed(Trade::LEN)?;
                Body::Trade(Trade::read(b)?)
            }
            type_id::BBO_V1 => {
                fixed(Bbo::LEN)?;
                Body::Bbo(Bbo::read(b))
            }
            type_id::OPEN_INTEREST_V1 => {
                fixed(OpenInterest::LEN)?;
                Body::OpenInterest(OpenInterest::read(b))
            }
            type_id::BOOK_SNAPSHOT_V1 => {
                if b.len() < BookSnapshot::FIXED_LEN {
                    return Err(DecodeError::LengthMismatch {
                        type_id,
                        expected: BookSnapshot::FIXED_LEN,
                        length: b.len() as u16,
                    });
                }
                Body::BookSnapshot(BookSnapshot::read(b)?)
            }
            type_id::GAP_V1 => {
                fixed(Gap::LEN)?;
                Body::Gap(Gap::read(b)?)
            }
            type_id::HEARTBEAT_V1 => {
                fixed(Heartbeat::LEN)?;
                Body::Heartbeat(Heartbeat {
                    sequence: u64_at(b, HEADER_LEN),
                })
            }
            type_id::DEFINITION_V1 => {
                fixed(Definition::LEN)?;
                Body::Definition(Definition::read(b)?)
            }
            type_id::ORDER_V1 => {
                fixed(Order::LEN)?;
                Body::Order(Order::read(b)?)
            }
            other => return Err(DecodeError::UnknownType { type_id: other }),
        })
    }

    /// Writes the body into a zeroed record buffer of exactly `encoded_len()` bytes.
    pub(crate) fn write(&self, b: &mut [u8]) {
        match self {
            Body::LevelUpdate(v) => v.write(b),
            Body::Trade(v) => v.write(b),
            Body::Bbo(v) => v.write(b),
            Body::OpenInterest(v) => v.write(b),
            Body::BookSnapshot(v) => v.write(b),
            Body::Gap(v) => v.write(b),
            Body::Heartbeat(v) => put_u64(b, HEADER_LEN, v.sequence),
            Body::Definition(v) => v.write(b),
            Body::Order(v) => v.write(b),
        }
    }
}
