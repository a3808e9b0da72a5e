//! Property tests: every record kind round-trips, and no byte string panics the decoder.

use chronicle_protocol::*;
use proptest::prelude::*;

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Bid), Just(Side::Ask), Just(Side::None)]
}

fn meta() -> impl Strategy<Value = Meta> {
    (any::<u32>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(t, g, e, r)| Meta {
        token_id: t,
        global_tick_id: g,
        exchange_ts_ns: e,
        receive_ts_ns: r,
    })
}

fn level() -> impl Strategy<Value = Level> {
    (any::<i64>(), any::<i64>()).prop_map(|(price, quantity)| Level { price, quantity })
}

fn ascii(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).unwrap()
}

fn definition() -> impl Strategy<Value = Definition> {
    (
        ascii(16),
        ascii(32),
        -18i8..=18,
        -18i8..=18,
        any::<(u8, i64, i64, u64, u64)>(),
    )
        .prop_map(|(v, s, pe, qe, (class, tick, lot, id, exp))| Definition {
            venue: FixedStr::new("venue", &v).unwrap(),
            raw_symbol: FixedStr::new("raw_symbol", &s).unwrap(),
            price_exponent: pe,
            quantity_exponent: qe,
            instrument_class: class,
            tick_size: tick,
            lot_size: lot,
            symbol_id: id,
            expiration_ns: exp,
        })
}

/// Every fixed-width body; book snapshots are covered separately because they borrow. The
/// plain integer fields come as one `any::<(…)>()` tuple per body, in field order.
fn fixed_body() -> impl Strategy<Value = Body<'static>> {
    prop_oneof![
        (side(), any::<(u8, i64, i64, u64, u64, u64)>()).prop_map(
            |(side, (flags, price, quantity, a, b, c))| Body::LevelUpdate(LevelUpdate {
                side,
                flags,
                price,
                quantity,
                first_update_id: a,
                last_update_id: b,
                prev_update_id: c
            })
        ),
        (side(), any::<(u8, i64, i64, u64)>()).prop_map(
            |(aggressor, (flags, price, quantity, trade_id))| Body::Trade(Trade {
                aggressor,
                flags,
                price,
                quantity,
                trade_id
            })
        ),
        any::<(i64, i64, i64, i64, u64)>().prop_map(|(a, b, c, d, u)| Body::Bbo(Bbo {
            bid_price: a,
            bid_quantity: b,
            ask_price: c,
            ask_quantity: d,
            update_id: u
        })),
        any::<(i64, i64, i64, i64, u64)>().prop_map(|(a, b, c, d, t)| {
            Body::OpenInterest(OpenInterest {
                open_interest: a,
                mark_price: b,
                index_price: c,
                funding_rate_e9: d,
                next_funding_ts_ns: t,
            })
        }),
        (
            prop_oneof![
                Just(GapReason::SequenceBreak),
                Just(GapReason::RingOverrun),
                Just(GapReason::FeedLoss),
                Just(GapReason::KernelDrop)
            ],
            any::<(u64, u64, u64)>()
        )
            .prop_map(|(reason, (expected, received, lost))| Body::Gap(Gap {
                reason,
                expected,
                received,
                lost
            })),
        any::<u64>().prop_map(|sequence| Body::Heartbeat(Heartbeat { sequence })),
        definition().prop_map(Body::Definition),
        (
            prop_oneof![
                Just(OrderAction::Add),
                Just(OrderAction::Cancel),
                Just(OrderAction::Modify),
                Just(OrderAction::Clear),
                Just(OrderAction::Trade),
                Just(OrderAction::Fill),
                Just(OrderAction::None)
            ],
            side(),
            any::<(u8, i64, i64, u64, u64)>()
        )
            .prop_map(
                |(action, side, (flags, price, quantity, order_id, sequence))| Body::Order(Order {
                    action,
                    side,
                    flags,
                    price,
                    quantity,
                    order_id,
                    sequence
                })
            ),
        (definition(), any::<(u64, u64)>()).prop_map(|(definition, (start_tick, durable_tick))| {
            Body::Declaration(Declaration {
                definition,
                start_tick,
                durable_tick,
            })
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn fixed_bodies_round_trip(meta in meta(), body in fixed_body()) {
        let rec = Record { meta, body };
        let bytes = rec.to_vec().unwrap();
        prop_assert_eq!(bytes.len() % 8, 0);
        prop_assert_eq!(bytes.len(), rec.encoded_len());
        let back = Record::decode(&bytes).unwrap();
        prop_assert_eq!(back, rec);
        prop_assert_eq!(type_id::name(rec.body.type_id()), Some(rec.body.kind()));
    }

    #[test]
    fn book_snapshots_round_trip(meta in meta(), update_id in any::<u64>(), chunk in any::<u16>(),
                                 flags in any::<u16>(), bids in proptest::collection::vec(level(), 0..300),
                                 asks in proptest::collection::vec(level(), 0..300)) {
        let mut levels = bids.clone();
        levels.extend_from_slice(&asks);
        let rec = Record { meta, body: Body::BookSnapshot(BookSnapshot {
            update_id, chunk, flags, bid_count: bids.len() as u16, ask_count: asks.len() as u16,
            levels: Levels::Slice(&levels),
        })};
        let bytes = rec.to_vec().unwrap();
        let back = Record::decode(&bytes).unwrap();
        prop_assert_eq!(back, rec);
        let Body::BookSnapshot(s) = back.body else { panic!("kind changed") };
        prop_assert!(s.bids().eq(bids.iter().copied()));
        prop_assert!(s.asks().eq(asks.iter().copied()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(rec) = Record::decode(&bytes) {
            // Whatever decodes must re-encode to the same length it was read from.
            prop_assert_eq!(rec.encoded_len(), u16::from_le_bytes([bytes[2], bytes[3]]) as usize);
        }
    }

    #[test]
    fn mutated_valid_records_never_panic(meta in meta(), body in fixed_body(),
                                         flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = Record { meta, body }.to_vec().unwrap();
        for (at, x) in flips {
            let n = bytes.len();
            bytes[at % n] ^= x;
        }
        let _ = Record::decode(&bytes);
    }
}

#[test]
fn too_many_levels_is_an_error() {
    let levels = vec![
        Level {
            price: 1,
            quantity: 1
        };
        BookSnapshot::MAX_LEVELS + 1
    ];
    let rec = Record {
        meta: Meta::default(),
        body: Body::BookSnapshot(BookSnapshot {
            update_id: 0,
            chunk: 0,
            flags: 0,
            bid_count: levels.len() as u16,
            ask_count: 0,
            levels: Levels::Slice(&levels),
        }),
    };
    assert!(matches!(
        rec.to_vec(),
        Err(EncodeError::TooManyLevels { .. })
    ));
}

#[test]
fn typed_errors_name_the_problem() {
    let rec = Record {
        meta: Meta::default(),
        body: Body::Heartbeat(Heartbeat { sequence: 7 }),
    };
    let mut b = rec.to_vec().unwrap();
    assert_eq!(
        Record::decode(&b[..20]),
        Err(DecodeError::Truncated { need: 32, have: 20 })
    );
    b[0] = 0x77;
    assert_eq!(
        Record::decode(&b),
        Err(DecodeError::UnknownType { type_id: 0x0077 })
    );
    b[0] = 0x02; // a trade id with a heartbeat's length
    assert!(matches!(
        Record::decode(&b),
        Err(DecodeError::LengthMismatch { .. })
    ));
    b[2] = 13;
    assert_eq!(
        Record::decode(&b),
        Err(DecodeError::BadLength { length: 13 })
    );
}

/// The byte offsets of docs/formats/protocol.md, pinned.
#[test]
fn layout_is_pinned() {
    let rec = Record {
        meta: Meta {
            token_id: 0x0403_0201,
            global_tick_id: 0x11,
            exchange_ts_ns: 0x22,
            receive_ts_ns: 0x33,
        },
        body: Body::Trade(Trade {
            aggressor: Side::Ask,
            flags: 0x5a,
            price: 0x44,
            quantity: 0x55,
            trade_id: 0x66,
        }),
    };
    let b = rec.to_vec().unwrap();
    assert_eq!(&b[0..2], &[0x02, 0x00]);
    assert_eq!(&b[2..4], &[64, 0]);
    assert_eq!(&b[4..8], &[1, 2, 3, 4]);
    assert_eq!(b[8], 0x11);
    assert_eq!(b[16], 0x22);
    assert_eq!(b[24], 0x33);
    assert_eq!(b[32], b'A');
    assert_eq!(b[33], 0x5a);
    assert_eq!(b[40], 0x44);
    assert_eq!(b[48], 0x55);
    assert_eq!(b[56], 0x66);
}

/// Found by the `record_decode` fuzz target: an exponent byte of 0x80 (-128) passed the
/// ±18 check and made formatting overflow.
#[test]
fn definition_exponent_minus_128_is_refused() {
    let rec = Record {
        meta: Meta::default(),
        body: Body::Definition(Definition {
            venue: FixedStr::new("venue", "v").unwrap(),
            raw_symbol: FixedStr::new("raw_symbol", "S").unwrap(),
            price_exponent: -1,
            quantity_exponent: 0,
            instrument_class: 0,
            tick_size: 1,
            lot_size: 1,
            symbol_id: 1,
            expiration_ns: 0,
        }),
    };
    let mut b = rec.to_vec().unwrap();
    for at in [80, 81] {
        let mut bad = b.clone();
        bad[at] = 0x80;
        assert!(
            matches!(Record::decode(&bad), Err(DecodeError::BadField { .. })),
            "byte {at}"
        );
    }
    b[80] = (-18i8) as u8;
    assert!(Record::decode(&b).is_ok());
}

/// A declaration is a definition's bytes (with their own checks), then its two ticks.
#[test]
fn declaration_layout_is_pinned() {
    let definition = Definition {
        venue: FixedStr::new("venue", "binance-usdm").unwrap(),
        raw_symbol: FixedStr::new("raw_symbol", "BTCUSDT").unwrap(),
        price_exponent: -1,
        quantity_exponent: -3,
        instrument_class: b'F',
        tick_size: 1,
        lot_size: 1,
        symbol_id: 7,
        expiration_ns: 0,
    };
    let rec = Declaration {
        definition,
        start_tick: 0x11,
        durable_tick: 0x22,
    }
    .record(7);
    assert_eq!(
        rec.meta,
        Meta {
            token_id: 7,
            ..Meta::default()
        }
    );
    let b = rec.to_vec().unwrap();
    assert_eq!(&b[0..2], &[0x0a, 0x00]);
    assert_eq!(&b[2..4], &[136, 0]);
    let def = Record {
        meta: rec.meta,
        body: Body::Definition(definition),
    }
    .to_vec()
    .unwrap();
    assert_eq!(&b[4..120], &def[4..120]);
    assert_eq!(b[120], 0x11);
    assert_eq!(b[128], 0x22);
    let mut bad = b.clone();
    bad[80] = 0x80;
    assert!(matches!(
        Record::decode(&bad),
        Err(DecodeError::BadField { .. })
    ));
    assert_eq!(
        Declaration::live(definition),
        Declaration {
            definition,
            start_tick: 0,
            durable_tick: 0
        }
    );
}

#[test]
fn type_names_and_ids_are_one_table() {
    // ALL is every id that has a name, and each name leads back to its id.
    let named: Vec<u16> = (0..=u16::MAX)
        .filter(|&id| type_id::name(id).is_some())
        .collect();
    assert_eq!(named, type_id::ALL);
    for id in type_id::ALL {
        assert_eq!(type_id::by_name(type_id::name(id).unwrap()), Some(id));
    }
    assert_eq!(type_id::by_name("trades"), None);
}
