//! Arbitrary bytes → `Record::decode`.
//!
//! Checks, beyond "never panics":
//! - `Record::decode` agrees with `RecordView::parse` + `RecordView::decode`;
//! - a decoded record's `encoded_len()` is the header's length field;
//! - re-encoding gives the input bytes back, except for the reserved (padding) bytes of
//!   the body, which the encoder always writes as zero and the decoder never reads. So the
//!   exact round trip holds for every record an encoder wrote (reserved bytes zero), and
//!   for any other input the two differ only in those bytes (checked byte for byte);
//! - the re-encoded bytes decode to an equal record (a fixed point);
//! - a too-small output buffer is an error, not a panic;
//! - documented value bounds: definition exponents within ±`Definition::MAX_EXPONENT`
//!   (formatting a price relies on it), and every accessor/formatter of the decoded record
//!   runs without panicking.

#![no_main]

use chronicle_protocol::{
    format_scaled, type_id, Body, Definition, EncodeError, Record, RecordView, HEADER_LEN,
    MAX_RECORD_LEN,
};
use libfuzzer_sys::fuzz_target;

/// Byte ranges of each record type that the decoder ignores and the encoder zeroes
/// (from `appliance/protocol/src/body.rs`: the gaps between fields).
fn reserved(type_id: u16) -> &'static [std::ops::Range<usize>] {
    match type_id {
        type_id::LEVEL_UPDATE_V1 => &[34..40],
        type_id::TRADE_V1 => &[34..40],
        type_id::GAP_V1 => &[34..40],
        type_id::DEFINITION_V1 | type_id::DECLARATION_V1 => &[83..88],
        type_id::ORDER_V1 => &[35..40],
        // BBO, open interest, book snapshot, heartbeat: every byte is a field.
        _ => &[],
    }
}

fn exercise(rec: &Record<'_>) {
    let _ = format!("{rec:?}");
    let _ = rec.body.kind();
    match rec.body {
        Body::BookSnapshot(s) => {
            let n = s.levels.len();
            assert_eq!(n, s.bid_count as usize + s.ask_count as usize);
            assert_eq!(s.levels.iter().count(), n);
            assert_eq!(s.bids().count() + s.asks().count(), n);
            assert!(s.levels.get(n).is_none());
        }
        Body::Definition(d) => exercise_definition(&d),
        Body::Declaration(d) => exercise_definition(&d.definition),
        _ => {}
    }
}

fn exercise_definition(d: &Definition) {
    let _ = d.venue.as_str();
    let _ = d.raw_symbol.as_str();
    for e in [d.price_exponent, d.quantity_exponent] {
        assert!(
            e.unsigned_abs() <= Definition::MAX_EXPONENT as u8,
            "definition decoded with exponent {e}, outside ±{}",
            Definition::MAX_EXPONENT
        );
        // What `chronicle cat` does with every price of the instrument.
        let _ = format_scaled(d.tick_size, e);
        let _ = format_scaled(i64::MIN, e);
        let _ = format_scaled(i64::MAX, e);
    }
}

fuzz_target!(|data: &[u8]| {
    let decoded = Record::decode(data);
    let via_view = RecordView::parse(data).and_then(|v| v.decode());
    assert_eq!(
        decoded, via_view,
        "Record::decode != RecordView::parse + decode"
    );
    let Ok(rec) = decoded else { return };

    let view = RecordView::parse(data).expect("decoded, so the header parses");
    let len = rec.encoded_len();
    assert_eq!(len, view.bytes.len(), "encoded_len != header length");
    assert_eq!(len, u16::from_le_bytes([data[2], data[3]]) as usize);
    assert!(len >= HEADER_LEN && len <= MAX_RECORD_LEN && len % 8 == 0);

    exercise(&rec);

    // Too small a buffer: an error, never a panic or a partial write past the end.
    let mut small = vec![0u8; len - 8];
    assert!(matches!(
        rec.encode(&mut small),
        Err(EncodeError::BufferTooSmall { .. })
    ));

    // Re-encode into a dirty, larger buffer: the encoder must write exactly `len` bytes.
    let mut out = vec![0xA5u8; len + 16];
    let n = rec.encode(&mut out).expect("a decoded record re-encodes");
    assert_eq!(n, len);
    assert!(
        out[len..].iter().all(|&b| b == 0xA5),
        "encode wrote past its length"
    );
    let out = &out[..len];

    let mut expected = data[..len].to_vec();
    for r in reserved(view.type_id) {
        expected[r.clone()].fill(0);
    }
    assert_eq!(
        out,
        &expected[..],
        "re-encoding differs outside the reserved bytes"
    );
    if data[..len] == expected[..] {
        // Reserved bytes were zero, as every encoder writes them: exact round trip.
        assert_eq!(out, &data[..len]);
    }

    let again = Record::decode(out).expect("re-encoded bytes decode");
    assert_eq!(again, rec, "decode(encode(decode(x))) != decode(x)");
});
