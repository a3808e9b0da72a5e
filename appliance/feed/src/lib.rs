//! chronicle-feed: Zone 1 of the appliance.
//!
//! - [`shm`]: one single-producer single-consumer ring per shard, in a file under `/dev/shm`,
//!   shared by the feed process (producer) and a shard process (consumer). The consumer treats
//!   the producer as hostile: nothing it reads can make it read out of bounds or panic.
//! - [`ring`]: the ring logic itself ([`Producer`], [`Consumer`]), also available in memory
//!   ([`mem_ring`]) and model-checked with loom (`tests/loom.rs`).
//! - [`feed`]: the UDP feed handler, which validates datagrams of protocol records and routes
//!   each record to its shard's ring.
//! - [`socket`]: the feed socket: receive buffer, batched reads, the kernel's drop count.
//!
//! Overrun policy: the producer never blocks. A record that does not fit is dropped and
//! counted, and the consumer finds a `gap` record (`GapReason::RingOverrun`) exactly where the
//! records went missing. See `docs/zone1.md` and `docs/formats/ring.md`.

// Ring words are stored natively and the format is little-endian.
#[cfg(not(target_endian = "little"))]
compile_error!("chronicle-feed supports little-endian targets only");

pub mod clock;
pub mod layout;
pub mod ring;
mod sync;

#[cfg(not(loom))]
pub mod feed;
#[cfg(not(loom))]
pub mod shm;
#[cfg(not(loom))]
mod sigbus;
#[cfg(not(loom))]
pub mod socket;

#[doc(hidden)]
pub use ring::mem_ring_at;
pub use ring::{
    max_frame, mem_ring, Consumer, ConsumerStats, Producer, ProducerStats, PushError, Pushed,
    RingFault,
};

#[cfg(not(loom))]
pub use feed::{DatagramError, DatagramWriter, FeedHandler, FeedStats, ShardMap};
#[cfg(not(loom))]
pub use shm::{attach, create, read_fill, remove_stale, Access, AttachOptions, RingError};
