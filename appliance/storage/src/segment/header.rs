use chronicle_protocol::FixedStr;

/// `CHRQSEG` and a NUL: identifies a `.q` segment (the universal reader tells `.q` from
/// `.q.zst` by it).
pub const MAGIC: [u8; 8] = *b"CHRQSEG\0";
pub const FORMAT_VERSION: u16 = 1;
pub const HEADER_LEN: usize = 128;

/// What every record of a segment shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeader {
    pub price_exponent: i8,
    pub quantity_exponent: i8,
    pub symbol_id: u64,
    pub token_id: u32,
    /// The partition's UTC date as `YYYYMMDD`.
    pub date: u32,
    pub venue: FixedStr<24>,
    pub symbol_code: FixedStr<40>,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        b[12] = self.price_exponent as u8;
        b[13] = self.quantity_exponent as u8;
        b[16..24].copy_from_slice(&self.symbol_id.to_le_bytes());
        b[24..28].copy_from_slice(&self.token_id.to_le_bytes());
        b[28..32].copy_from_slice(&self.date.to_le_bytes());
        b[32..56].copy_from_slice(self.venue.bytes());
        b[56..96].copy_from_slice(self.symbol_code.bytes());
        let crc = crc32c::crc32c(&b[..124]);
        b[124..128].copy_from_slice(&crc.to_le_bytes());
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
        if b[0..8] != MAGIC {
            return Err(format!("magic {:02x?} is not a .q segment", &b[0..8]));
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != FORMAT_VERSION {
            return Err(format!(
                "format version {version} is not supported (this build reads {FORMAT_VERSION})"
            ));
        }
        let header_len = u16::from_le_bytes([b[10], b[11]]);
        if header_len as usize != HEADER_LEN {
            return Err(format!("header length {header_len} != {HEADER_LEN}"));
        }
        let stored = u32::from_le_bytes(b[124..128].try_into().expect("4 bytes"));
        let actual = crc32c::crc32c(&b[..124]);
        if stored != actual {
            return Err(format!(
                "header checksum {stored:#010x} != computed {actual:#010x}"
            ));
        }
        let exp_ok = |e: i8| e.unsigned_abs() <= 18;
        let (pe, qe) = (b[12] as i8, b[13] as i8);
        if !exp_ok(pe) || !exp_ok(qe) {
            return Err(format!("exponents {pe}/{qe} out of range ±18"));
        }
        let mut venue = [0u8; 24];
        venue.copy_from_slice(&b[32..56]);
        let mut code = [0u8; 40];
        code.copy_from_slice(&b[56..96]);
        let venue = FixedStr::new(
            "venue",
            std::str::from_utf8(trim_nul(&venue)).map_err(|_| "venue is not ASCII")?,
        )
        .map_err(|e| e.to_string())?;
        let symbol_code = FixedStr::new(
            "symbol_code",
            std::str::from_utf8(trim_nul(&code)).map_err(|_| "symbol code is not ASCII")?,
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            price_exponent: pe,
            quantity_exponent: qe,
            symbol_id: u64::from_le_bytes(b[16..24].try_into().expect("8 bytes")),
            token_id: u32::from_le_bytes(b[24..28].try_into().expect("4 bytes")),
            date: u32::from_le_bytes(b[28..32].try_into().expect("4 bytes")),
            venue,
            symbol_code,
        })
    }
}

fn trim_nul(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}
