//! Records of tokens the shard cannot refine yet: their declaration was lost with a datagram,
//! is still on its way, or names a symbol `dim_symbol` does not have yet. A lost datagram
//! must never stop a shard, and a record that arrived must not be thrown away while there is
//! room: the shard keeps such records here, in arrival order, in one buffer allocated at
//! start, and refines them once the token is declared (after a gap marker that says its
//! stream began without its declaration). When the buffer is full, further records are
//! dropped and counted per token, and that token's gap carries the count.

use chronicle_protocol::{Meta, RecordView};
use std::collections::BTreeMap;

/// Bytes of held records per shard (about 50 k records of ~80 bytes).
pub const HOLD_BYTES: usize = 4 << 20;
/// Tokens whose drops are counted one by one; beyond that only the shard's total is.
pub const MAX_TRACKED_TOKENS: usize = 4096;

/// What a token lost to a full hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub records: u64,
    /// Times of its first dropped record.
    pub exchange_ts_ns: u64,
    pub receive_ts_ns: u64,
}

/// What [`Hold::take`] hands back for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// Held records moved to the caller's buffer.
    pub records: u64,
    /// Times of the first record of the token that came undeclared (held or dropped).
    pub first: (u64, u64),
    /// Records dropped because the hold was full.
    pub dropped: u64,
}

pub struct Hold {
    /// Encoded records back to back, in arrival order; capacity fixed at [`HOLD_BYTES`].
    buf: Vec<u8>,
    dropped: BTreeMap<u32, Dropped>,
    /// Records held since the start (released or not).
    pub held_total: u64,
    /// Records dropped since the start.
    pub dropped_total: u64,
}

impl Default for Hold {
    fn default() -> Self {
        Self::new()
    }
}

impl Hold {
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(HOLD_BYTES),
            dropped: BTreeMap::new(),
            held_total: 0,
            dropped_total: 0,
        }
    }

    /// Keeps `raw` (one encoded record of `meta.token_id`), or counts it as dropped when the
    /// hold is full.
    pub fn keep(&mut self, raw: &[u8], meta: &Meta) {
        if self.has_room(raw.len()) {
            self.buf.extend_from_slice(raw);
            self.held_total += 1;
            return;
        }
        self.dropped_total += 1;
        if let Some(d) = self.dropped.get_mut(&meta.token_id) {
            d.records += 1;
        } else if self.dropped.len() < MAX_TRACKED_TOKENS {
            self.dropped.insert(
                meta.token_id,
                Dropped {
                    records: 1,
                    exchange_ts_ns: meta.exchange_ts_ns,
                    receive_ts_ns: meta.receive_ts_ns,
                },
            );
        }
    }

    /// Whether a record of `len` bytes fits.
    pub fn has_room(&self, len: usize) -> bool {
        self.buf.len() + len <= HOLD_BYTES
    }

    /// Whether `token` has records held or dropped.
    pub fn holds(&self, token: u32) -> bool {
        if self.dropped.contains_key(&token) {
            return true;
        }
        let mut at = 0;
        while at < self.buf.len() {
            let view = RecordView::parse(&self.buf[at..]).expect("held records are whole");
            if view.meta.token_id == token {
                return true;
            }
            at += view.bytes.len();
        }
        false
    }

    /// Bytes held now.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.dropped.is_empty()
    }

    /// Moves `token`'s held records, in arrival order, to the end of `out`, and keeps the
    /// others in order. None if the token had nothing held or dropped.
    pub fn take(&mut self, token: u32, out: &mut Vec<u8>) -> Option<Released> {
        let dropped = self.dropped.remove(&token);
        let (mut read, mut write) = (0, 0);
        let mut records = 0;
        let mut first = None;
        while read < self.buf.len() {
            // Every held record passed the ring's checks when it was read: a failure here is
            // a bug in this buffer.
            let view = RecordView::parse(&self.buf[read..]).expect("held records are whole");
            let len = view.bytes.len();
            if view.meta.token_id == token {
                first.get_or_insert((view.meta.exchange_ts_ns, view.meta.receive_ts_ns));
                out.extend_from_slice(&self.buf[read..read + len]);
                records += 1;
            } else {
                self.buf.copy_within(read..read + len, write);
                write += len;
            }
            read += len;
        }
        self.buf.truncate(write);
        let first = first.or(dropped.map(|d| (d.exchange_ts_ns, d.receive_ts_ns)))?;
        Some(Released {
            records,
            first,
            dropped: dropped.map_or(0, |d| d.records),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronicle_protocol::{Body, Heartbeat, Record};

    fn record(token: u32, seq: u64) -> Vec<u8> {
        let r = Record {
            meta: Meta {
                token_id: token,
                global_tick_id: 0,
                exchange_ts_ns: 1_000 + seq,
                receive_ts_ns: 2_000 + seq,
            },
            body: Body::Heartbeat(Heartbeat { sequence: seq }),
        };
        let mut b = vec![0u8; 64];
        let n = r.encode(&mut b).unwrap();
        b.truncate(n);
        b
    }

    fn keep(h: &mut Hold, token: u32, seq: u64) {
        let b = record(token, seq);
        let v = RecordView::parse(&b).unwrap();
        h.keep(&b, &v.meta);
    }

    #[test]
    fn take_releases_one_token_in_order_and_keeps_the_rest() {
        let mut h = Hold::new();
        for (t, s) in [(1, 0), (2, 1), (1, 2), (3, 3), (1, 4)] {
            keep(&mut h, t, s);
        }
        let mut out = Vec::new();
        let r = h.take(1, &mut out).unwrap();
        assert_eq!((r.records, r.first, r.dropped), (3, (1_000, 2_000), 0));
        let seqs: Vec<u64> = out
            .chunks(40)
            .map(|c| RecordView::parse(c).unwrap().meta.exchange_ts_ns - 1_000)
            .collect();
        assert_eq!(seqs, [0, 2, 4]);
        assert!(h.take(1, &mut out).is_none(), "nothing left of token 1");
        let mut rest = Vec::new();
        assert_eq!(h.take(2, &mut rest).unwrap().records, 1);
        assert_eq!(h.take(3, &mut rest).unwrap().records, 1);
        assert!(h.is_empty());
    }

    #[test]
    fn a_full_hold_counts_drops_per_token_with_their_first_times() {
        let mut h = Hold::new();
        let per = record(7, 0).len();
        let fit = HOLD_BYTES / per;
        for s in 0..fit as u64 + 5 {
            keep(&mut h, 7, s);
        }
        keep(&mut h, 8, 99);
        assert_eq!(h.held_total, fit as u64);
        assert_eq!(h.dropped_total, 6);
        let mut out = Vec::new();
        let r = h.take(8, &mut out).unwrap();
        assert_eq!((r.records, r.dropped, r.first), (0, 1, (1_099, 2_099)));
        let r = h.take(7, &mut out).unwrap();
        assert_eq!((r.records, r.dropped), (fit as u64, 5));
        assert_eq!(out.len(), fit * per);
        assert!(h.is_empty());
    }
}
