//! Helpers shared by the refinery's integration tests.

use chronicle_etl::{LatePolicy, Refinery, RefineryConfig};
use chronicle_protocol::{Body, Definition, FixedStr, Side, Trade, UNDEF};
use chronicle_storage::meta::Source;
use chronicle_storage::symbols::DimSymbol;
use std::path::Path;

/// A refinery over `data` with instrument `testvenue/ABC` (token 1) registered and declared.
pub fn refinery(data: &Path, policy: LatePolicy) -> Refinery {
    let mut symbols = DimSymbol::load(data).unwrap();
    symbols.resolve_or_register("testvenue", "ABC", 0).unwrap();
    symbols.save().unwrap();
    let mut cfg = RefineryConfig::new(
        data.to_owned(),
        Source {
            kind: "feed".into(),
            format: "test".into(),
            file: None,
        },
    );
    cfg.late_policy = policy;
    let mut r = Refinery::new(cfg).unwrap();
    let def = Definition {
        venue: FixedStr::new("venue", "testvenue").unwrap(),
        raw_symbol: FixedStr::new("raw_symbol", "ABC").unwrap(),
        price_exponent: -2,
        quantity_exponent: 0,
        instrument_class: 0,
        tick_size: UNDEF,
        lot_size: UNDEF,
        symbol_id: 1,
        expiration_ns: 0,
    };
    r.declare(1, def, None).unwrap();
    r
}

pub fn trade(id: u64) -> Body<'static> {
    Body::Trade(Trade {
        aggressor: Side::Bid,
        flags: 0,
        price: 100,
        quantity: 1,
        trade_id: id,
    })
}
