//! The schema of `book.parquet` and the Arrow builders that fill it: one row per record, one
//! nullable column per body field (`docs/formats/parquet.md`). Every column is declared once,
//! in `columns!`; the schema, the row type and the builders all come from that list, so they
//! cannot drift apart.

use crate::decimal::{Scales, FUNDING_RATE};
use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Decimal128Builder, Int8Builder, ListBuilder, PrimitiveBuilder,
    StringBuilder, StructBuilder, TimestampNanosecondBuilder, UInt16Builder, UInt32Builder,
    UInt64Builder, UInt8Builder,
};
use arrow_array::types::ArrowPrimitiveType;
use arrow_array::ArrayRef;
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use std::sync::Arc;

/// Timestamps: ns since the epoch, UTC (Parquet `TIMESTAMP(NANOS, isAdjustedToUTC=true)`).
fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// A column builder made from its schema type, fed one optional value per row.
trait Column<T> {
    fn with_type(data_type: &DataType, capacity: usize) -> Self;
    fn push(&mut self, v: Option<T>);
}

impl<P: ArrowPrimitiveType> Column<P::Native> for PrimitiveBuilder<P> {
    fn with_type(data_type: &DataType, capacity: usize) -> Self {
        Self::with_capacity(capacity).with_data_type(data_type.clone())
    }
    fn push(&mut self, v: Option<P::Native>) {
        self.append_option(v)
    }
}

impl<'a> Column<&'a str> for StringBuilder {
    fn with_type(data_type: &DataType, capacity: usize) -> Self {
        assert_eq!(data_type, &DataType::Utf8);
        Self::with_capacity(capacity, capacity * 8)
    }
    fn push(&mut self, v: Option<&'a str>) {
        self.append_option(v)
    }
}

impl Column<bool> for BooleanBuilder {
    fn with_type(data_type: &DataType, capacity: usize) -> Self {
        assert_eq!(data_type, &DataType::Boolean);
        Self::with_capacity(capacity)
    }
    fn push(&mut self, v: Option<bool>) {
        self.append_option(v)
    }
}

/// A book side: a list of (price, quantity) structs, null on rows that are not snapshots.
struct LevelsColumn(ListBuilder<StructBuilder>);

impl LevelsColumn {
    fn data_type(s: &Scales) -> DataType {
        DataType::List(Arc::new(Field::new("level", level_struct(s), false)))
    }

    fn with_type(data_type: &DataType, capacity: usize) -> Self {
        let DataType::List(item) = data_type else {
            unreachable!("levels are a list")
        };
        let DataType::Struct(fields) = item.data_type() else {
            unreachable!("a level is a struct")
        };
        let children: Vec<Box<dyn ArrayBuilder>> = fields
            .iter()
            .map(|f| {
                Box::new(Decimal128Builder::with_type(f.data_type(), capacity))
                    as Box<dyn ArrayBuilder>
            })
            .collect();
        Self(
            ListBuilder::new(StructBuilder::new(fields.clone(), children)).with_field(item.clone()),
        )
    }

    fn push(&mut self, v: Option<&[(i128, i128)]>) {
        let Some(levels) = v else {
            return self.0.append(false);
        };
        let s = self.0.values();
        for &(p, q) in levels {
            decimal_child(s, 0).append_value(p);
            decimal_child(s, 1).append_value(q);
            s.append(true);
        }
        self.0.append(true);
    }
}

fn decimal_child(s: &mut StructBuilder, i: usize) -> &mut Decimal128Builder {
    s.field_builder(i).expect("level children are decimals")
}

fn level_struct(s: &Scales) -> DataType {
    DataType::Struct(Fields::from(vec![
        Field::new("price", s.price.data_type(), false),
        Field::new("quantity", s.quantity.data_type(), false),
    ]))
}

macro_rules! columns {
    ($s:ident; $($field:ident $name:literal: $t:ty, $builder:ty, $dtype:expr, $nullable:literal;)*) => {
        /// One record's values (`None`: null). Levels are converted before anything is
        /// appended, so a failing record leaves every column untouched.
        #[derive(Default)]
        pub(crate) struct Row<'a> {
            $(pub $field: Option<$t>,)*
            pub bids: Option<&'a [(i128, i128)]>,
            pub asks: Option<&'a [(i128, i128)]>,
        }

        pub(crate) fn schema($s: &Scales) -> Schema {
            Schema::new(vec![
                $(Field::new($name, $dtype, $nullable),)*
                Field::new("bids", LevelsColumn::data_type($s), true),
                Field::new("asks", LevelsColumn::data_type($s), true),
            ])
        }

        /// The columns of the batch being filled.
        pub(crate) struct Builders {
            $($field: $builder,)*
            bids: LevelsColumn,
            asks: LevelsColumn,
        }

        impl Builders {
            pub fn new(schema: &Schema, capacity: usize) -> Self {
                let mut types = schema.fields().iter().map(|f| f.data_type());
                let mut next = || types.next().expect("a type per column");
                Self {
                    $($field: <$builder>::with_type(next(), capacity),)*
                    bids: LevelsColumn::with_type(next(), capacity),
                    asks: LevelsColumn::with_type(next(), capacity),
                }
            }

            pub fn append(&mut self, r: &Row<'_>) {
                $(self.$field.push(r.$field);)*
                self.bids.push(r.bids);
                self.asks.push(r.asks);
            }

            /// The arrays filled so far, in schema order; the builders start empty again.
            pub fn finish(&mut self) -> Vec<ArrayRef> {
                vec![
                    $(ArrayBuilder::finish(&mut self.$field),)*
                    ArrayBuilder::finish(&mut self.bids.0),
                    ArrayBuilder::finish(&mut self.asks.0),
                ]
            }
        }
    };
}

// Names match the keys of `chronicle cat` (timestamps drop its `_ns` suffix: they are typed).
columns! { s;
    kind "type": &'a str, StringBuilder, DataType::Utf8, false;
    type_id "type_id": u16, UInt16Builder, DataType::UInt16, false;
    token_id "token_id": u32, UInt32Builder, DataType::UInt32, false;
    global_tick_id "global_tick_id": u64, UInt64Builder, DataType::UInt64, false;
    exchange_ts "exchange_ts": i64, TimestampNanosecondBuilder, timestamp(), false;
    receive_ts "receive_ts": i64, TimestampNanosecondBuilder, timestamp(), false;
    side "side": &'a str, StringBuilder, DataType::Utf8, true;
    aggressor "aggressor": &'a str, StringBuilder, DataType::Utf8, true;
    action "action": &'a str, StringBuilder, DataType::Utf8, true;
    price "price": i128, Decimal128Builder, s.price.data_type(), true;
    quantity "quantity": i128, Decimal128Builder, s.quantity.data_type(), true;
    bid_price "bid_price": i128, Decimal128Builder, s.price.data_type(), true;
    bid_quantity "bid_quantity": i128, Decimal128Builder, s.quantity.data_type(), true;
    ask_price "ask_price": i128, Decimal128Builder, s.price.data_type(), true;
    ask_quantity "ask_quantity": i128, Decimal128Builder, s.quantity.data_type(), true;
    trade_id "trade_id": u64, UInt64Builder, DataType::UInt64, true;
    order_id "order_id": u64, UInt64Builder, DataType::UInt64, true;
    update_id "update_id": u64, UInt64Builder, DataType::UInt64, true;
    first_update_id "first_update_id": u64, UInt64Builder, DataType::UInt64, true;
    last_update_id "last_update_id": u64, UInt64Builder, DataType::UInt64, true;
    prev_update_id "prev_update_id": u64, UInt64Builder, DataType::UInt64, true;
    last_in_message "last_in_message": bool, BooleanBuilder, DataType::Boolean, true;
    sequence "sequence": u64, UInt64Builder, DataType::UInt64, true;
    open_interest "open_interest": i128, Decimal128Builder, s.quantity.data_type(), true;
    mark_price "mark_price": i128, Decimal128Builder, s.price.data_type(), true;
    index_price "index_price": i128, Decimal128Builder, s.price.data_type(), true;
    funding_rate "funding_rate": i128, Decimal128Builder, FUNDING_RATE.data_type(), true;
    next_funding_ts "next_funding_ts": i64, TimestampNanosecondBuilder, timestamp(), true;
    chunk "chunk": u16, UInt16Builder, DataType::UInt16, true;
    last_chunk "last_chunk": bool, BooleanBuilder, DataType::Boolean, true;
    injected "injected": bool, BooleanBuilder, DataType::Boolean, true;
    reason "reason": &'a str, StringBuilder, DataType::Utf8, true;
    expected "expected": u64, UInt64Builder, DataType::UInt64, true;
    received "received": u64, UInt64Builder, DataType::UInt64, true;
    lost "lost": u64, UInt64Builder, DataType::UInt64, true;
    venue "venue": &'a str, StringBuilder, DataType::Utf8, true;
    raw_symbol "raw_symbol": &'a str, StringBuilder, DataType::Utf8, true;
    price_exponent "price_exponent": i8, Int8Builder, DataType::Int8, true;
    quantity_exponent "quantity_exponent": i8, Int8Builder, DataType::Int8, true;
    instrument_class "instrument_class": &'a str, StringBuilder, DataType::Utf8, true;
    tick_size "tick_size": i128, Decimal128Builder, s.price.data_type(), true;
    lot_size "lot_size": i128, Decimal128Builder, s.quantity.data_type(), true;
    symbol_id "symbol_id": u64, UInt64Builder, DataType::UInt64, true;
    expiration "expiration": i64, TimestampNanosecondBuilder, timestamp(), true;
    flags "flags": u8, UInt8Builder, DataType::UInt8, true;
}
