//! One side of the refinery's L2 book: its levels sorted worst → best, kept in blocks of
//! [`BLOCK`] levels chained in price order. An update finds its block by binary search over
//! the blocks, then its place inside the block, and moves at most one block's levels: a deep
//! level costs what a level at the touch costs, where one sorted array moved every level
//! better than it (up to 128 KiB for a full side).
//!
//! Invariants (checked by `check` in the tests): no block is empty; the blocks in `order` hold
//! the levels in order; any two neighbouring blocks hold more than `BLOCK / 2` levels together,
//! so a side of `n` levels uses at most `4n / BLOCK + 1` blocks. Blocks come from a pool that
//! grows only when the side reaches a new depth and never shrinks: no allocation once warm.

use chronicle_protocol::Level;

/// Levels per block.
pub const BLOCK: usize = 64;
const HALF: usize = BLOCK / 2;

/// "`a` is a better price than `b`" for one side.
pub type Better = fn(i64, i64) -> bool;

#[derive(Debug, Clone)]
struct Block {
    n: usize,
    levels: [Level; BLOCK],
}

impl Block {
    fn empty() -> Self {
        Self {
            n: 0,
            levels: [Level {
                price: 0,
                quantity: 0,
            }; BLOCK],
        }
    }

    fn live(&self) -> &[Level] {
        &self.levels[..self.n]
    }

    fn insert(&mut self, at: usize, level: Level) {
        debug_assert!(self.n < BLOCK && at <= self.n);
        self.levels.copy_within(at..self.n, at + 1);
        self.levels[at] = level;
        self.n += 1;
    }

    fn remove(&mut self, at: usize) {
        debug_assert!(at < self.n);
        self.levels.copy_within(at + 1..self.n, at);
        self.n -= 1;
    }
}

/// What [`SideLevels::set`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    Changed,
    /// A new level on a full side: the worst level was dropped for it.
    DroppedWorst,
    /// A new level worse than every level of a full side: not kept.
    NotKept,
}

#[derive(Debug, Clone)]
pub struct SideLevels {
    better: Better,
    /// Most levels kept.
    capacity: usize,
    blocks: Vec<Block>,
    /// Ids of the blocks in use, worst prices first.
    order: Vec<u16>,
    free: Vec<u16>,
    len: usize,
}

impl SideLevels {
    pub fn new(capacity: usize, better: Better) -> Self {
        assert!(
            capacity >= BLOCK && 4 * capacity / BLOCK < u16::MAX as usize,
            "side capacity {capacity} out of range"
        );
        Self {
            better,
            capacity,
            blocks: Vec::new(),
            order: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.free.append(&mut self.order);
        self.len = 0;
    }

    /// Levels, best first.
    pub fn best_first(&self) -> impl Iterator<Item = Level> + '_ {
        self.order
            .iter()
            .rev()
            .flat_map(|&b| self.blocks[b as usize].live().iter().rev().copied())
    }

    /// Sets the quantity at `price` (0 removes the level).
    pub fn set(&mut self, price: i64, quantity: i64) -> Set {
        let better = self.better;
        // The first block whose best level is not worse than `price`.
        let k = self.order.partition_point(|&b| {
            let blk = &self.blocks[b as usize];
            better(price, blk.levels[blk.n - 1].price)
        });
        if k < self.order.len() {
            let b = self.order[k] as usize;
            let blk = &mut self.blocks[b];
            let j = blk.live().partition_point(|l| better(price, l.price));
            if j < blk.n && blk.levels[j].price == price {
                if quantity == 0 {
                    blk.remove(j);
                    self.len -= 1;
                    self.rebalance(k);
                } else {
                    blk.levels[j].quantity = quantity;
                }
                return Set::Changed;
            }
        }
        if quantity == 0 {
            return Set::Changed;
        }
        let level = Level { price, quantity };
        let mut outcome = Set::Changed;
        if self.len == self.capacity {
            // Worse than everything kept: nothing to make room for.
            let worst = self.blocks[self.order[0] as usize].levels[0].price;
            if !better(price, worst) {
                return Set::NotKept;
            }
            self.blocks[self.order[0] as usize].remove(0);
            self.len -= 1;
            self.rebalance(0);
            outcome = Set::DroppedWorst;
        }
        // (Found again: a removal above may have merged blocks.)
        self.insert_new(level);
        outcome
    }

    /// Inserts a level whose price is not on the side.
    fn insert_new(&mut self, level: Level) {
        let better = self.better;
        if self.order.is_empty() {
            let b = self.new_block();
            self.order.push(b);
            self.blocks[b as usize].insert(0, level);
            self.len += 1;
            return;
        }
        let k = self
            .order
            .partition_point(|&b| {
                let blk = &self.blocks[b as usize];
                better(level.price, blk.levels[blk.n - 1].price)
            })
            .min(self.order.len() - 1);
        let mut b = self.order[k] as usize;
        let mut j = self.blocks[b]
            .live()
            .partition_point(|l| better(level.price, l.price));
        if self.blocks[b].n == BLOCK {
            // Split: the upper half moves to a new block right after this one.
            let nb = self.new_block();
            let upper = self.blocks[b].levels;
            let next = &mut self.blocks[nb as usize];
            next.levels[..HALF].copy_from_slice(&upper[HALF..]);
            next.n = HALF;
            self.blocks[b].n = HALF;
            self.order.insert(k + 1, nb);
            if j > HALF {
                b = nb as usize;
                j -= HALF;
            }
        }
        self.blocks[b].insert(j, level);
        self.len += 1;
    }

    fn new_block(&mut self) -> u16 {
        if let Some(b) = self.free.pop() {
            self.blocks[b as usize].n = 0;
            return b;
        }
        self.blocks.push(Block::empty());
        (self.blocks.len() - 1) as u16
    }

    /// After a removal from the block at `order[k]`: drops it if empty, and merges
    /// neighbours that hold `HALF` levels or fewer together.
    fn rebalance(&mut self, k: usize) {
        let mut k = k;
        if self.blocks[self.order[k] as usize].n == 0 {
            self.free.push(self.order.remove(k));
            if self.order.is_empty() {
                return;
            }
            // The neighbours it separated are now adjacent.
            k = k.saturating_sub(1).min(self.order.len() - 1);
        }
        loop {
            if k > 0 && self.pair(k - 1) <= HALF {
                self.merge(k - 1);
                k -= 1;
            } else if k + 1 < self.order.len() && self.pair(k) <= HALF {
                self.merge(k);
            } else {
                return;
            }
        }
    }

    /// Levels in the blocks at `order[k]` and `order[k + 1]`.
    fn pair(&self, k: usize) -> usize {
        self.blocks[self.order[k] as usize].n + self.blocks[self.order[k + 1] as usize].n
    }

    /// Moves the levels of `order[k + 1]` to the end of `order[k]` and frees the former.
    fn merge(&mut self, k: usize) {
        let (a, b) = (self.order[k] as usize, self.order[k + 1] as usize);
        let (moved, m) = (self.blocks[b].levels, self.blocks[b].n);
        let n = self.blocks[a].n;
        self.blocks[a].levels[n..n + m].copy_from_slice(&moved[..m]);
        self.blocks[a].n += m;
        self.free.push(self.order.remove(k + 1));
    }

    #[cfg(test)]
    fn check(&self) {
        let mut all = Vec::new();
        for (i, &b) in self.order.iter().enumerate() {
            let blk = &self.blocks[b as usize];
            assert!(blk.n > 0, "no empty block in use");
            if i + 1 < self.order.len() {
                assert!(
                    self.pair(i) > HALF,
                    "neighbours hold more than half a block"
                );
            }
            all.extend_from_slice(blk.live());
        }
        assert_eq!(all.len(), self.len);
        assert!(self.len <= self.capacity);
        assert!(self.order.len() <= 4 * self.len / BLOCK + 1);
        for w in all.windows(2) {
            assert!((self.better)(w[1].price, w[0].price), "sorted worst → best");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The single sorted array this replaces, as the reference.
    struct Reference {
        levels: Vec<Level>,
        better: Better,
        capacity: usize,
    }

    impl Reference {
        fn set(&mut self, price: i64, quantity: i64) -> Set {
            let better = self.better;
            let i = self.levels.partition_point(|l| better(price, l.price));
            let exists = self.levels.get(i).is_some_and(|l| l.price == price);
            match (exists, quantity) {
                (true, 0) => {
                    self.levels.remove(i);
                }
                (true, q) => self.levels[i].quantity = q,
                (false, 0) => {}
                (false, q) if self.levels.len() == self.capacity => {
                    if i == 0 {
                        return Set::NotKept;
                    }
                    self.levels.remove(0);
                    self.levels.insert(i - 1, Level { price, quantity: q });
                    return Set::DroppedWorst;
                }
                (false, q) => self.levels.insert(i, Level { price, quantity: q }),
            }
            Set::Changed
        }
    }

    fn run(ops: &[(i64, i64)], bid: bool, capacity: usize) {
        let better: Better = if bid { |a, b| a > b } else { |a, b| a < b };
        let mut side = SideLevels::new(capacity, better);
        let mut reference = Reference {
            levels: Vec::new(),
            better,
            capacity,
        };
        for &(price, quantity) in ops {
            assert_eq!(side.set(price, quantity), reference.set(price, quantity));
            side.check();
            let best_first: Vec<Level> = side.best_first().collect();
            let expected: Vec<Level> = reference.levels.iter().rev().copied().collect();
            assert_eq!(best_first, expected);
        }
        side.clear();
        side.check();
        assert!(side.is_empty());
    }

    proptest! {
        #[test]
        fn matches_one_sorted_array(
            ops in proptest::collection::vec((0i64..600, prop_oneof![Just(0i64), 1i64..5]), 1..3000),
            bid in any::<bool>(),
            capacity in prop_oneof![Just(64usize), Just(200), Just(4096)],
        ) {
            run(&ops, bid, capacity);
        }
    }

    #[test]
    fn a_deep_book_fills_splits_and_drains() {
        // Ascending inserts, then removals from the middle outwards.
        let mut ops: Vec<(i64, i64)> = (0..5_000).map(|p| (p, 1)).collect();
        ops.extend((0..5_000).map(|i| {
            (
                if i % 2 == 0 {
                    2_500 + i / 2
                } else {
                    2_499 - i / 2
                },
                0,
            )
        }));
        run(&ops, true, 4_096);
    }
}
