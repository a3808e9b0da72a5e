//! Records as JSON lines or CSV. Prices and quantities are exact decimal strings at the
//! partition's exponents; `UNDEF` renders as null (JSON) or an empty cell (CSV).

use chronicle_protocol::{type_id, Body, Definition, Level, RecordView, Scaled, Side, UNDEF};
use serde_json::{json, Map, Value};

/// Exponents that turn mantissas into decimals.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub price_exponent: i8,
    pub quantity_exponent: i8,
}

impl Scale {
    fn price(&self, m: i64) -> Value {
        decimal(m, self.price_exponent)
    }

    fn qty(&self, m: i64) -> Value {
        decimal(m, self.quantity_exponent)
    }

    fn levels(&self, it: impl Iterator<Item = Level>) -> Value {
        Value::Array(
            it.map(|l| json!([self.price(l.price), self.qty(l.quantity)]))
                .collect(),
        )
    }
}

fn decimal(m: i64, e: i8) -> Value {
    if m == UNDEF {
        Value::Null
    } else {
        Value::String(
            Scaled {
                mantissa: m,
                exponent: e,
            }
            .to_string(),
        )
    }
}

/// The names `cat` (and the derived Parquet) give book sides and trade aggressors.
pub fn side(s: Side) -> &'static str {
    match s {
        Side::Bid => "bid",
        Side::Ask => "ask",
        Side::None => "none",
    }
}

pub fn aggressor(s: Side) -> &'static str {
    match s {
        Side::Bid => "buy",
        Side::Ask => "sell",
        Side::None => "none",
    }
}

/// The payload fields of a record, in a stable order. Unknown (newer) type ids render with
/// their id and are otherwise passed over, never treated as damage.
pub fn fields(view: &RecordView<'_>, scale: Scale) -> Vec<(&'static str, Value)> {
    let m = view.meta;
    let body = view.decode();
    let kind = body
        .as_ref()
        .map(|r| r.body.kind())
        .unwrap_or_else(|_| type_id::name(view.type_id).unwrap_or("unknown"));
    let mut f: Vec<(&'static str, Value)> = vec![
        ("type", json!(kind)),
        ("token_id", json!(m.token_id)),
        ("global_tick_id", json!(m.global_tick_id)),
        ("exchange_ts_ns", json!(m.exchange_ts_ns)),
        ("receive_ts_ns", json!(m.receive_ts_ns)),
    ];
    let Ok(rec) = body else {
        f.push(("type_id", json!(view.type_id)));
        return f;
    };
    match rec.body {
        Body::LevelUpdate(u) => f.extend([
            ("side", json!(side(u.side))),
            ("price", scale.price(u.price)),
            ("quantity", scale.qty(u.quantity)),
            ("first_update_id", json!(u.first_update_id)),
            ("last_update_id", json!(u.last_update_id)),
            ("prev_update_id", json!(u.prev_update_id)),
            (
                "last_in_message",
                json!(u.flags & chronicle_protocol::LevelUpdate::FLAG_LAST_IN_MESSAGE != 0),
            ),
        ]),
        Body::Trade(t) => f.extend([
            ("aggressor", json!(aggressor(t.aggressor))),
            ("price", scale.price(t.price)),
            ("quantity", scale.qty(t.quantity)),
            ("trade_id", json!(t.trade_id)),
        ]),
        Body::Bbo(b) => f.extend([
            ("bid_price", scale.price(b.bid_price)),
            ("bid_quantity", scale.qty(b.bid_quantity)),
            ("ask_price", scale.price(b.ask_price)),
            ("ask_quantity", scale.qty(b.ask_quantity)),
            ("update_id", json!(b.update_id)),
        ]),
        Body::OpenInterest(o) => f.extend([
            ("open_interest", scale.qty(o.open_interest)),
            ("mark_price", scale.price(o.mark_price)),
            ("index_price", scale.price(o.index_price)),
            ("funding_rate", decimal(o.funding_rate_e9, -9)),
            ("next_funding_ts_ns", json!(o.next_funding_ts_ns)),
        ]),
        Body::BookSnapshot(s) => f.extend([
            ("update_id", json!(s.update_id)),
            ("chunk", json!(s.chunk)),
            (
                "last_chunk",
                json!(s.flags & chronicle_protocol::BookSnapshot::FLAG_LAST_CHUNK != 0),
            ),
            (
                "injected",
                json!(s.flags & chronicle_protocol::BookSnapshot::FLAG_INJECTED != 0),
            ),
            ("bids", scale.levels(s.bids())),
            ("asks", scale.levels(s.asks())),
        ]),
        Body::Gap(g) => f.extend([
            ("reason", json!(g.reason.name())),
            ("expected", json!(g.expected)),
            ("received", json!(g.received)),
            ("lost", json!(g.lost)),
        ]),
        Body::Heartbeat(h) => f.push(("sequence", json!(h.sequence))),
        Body::Definition(d) => definition(&mut f, &d),
        Body::Declaration(d) => {
            definition(&mut f, &d.definition);
            f.extend([
                ("start_tick", json!(d.start_tick)),
                ("durable_tick", json!(d.durable_tick)),
            ]);
        }
        Body::Order(o) => f.extend([
            ("action", json!(o.action.name())),
            ("side", json!(side(o.side))),
            ("price", scale.price(o.price)),
            ("quantity", scale.qty(o.quantity)),
            ("order_id", json!(o.order_id)),
            ("sequence", json!(o.sequence)),
            ("flags", json!(o.flags)),
        ]),
    }
    f
}

fn definition(f: &mut Vec<(&'static str, Value)>, d: &Definition) {
    f.extend([
        ("venue", json!(d.venue.as_str())),
        ("raw_symbol", json!(d.raw_symbol.as_str())),
        ("price_exponent", json!(d.price_exponent)),
        ("quantity_exponent", json!(d.quantity_exponent)),
        (
            "instrument_class",
            json!(if d.instrument_class == 0 {
                String::new()
            } else {
                (d.instrument_class as char).to_string()
            }),
        ),
        ("tick_size", decimal(d.tick_size, d.price_exponent)),
        ("lot_size", decimal(d.lot_size, d.quantity_exponent)),
        ("symbol_id", json!(d.symbol_id)),
        ("expiration_ns", json!(d.expiration_ns)),
    ]);
}

/// One JSON object, no trailing newline.
pub fn jsonl(view: &RecordView<'_>, scale: Scale) -> String {
    let map: Map<String, Value> = fields(view, scale)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    Value::Object(map).to_string()
}

/// The CSV columns: the header fields, then the union of every kind's payload fields.
/// A record fills the columns it has; nested levels are written as JSON text.
pub const CSV_COLUMNS: &[&str] = &[
    "type",
    "token_id",
    "global_tick_id",
    "exchange_ts_ns",
    "receive_ts_ns",
    "side",
    "aggressor",
    "action",
    "price",
    "quantity",
    "bid_price",
    "bid_quantity",
    "ask_price",
    "ask_quantity",
    "trade_id",
    "order_id",
    "update_id",
    "first_update_id",
    "last_update_id",
    "prev_update_id",
    "last_in_message",
    "sequence",
    "open_interest",
    "mark_price",
    "index_price",
    "funding_rate",
    "next_funding_ts_ns",
    "chunk",
    "last_chunk",
    "injected",
    "bids",
    "asks",
    "reason",
    "expected",
    "received",
    "lost",
    "venue",
    "raw_symbol",
    "price_exponent",
    "quantity_exponent",
    "instrument_class",
    "tick_size",
    "lot_size",
    "symbol_id",
    "expiration_ns",
    "flags",
    "type_id",
    // A declaration's (never stored: docs/formats/protocol.md); last, so that the columns
    // before them keep their places.
    "start_tick",
    "durable_tick",
];

pub fn csv_header() -> String {
    CSV_COLUMNS.join(",")
}

pub fn csv(view: &RecordView<'_>, scale: Scale) -> String {
    let f = fields(view, scale);
    let cell = |col: &str| -> String {
        match f.iter().find(|(k, _)| *k == col).map(|(_, v)| v) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => quote(s),
            Some(v @ Value::Array(_)) => quote(&v.to_string()),
            Some(v) => v.to_string(),
        }
    };
    CSV_COLUMNS
        .iter()
        .map(|c| cell(c))
        .collect::<Vec<_>>()
        .join(",")
}

/// RFC 4180 quoting where needed.
fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_payload_field_has_a_csv_column() {
        // A rendered field without a column would silently vanish from CSV output.
        use chronicle_protocol::*;
        let levels = [Level {
            price: 1,
            quantity: 2,
        }];
        let bodies = [
            Body::Trade(Trade {
                aggressor: Side::Bid,
                flags: 0,
                price: 1,
                quantity: 1,
                trade_id: 1,
            }),
            Body::BookSnapshot(BookSnapshot {
                update_id: 1,
                chunk: 0,
                flags: 1,
                bid_count: 1,
                ask_count: 0,
                levels: Levels::Slice(&levels),
            }),
            Body::Definition(Definition {
                venue: FixedStr::new("v", "x").unwrap(),
                raw_symbol: FixedStr::default(),
                price_exponent: -1,
                quantity_exponent: 0,
                instrument_class: b'F',
                tick_size: 1,
                lot_size: 1,
                symbol_id: 1,
                expiration_ns: 0,
            }),
            Body::Order(Order {
                action: OrderAction::Add,
                side: Side::Ask,
                flags: 0,
                price: 1,
                quantity: 1,
                order_id: 1,
                sequence: 1,
            }),
            Body::OpenInterest(OpenInterest {
                open_interest: 1,
                mark_price: 1,
                index_price: UNDEF,
                funding_rate_e9: 1,
                next_funding_ts_ns: 0,
            }),
            Body::Gap(Gap {
                reason: GapReason::SequenceBreak,
                expected: 1,
                received: 3,
                lost: 0,
            }),
            Body::LevelUpdate(LevelUpdate {
                side: Side::Bid,
                flags: 1,
                price: 1,
                quantity: 0,
                first_update_id: 1,
                last_update_id: 2,
                prev_update_id: 0,
            }),
            Body::Bbo(Bbo {
                bid_price: 1,
                bid_quantity: 1,
                ask_price: UNDEF,
                ask_quantity: UNDEF,
                update_id: 1,
            }),
            Body::Heartbeat(Heartbeat { sequence: 1 }),
            Body::Declaration(Declaration::live(Definition {
                venue: FixedStr::new("v", "x").unwrap(),
                raw_symbol: FixedStr::new("r", "y").unwrap(),
                price_exponent: -1,
                quantity_exponent: 0,
                instrument_class: 0,
                tick_size: 1,
                lot_size: 1,
                symbol_id: 1,
                expiration_ns: 0,
            })),
        ];
        for body in bodies {
            let bytes = Record {
                meta: Meta::default(),
                body,
            }
            .to_vec()
            .unwrap();
            let view = RecordView::parse(&bytes).unwrap();
            for (k, _) in fields(
                &view,
                Scale {
                    price_exponent: -1,
                    quantity_exponent: -3,
                },
            ) {
                assert!(CSV_COLUMNS.contains(&k), "{k} has no CSV column");
            }
        }
    }

    #[test]
    fn renders_exact_decimals() {
        use chronicle_protocol::*;
        let bytes = Record {
            meta: Meta {
                token_id: 1,
                global_tick_id: 2,
                exchange_ts_ns: 3,
                receive_ts_ns: 4,
            },
            body: Body::Trade(Trade {
                aggressor: Side::Ask,
                flags: 0,
                price: 618003,
                quantity: 6,
                trade_id: 9,
            }),
        }
        .to_vec()
        .unwrap();
        let view = RecordView::parse(&bytes).unwrap();
        let s = Scale {
            price_exponent: -1,
            quantity_exponent: -3,
        };
        assert_eq!(
            jsonl(&view, s),
            r#"{"type":"trade","token_id":1,"global_tick_id":2,"exchange_ts_ns":3,"receive_ts_ns":4,"aggressor":"sell","price":"61800.3","quantity":"0.006","trade_id":9}"#
        );
    }
}
