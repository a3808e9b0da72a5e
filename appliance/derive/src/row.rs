//! One record as a [`Row`]: what `chronicle cat` shows of it, typed.

use crate::columns::Row;
use crate::decimal::{DecimalScale, Scales, FUNDING_RATE, FUNDING_RATE_EXPONENT};
use chronicle_protocol::{Body, BookSnapshot, Definition, Level, LevelUpdate, Record, RecordView};
use chronicle_reader::render::{aggressor, side};
use std::fmt::Display;

/// Buffers a row borrows from, reused from record to record.
#[derive(Default)]
pub(crate) struct Scratch {
    bids: Vec<(i128, i128)>,
    asks: Vec<(i128, i128)>,
    instrument_class: String,
}

fn timestamp(field: &str, ns: u64) -> Result<i64, String> {
    i64::try_from(ns).map_err(|_| format!("{field} {ns} is past 2262, beyond a ns timestamp"))
}

/// A time where 0 means unknown (`cat` prints the 0): null.
fn optional_timestamp(field: &str, ns: u64) -> Result<Option<i64>, String> {
    (ns != 0).then(|| timestamp(field, ns)).transpose()
}

fn decimal(
    field: impl Display,
    col: DecimalScale,
    mantissa: i64,
    exponent: i8,
) -> Result<Option<i128>, String> {
    col.unscaled(mantissa, exponent)
        .map_err(|e| format!("{field}: {e}"))
}

/// A price at the segment's price column.
fn price(s: &Scales, field: impl Display, v: i64) -> Result<Option<i128>, String> {
    decimal(field, s.price, v, s.price_exponent)
}

/// A quantity at the segment's quantity column.
fn quantity(s: &Scales, field: impl Display, v: i64) -> Result<Option<i128>, String> {
    decimal(field, s.quantity, v, s.quantity_exponent)
}

/// A price and its quantity; `prefix` names both in an error (`"trade."`: `trade.price`,
/// `trade.quantity`), written out only then (`format_args!`).
fn price_quantity(
    s: &Scales,
    prefix: &str,
    p: i64,
    q: i64,
) -> Result<(Option<i128>, Option<i128>), String> {
    Ok((
        price(s, format_args!("{prefix}price"), p)?,
        quantity(s, format_args!("{prefix}quantity"), q)?,
    ))
}

fn levels(
    field: &str,
    s: &Scales,
    it: impl Iterator<Item = Level>,
    out: &mut Vec<(i128, i128)>,
) -> Result<(), String> {
    out.clear();
    for (i, l) in it.enumerate() {
        let p = price(s, field, l.price)?;
        let q = quantity(s, field, l.quantity)?;
        match (p, q) {
            (Some(p), Some(q)) => out.push((p, q)),
            _ => return Err(format!("{field}[{i}] has no price or quantity")),
        }
    }
    Ok(())
}

/// A definition's columns.
fn definition<'a>(
    r: &mut Row<'a>,
    d: &'a Definition,
    s: &Scales,
    instrument_class: &'a mut String,
) -> Result<(), String> {
    r.venue = d.venue.as_str();
    r.raw_symbol = d.raw_symbol.as_str();
    r.price_exponent = Some(d.price_exponent);
    r.quantity_exponent = Some(d.quantity_exponent);
    instrument_class.clear();
    if d.instrument_class != 0 {
        instrument_class.push(d.instrument_class as char);
    }
    r.instrument_class = Some(instrument_class);
    // At the definition's own exponents, brought exactly to the segment's columns.
    r.tick_size = decimal(
        "definition.tick_size",
        s.price,
        d.tick_size,
        d.price_exponent,
    )?;
    r.lot_size = decimal(
        "definition.lot_size",
        s.quantity,
        d.lot_size,
        d.quantity_exponent,
    )?;
    r.symbol_id = Some(d.symbol_id);
    r.expiration = optional_timestamp("definition.expiration_ns", d.expiration_ns)?;
    Ok(())
}

/// The row of `view`, whose body is `rec` (`None`: a type id newer than this build, kept as a
/// header-only row of type `unknown`, as `cat` shows it).
pub(crate) fn row<'a>(
    view: &RecordView<'_>,
    rec: Option<&'a Record<'a>>,
    s: &Scales,
    scratch: &'a mut Scratch,
) -> Result<Row<'a>, String> {
    let m = view.meta;
    let mut r = Row {
        kind: Some(rec.map_or("unknown", |r| r.body.kind())),
        type_id: Some(view.type_id),
        token_id: Some(m.token_id),
        global_tick_id: Some(m.global_tick_id),
        exchange_ts: Some(timestamp("exchange_ts_ns", m.exchange_ts_ns)?),
        receive_ts: Some(timestamp("receive_ts_ns", m.receive_ts_ns)?),
        ..Row::default()
    };
    let Some(rec) = rec else {
        return Ok(r);
    };
    match &rec.body {
        Body::LevelUpdate(u) => {
            r.side = Some(side(u.side));
            (r.price, r.quantity) = price_quantity(s, "level_update.", u.price, u.quantity)?;
            r.first_update_id = Some(u.first_update_id);
            r.last_update_id = Some(u.last_update_id);
            r.prev_update_id = Some(u.prev_update_id);
            r.last_in_message = Some(u.flags & LevelUpdate::FLAG_LAST_IN_MESSAGE != 0);
        }
        Body::Trade(t) => {
            r.aggressor = Some(aggressor(t.aggressor));
            (r.price, r.quantity) = price_quantity(s, "trade.", t.price, t.quantity)?;
            r.trade_id = Some(t.trade_id);
        }
        Body::Bbo(b) => {
            (r.bid_price, r.bid_quantity) =
                price_quantity(s, "bbo.bid_", b.bid_price, b.bid_quantity)?;
            (r.ask_price, r.ask_quantity) =
                price_quantity(s, "bbo.ask_", b.ask_price, b.ask_quantity)?;
            r.update_id = Some(b.update_id);
        }
        Body::OpenInterest(o) => {
            r.open_interest = quantity(s, "open_interest.open_interest", o.open_interest)?;
            r.mark_price = price(s, "open_interest.mark_price", o.mark_price)?;
            r.index_price = price(s, "open_interest.index_price", o.index_price)?;
            r.funding_rate = decimal(
                "open_interest.funding_rate",
                FUNDING_RATE,
                o.funding_rate_e9,
                FUNDING_RATE_EXPONENT,
            )?;
            r.next_funding_ts =
                optional_timestamp("open_interest.next_funding_ts_ns", o.next_funding_ts_ns)?;
        }
        Body::BookSnapshot(b) => {
            r.update_id = Some(b.update_id);
            r.chunk = Some(b.chunk);
            r.last_chunk = Some(b.flags & BookSnapshot::FLAG_LAST_CHUNK != 0);
            r.injected = Some(b.flags & BookSnapshot::FLAG_INJECTED != 0);
            levels("book_snapshot.bids", s, b.bids(), &mut scratch.bids)?;
            levels("book_snapshot.asks", s, b.asks(), &mut scratch.asks)?;
            r.bids = Some(&scratch.bids);
            r.asks = Some(&scratch.asks);
        }
        Body::Gap(g) => {
            r.reason = Some(g.reason.name());
            r.expected = Some(g.expected);
            r.received = Some(g.received);
            r.lost = Some(g.lost);
        }
        Body::Heartbeat(h) => r.sequence = Some(h.sequence),
        Body::Definition(d) => definition(&mut r, d, s, &mut scratch.instrument_class)?,
        // Never stored (docs/formats/protocol.md); should one be found, its instrument is
        // kept, and its two ticks (a run's, not the instrument's) have no columns.
        Body::Declaration(d) => {
            definition(&mut r, &d.definition, s, &mut scratch.instrument_class)?
        }
        Body::Order(o) => {
            r.action = Some(o.action.name());
            r.side = Some(side(o.side));
            (r.price, r.quantity) = price_quantity(s, "order.", o.price, o.quantity)?;
            r.order_id = Some(o.order_id);
            r.sequence = Some(o.sequence);
            r.flags = Some(o.flags);
        }
    }
    Ok(r)
}
