//! Shared test helpers: a seeded integer PRNG and a synthetic but realistic market (one
//! BTCUSDT-like perpetual: calm stretches, bursts, lulls, quotes, level updates, open
//! interest, the odd gap and a session break).
#![allow(dead_code)] // each test file uses its own subset

use chronicle_protocol::{
    Bbo, Body, BookSnapshot, Definition, FixedStr, Gap, GapReason, Heartbeat, Level, LevelUpdate,
    Levels, Meta, OpenInterest, Record, Side, Trade, UNDEF,
};

pub const TOKEN: u32 = 7;
/// 2026-02-16 12:00:00 UTC.
pub const START_NS: u64 = 1_771_243_200 * 1_000_000_000;
const MS: u64 = 1_000_000;

/// SplitMix64: tiny, seedable, and the same on every platform.
#[derive(Clone)]
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

pub fn meta(tick: u64, ts: u64) -> Meta {
    Meta {
        token_id: TOKEN,
        global_tick_id: tick,
        exchange_ts_ns: ts,
        receive_ts_ns: ts.saturating_add(2 * MS),
    }
}

pub fn definition(tick: u64, ts: u64, price_exponent: i8, tick_size: i64) -> Record<'static> {
    Record {
        meta: meta(tick, ts),
        body: Body::Definition(Definition {
            venue: FixedStr::new("venue", "binance-futures").expect("fits"),
            raw_symbol: FixedStr::new("raw_symbol", "BTCUSDT").expect("fits"),
            price_exponent,
            quantity_exponent: -3,
            instrument_class: b'F',
            tick_size,
            lot_size: 1,
            symbol_id: 1,
            expiration_ns: 0,
        }),
    }
}

pub fn trade(tick: u64, ts: u64, price: i64, quantity: i64) -> Record<'static> {
    Record {
        meta: meta(tick, ts),
        body: Body::Trade(Trade {
            aggressor: Side::Bid,
            flags: 0,
            price,
            quantity,
            trade_id: tick,
        }),
    }
}

pub fn bbo(tick: u64, ts: u64, bid: i64, bid_qty: i64, ask: i64, ask_qty: i64) -> Record<'static> {
    Record {
        meta: meta(tick, ts),
        body: Body::Bbo(Bbo {
            bid_price: bid,
            bid_quantity: bid_qty,
            ask_price: ask,
            ask_quantity: ask_qty,
            update_id: tick,
        }),
    }
}

pub fn open_interest(tick: u64, ts: u64, oi: i64) -> Record<'static> {
    Record {
        meta: meta(tick, ts),
        body: Body::OpenInterest(OpenInterest {
            open_interest: oi,
            mark_price: UNDEF,
            index_price: UNDEF,
            funding_rate_e9: UNDEF,
            next_funding_ts_ns: 0,
        }),
    }
}

pub fn gap(tick: u64, ts: u64) -> Record<'static> {
    Record {
        meta: meta(tick, ts),
        body: Body::Gap(Gap {
            reason: GapReason::SequenceBreak,
            expected: 1,
            received: 5,
            lost: 0,
        }),
    }
}

static BOOK: [Level; 4] = [
    Level {
        price: 617_990,
        quantity: 3_500,
    },
    Level {
        price: 617_980,
        quantity: 9_000,
    },
    Level {
        price: 618_010,
        quantity: 2_000,
    },
    Level {
        price: 618_020,
        quantity: 7_000,
    },
];

/// `n` records of a synthetic market, fully determined by `seed`. With `with_oi` false the
/// venue never sends open interest.
pub fn market(seed: u64, n: usize, with_oi: bool) -> Vec<Record<'static>> {
    let mut rng = Prng::new(seed);
    let mut out = Vec::with_capacity(n);
    let mut tick = 0u64;
    let mut ts = START_NS;
    let next = |tick: &mut u64| {
        *tick += 1 + (rng_skip(seed, *tick) as u64); // ids increase, sometimes with holes
        *tick
    };
    out.push(definition(next(&mut tick), ts, -1, 1));

    // 61800.3 at exponent -1, tick 0.1; 80 000 BTC of open interest at exponent -3.
    let mut price: i64 = 618_003;
    let mut oi: i64 = 80_000_000;
    // Phase: 0 calm, 1 burst, 2 lull, 3 busy (a livelier calm); each lasts a random time.
    let mut phase = 0u8;
    let mut phase_end = ts + 120_000 * MS;
    let mut drift: i64 = 0;
    while out.len() < n {
        if ts >= phase_end {
            phase = match rng.below(10) {
                0..=3 => 0,
                4..=5 => 1,
                6..=7 => 2,
                _ => 3,
            };
            let secs = match phase {
                0 => rng.range(60, 300),
                1 => rng.range(15, 60),
                2 => rng.range(30, 120),
                _ => rng.range(60, 180),
            } as u64;
            phase_end = ts + secs * 1000 * MS;
            drift = if phase == 1 { rng.range(-1, 1) } else { 0 };
        }
        // Mean gap between events: bursts are ~20x busier than calm.
        let mean_ms = match phase {
            0 => 120,
            1 => 6,
            2 => 900,
            _ => 50,
        };
        ts += rng.range(1, 2 * mean_ms) as u64 * MS;
        // Rarely: an 11-minute silence (a session break), only in long runs.
        if n > 50_000 && rng.below(100_000) == 0 {
            ts += 11 * 60_000 * MS;
        }
        let roll = rng.below(1000);
        let tick_now = next(&mut tick);
        // Streams are not perfectly ordered in exchange time: quotes may lag a little.
        let jitter = if rng.chance(20) {
            rng.range(1, 5) as u64 * MS
        } else {
            0
        };
        let rec = match roll {
            0..=449 => {
                price = (price + rng.range(-2, 2) + drift).max(1);
                trade(tick_now, ts, price, rng.range(1, 2_000))
            }
            450..=699 => {
                let spread = if phase == 1 {
                    rng.range(1, 6)
                } else {
                    rng.range(1, 2)
                };
                bbo(
                    tick_now,
                    ts - jitter,
                    price - spread / 2,
                    rng.range(1, 20_000),
                    price - spread / 2 + spread,
                    rng.range(1, 20_000),
                )
            }
            700..=929 => Record {
                meta: meta(tick_now, ts - jitter),
                body: Body::LevelUpdate(LevelUpdate {
                    side: if rng.chance(500) {
                        Side::Bid
                    } else {
                        Side::Ask
                    },
                    flags: LevelUpdate::FLAG_LAST_IN_MESSAGE,
                    price: price + rng.range(-50, 50),
                    quantity: rng.range(0, 50_000),
                    first_update_id: tick_now,
                    last_update_id: tick_now,
                    prev_update_id: tick_now - 1,
                }),
            },
            930..=959 if with_oi => {
                // OI builds in bursts with the drift, and bleeds in lulls.
                let step = match phase {
                    1 => rng.range(-20_000, 60_000) * (drift.signum() + 1),
                    2 => rng.range(-30_000, 5_000),
                    _ => rng.range(-10_000, 10_000),
                };
                oi = (oi + step).max(1);
                open_interest(tick_now, ts, oi)
            }
            960..=969 => Record {
                meta: meta(tick_now, ts),
                body: Body::BookSnapshot(BookSnapshot {
                    update_id: tick_now,
                    chunk: 0,
                    flags: BookSnapshot::FLAG_LAST_CHUNK,
                    bid_count: 2,
                    ask_count: 2,
                    levels: Levels::Slice(&BOOK),
                }),
            },
            970 if rng.chance(50) => gap(tick_now, ts),
            _ => Record {
                meta: meta(tick_now, 0),
                body: Body::Heartbeat(Heartbeat { sequence: tick_now }),
            },
        };
        out.push(rec);
    }
    out
}

/// Deterministic holes in the tick id sequence (ids are strictly increasing, not dense).
fn rng_skip(seed: u64, tick: u64) -> u8 {
    let mut r = Prng::new(seed ^ tick.wrapping_mul(0x9E37_79B9));
    (r.below(16) == 0) as u8 * 3
}
