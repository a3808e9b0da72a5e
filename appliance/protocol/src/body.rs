//! Record bodies. Offsets are absolute within the record (the header takes bytes 0..32); each
//! body's `*_AT` offsets, with the widths of their fields and the zero bytes between them,
//! tile its length (checked at compile time).

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
    const SIDE_AT: usize = 32;
    const FLAGS_AT: usize = 33;
    const PRICE_AT: usize = 40;
    const QUANTITY_AT: usize = 48;
    const FIRST_UPDATE_ID_AT: usize = 56;
    const LAST_UPDATE_ID_AT: usize = 64;
    const PREV_UPDATE_ID_AT: usize = 72;

    fn read(b: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            side: Side::from_byte("level_update.side", b[Self::SIDE_AT])?,
            flags: b[Self::FLAGS_AT],
            price: i64_at(b, Self::PRICE_AT),
            quantity: i64_at(b, Self::QUANTITY_AT),
            first_update_id: u64_at(b, Self::FIRST_UPDATE_ID_AT),
            last_update_id: u64_at(b, Self::LAST_UPDATE_ID_AT),
            prev_update_id: u64_at(b, Self::PREV_UPDATE_ID_AT),
        })
    }

    fn write(&self, b: &mut [u8]) {
        b[Self::SIDE_AT] = self.side.to_byte();
        b[Self::FLAGS_AT] = self.flags;
        put_i64(b, Self::PRICE_AT, self.price);
        put_i64(b, Self::QUANTITY_AT, self.quantity);
        put_u64(b, Self::FIRST_UPDATE_ID_AT, self.first_update_id);
        put_u64(b, Self::LAST_UPDATE_ID_AT, self.last_update_id);
        put_u64(b, Self::PREV_UPDATE_ID_AT, self.prev_update_id);
    }
}

const _: () = assert!(tiles(
    &[
        (0, HEADER_LEN),
        (LevelUpdate::SIDE_AT, 1),
        (LevelUpdate::FLAGS_AT, 1),
        (34, 6), // zero
        (LevelUpdate::PRICE_AT, 8),
        (LevelUpdate::QUANTITY_AT, 8),
        (LevelUpdate::FIRST_UPDATE_ID_AT, 8),
        (LevelUpdate::LAST_UPDATE_ID_AT, 8),
        (LevelUpdate::PREV_UPDATE_ID_AT, 8),
    ],
    LevelUpdate::LEN
));

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
    const AGGRESSOR_AT: usize = 32;
    const FLAGS_AT: usize = 33;
    const PRICE_AT: usize = 40;
    const QUANTITY_AT: usize = 48;
    const TRADE_ID_AT: usize = 56;

    fn read(b: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            aggressor: Side::from_byte("trade.aggressor", b[Self::AGGRESSOR_AT])?,
            flags: b[Self::FLAGS_AT],
            price: i64_at(b, Self::PRICE_AT),
            quantity: i64_at(b, Self::QUANTITY_AT),
            trade_id: u64_at(b, Self::TRADE_ID_AT),
        })
    }

    fn write(&self, b: &mut [u8]) {
        b[Self::AGGRESSOR_AT] = self.aggressor.to_byte();
        b[Self::FLAGS_AT] = self.flags;
        put_i64(b, Self::PRICE_AT, self.price);
        put_i64(b, Self::QUANTITY_AT, self.quantity);
        put_u64(b, Self::TRADE_ID_AT, self.trade_id);
    }
}

const _: () = assert!(tiles(
    &[
        (0, HEADER_LEN),
        (Trade::AGGRESSOR_AT, 1),
        (Trade::FLAGS_AT, 1),
        (34, 6), // zero
        (Trade::PRICE_AT, 8),
        (Trade::QUANTITY_AT, 8),
        (Trade::TRADE_ID_AT, 8),
    ],
    Trade::LEN
));

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
    const BID_PRICE_AT: usize = 32;
    const BID_QUANTITY_AT: usize = 40;
    const ASK_PRICE_AT: usize = 48;
    const ASK_QUANTITY_AT: usize = 56;
    const UPDATE_ID_AT: usize = 64;

    fn read(b: &[u8]) -> Self {
        Self {
            bid_price: i64_at(b, Self::BID_PRICE_AT),
            bid_quantity: i64_at(b, Self::BID_QUANTITY_AT),
            ask_price: i64_at(b, Self::ASK_PRICE_AT),
            ask_quantity: i64_at(b, Self::ASK_QUANTITY_AT),
            update_id: u64_at(b, Self::UPDATE_ID_AT),
        }
    }

    fn write(&self, b: &mut [u8]) {
        put_i64(b, Self::BID_PRICE_AT, self.bid_price);
        put_i64(b, Self::BID_QUANTITY_AT, self.bid_quantity);
        put_i64(b, Self::ASK_PRICE_AT, self.ask_price);
        put_i64(b, Self::ASK_QUANTITY_AT, self.ask_quantity);
        put_u64(b, Self::UPDATE_ID_AT, self.update_id);
    }
}

const _: () = assert!(tiles(
    &[
        (0, HEADER_LEN),
        (Bbo::BID_PRICE_AT, 8),
        (Bbo::BID_QUANTITY_AT, 8),
        (Bbo::ASK_PRICE_AT, 8),
        (Bbo::ASK_QUANTITY_AT, 8),
        (Bbo::UPDATE_ID_AT, 8),
    ],
    Bbo::LEN
));

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
    const OPEN_INTEREST_AT: usize = 32;
    const MARK_PRICE_AT: usize = 40;
    const INDEX_PRICE_AT: usize = 48;
    const FUNDING_RATE_E9_AT: usize = 56;
    const NEXT_FUNDING_TS_NS_AT: usize = 64;

    fn read(b: &[u8]) -> Self {
        Self {
            open_interest: i64_at(b, Self::OPEN_INTEREST_AT),
            mark_price: i64_at(b, Self::MARK_PRICE_AT),
            index_price: i64_at(b, Self::INDEX_PRICE_AT),
            funding_rate_e9: i64_at(b, Self::FUNDING_RATE_E9_AT),
            next_funding_ts_ns: u64_at(b, Self::NEXT_FUNDING_TS_NS_AT),
        }
    }

    fn write(&self, b: &mut [u8]) {
        put_i64(b, Self::OPEN_INTEREST_AT, self.open_interest);
        put_i64(b, Self::MARK_PRICE_AT, self.mark_price);
        put_i64(b, Self::INDEX_PRICE_AT, self.index_price);
        put_i64(b, Self::FUNDING_RATE_E9_AT, self.funding_rate_e9);
        put_u64(b, Self::NEXT_FUNDING_TS_NS_AT, self.next_funding_ts_ns);
    }
}

const _: () = assert!(tiles(
    &[
        (0, HEADER_LEN),
        (OpenInterest::OPEN_INTEREST_AT, 8),
        (OpenInterest::MARK_PRICE_AT, 8),
        (OpenInterest::INDEX_PRICE_AT, 8),
        (OpenInterest::FUNDING_RATE_E9_AT, 8),
        (OpenInterest::NEXT_FUNDING_TS_NS_AT, 8),
    ],
    OpenInterest::LEN
));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub price: i64,
    pub quantity: i64,
}

impl Level {
    /// Bytes of one encoded level: price, then quantity.
    const LEN: usize = 16;
    const PRICE_AT: usize = 0;
    const QUANTITY_AT: usize = 8;
}

const _: () = assert!(tiles(
    &[(Level::PRICE_AT, 8), (Level::QUANTITY_AT, 8)],
    Level::LEN
));

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
            Levels::Encoded(b) => b.len() / Level::LEN,
            Levels::Slice(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> Option<Level> {
        match self {
            Levels::Encoded(b) => b.get(i * Level::LEN..(i + 1) * Level::LEN).map(|l| Level {
                price: i64_at(l, Level::PRICE_AT),
                quantity: i64_at(l, Level::QUANTITY_AT),
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
    /// Bytes before the levels.
    pub(crate) const FIXED_LEN: usize = 48;
    /// Levels that fit one record.
    pub const MAX_LEVELS: usize = (MAX_RECORD_LEN - Self::FIXED_LEN) / Level::LEN;
    const UPDATE_ID_AT: usize = 32;
    const BID_COUNT_AT: usize = 40;
    const ASK_COUNT_AT: usize = 42;
    const CHUNK_AT: usize = 44;
    const FLAGS_AT: usize = 46;

    pub fn bids(&self) -> impl Iterator<Item = Level> + '_ {
        self.levels.iter().take(self.bid_count as usize)
    }

    pub fn asks(&self) -> impl Iterator<Item = Level> + '_ {
        self.levels.iter().skip(self.bid_count as usize)
    }

    pub(crate) fn encoded_len(&self) -> usize {
        Self::FIXED_LEN + Level::LEN * self.levels.len()
    }

    fn read(b: &'a [u8]) -> Result<Self, DecodeError> {
        let bid_count = u16_at(b, Self::BID_COUNT_AT);
        let ask_count = u16_at(b, Self::ASK_COUNT_AT);
        let levels = &b[Self::FIXED_LEN..];
        let expected = Level::LEN * (bid_count as usize + ask_count as usize);
        if levels.len() != expected {
            return Err(DecodeError::LengthMismatch {
                type_id: type_id::BOOK_SNAPSHOT_V1,
                expected: Self::FIXED_LEN + expected,
                length: b.len() as u16,
            });
        }
        Ok(Self {
            update_id: u64_at(b, Self::UPDATE_ID_AT),
            bid_count,
            ask_count,
            chunk: u16_at(b, Self::CHUNK_AT),
            flags: u16_at(b, Self::FLAGS_AT),
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
        put_u64(b, Self::UPDATE_ID_AT, self.update_id);
        put_u16(b, Self::BID_COUNT_AT, self.bid_count);
        put_u16(b, Self::ASK_COUNT_AT, self.ask_count);
        put_u16(b, Self::CHUNK_AT, self.chunk);
        put_u16(b, Self::FLAGS_AT, self.flags);
        for (i, l) in self.levels.iter().enumerate() {
            let at = Self::FIXED_LEN + Level::LEN * i;
            put_i64(b, at + Level::PRICE_AT, l.price);
            put_i64(b, at + Level::QUANTITY_AT, l.quantity);
        }
    }
}

const _: () = assert!(tiles(
    &[
        (0, HEADER_LEN),
        (BookSnapshot::UPDATE_ID_AT, 8),
        (BookSnapshot::BID_COUNT_AT, 2),
        (BookSnapshot::ASK_COUNT_AT, 2),
        (BookSnapshot::CHUNK_AT, 2),
        (BookSnapshot::FLAGS_AT, 2),
    ],
    BookSnapshot::FIXED_LEN
));

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
    const REASON_AT: usize = 32;
    const EXPECTED_AT: usize = 40;
    const RECEIVED_AT: usize = 48;
    const LOST_AT: usize = 56;

    fn read(b: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            reason: GapReason::from_u16(u16_at(b, Self::REASON_AT))?,
            expected: u64_at(b, Self::EXPECTED_AT),
            received: u64_at(b, Self::RECEIVED_AT),
            lost: u64_at(b, Self::LOST_AT),
        })
    }

    fn write(&self, b: &mut [u8]) {
        put_u16(b, Self::REASON_AT, self.reason as u16);
        put_u64(b, Self::EXPECTED_AT, self.expected);
        put_u64(b, Self::RECEIVED_AT, self.received);
        put_u64(b, Self::LOST_AT, self.lost);
    }
}

const _: () = assert!(tiles(
    &[
        (0, HEADER_LEN),
        (Gap::REASON_AT, 2),
        (34, 6), // zero
        (Gap::EXPECTED_AT, 8),
        (Gap::RECEIVED_AT, 8),
        (Gap::LOST_AT, 8),
    ],
    Gap::LEN
));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub sequence: u64,
}

impl Heartbeat {
    pub(crate) const LEN: usize = 40;
    const SEQUENCE_AT: usize = 32;
}

const _: () = assert!(tiles(
    &[(0, HEADER_LEN), (Heartbeat::SEQUENCE_AT, 8)],
    Heartbeat::LEN
));

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
    const VENUE_AT: usize = 32;
    const RAW_SYMBOL_AT: usize = 48;
    const PRICE_EXPONENT_AT: usize = 80;
    const QUANTITY_EXPONENT_AT: usize = 81;
    const INSTRUMENT_CLASS_AT: usize = 82;
    const TICK_SIZE_AT: usize = 88;
    const LOT_SIZE_AT: usize = 96;
    const SYMBOL_ID_AT: usize = 104;
    const EXPIRATION_NS_AT: usize = 112;

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
            venue: FixedStr::from_bytes(&b[Self::VENUE_AT..]),
            raw_symbol: FixedStr::from_bytes(&b[Self::RAW_SYMBOL_AT..]),
            price_exponent: check_exp(
                "definition.price_exponent",
                b[Self::PRICE_EXPONENT_AT] as i8,
            )?,
            quantity_exponent: check_exp(
                "definition.quantity_exponent",
                b[Self::QUANTITY_EXPONENT_AT] as i8,
            )?,
            instrument_class: b[Self::INSTRUMENT_CLASS_AT],
            tick_size: i64_at(b, Self::TICK_SIZE_AT),
            lot_size: i64_at(b, Self::LOT_SIZE_AT),
            symbol_id: u64_at(b, Self::SYMBOL_ID_AT),
            expiration_ns: u64_at(b, Self::EXPIRATION_NS_AT),
        })
    }

    fn write(&self, b: &mut [u8]) {
        b[Self::VENUE_AT..Self::RAW_SYMBOL_AT].copy_from_slice(self.venue.bytes());
        b[Self::RAW_SYMBOL_AT..Self::PRICE_EXPONENT_AT].copy_from_slice(self.raw_symbol.bytes());
        b[Self::PRICE_EXPONENT_AT] = self.price_exponent as u8;
        b[Self::QUANTITY_EXPONENT_AT] = self.quantity_exponent as u8;
        b[Self::INSTRUMENT_CLASS_AT] = self.instrument_class;
        put_i64(b, Self::TICK_SIZE_AT, self.tick_size);
        put_i64(b, Self::LOT_SIZE_AT, self.lot_size);
        put_u64(b, Self::SYMBOL_ID_AT, self.symbol_id);
        put_u64(b, Self::EXPIRATION_NS_AT, self.expiration_ns);
    }
}

const _: () = assert!(tiles(
    &[
        (0, HEADER_LEN),
        (Definition::VENUE_AT, 16),
        (Definition::RAW_SYMBOL_AT, 32),
        (Definition::PRICE_EXPONENT_AT, 1),
        (Definition::QUANTITY_EXPONENT_AT, 1),
        (Definition::INSTRUMENT_CLASS_AT, 1),
        (83, 5), // zero
        (Definition::TICK_SIZE_AT, 8),
        (Definition::LOT_SIZE_AT, 8),
        (Definition::SYMBOL_ID_AT, 8),
        (Definition::EXPIRATION_NS_AT, 8),
    ],
    Definition::LEN
));

/// A token's declaration: "refine this token as this instrument". A feed sends one before the
/// token's first event (a UDP sender again every second); the shard that reads it declares
/// the token to its refinery. A control record of rings and datagrams, not an event: it is
/// never stored (a partition opens with the instrument's `definition` record instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declaration {
    /// The instrument (`symbol_id` = the token id).
    pub definition: Definition,
    /// 0 from a live feed. From a bounded replay (`chronicle run`) whose input an earlier run
    /// began: the first tick id that run assigned the token, where this one starts again.
    pub start_tick: u64,
    /// With `start_tick`: the token's records up to this tick id are already durable; they
    /// are refined again (book, clock, tick ids) but not written.
    pub durable_tick: u64,
}

impl Declaration {
    pub(crate) const LEN: usize = 136;
    const START_TICK_AT: usize = Definition::LEN;
    const DURABLE_TICK_AT: usize = Definition::LEN + 8;

    /// A live feed's declaration of `definition` (no replay to resume).
    pub fn live(definition: Definition) -> Self {
        Self {
            definition,
            start_tick: 0,
            durable_tick: 0,
        }
    }

    /// The record that declares `token_id`. Its header carries no tick id and no times: it is
    /// not an event.
    pub fn record(self, token_id: u32) -> crate::Record<'static> {
        crate::Record {
            meta: crate::Meta {
                token_id,
                ..crate::Meta::default()
            },
            body: Body::Declaration(self),
        }
    }

    fn read(b: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            definition: Definition::read(b)?,
            start_tick: u64_at(b, Self::START_TICK_AT),
            durable_tick: u64_at(b, Self::DURABLE_TICK_AT),
        })
    }

    fn write(&self, b: &mut [u8]) {
        self.definition.write(b);
        put_u64(b, Self::START_TICK_AT, self.start_tick);
        put_u64(b, Self::DURABLE_TICK_AT, self.durable_tick);
    }
}

// A definition's layout, then the two ticks.
const _: () = assert!(tiles(
    &[
        (0, Definition::LEN),
        (Declaration::START_TICK_AT, 8),
        (Declaration::DURABLE_TICK_AT, 8),
    ],
    Declaration::LEN
));

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
    const ACTION_AT: usize = 32;
    const SIDE_AT: usize = 33;
    const FLAGS_AT: usize = 34;
    const PRICE_AT: usize = 40;
    const QUANTITY_AT: usize = 48;
    const ORDER_ID_AT: usize = 56;
    const SEQUENCE_AT: usize = 64;

    fn read(b: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            action: OrderAction::from_byte(b[Self::ACTION_AT])?,
            side: Side::from_byte("order.side", b[Self::SIDE_AT])?,
            flags: b[Self::FLAGS_AT],
            price: i64_at(b, Self::PRICE_AT),
            quantity: i64_at(b, Self::QUANTITY_AT),
            order_id: u64_at(b, Self::ORDER_ID_AT),
            sequence: u64_at(b, Self::SEQUENCE_AT),
        })
    }

    fn write(&self, b: &mut [u8]) {
        b[Self::ACTION_AT] = self.action.to_byte();
        b[Self::SIDE_AT] = self.side.to_byte();
        b[Self::FLAGS_AT] = self.flags;
        put_i64(b, Self::PRICE_AT, self.price);
        put_i64(b, Self::QUANTITY_AT, self.quantity);
        put_u64(b, Self::ORDER_ID_AT, self.order_id);
        put_u64(b, Self::SEQUENCE_AT, self.sequence);
    }
}

const _: () = assert!(tiles(
    &[
        (0, HEADER_LEN),
        (Order::ACTION_AT, 1),
        (Order::SIDE_AT, 1),
        (Order::FLAGS_AT, 1),
        (35, 5), // zero
        (Order::PRICE_AT, 8),
        (Order::QUANTITY_AT, 8),
        (Order::ORDER_ID_AT, 8),
        (Order::SEQUENCE_AT, 8),
    ],
    Order::LEN
));

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
    Declaration(Declaration),
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
            Body::Declaration(_) => type_id::DECLARATION_V1,
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
            Body::Declaration(_) => Declaration::LEN,
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
                    sequence: u64_at(b, Heartbeat::SEQUENCE_AT),
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
            type_id::DECLARATION_V1 => {
                fixed(Declaration::LEN)?;
                Body::Declaration(Declaration::read(b)?)
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
            Body::Heartbeat(v) => put_u64(b, Heartbeat::SEQUENCE_AT, v.sequence),
            Body::Definition(v) => v.write(b),
            Body::Order(v) => v.write(b),
            Body::Declaration(v) => v.write(b),
        }
    }
}
