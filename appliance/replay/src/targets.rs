//! Where a replay's records go: `/dev/shm` rings, UDP datagrams, or nowhere (the pacing
//! floor). A target stages each message's records ahead of its due time and publishes it
//! whole when the player says.

use crate::Error;
use chronicle_feed::clock::monotonic_ns;
use chronicle_feed::{Access, DatagramWriter, Producer, Pushed, RingError, ShardMap};
use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What [`Target::stage`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staged {
    /// Taken: staged, or — when the target has no room even with nothing of its own staged —
    /// dropped and counted (a feed never blocks).
    Taken,
    /// Not taken: what the target staged fills its room. Publish the oldest message, then
    /// stage the record again.
    Full,
}

/// Where records go. Records are staged into messages (groups due at the same time); a
/// message is published as a whole, oldest first, while later ones are already staged.
pub trait Target {
    /// Stages one event record behind everything staged so far, into the open message.
    fn stage(&mut self, token_id: u32, record: &[u8]) -> Result<Staged, Error>;
    /// Closes the open message: what is staged from now on belongs to the next one.
    fn end_message(&mut self);
    /// Makes the oldest closed message visible. Calls `visible(records, t)` for each step
    /// that makes records visible (a ring publication, a datagram), `t` the
    /// `CLOCK_MONOTONIC` time (`chronicle_feed::clock::monotonic_ns`) read just before it.
    fn publish(&mut self, visible: &mut dyn FnMut(u64, u64)) -> Result<(), Error>;
    /// Sends a declaration now, on its own (the player publishes everything staged first);
    /// a ring target retries it rather than drop it while the ring is full.
    fn declare(&mut self, token_id: u32, record: &[u8]) -> Result<(), Error>;
    /// End of the replay (everything published): announce pending losses.
    fn finish(&mut self) -> Result<(), Error> {
        Ok(())
    }
    /// Records lost so far (ring overruns, failed datagram sends).
    fn dropped(&self) -> u64;
    /// For the report.
    fn describe(&self) -> String;
}

/// How long a declaration waits for room in a full ring before it is dropped like any
/// record (the appliance would then never learn the token: a replay into a stalled ring).
const CONTROL_RETRY: Duration = Duration::from_secs(1);

/// One ring per shard (`/dev/shm` files or in-memory rings); token → shard by the
/// [`ShardMap`]. The ring never blocks: a record that does not fit is dropped and counted,
/// and the consumer finds a gap marker where it went missing.
pub struct RingTarget {
    rings: Vec<Producer>,
    map: ShardMap,
    paths: Vec<PathBuf>,
    /// The open message: records staged into it, and the rings they went to (a bit each).
    open: (u64, u64),
    /// Closed messages not yet published, oldest first: (records, rings touched)...
    messages: VecDeque<(u64, u64)>,
    /// ... and, per ring, where each of them ends in that ring (for the rings it touched).
    ends: Vec<VecDeque<u64>>,
}

impl RingTarget {
    /// Rings the caller made (tests: `chronicle_feed::mem_ring`); `ShardMap::modulo`; at
    /// most `chronicle_feed::feed::MAX_SHARDS` (64) rings.
    pub fn new(rings: Vec<Producer>) -> Result<Self, Error> {
        let map = ShardMap::modulo(rings.len()).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(Self {
            ends: rings.iter().map(|_| VecDeque::new()).collect(),
            rings,
            map,
            paths: Vec::new(),
            open: (0, 0),
            messages: VecDeque::new(),
        })
    }

    /// The ring files of `shards` shards at `path`: `path` itself for one shard, else
    /// `path-0`, `path-1`, ...
    pub fn ring_paths(path: &Path, shards: usize) -> Vec<PathBuf> {
        if shards == 1 {
            return vec![path.to_owned()];
        }
        (0..shards)
            .map(|i| {
                let mut p = path.as_os_str().to_owned();
                p.push(format!("-{i}"));
                PathBuf::from(p)
            })
            .collect()
    }

    /// Creates the ring files (`chronicle_feed::create`, mode 0600): a consumer (the
    /// appliance, `examples/drain.rs`) attaches to them. `replace` first removes a ring left
    /// at those paths by a process that is gone (`chronicle_feed::remove_stale`); a ring a
    /// live process produces into is refused, never taken from under it.
    pub fn create_shm(
        path: &Path,
        shards: usize,
        capacity: usize,
        replace: bool,
    ) -> Result<Self, Error> {
        let paths = Self::ring_paths(path, shards);
        let mut rings = Vec::with_capacity(shards);
        for p in &paths {
            if replace {
                chronicle_feed::remove_stale(p)?;
            }
            match chronicle_feed::create(p, capacity, Access::Owner) {
                Ok(r) => rings.push(r),
                Err(e) => {
                    // Do not leave the rings already made for this run behind.
                    for made in &paths[..rings.len()] {
                        let _ = std::fs::remove_file(made);
                    }
                    return Err(match e {
                        RingError::AlreadyExists { .. } => {
                            Error::Invalid(format!("{e} (or pass --replace if no process uses it)"))
                        }
                        e => e.into(),
                    });
                }
            }
        }
        let mut t = Self::new(rings)?;
        t.paths = paths;
        Ok(t)
    }

    pub fn producers(&self) -> &[Producer] {
        &self.rings
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

impl Target for RingTarget {
    #[inline]
    fn stage(&mut self, token_id: u32, record: &[u8]) -> Result<Staged, Error> {
        let shard = self.map.shard_of(token_id);
        let ring = &mut self.rings[shard];
        let written = if ring.try_stage(record)? {
            true
        } else if ring.staged_bytes() > 0 {
            // Our own staged records fill the ring: the consumer can only make room once they
            // are published.
            return Ok(Staged::Full);
        } else {
            // The consumer is behind: drop and count; the consumer finds a gap marker here.
            ring.stage(record)? == Pushed::Written
        };
        if written {
            self.open.0 += 1;
            self.open.1 |= 1 << shard;
        }
        Ok(Staged::Taken)
    }

    fn end_message(&mut self) {
        let (_, touched) = self.open;
        for_each_bit(touched, |shard| {
            self.ends[shard].push_back(self.rings[shard].position())
        });
        self.messages.push_back(std::mem::take(&mut self.open));
    }

    /// One index store per ring the message touched, all stamped with the same time.
    #[inline]
    fn publish(&mut self, visible: &mut dyn FnMut(u64, u64)) -> Result<(), Error> {
        let (records, touched) = self
            .messages
            .pop_front()
            .expect("the player publishes closed messages only");
        if touched == 0 {
            return Ok(()); // every record of it was dropped
        }
        let t = monotonic_ns();
        for_each_bit(touched, |shard| {
            let end = self.ends[shard]
                .pop_front()
                .expect("an end per touched ring");
            self.rings[shard].publish_to(end, t);
        });
        visible(records, t);
        Ok(())
    }

    fn declare(&mut self, token_id: u32, record: &[u8]) -> Result<(), Error> {
        assert!(
            self.messages.is_empty() && self.open.1 == 0,
            "the player publishes before a declaration"
        );
        let ring = &mut self.rings[self.map.shard_of(token_id)];
        let start = Instant::now();
        while !ring.try_push(record)? {
            if start.elapsed() > CONTROL_RETRY {
                ring.push(record)?;
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        // A loss at the very end is announced once the consumer makes room for its marker.
        let start = Instant::now();
        for ring in &mut self.rings {
            while !ring.flush_gap() && start.elapsed() < CONTROL_RETRY {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        Ok(())
    }

    fn dropped(&self) -> u64 {
        self.rings.iter().map(|r| r.stats().dropped).sum()
    }

    fn describe(&self) -> String {
        let capacity = self.rings.first().map_or(0, |r| r.capacity());
        let size = if capacity >= 1 << 20 {
            format!("{} MiB", capacity >> 20)
        } else {
            format!("{} KiB", capacity >> 10)
        };
        let what = format!(
            "{} ring{} of {size}",
            self.rings.len(),
            if self.rings.len() == 1 { "" } else { "s" },
        );
        match self.paths.as_slice() {
            [] => format!("memory ({what})"),
            [one] => format!("shm:{} ({what})", one.display()),
            [first, .., last] => format!("shm:{} .. {} ({what})", first.display(), last.display()),
        }
    }
}

/// Calls `f` with the index of every bit set in `mask`, lowest first.
#[inline]
fn for_each_bit(mut mask: u64, mut f: impl FnMut(usize)) {
    while mask != 0 {
        f(mask.trailing_zeros() as usize);
        mask &= mask - 1;
    }
}

/// Bytes of datagrams a UDP target prepares ahead of their due times; a message larger than
/// that is sent in parts.
const MAX_STAGED_DATAGRAM_BYTES: usize = 8 << 20;
/// How often a UDP target sends every declaration again: a receiver that lost one (a dropped
/// datagram, a daemon started after the sender) learns the token within this time.
pub const REDECLARE_EVERY: Duration = Duration::from_secs(1);

/// Feed datagrams (`chronicle_feed::DatagramWriter`: a 16-byte header with a sequence number
/// that grows by one per datagram, then whole records) to one UDP address. A message's
/// records are built into datagrams of at most `max_datagram` bytes (a datagram never holds
/// two messages) ahead of its due time; they are sent back to back when it comes.
pub struct UdpTarget {
    socket: UdpSocket,
    addr: SocketAddr,
    /// Staged datagrams, oldest first; the last one still fills unless `sealed`.
    staged: VecDeque<DatagramWriter>,
    sealed: bool,
    /// Datagrams of each closed message not yet sent, and of the open one.
    messages: VecDeque<usize>,
    open: usize,
    /// Writers for reuse; with `staged`, at most `MAX_STAGED_DATAGRAM_BYTES / max_datagram`.
    spare: Vec<DatagramWriter>,
    max_datagram: usize,
    /// This run's sender session (a receiver tells a restarted sender by it) and the next
    /// datagram's number in it.
    session: u64,
    sequence: u64,
    /// Every declaration sent, by token (the newest), and when they all go again.
    declarations: Vec<(u32, Vec<u8>)>,
    next_redeclare_ns: u64,
    datagrams: u64,
    dropped: u64,
    send_errors: u64,
    last_error: Option<String>,
}

impl UdpTarget {
    /// `max_datagram`: bytes a datagram may carry, header included (1472 fits a 1500-byte
    /// Ethernet MTU; loopback takes up to 65507). A record larger than that goes alone.
    pub fn connect(addr: SocketAddr, max_datagram: usize) -> Result<Self, Error> {
        let io = |what: &str, source| Error::Io {
            what: format!("{what} udp:{addr}"),
            source,
        };
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).map_err(|e| io("binding a socket for", e))?;
        socket.connect(addr).map_err(|e| io("connecting to", e))?;
        let first = DatagramWriter::with_limit(max_datagram);
        Ok(Self {
            socket,
            addr,
            max_datagram: first.limit(),
            staged: VecDeque::new(),
            sealed: true,
            messages: VecDeque::new(),
            open: 0,
            spare: vec![first],
            session: chronicle_feed::feed::new_session(),
            sequence: 0,
            declarations: Vec::new(),
            next_redeclare_ns: 0,
            datagrams: 0,
            dropped: 0,
            send_errors: 0,
            last_error: None,
        })
    }

    pub fn datagrams(&self) -> u64 {
        self.datagrams
    }

    /// Sends a finished datagram, numbered even if the send fails: the receiver then sees
    /// the loss as a jump.
    fn send(&mut self, w: &mut DatagramWriter, visible: &mut dyn FnMut(u64, u64)) {
        let records = w.count() as u64;
        let t = monotonic_ns();
        w.set_session(self.session);
        let datagram = w.finish(self.sequence);
        self.sequence += 1;
        self.datagrams += 1;
        match self.socket.send(datagram) {
            Ok(_) => visible(records, t),
            Err(e) => {
                self.send_errors += 1;
                self.dropped += records;
                self.last_error = Some(e.to_string());
            }
        }
    }

    /// Sends every declaration again, one datagram each (not counted as stream records).
    fn redeclare(&mut self) {
        let mut w = self
            .spare
            .pop()
            .unwrap_or_else(|| DatagramWriter::with_limit(self.max_datagram));
        let declarations = std::mem::take(&mut self.declarations);
        for (_, record) in &declarations {
            w.clear();
            if w.push(record) {
                self.send(&mut w, &mut |_, _| {});
            }
        }
        self.declarations = declarations;
        self.spare.push(w);
        self.next_redeclare_ns = monotonic_ns() + REDECLARE_EVERY.as_nanos() as u64;
    }

    pub fn send_errors(&self) -> u64 {
        self.send_errors
    }
}

impl Target for UdpTarget {
    fn stage(&mut self, _token_id: u32, record: &[u8]) -> Result<Staged, Error> {
        if !self.sealed {
            if let Some(w) = self.staged.back_mut() {
                if w.push(record) {
                    return Ok(Staged::Taken);
                }
            }
        }
        let mut w = match self.spare.pop() {
            Some(w) => w,
            None if self.staged.len() < (MAX_STAGED_DATAGRAM_BYTES / self.max_datagram).max(1) => {
                DatagramWriter::with_limit(self.max_datagram)
            }
            None => return Ok(Staged::Full),
        };
        w.clear();
        if !w.push(record) {
            return Err(Error::Invalid(format!(
                "a record of {} bytes does not fit a datagram",
                record.len()
            )));
        }
        self.staged.push_back(w);
        self.sealed = false;
        self.open += 1;
        Ok(Staged::Taken)
    }

    fn end_message(&mut self) {
        self.messages.push_back(std::mem::take(&mut self.open));
        self.sealed = true;
    }

    fn publish(&mut self, visible: &mut dyn FnMut(u64, u64)) -> Result<(), Error> {
        let n = self
            .messages
            .pop_front()
            .expect("the player publishes closed messages only");
        if !self.declarations.is_empty() && monotonic_ns() >= self.next_redeclare_ns {
            self.redeclare();
        }
        for _ in 0..n {
            let mut w = self
                .staged
                .pop_front()
                .expect("a message's datagrams are staged");
            self.send(&mut w, visible);
            self.spare.push(w);
        }
        Ok(())
    }

    fn declare(&mut self, token_id: u32, record: &[u8]) -> Result<(), Error> {
        assert!(
            self.staged.is_empty(),
            "the player publishes before a declaration"
        );
        match self.declarations.iter_mut().find(|(t, _)| *t == token_id) {
            Some((_, r)) => *r = record.to_vec(),
            None => self.declarations.push((token_id, record.to_vec())),
        }
        if self.next_redeclare_ns == 0 {
            self.next_redeclare_ns = monotonic_ns() + REDECLARE_EVERY.as_nanos() as u64;
        }
        self.stage(token_id, record)?;
        self.end_message();
        self.publish(&mut |_, _| {})
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "udp:{} ({} datagrams of at most {} bytes",
            self.addr, self.datagrams, self.max_datagram
        );
        if self.send_errors > 0 {
            s.push_str(&format!(
                ", {} failed sends, last: {}",
                self.send_errors,
                self.last_error.as_deref().unwrap_or("")
            ));
        }
        s.push(')');
        s
    }
}

/// Sends nothing: each message "becomes visible" when the player publishes it. A replay into
/// it measures the pacing floor of this machine — the player's waits and bookkeeping with no
/// ring or socket work — against which a real target's pacing error is read.
#[derive(Debug, Default)]
pub struct NullTarget {
    /// Records of the open message, then of each closed one not yet published.
    open: u64,
    messages: VecDeque<u64>,
}

impl Target for NullTarget {
    fn stage(&mut self, _token_id: u32, _record: &[u8]) -> Result<Staged, Error> {
        self.open += 1;
        Ok(Staged::Taken)
    }

    fn end_message(&mut self) {
        self.messages.push_back(std::mem::take(&mut self.open));
    }

    fn publish(&mut self, visible: &mut dyn FnMut(u64, u64)) -> Result<(), Error> {
        let records = self
            .messages
            .pop_front()
            .expect("the player publishes closed messages only");
        visible(records, monotonic_ns());
        Ok(())
    }

    fn declare(&mut self, _token_id: u32, _record: &[u8]) -> Result<(), Error> {
        Ok(())
    }

    fn dropped(&self) -> u64 {
        0
    }

    fn describe(&self) -> String {
        "null (nothing sent: the pacing floor)".into()
    }
}
