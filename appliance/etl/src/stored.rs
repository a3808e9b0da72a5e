//! Telling a record already stored from a new one after a discontinuity in the feed. A
//! restarted sender (or an appliance restarted under a live sender) may send again records
//! the data directory already holds. The venue's own ids decide: per token and per kind, the
//! highest id stored; after a discontinuity every kind with stored records is *checked*, and a
//! record whose id is not above the highest stored of its kind is already stored (dropped,
//! counted). The first record of a kind beyond it ends the check for that kind: from there the
//! stream is new, and ids are not compared again (a venue's ids may repeat or go back within
//! a live stream; only the restart boundary is judged by them).
//!
//! Kinds and ids: trade → `trade_id`; level update → `last_update_id`; quote → `update_id`;
//! venue book snapshot → `update_id`. Records without an id (0 or `u64::MAX`), injected
//! snapshots, gaps, definitions and heartbeats are never dropped.

use chronicle_protocol::{Body, BookSnapshot};

const KINDS: usize = 4;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stored {
    highest: [u64; KINDS],
    /// Bit `k`: kind `k` is being checked.
    checking: u8,
}

/// A record's venue id and its kind, if it has one.
fn venue_id(body: &Body<'_>) -> Option<(usize, u64)> {
    let (kind, id) = match body {
        Body::Trade(t) => (0, t.trade_id),
        Body::LevelUpdate(l) => (1, l.last_update_id),
        Body::Bbo(b) => (2, b.update_id),
        Body::BookSnapshot(s) if s.flags & BookSnapshot::FLAG_INJECTED == 0 => (3, s.update_id),
        _ => return None,
    };
    (id != 0 && id != u64::MAX).then_some((kind, id))
}

impl Stored {
    /// Notes a record that is being stored.
    pub fn note(&mut self, body: &Body<'_>) {
        if let Some((k, id)) = venue_id(body) {
            self.highest[k] = self.highest[k].max(id);
        }
    }

    /// A discontinuity: every kind with stored records is checked from now on.
    pub fn check_all(&mut self) {
        self.checking = 0;
        for (k, &h) in self.highest.iter().enumerate() {
            if h > 0 {
                self.checking |= 1 << k;
            }
        }
    }

    /// Whether `body` is already stored; a record beyond the stored ids ends its kind's check.
    pub fn already_stored(&mut self, body: &Body<'_>) -> bool {
        let Some((k, id)) = venue_id(body) else {
            return false;
        };
        if self.checking & (1 << k) == 0 {
            return false;
        }
        if id <= self.highest[k] {
            return true;
        }
        self.checking &= !(1 << k);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronicle_protocol::{Side, Trade};

    fn trade(id: u64) -> Body<'static> {
        Body::Trade(Trade {
            aggressor: Side::Bid,
            flags: 0,
            price: 1,
            quantity: 1,
            trade_id: id,
        })
    }

    #[test]
    fn after_a_discontinuity_stored_ids_are_dropped_until_the_stream_passes_them() {
        let mut s = Stored::default();
        for id in 1..=10 {
            assert!(!s.already_stored(&trade(id)), "nothing checked yet");
            s.note(&trade(id));
        }
        s.check_all();
        for id in 1..=10 {
            assert!(s.already_stored(&trade(id)), "{id} is stored");
        }
        assert!(!s.already_stored(&trade(11)), "new");
        s.note(&trade(11));
        // Past the boundary ids are not compared again.
        assert!(!s.already_stored(&trade(5)));
        assert!(!s.already_stored(&trade(0)), "no id: never dropped");
    }
}
