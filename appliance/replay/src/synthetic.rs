//! A seeded, deterministic synthetic Binance USD-M feed, written in exactly the format of the
//! real capture (`<local receive ns> <combined-stream JSON>` a line), so demos and load
//! tests run without real data and still go through the real importer.
//!
//! The model keeps a real order book (integer ticks of 0.10 -> integer lots of 0.001) and
//! every message is derived from it: depth diffs carry the final quantity of every level
//! changed in their window (`0.000` when removed), a bookTicker follows every event that
//! changes the touch, trades consume the touch. Update ids form one sequence shared by
//! diffs and bookTickers, as on Binance. Gaps and sizes are quantile tables fitted to the
//! real capture (`mod fitted`, printed by `examples/fit_stats.rs --tables`); the few
//! mechanisms below carry the rest (`mod tuned`); `docs/synthetic-feed.md` compares the two.
//!
//! * fair price: a random walk in half ticks (jumps sized like real mid moves);
//! * quotes: touch quantity changes, refills of a wide spread, and a one-step reprice
//!   (cancel what the new touch would cross) when the book lags the fair price;
//! * takers: orders of several fills at the touch, leaning toward the fair price; big
//!   ones meet a faded touch and walk a laddered book, as real sweeps do;
//! * churn: level updates behind the touch, as many per diff window as real diffs carry;
//! * delivery: publish delay (`E` - `T`), a ~1.27 s clock offset with drift, network
//!   latency, and load-driven stalls that release held messages in a burst.
//!
//! Everything in the output path is integer arithmetic on one splitmix64 stream, so a seed
//! gives the same bytes on every platform.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::io::{self, Write};

const NS_PER_MS: u64 = 1_000_000;

/// What to generate. `Default` is one minute of BTCUSDT crossing UTC midnight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticConfig {
    /// Same seed, same capture, byte for byte.
    pub seed: u64,
    /// Exchange symbol; stream names use it lowercased.
    pub symbol: String,
    /// Exchange time of the first event, ns since the epoch.
    pub start_ns: u64,
    /// Exchange time covered, ns.
    pub duration_ns: u64,
    /// Best bid at the start, in 0.10 ticks; the ask is one tick above.
    pub start_bid_ticks: i64,
    pub first_update_id: u64,
    pub first_trade_id: u64,
    /// The REST snapshot is taken inside the diff window that follows this many diffs, so
    /// that many diffs precede it in the capture (all older than it) and the next one
    /// straddles its `lastUpdateId`.
    pub snapshot_after_diffs: u32,
    /// Levels a side in the snapshot (Binance's REST `limit=1000`).
    pub snapshot_levels: usize,
    /// Exchange clock minus local clock at the start, ns: the real capture's local clock is
    /// ~1.27 s behind, so receive time and exchange time fall on different sides of a
    /// partition boundary — importers must partition by exchange time.
    pub clock_offset_ns: u64,
    /// Drift of that offset, ns per second of exchange time (the real one grows ~5 µs/s).
    pub clock_drift_ns_per_s: i64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            seed: 20_240_808,
            symbol: "BTCUSDT".to_owned(),
            // 2024-08-08T23:59:30Z: exchange time crosses UTC midnight mid-capture, like the
            // last ~1.3 s of the real capture (whose receive times stay on the 8th).
            start_ns: 1_723_161_570 * 1_000_000_000,
            duration_ns: 60 * 1_000_000_000,
            start_bid_ticks: 618_002, // 61800.20, where the real capture starts
            first_update_id: 5_123_107_800_000,
            first_trade_id: 5_266_583_900,
            snapshot_after_diffs: 5,
            snapshot_levels: 1000,
            clock_offset_ns: 1_270_600_000,
            clock_drift_ns_per_s: 5_000,
        }
    }
}

/// What a capture holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub lines: u64,
    pub bytes: u64,
    pub depth_messages: u64,
    pub level_updates: u64,
    pub trades: u64,
    pub book_tickers: u64,
    pub snapshots: u64,
    pub first_receive_ns: u64,
    pub last_receive_ns: u64,
}

/// Model parameters that are not quantile tables; each is fitted by running
/// `fit_stats` over real and synthetic captures (see docs/synthetic-feed.md).
mod tuned {
    /// Update ids advance 1..=ID_STRIDE per book change: Binance's ids also count events
    /// the public feed never shows (real diffs span ~2,900 ids in 52 ms).
    pub const ID_STRIDE: u64 = 72;
    /// The book by distance from the touch: (up to this many ticks, initial occupancy,
    /// chance a churn update removes an existing level, chance it adds one on an empty
    /// tick), per mille. Churn keeps the occupancy near `add / (add + remove)`: the real
    /// book is sparse near the touch (~15% within 20 ticks, ~30% within 100, ~70% beyond,
    /// which is what makes the mid jump when a touch is taken out) and ~21.6% of real
    /// level updates are removals. A churn update that does nothing is redrawn.
    pub const BANDS: [(i64, u64, u64, u64); 3] = [
        (20, 150, 1000, 180),
        (100, 300, 700, 300),
        (i64::MAX, 700, 280, 1000),
    ];
    pub const CHURN_TRIES: u32 = 8;
    /// Levels per diff window the quote and taker processes touch on their own; churn adds
    /// the rest of the fitted levels per diff.
    pub const TOUCH_LEVELS_PER_WINDOW: i64 = 2;
    /// The book chases the fair price once the mid is more than this many half ticks away.
    pub const CHASE_HALF_TICKS: i64 = 2;
    /// Quote gaps are scaled by this (per mille) so the bookTicker rate matches: the
    /// fitted gaps are between bookTickers, and a quote does not always move the touch.
    pub const QUOTE_GAP_PER_MILLE: u64 = 820;
    /// Taker gaps likewise, so the trade rate matches: linear interpolation fattens the
    /// tail of the fills-per-order table a little (mean 4.2 against 3.9).
    pub const TAKER_GAP_PER_MILLE: u64 = 1080;
    /// A reprice cancels at most this many levels (a bound, not a fit: real jumps stay
    /// well under it).
    pub const REPRICE_MAX_CANCELS: u32 = 64;
    /// While chasing, takers trade toward the fair price with this chance (per mille).
    pub const TAKER_TOWARD_FAIR_PER_MILLE: u64 = 700;
    /// When a taker order empties a level, the next one waits close behind with this
    /// chance (real sweeps walk the book a tick or a few at a time) ...
    pub const LADDER_PER_MILLE: u64 = 900;
    /// ... one tick behind with this chance, else 2-5 ticks (real sweeps: 1 tick 50%,
    /// 2-5 ticks 34%, more 16% of their price steps).
    pub const LADDER_ONE_TICK_PER_MILLE: u64 = 600;
    /// Taker orders of at least this many fills meet a faded touch.
    pub const FADE_MIN_FILLS: i64 = 10;
    /// Otherwise a taker order is on the same side as the previous one with this chance
    /// (real: 60% of consecutive taker orders).
    pub const TAKER_SAME_SIDE_PER_MILLE: u64 = 600;
    /// Mean gap between fair-price jumps, ns; jump sizes follow the real mid steps.
    pub const JUMP_MEAN_GAP_NS: u64 = 250 * super::NS_PER_MS;
    /// A delivery stall starts with this chance per byte of a stream message, per
    /// million: big messages (sweeps, wide diffs) stall the combined stream, so receive
    /// delay grows with load as in the real capture.
    pub const STALL_PPM_PER_BYTE: u64 = 200;
    /// Depth diffs are published this much (at most) after their window closes.
    pub const DEPTH_PUBLISH_EXTRA_NS: u64 = 2 * super::NS_PER_MS;
    /// Network latency is redrawn once every this many messages (on average), and each
    /// message adds up to this much jitter.
    pub const LATENCY_REDRAW_EVERY: u64 = 64;
    pub const LATENCY_JITTER_NS: u64 = 2_000;
    /// Initial book: ticks a side, occupied as in `BANDS`.
    pub const INITIAL_DEPTH_TICKS: i64 = 3_000;
    /// Churn this far from the touch lands on round prices (multiples of 1000.00): real
    /// far levels are stub orders at 1000.00, 5000.00, 33000.00.
    pub const STUB_DISTANCE_TICKS: i64 = 50_000;
    pub const STUB_ROUNDING_TICKS: i64 = 10_000;
}

fn band(distance: i64) -> (i64, u64, u64, u64) {
    *tuned::BANDS
        .iter()
        .find(|b| distance < b.0)
        .expect("the last band is unbounded")
}

/// Probabilities, per 100000, at which the fitted quantile tables are given (`fit_stats
/// --tables` prints them on this grid): fine in the tails, where the real distributions are
/// heavy.
pub const TABLE_GRID: [u64; 30] = [
    0, 100, 1_000, 2_500, 5_000, 7_500, 10_000, 15_000, 20_000, 25_000, 30_000, 35_000, 40_000,
    45_000, 50_000, 55_000, 60_000, 65_000, 70_000, 75_000, 80_000, 85_000, 90_000, 95_000, 97_500,
    99_000, 99_500, 99_900, 99_990, 100_000,
];

/// An inverse CDF: values at the `TABLE_GRID` probabilities, linearly interpolated between them,
/// so sampling is integer-only and reproduces the fitted quantiles by construction.
struct Table([i64; 30]);

impl Table {
    fn sample(&self, rng: &mut Rng) -> i64 {
        let u = rng.below(100_000);
        let i = TABLE_GRID.partition_point(|&p| p <= u) - 1;
        let (p0, p1, v0, v1) = (TABLE_GRID[i], TABLE_GRID[i + 1], self.0[i], self.0[i + 1]);
        let span = (p1 - p0) as i128;
        v0 + (((v1 - v0) as i128 * (u - p0) as i128 + span / 2) / span) as i64
    }
}

/// Quantile tables of the real capture (`fit_stats --tables`), except the three
/// hand-fitted delivery tables at the end.
#[rustfmt::skip]
mod fitted {
    use super::Table;
    /// Gap between touch quote changes (bookTickers not caused by a trade).
    pub const QUOTE_GAP_NS: Table = Table([400, 400, 400, 500, 500, 600, 600, 700, 900, 1000, 1300, 1500, 2000, 2800, 322700, 886700, 1132900, 1518300, 2072800, 2632400, 4162899, 8383999, 16899300, 35422298, 57023184, 90271098, 116565258, 187647347, 291608615, 753133503]);
    /// Touch quantity change of a quote that keeps both prices.
    pub const TOUCH_DELTA_LOTS: Table = Table([-66021, -2849, -1079, -740, -500, -500, -392, -290, -150, -60, -21, -4, -2, 2, 3, 4, 14, 29, 46, 114, 234, 300, 450, 575, 744, 1166, 2186, 5505, 15662, 17247]);
    /// Gap between taker orders (fills sharing T and side are one order).
    pub const TAKER_GAP_NS: Table = Table([400, 500, 700, 1100, 2200, 10900, 552100, 1300500, 2219900, 3467000, 5786900, 9153126, 13753201, 19292500, 26745100, 34706090, 43549498, 54880300, 68543599, 84341809, 105767755, 135139005, 175784202, 249707100, 327796536, 418041818, 502855201, 792998875, 1197885825, 1197885825]);
    /// Fills (trade messages) per taker order.
    pub const TAKER_FILLS: Table = Table([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 4, 7, 12, 21, 43, 72, 315, 348, 348]);
    /// Quantity of one fill.
    pub const FILL_LOTS: Table = Table([1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 4, 6, 8, 11, 16, 23, 30, 39, 56, 81, 110, 157, 265, 486, 729, 1146, 1972, 5904, 26344, 46000]);
    /// Gap between depth diffs.
    pub const DEPTH_GAP_NS: Table = Table([51000000, 51000000, 51000000, 51000000, 51000000, 51000000, 51000000, 51000000, 51000000, 51000000, 51000000, 52000000, 52000000, 52000000, 52000000, 52000000, 52000000, 53000000, 53000000, 53000000, 53000000, 54000000, 54000000, 55000000, 57000000, 62000000, 66000000, 78000000, 390000000, 390000000]);
    /// Levels per depth diff.
    pub const DEPTH_LEVELS: Table = Table([1, 5, 8, 11, 13, 14, 16, 18, 20, 22, 24, 26, 29, 31, 34, 38, 42, 47, 53, 62, 74, 94, 142, 252, 391, 611, 746, 999, 1226, 1226]);
    /// Distance of a diff's level behind its side's touch.
    pub const LEVEL_DISTANCE_TICKS: Table = Table([1, 1, 1, 1, 13, 35, 55, 94, 131, 171, 209, 250, 294, 342, 403, 474, 548, 635, 788, 976, 1286, 1825, 5908, 15721, 431694, 568298, 607119, 608139, 5547737, 5595634]);
    /// Quantity a diff sets on a level within 2000 ticks of the touch.
    pub const LEVEL_LOTS: Table = Table([1, 2, 2, 2, 2, 3, 4, 7, 10, 17, 27, 39, 59, 83, 114, 147, 200, 261, 352, 491, 607, 898, 1362, 3319, 7101, 16446, 20403, 36118, 504969, 527929]);
    /// Touch quantity (bookTicker B and A).
    pub const TOUCH_LOTS: Table = Table([1, 2, 2, 2, 14, 43, 80, 177, 362, 695, 996, 1362, 1837, 2271, 2677, 3058, 3432, 3835, 4300, 4957, 5714, 6790, 8468, 11158, 14219, 23459, 87916, 130400, 148003, 472849]);
    /// Size of a mid move between bookTickers, in half ticks.
    pub const MID_STEP_HALF_TICKS: Table = Table([1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 17, 20, 24, 32, 42, 83, 124, 198, 265, 1047, 1302, 1302]);

    // Hand-fitted: the capture shows only their sums (E - T, E - receive), not each part.
    /// Event to publish (`E` - `T`): real trades have E = T 60% of the time, E = T + 1 37%.
    pub const PUBLISH_DELAY_NS: Table = Table([0, 2000, 20000, 31250, 50000, 65000, 80000, 100000, 120000, 150000, 180000, 215000, 250000, 285000, 320000, 360000, 400000, 440000, 480000, 530000, 580000, 665000, 750000, 900000, 1066667, 1400000, 1800000, 3000000, 6000000, 10000000]);
    /// Network latency outside stalls.
    pub const LATENCY_NS: Table = Table([200000, 205000, 250000, 268750, 300000, 325000, 350000, 375000, 400000, 425000, 450000, 475000, 500000, 525000, 550000, 575000, 600000, 650000, 700000, 750000, 800000, 900000, 1000000, 1200000, 1450000, 1800000, 2200000, 3000000, 5000000, 8000000]);
    /// Length of a delivery stall (messages held, then delivered in one burst).
    pub const STALL_NS: Table = Table([500000, 550000, 1000000, 1375000, 2000000, 2500000, 3000000, 3500000, 4000000, 4500000, 5000000, 5500000, 6000000, 6500000, 7000000, 7500000, 8000000, 9000000, 10000000, 11000000, 12000000, 14000000, 16000000, 20000000, 25000000, 32000000, 40000000, 60000000, 100000000, 110000000]);
}

/// splitmix64: tiny, fast, and a fixed algorithm, so seeds reproduce across platforms.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (multiply-shift; the bias is below 2^-40 for our n).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Depth,
    Trade,
    BookTicker,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Bid,
    Ask,
}

/// "61800.30": ticks of 0.10 with Binance's two decimals.
fn price(out: &mut String, ticks: i64) {
    let _ = write!(out, "\"{}.{}0\"", ticks / 10, ticks % 10);
}
/// "0.006": lots of 0.001.
fn qty(out: &mut String, lots: i64) {
    let _ = write!(out, "\"{}.{:03}\"", lots / 1000, lots % 1000);
}

/// `[["price","qty"],...]`.
fn level_list(out: &mut String, levels: impl Iterator<Item = (i64, i64)>) {
    out.push('[');
    for (i, (tick, lots)) in levels.enumerate() {
        out.push_str(if i == 0 { "[" } else { ",[" });
        price(out, tick);
        out.push(',');
        qty(out, lots);
        out.push(']');
    }
    out.push(']');
}

/// The synthetic capture, one line (without newline) per `next()`.
pub struct SyntheticFeed {
    rng: Rng,
    symbol: String,
    stream: String, // lowercased symbol
    start_ns: u64,
    end_ns: u64,
    now: u64,
    clock_offset_ns: u64,
    clock_drift_ns_per_s: i64,
    snapshot_after_diffs: u32,
    snapshot_levels: usize,
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    /// Latent fair mid in half ticks (bid + ask): the random walk the book follows.
    fair2: i64,
    next_quote: u64,
    next_taker: u64,
    next_jump: u64,
    /// The open diff window: levels changed in it and its update id range.
    window_end: u64,
    window_mid: u64,
    churn_left: i64,
    churn_step: u64,
    next_churn: u64,
    changed_bids: BTreeSet<i64>,
    changed_asks: BTreeSet<i64>,
    window_first_id: Option<u64>,
    last_change_ns: u64,
    prev_u: u64,
    diffs: u32,
    snapshot_taken: bool,
    update_id: u64,
    trade_id: u64,
    last_touch: [i64; 4],
    last_taker_buy: bool,
    /// Publish time of the last message of each stream (depth, trade, bookTicker): each
    /// stream is in order, the streams are not (as in the real capture).
    published_ns: [u64; 3],
    /// Network latency, redrawn now and then: it drifts rather than jitters, so bursts
    /// stay bursts on arrival.
    latency_ns: u64,
    /// Local receive time of the last line, and the end of the current delivery stall.
    received_ns: u64,
    stall_until_ns: u64,
    out: VecDeque<String>,
    stats: Stats,
}

impl SyntheticFeed {
    /// # Panics
    /// If the start price leaves no room for the initial book or the snapshot has no levels.
    pub fn new(cfg: SyntheticConfig) -> Self {
        assert!(
            cfg.start_bid_ticks > 2 * tuned::INITIAL_DEPTH_TICKS,
            "start_bid_ticks too low for the initial book"
        );
        assert!(cfg.snapshot_levels > 0, "snapshot_levels must be positive");
        let mut rng = Rng(cfg.seed);
        let (mut bids, mut asks) = (BTreeMap::new(), BTreeMap::new());
        for d in 0..tuned::INITIAL_DEPTH_TICKS {
            let occupancy = band(d).1;
            let table = if d == 0 {
                &fitted::TOUCH_LOTS
            } else {
                &fitted::LEVEL_LOTS
            };
            for (book, tick) in [
                (&mut bids, cfg.start_bid_ticks - d),
                (&mut asks, cfg.start_bid_ticks + 1 + d),
            ] {
                if d == 0 || rng.chance(occupancy) {
                    book.insert(tick, table.sample(&mut rng).max(1));
                }
            }
        }
        let mut feed = Self {
            symbol: cfg.symbol.clone(),
            stream: cfg.symbol.to_lowercase(),
            start_ns: cfg.start_ns,
            end_ns: cfg.start_ns + cfg.duration_ns,
            now: cfg.start_ns,
            clock_offset_ns: cfg.clock_offset_ns,
            clock_drift_ns_per_s: cfg.clock_drift_ns_per_s,
            snapshot_after_diffs: cfg.snapshot_after_diffs,
            snapshot_levels: cfg.snapshot_levels,
            bids,
            asks,
            fair2: 2 * cfg.start_bid_ticks + 1,
            next_quote: 0,
            next_taker: 0,
            next_jump: 0,
            window_end: 0,
            window_mid: 0,
            churn_left: 0,
            churn_step: 0,
            next_churn: 0,
            changed_bids: BTreeSet::new(),
            changed_asks: BTreeSet::new(),
            window_first_id: None,
            last_change_ns: cfg.start_ns,
            prev_u: cfg.first_update_id,
            diffs: 0,
            snapshot_taken: false,
            update_id: cfg.first_update_id,
            trade_id: cfg.first_trade_id,
            last_touch: [0; 4],
            last_taker_buy: false,
            published_ns: [0; 3],
            latency_ns: 0,
            received_ns: 0,
            stall_until_ns: 0,
            out: VecDeque::new(),
            stats: Stats::default(),
            rng,
        };
        feed.next_quote =
            feed.now + feed.scaled_gap(&fitted::QUOTE_GAP_NS, tuned::QUOTE_GAP_PER_MILLE);
        feed.next_taker =
            feed.now + feed.scaled_gap(&fitted::TAKER_GAP_NS, tuned::TAKER_GAP_PER_MILLE);
        feed.next_jump = feed.now + feed.rng.below(2 * tuned::JUMP_MEAN_GAP_NS) + 1;
        feed.latency_ns = feed.gap(&fitted::LATENCY_NS);
        feed.open_window();
        feed
    }

    /// What has been generated so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn gap(&mut self, table: &Table) -> u64 {
        table.sample(&mut self.rng).max(1) as u64
    }

    fn scaled_gap(&mut self, table: &Table, per_mille: u64) -> u64 {
        (self.gap(table) * per_mille / 1000).max(1)
    }

    /// Advances to the next event; false once the duration is over.
    fn step(&mut self) -> bool {
        let t = self
            .next_quote
            .min(self.next_taker)
            .min(self.next_jump)
            .min(self.window_end);
        let t = if self.churn_left > 0 {
            t.min(self.next_churn)
        } else {
            t
        };
        if t >= self.end_ns {
            return false;
        }
        self.now = t;
        // Fixed precedence on ties keeps the order deterministic.
        if t == self.window_end {
            self.flush();
        } else if self.churn_left > 0 && t == self.next_churn {
            self.churn();
        } else if t == self.next_jump {
            let s = fitted::MID_STEP_HALF_TICKS.sample(&mut self.rng).max(1);
            self.fair2 += if self.rng.chance(500) { s } else { -s };
            self.fair2 = self.fair2.max(2 * tuned::INITIAL_DEPTH_TICKS);
            self.next_jump = t + self.rng.below(2 * tuned::JUMP_MEAN_GAP_NS) + 1;
        } else if t == self.next_taker {
            self.taker();
        } else {
            self.quote();
        }
        if !self.snapshot_taken
            && self.diffs == self.snapshot_after_diffs
            && self.window_first_id.is_some()
            && t >= self.window_mid
        {
            self.snapshot();
        }
        true
    }

    fn best(&self, side: Side) -> (i64, i64) {
        let level = match side {
            Side::Bid => self.bids.last_key_value(),
            Side::Ask => self.asks.first_key_value(),
        };
        let (&t, &q) = level.expect("a side is never emptied");
        (t, q)
    }

    fn side_len(&self, side: Side) -> usize {
        match side {
            Side::Bid => self.bids.len(),
            Side::Ask => self.asks.len(),
        }
    }

    /// Every book change goes through here: it takes an update id and joins the diff window.
    fn set(&mut self, side: Side, tick: i64, lots: i64) {
        let (book, changed) = match side {
            Side::Bid => (&mut self.bids, &mut self.changed_bids),
            Side::Ask => (&mut self.asks, &mut self.changed_asks),
        };
        if lots > 0 {
            book.insert(tick, lots);
        } else {
            book.remove(&tick);
        }
        changed.insert(tick);
        self.update_id += 1 + self.rng.below(tuned::ID_STRIDE);
        self.window_first_id.get_or_insert(self.update_id);
        self.last_change_ns = self.now;
    }

    /// The book lags the fair price: the chase direction, if any.
    fn chase(&self) -> Option<bool> {
        let lag2 = self.fair2 - self.best(Side::Bid).0 - self.best(Side::Ask).0;
        (lag2.abs() > tuned::CHASE_HALF_TICKS).then_some(lag2 > 0)
    }

    fn quote(&mut self) {
        let ((bid, _), (ask, _)) = (self.best(Side::Bid), self.best(Side::Ask));
        match self.chase() {
            Some(up) => self.reprice(up),
            None if ask - bid > 1 => {
                let side = if self.rng.chance(500) {
                    Side::Bid
                } else {
                    Side::Ask
                };
                self.improve(side);
            }
            None => {
                let side = if self.rng.chance(500) {
                    Side::Bid
                } else {
                    Side::Ask
                };
                let (tick, lots) = self.best(side);
                // A cancel never takes the whole touch (it was an order behind it): real mid
                // moves come from trades and repricing, rarely from a quote alone.
                let new = lots + fitted::TOUCH_DELTA_LOTS.sample(&mut self.rng);
                if new > 0 && new != lots {
                    self.set(side, tick, new);
                }
            }
        }
        self.book_ticker_if_changed();
        self.next_quote =
            self.now + self.scaled_gap(&fitted::QUOTE_GAP_NS, tuned::QUOTE_GAP_PER_MILLE);
    }

    /// The touch the fair price implies: (bid, ask) with the mid at most half a tick off.
    fn fair_touch(&self) -> (i64, i64) {
        (
            (self.fair2 - 1).div_euclid(2),
            (self.fair2 + 2).div_euclid(2),
        )
    }

    /// The book catches up with the fair price in one go, as market makers reprice: the
    /// levels the new touch would cross are cancelled and a level joins at the fair touch.
    /// One bookTicker then moves the mid by the whole jump, as real mid moves do.
    fn reprice(&mut self, up: bool) {
        let (fair_bid, fair_ask) = self.fair_touch();
        let (side, new_side) = if up {
            (Side::Ask, Side::Bid)
        } else {
            (Side::Bid, Side::Ask)
        };
        for _ in 0..tuned::REPRICE_MAX_CANCELS {
            let tick = self.best(side).0;
            let crosses = if up {
                tick <= fair_bid
            } else {
                tick >= fair_ask
            };
            if !crosses || self.side_len(side) == 1 {
                break;
            }
            self.set(side, tick, 0);
        }
        self.improve(new_side);
    }

    /// A new level inside the spread, as near the fair price as the other side allows:
    /// never crosses, and a wide spread closes in a quote or two as in the real feed.
    fn improve(&mut self, side: Side) {
        let (bid, ask) = (self.best(Side::Bid).0, self.best(Side::Ask).0);
        if ask - bid < 2 {
            return;
        }
        let (fair_bid, fair_ask) = self.fair_touch();
        let tick = match side {
            Side::Bid => fair_bid,
            Side::Ask => fair_ask,
        };
        let tick = tick.clamp(bid + 1, ask - 1);
        let lots = fitted::LEVEL_LOTS.sample(&mut self.rng).max(1);
        self.set(side, tick, lots);
    }

    fn taker(&mut self) {
        let toward = tuned::TAKER_TOWARD_FAIR_PER_MILLE;
        let buy = self.rng.chance(match self.chase() {
            Some(true) => toward,
            Some(false) => 1000 - toward,
            None if self.last_taker_buy => tuned::TAKER_SAME_SIDE_PER_MILLE,
            None => 1000 - tuned::TAKER_SAME_SIDE_PER_MILLE,
        });
        self.last_taker_buy = buy;
        let side = if buy { Side::Ask } else { Side::Bid }; // the side it consumes
        let fills = fitted::TAKER_FILLS.sample(&mut self.rng).max(1);
        // Fill sizes are drawn ahead, so the levels the model puts in the way hold at least
        // the next fill: the fitted size distribution already includes thin levels.
        let mut want = fitted::FILL_LOTS.sample(&mut self.rng).max(1);
        if fills >= tuned::FADE_MIN_FILLS {
            // Makers fade in front of a sweep: in the real capture the touch before an
            // order of 10+ fills is ~0.45 BTC, against ~2.7 BTC at other times.
            let (tick, lots) = self.best(side);
            let faded = want + fitted::LEVEL_LOTS.sample(&mut self.rng).max(1);
            if faded < lots {
                self.set(side, tick, faded);
            }
        }
        // The engine publishes an order's fills together: one E for all of them.
        let e = self.publish(Stream::Trade, self.now);
        for _ in 0..fills {
            let (tick, lots) = self.best(side);
            // Never empty a side: the model needs a touch on both.
            let fill = want.min(if self.side_len(side) > 1 {
                lots
            } else {
                lots - 1
            });
            if fill <= 0 {
                break;
            }
            self.set(side, tick, lots - fill);
            self.trade(e, tick, fill, !buy);
            // What a thin level could not fill is the next fill's size, so thin levels
            // split big fills rather than shrink the traded volume.
            want = if fill < want {
                want - fill
            } else {
                fitted::FILL_LOTS.sample(&mut self.rng).max(1)
            };
            if fill == lots && self.rng.chance(tuned::LADDER_PER_MILLE) {
                // Fast markets are laddered: a small order already waits a few ticks behind
                // (unless the book has a nearer level).
                let gap = if self.rng.chance(tuned::LADDER_ONE_TICK_PER_MILLE) {
                    1
                } else {
                    2 + self.rng.below(4) as i64
                };
                let next = if buy { tick + gap } else { tick - gap };
                let nearer = if buy {
                    self.best(side).0 <= next
                } else {
                    self.best(side).0 >= next
                };
                if !nearer {
                    // About two fills' worth: real sweeps take ~2 fills a level behind the touch.
                    let lots = want + fitted::FILL_LOTS.sample(&mut self.rng).max(1);
                    self.set(side, next, lots);
                }
            }
        }
        // bookTicker conflates a sweep: one message with the touch it left.
        self.book_ticker_if_changed();
        self.next_taker =
            self.now + self.scaled_gap(&fitted::TAKER_GAP_NS, tuned::TAKER_GAP_PER_MILLE);
    }

    fn has_level(&self, side: Side, tick: i64) -> bool {
        match side {
            Side::Bid => self.bids.contains_key(&tick),
            Side::Ask => self.asks.contains_key(&tick),
        }
    }

    /// A level update behind the touch, at the real distance distribution.
    fn churn(&mut self) {
        self.churn_left -= 1;
        self.next_churn += self.churn_step;
        for _ in 0..tuned::CHURN_TRIES {
            let side = if self.rng.chance(520) {
                Side::Bid
            } else {
                Side::Ask
            };
            let d = fitted::LEVEL_DISTANCE_TICKS.sample(&mut self.rng).max(1);
            let touch = self.best(side).0;
            let r = tuned::STUB_ROUNDING_TICKS;
            let tick = match side {
                Side::Bid if d > tuned::STUB_DISTANCE_TICKS => (touch - d).div_euclid(r) * r,
                Side::Ask if d > tuned::STUB_DISTANCE_TICKS => {
                    (touch + d + r - 1).div_euclid(r) * r
                }
                Side::Bid => touch - d,
                Side::Ask => touch + d,
            };
            if tick <= 0 {
                continue;
            }
            let exists = self.has_level(side, tick);
            let (_, _, remove, add) = band(d);
            let lots = if exists && self.rng.chance(remove) {
                0
            } else if exists || self.rng.chance(add) {
                fitted::LEVEL_LOTS.sample(&mut self.rng).max(1)
            } else {
                continue;
            };
            self.set(side, tick, lots);
            return;
        }
    }

    /// Closes the diff window (a diff if anything changed) and opens the next one.
    fn flush(&mut self) {
        if let Some(first) = self.window_first_id.take() {
            let extra = self.rng.below(tuned::DEPTH_PUBLISH_EXTRA_NS);
            let e = self.publish(Stream::Depth, self.now + extra);
            let mut j = String::with_capacity(
                64 + 26 * (self.changed_bids.len() + self.changed_asks.len()),
            );
            let _ = write!(
                j,
                r#"{{"stream":"{}@depth@0ms","data":{{"e":"depthUpdate","E":{},"T":{},"s":"{}","U":{first},"u":{},"pu":{},"b":"#,
                self.stream,
                e / NS_PER_MS,
                self.last_change_ns / NS_PER_MS,
                self.symbol,
                self.update_id,
                self.prev_u
            );
            let levels = self.changed_bids.len() + self.changed_asks.len();
            // Each changed level once, with its final quantity (0 once removed).
            let last = |book: &BTreeMap<i64, i64>, t: &i64| (*t, book.get(t).copied().unwrap_or(0));
            level_list(
                &mut j,
                self.changed_bids.iter().map(|t| last(&self.bids, t)),
            );
            j.push_str(",\"a\":");
            level_list(
                &mut j,
                self.changed_asks.iter().map(|t| last(&self.asks, t)),
            );
            j.push_str("}}");
            self.prev_u = self.update_id;
            self.diffs += 1;
            self.stats.depth_messages += 1;
            self.stats.level_updates += levels as u64;
            self.push(e, j, true);
        }
        self.changed_bids.clear();
        self.changed_asks.clear();
        self.open_window();
    }

    fn open_window(&mut self) {
        let len = self.gap(&fitted::DEPTH_GAP_NS);
        self.window_end = self.now + len;
        self.window_mid = self.now + len / 2;
        let levels = fitted::DEPTH_LEVELS.sample(&mut self.rng);
        self.churn_left = (levels - tuned::TOUCH_LEVELS_PER_WINDOW).max(1);
        self.churn_step = (len / (self.churn_left as u64 + 1)).max(1);
        self.next_churn = self.now + self.churn_step;
    }

    fn trade(&mut self, e: u64, tick: i64, lots: i64, buyer_is_maker: bool) {
        self.trade_id += 1;
        let mut j = String::with_capacity(192);
        let _ = write!(
            j,
            r#"{{"stream":"{}@trade","data":{{"e":"trade","E":{},"T":{},"s":"{}","t":{},"p":"#,
            self.stream,
            e / NS_PER_MS,
            self.now / NS_PER_MS,
            self.symbol,
            self.trade_id
        );
        price(&mut j, tick);
        j.push_str(",\"q\":");
        qty(&mut j, lots);
        let _ = write!(j, r#","X":"MARKET","m":{buyer_is_maker}}}}}"#);
        self.stats.trades += 1;
        self.push(e, j, true);
    }

    fn book_ticker_if_changed(&mut self) {
        let ((b, bq), (a, aq)) = (self.best(Side::Bid), self.best(Side::Ask));
        if [b, bq, a, aq] == self.last_touch {
            return;
        }
        debug_assert!(b < a, "the model never crosses");
        self.last_touch = [b, bq, a, aq];
        let e = self.publish(Stream::BookTicker, self.now);
        let mut j = String::with_capacity(192);
        let _ = write!(
            j,
            r#"{{"stream":"{}@bookTicker","data":{{"e":"bookTicker","u":{},"s":"{}","b":"#,
            self.stream, self.update_id, self.symbol
        );
        price(&mut j, b);
        j.push_str(",\"B\":");
        qty(&mut j, bq);
        j.push_str(",\"a\":");
        price(&mut j, a);
        j.push_str(",\"A\":");
        qty(&mut j, aq);
        let _ = write!(
            j,
            r#","T":{},"E":{}}}}}"#,
            self.now / NS_PER_MS,
            e / NS_PER_MS
        );
        self.stats.book_tickers += 1;
        self.push(e, j, true);
    }

    /// The REST depth snapshot, taken mid-window: every earlier diff is older than it and
    /// the window's diff (the next one in the capture) straddles its `lastUpdateId`.
    fn snapshot(&mut self) {
        self.snapshot_taken = true;
        let t_ms = self.now / NS_PER_MS;
        let e_ms = t_ms + 1 + self.rng.below(8); // real: E - T = 8 ms
        let n = self.snapshot_levels;
        let mut j = String::with_capacity(64 + 52 * n);
        let _ = write!(
            j,
            r#"{{"lastUpdateId":{},"E":{e_ms},"T":{t_ms},"bids":"#,
            self.update_id
        );
        level_list(
            &mut j,
            self.bids.iter().rev().take(n).map(|(&t, &q)| (t, q)),
        );
        j.push_str(",\"asks\":");
        level_list(&mut j, self.asks.iter().take(n).map(|(&t, &q)| (t, q)));
        j.push('}');
        self.stats.snapshots += 1;
        self.push(e_ms * NS_PER_MS, j, false);
    }

    /// Publish time of a stream message: a little after the event, in order per stream.
    fn publish(&mut self, stream: Stream, event_ns: u64) -> u64 {
        let at = event_ns + fitted::PUBLISH_DELAY_NS.sample(&mut self.rng) as u64;
        let last = &mut self.published_ns[stream as usize];
        *last = (*last).max(at);
        *last
    }

    /// Stamps a message with its local receive time and queues the line.
    fn push(&mut self, published_ns: u64, json: String, stream: bool) {
        let drift = (published_ns - self.start_ns) as i128 * self.clock_drift_ns_per_s as i128
            / 1_000_000_000;
        let local = (published_ns as i128 - self.clock_offset_ns as i128 - drift).max(0) as u64;
        if self.rng.below(tuned::LATENCY_REDRAW_EVERY) == 0 {
            self.latency_ns = self.gap(&fitted::LATENCY_NS);
        }
        let mut at = local + self.latency_ns + self.rng.below(tuned::LATENCY_JITTER_NS);
        // The combined stream is one connection: a stall holds every stream message behind
        // it; the REST snapshot comes on its own connection.
        if stream {
            if at < self.stall_until_ns {
                at = self.stall_until_ns;
            } else if self.rng.below(1_000_000) < json.len() as u64 * tuned::STALL_PPM_PER_BYTE {
                self.stall_until_ns = at + self.gap(&fitted::STALL_NS);
                at = self.stall_until_ns;
            }
        }
        // Lines are in receive order, a few hundred ns apart at least (parsing).
        at = at.max(self.received_ns + 200 + self.rng.below(4 * json.len() as u64));
        self.received_ns = at;
        let mut line = String::with_capacity(21 + json.len());
        let _ = write!(line, "{at} ");
        line.push_str(&json);
        if self.stats.lines == 0 {
            self.stats.first_receive_ns = at;
        }
        self.stats.lines += 1;
        self.stats.bytes += line.len() as u64 + 1;
        self.stats.last_receive_ns = at;
        self.out.push_back(line);
    }
}

impl Iterator for SyntheticFeed {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        loop {
            if let Some(line) = self.out.pop_front() {
                return Some(line);
            }
            if !self.step() {
                return None;
            }
        }
    }
}

/// Writes the whole capture, a line each, and says what it holds.
pub fn write_capture(cfg: &SyntheticConfig, w: impl Write) -> io::Result<Stats> {
    let mut w = io::BufWriter::with_capacity(1 << 16, w);
    let mut feed = SyntheticFeed::new(cfg.clone());
    for line in feed.by_ref() {
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(feed.stats().clone())
}
