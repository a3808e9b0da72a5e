//! The refinery's L2 book per token, reconstructed from venue snapshots and level updates so
//! that a book snapshot can be injected into the stream every 60 s: a reader can
//! then start mid-file without replaying the day.
//!
//! Each side is a [`SideLevels`]: levels in price order in fixed blocks, so that an update
//! moves at most one block's levels wherever it lands; its blocks are pooled and never freed,
//! so updates do not allocate once the side has reached its depth. Past the capacity the
//! worst level is dropped and counted (the far tail of a deep book, not the touch).

use crate::side::{Set, SideLevels};
use chronicle_protocol::{Body, BookSnapshot, Level, LevelUpdate, Side};

/// Levels kept per side.
pub const MAX_LEVELS_PER_SIDE: usize = 8192;

#[derive(Debug, Clone)]
pub struct Book {
    bids: SideLevels,
    asks: SideLevels,
    /// The book is a faithful copy of the venue's: set by a complete venue snapshot, cleared
    /// by a sequence gap.
    synced: bool,
    /// Venue update id the book is at (the last applied snapshot's or diff's).
    pub update_id: u64,
    /// Levels dropped because a side was full.
    pub dropped_levels: u64,
}

impl Default for Book {
    fn default() -> Self {
        Self::new()
    }
}

impl Book {
    pub fn new() -> Self {
        Self {
            bids: SideLevels::new(MAX_LEVELS_PER_SIDE, |a, b| a > b),
            asks: SideLevels::new(MAX_LEVELS_PER_SIDE, |a, b| a < b),
            synced: false,
            update_id: 0,
            dropped_levels: 0,
        }
    }

    pub fn synced(&self) -> bool {
        self.synced
    }

    /// Bids best first, then asks best first: the order of a book snapshot record.
    pub fn levels(
        &self,
    ) -> (
        impl Iterator<Item = Level> + '_,
        impl Iterator<Item = Level> + '_,
    ) {
        (self.bids.best_first(), self.asks.best_first())
    }

    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }

    /// Applies what a record says about the book.
    pub fn apply(&mut self, body: &Body<'_>) {
        match body {
            Body::BookSnapshot(s) if s.flags & BookSnapshot::FLAG_INJECTED == 0 => {
                if s.chunk == 0 {
                    self.bids.clear();
                    self.asks.clear();
                    self.synced = false;
                }
                for l in s.bids() {
                    self.set(Side::Bid, l.price, l.quantity);
                }
                for l in s.asks() {
                    self.set(Side::Ask, l.price, l.quantity);
                }
                self.update_id = s.update_id;
                self.synced = s.flags & BookSnapshot::FLAG_LAST_CHUNK != 0;
            }
            Body::LevelUpdate(LevelUpdate {
                side,
                price,
                quantity,
                last_update_id,
                ..
            }) => {
                self.set(*side, *price, *quantity);
                self.update_id = *last_update_id;
            }
            // Whatever was lost (a venue sequence break, a dropped datagram, a full ring) may
            // have been a level update: the book is unknown until the next snapshot.
            Body::Gap(_) => self.synced = false,
            _ => {}
        }
    }

    fn set(&mut self, side: Side, price: i64, quantity: i64) {
        let levels = match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
            Side::None => return,
        };
        match levels.set(price, quantity) {
            Set::Changed => {}
            Set::DroppedWorst | Set::NotKept => self.dropped_levels += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lu(side: Side, price: i64, quantity: i64) -> Body<'static> {
        Body::LevelUpdate(LevelUpdate {
            side,
            flags: 0,
            price,
            quantity,
            first_update_id: 1,
            last_update_id: 2,
            prev_update_id: 0,
        })
    }

    #[test]
    fn keeps_sides_sorted_best_first() {
        let mut b = Book::new();
        for (s, p, q) in [
            (Side::Bid, 100, 1),
            (Side::Bid, 102, 2),
            (Side::Bid, 101, 3),
            (Side::Ask, 105, 1),
            (Side::Ask, 103, 4),
            (Side::Bid, 101, 0),
            (Side::Ask, 104, 0),
        ] {
            b.apply(&lu(s, p, q));
        }
        let (bids, asks) = b.levels();
        assert_eq!(
            bids.map(|l| (l.price, l.quantity)).collect::<Vec<_>>(),
            vec![(102, 2), (100, 1)]
        );
        assert_eq!(
            asks.map(|l| (l.price, l.quantity)).collect::<Vec<_>>(),
            vec![(103, 4), (105, 1)]
        );
        assert!(!b.synced());
    }

    #[test]
    fn a_full_side_drops_its_worst_level_without_growing() {
        let mut b = Book::new();
        for p in 0..MAX_LEVELS_PER_SIDE as i64 + 10 {
            b.apply(&lu(Side::Bid, 1_000 + p, 1));
        }
        assert_eq!(b.depth().0, MAX_LEVELS_PER_SIDE);
        assert_eq!(b.dropped_levels, 10);
        assert_eq!(
            b.levels().0.next().unwrap().price,
            1_000 + MAX_LEVELS_PER_SIDE as i64 + 9
        );
    }
}
