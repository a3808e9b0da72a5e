use chronicle_protocol::wire::{put_u16, put_u32, put_u64, tiles, u16_at, u32_at, u64_at};
use chronicle_protocol::FixedStr;

/// `CHRQSEG` and a NUL: identifies a `.q` segment (the universal reader tells `.q` from
/// `.q.zst` by it).
pub const MAGIC: [u8; 8] = *b"CHRQSEG\0";
pub const FORMAT_VERSION: u16 = 1;
pub const HEADER_LEN: usize = 128;

// Field offsets (`docs/formats/segment.md`).
const MAGIC_AT: usize = 0;
const VERSION_AT: usize = 8;
const HEADER_LEN_AT: usize = 10;
const PRICE_EXPONENT_AT: usize = 12;
const QUANTITY_EXPONENT_AT: usize = 13;
const SYMBOL_ID_AT: usize = 16;
const TOKEN_ID_AT: usize = 24;
const DATE_AT: usize = 28;
const VENUE_AT: usize = 32;
const VENUE_LEN: usize = 24;
const SYMBOL_CODE_AT: usize = 56;
const SYMBOL_CODE_LEN: usize = 40;
const CRC_AT: usize = 124;

const _: () = assert!(tiles(
    &[
        (MAGIC_AT, MAGIC.len()),
        (VERSION_AT, 2),
        (HEADER_LEN_AT, 2),
        (PRICE_EXPONENT_AT, 1),
        (QUANTITY_EXPONENT_AT, 1),
        (14, 2), // zero
        (SYMBOL_ID_AT, 8),
        (TOKEN_ID_AT, 4),
        (DATE_AT, 4),
        (VENUE_AT, VENUE_LEN),
        (SYMBOL_CODE_AT, SYMBOL_CODE_LEN),
        (96, 28), // zero
        (CRC_AT, 4),
    ],
    HEADER_LEN
));

/// What every record of a segment shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeader {
    pub price_exponent: i8,
    pub quantity_exponent: i8,
    pub symbol_id: u64,
    pub token_id: u32,
    /// The partition's UTC date as `YYYYMMDD`.
    pub date: u32,
    pub venue: FixedStr<VENUE_LEN>,
    pub symbol_code: FixedStr<SYMBOL_CODE_LEN>,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[MAGIC_AT..MAGIC_AT + MAGIC.len()].copy_from_slice(&MAGIC);
        put_u16(&mut b, VERSION_AT, FORMAT_VERSION);
        put_u16(&mut b, HEADER_LEN_AT, HEADER_LEN as u16);
        b[PRICE_EXPONENT_AT] = self.price_exponent as u8;
        b[QUANTITY_EXPONENT_AT] = self.quantity_exponent as u8;
        put_u64(&mut b, SYMBOL_ID_AT, self.symbol_id);
        put_u32(&mut b, TOKEN_ID_AT, self.token_id);
        put_u32(&mut b, DATE_AT, self.date);
        b[VENUE_AT..VENUE_AT + VENUE_LEN].copy_from_slice(self.venue.bytes());
        b[SYMBOL_CODE_AT..SYMBOL_CODE_AT + SYMBOL_CODE_LEN]
            .copy_from_slice(self.symbol_code.bytes());
        let crc = crc32c::crc32c(&b[..CRC_AT]);
        put_u32(&mut b, CRC_AT, crc);
        b
    }

    /// Validates magic, version, length and checksum; the error says which.
    pub fn decode(b: &[u8]) -> Result<Self, String> {
        if b.len() < HEADER_LEN {
            return Err(format!(
                "file is {} bytes, shorter than the {HEADER_LEN}-byte header",
                b.len()
            ));
        }
        let magic = &b[MAGIC_AT..MAGIC_AT + MAGIC.len()];
        if magic != MAGIC {
            return Err(format!("magic {magic:02x?} is not a .q segment"));
        }
        let version = u16_at(b, VERSION_AT);
        if version != FORMAT_VERSION {
            return Err(format!(
                "format version {version} is not supported (this build reads {FORMAT_VERSION})"
            ));
        }
        let header_len = u16_at(b, HEADER_LEN_AT);
        if header_len as usize != HEADER_LEN {
            return Err(format!("header length {header_len} != {HEADER_LEN}"));
        }
        let stored = u32_at(b, CRC_AT);
        let actual = crc32c::crc32c(&b[..CRC_AT]);
        if stored != actual {
            return Err(format!(
                "header checksum {stored:#010x} != computed {actual:#010x}"
            ));
        }
        let exp_ok = |e: i8| e.unsigned_abs() <= 18;
        let (pe, qe) = (b[PRICE_EXPONENT_AT] as i8, b[QUANTITY_EXPONENT_AT] as i8);
        if !exp_ok(pe) || !exp_ok(qe) {
            return Err(format!("exponents {pe}/{qe} out of range ±18"));
        }
        let venue = &b[VENUE_AT..VENUE_AT + VENUE_LEN];
        let code = &b[SYMBOL_CODE_AT..SYMBOL_CODE_AT + SYMBOL_CODE_LEN];
        let venue = FixedStr::new(
            "venue",
            std::str::from_utf8(trim_nul(venue)).map_err(|_| "venue is not ASCII")?,
        )
        .map_err(|e| e.to_string())?;
        let symbol_code = FixedStr::new(
            "symbol_code",
            std::str::from_utf8(trim_nul(code)).map_err(|_| "symbol code is not ASCII")?,
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            price_exponent: pe,
            quantity_exponent: qe,
            symbol_id: u64_at(b, SYMBOL_ID_AT),
            token_id: u32_at(b, TOKEN_ID_AT),
            date: u32_at(b, DATE_AT),
            venue,
            symbol_code,
        })
    }
}

fn trim_nul(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}
