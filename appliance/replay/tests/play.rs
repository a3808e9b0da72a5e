//! The player: the schedule's intended times are the capture's (or the rate's) and never
//! depend on when earlier records left (no coordinated omission); the unit of delivery is the
//! group of events due at the same time, staged ahead and made visible in one publication,
//! never before its due time; a ring target stages invisibly, reports "full" only of its own
//! staged records and otherwise drops with a gap exactly where records went missing, also
//! when a group outgrows the ring and goes out in parts; a replay into a ring consumed by
//! another thread (in memory, in /dev/shm over two shards, or through UDP and the feed
//! handler) delivers every record in order with no drops at a modest rate.
//! No assertion depends on the machine being fast: timing checks are lower bounds.

use chronicle_feed::clock::monotonic_ns;
use chronicle_feed::{mem_ring, Consumer, FeedHandler, ShardMap};
use chronicle_protocol::{type_id, Body, RecordView};
use chronicle_replay::{
    play, Error, Input, NullTarget, Pacing, PlayOptions, ReplaySource, RingTarget, Schedule,
    SourceOptions, Staged, SyntheticConfig, Target, UdpTarget,
};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VENUE: &str = "binance-usdm";

fn source(seconds: u64, tokens: u32, data: &std::path::Path) -> ReplaySource {
    let mut opts = SourceOptions::new(VENUE, Some(data));
    opts.tokens = tokens;
    let cfg = SyntheticConfig {
        duration_ns: seconds * 1_000_000_000,
        ..SyntheticConfig::default()
    };
    ReplaySource::open_with(Input::Synthetic(cfg), &opts).unwrap()
}

/// Every record the source emits, with its token.
fn expected(s: &mut ReplaySource) -> Vec<(u32, Vec<u8>)> {
    let mut v = Vec::new();
    while let Some(i) = s.next() {
        v.push((i.token_id, i.record.to_vec()));
    }
    s.rewind();
    v
}

#[test]
fn schedule_follows_capture_time_or_rate_not_the_sender() {
    // Speed: (running max of receive time - first) / speed; a step back is due at once.
    let mut s = Schedule::new(Pacing::Speed(2.0));
    let recv = [1_000, 1_000, 1_500, 1_200, 3_000, 2_000, 5_000];
    let got: Vec<u64> = recv.iter().map(|&r| s.next(r).unwrap()).collect();
    assert_eq!(got, [0, 0, 250, 250, 1_000, 1_000, 2_000]);

    let mut s = Schedule::new(Pacing::Speed(1.0));
    let got: Vec<u64> = [7, 9, 20].iter().map(|&r| s.next(r).unwrap()).collect();
    assert_eq!(got, [0, 2, 13]);

    // Rate: event i at i / rate, whatever the capture says.
    let mut s = Schedule::new(Pacing::Rate(1_000.0));
    let got: Vec<u64> = [5, 5, 1, 99].iter().map(|&r| s.next(r).unwrap()).collect();
    assert_eq!(got, [0, 1_000_000, 2_000_000, 3_000_000]);
    let mut s = Schedule::new(Pacing::Rate(3.0));
    s.next(0);
    assert_eq!(s.next(0), Some(333_333_333));

    let mut s = Schedule::new(Pacing::AsFastAsPossible);
    assert_eq!(s.next(42), None);

    assert!(Pacing::Speed(0.0).validate().is_err());
    assert!(Pacing::Rate(f64::NAN).validate().is_err());
    assert!(Pacing::Speed(10.0).validate().is_ok());
}

#[test]
fn schedule_of_a_capture_at_speed_one_is_its_receive_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = source(2, 1, dir.path());
    let mut s = Schedule::new(Pacing::Speed(1.0));
    let (mut first, mut latest, mut n) = (None, 0u64, 0);
    while let Some(i) = src.next() {
        if i.declaration {
            continue;
        }
        let r = i.capture_receive_ns;
        let f = *first.get_or_insert(r);
        latest = latest.max(r);
        assert_eq!(s.next(r), Some(latest - f));
        n += 1;
    }
    assert_eq!(n, src.total_events());
    // The last event is due at the capture's receive span.
    assert_eq!(latest - first.unwrap(), src.summary().receive_span_ns());
}

/// A target that stalls once: the records queued behind the stall must be charged for it.
struct Stalling {
    sends: u64,
    staged: u64,
    messages: VecDeque<u64>,
    stall_at: u64,
    stall: Duration,
    stop_after: u64,
    stop: &'static AtomicBool,
}

impl Target for Stalling {
    fn stage(&mut self, _: u32, _: &[u8]) -> Result<Staged, Error> {
        self.sends += 1;
        self.staged += 1;
        if self.sends == self.stall_at {
            std::thread::sleep(self.stall);
        }
        if self.sends == self.stop_after {
            self.stop.store(true, Ordering::Relaxed);
        }
        Ok(Staged::Taken)
    }
    fn end_message(&mut self) {
        self.messages.push_back(std::mem::take(&mut self.staged));
    }
    fn publish(&mut self, visible: &mut dyn FnMut(u64, u64)) -> Result<(), Error> {
        visible(self.messages.pop_front().unwrap(), monotonic_ns());
        Ok(())
    }
    fn declare(&mut self, _: u32, _: &[u8]) -> Result<(), Error> {
        Ok(())
    }
    fn dropped(&self) -> u64 {
        0
    }
    fn describe(&self) -> String {
        "stalling".into()
    }
}

#[test]
fn pacing_error_is_measured_against_the_schedule_no_coordinated_omission() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = source(2, 1, dir.path());
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    // 100 µs apart; the 10th send stalls 20 ms: ~200 events were due during the stall.
    let mut t = Stalling {
        sends: 0,
        staged: 0,
        messages: VecDeque::new(),
        stall_at: 10,
        stall: Duration::from_millis(20),
        stop_after: 300,
        stop,
    };
    let mut opts = PlayOptions::new(Pacing::Rate(10_000.0));
    opts.stop = Some(stop);
    let r = play(&mut src, &mut t, &opts).unwrap();
    assert!(r.stopped);
    assert_eq!(r.events, 300, "stops at the next record after the flag");
    let h = r.pacing_error_ns.as_ref().unwrap();
    assert_eq!(
        h.len(),
        300,
        "every event sent is measured, declarations are not"
    );
    assert!(
        h.max() >= 19_000_000,
        "the stalled sends: max {} ns",
        h.max()
    );
    // Measured from the previous send, only one event would look late; against the
    // schedule, the ~190 events due during the stall are all late (≥ 1 ms for ~180).
    let late = h.count_between(1_000_000, u64::MAX);
    assert!(late >= 150, "{late} events ≥ 1 ms late");
    assert!(r.declarations == 1);
}

/// Pops until `n` records arrived (or 60 s passed).
fn collect(consumer: &mut Consumer, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    let start = Instant::now();
    while out.len() < n && start.elapsed() < Duration::from_secs(60) {
        match consumer.pop().expect("no ring fault") {
            Some(v) => out.push(v.bytes.to_vec()),
            None => std::thread::yield_now(),
        }
    }
    out
}

fn assert_no_gaps(records: &[Vec<u8>]) {
    for (n, r) in records.iter().enumerate() {
        let v = RecordView::parse(r).unwrap();
        assert_ne!(v.type_id, type_id::GAP_V1, "record {n} is a gap marker");
    }
}

#[test]
fn replay_into_a_memory_ring_delivers_everything_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = source(3, 2, dir.path());
    let want = expected(&mut src);
    let (producer, mut consumer) = mem_ring(1 << 20);
    let n = want.len();
    let reader = std::thread::spawn(move || collect(&mut consumer, n));
    let mut target = RingTarget::new(vec![producer]).unwrap();
    let r = play(
        &mut src,
        &mut target,
        &PlayOptions::new(Pacing::Rate(100_000.0)),
    )
    .unwrap();
    let got = reader.join().unwrap();
    assert_eq!(r.dropped, 0);
    assert_eq!(r.events, src.total_events());
    assert_eq!(r.declarations, 2);
    assert_eq!(r.sent(), r.events);
    assert!(r.pacing_error_at(0.5).is_some());
    assert!(r.wakeup_error_ns.is_some());
    // At a fixed rate every event is due on its own: one publication each.
    assert_eq!(r.groups, r.events);
    assert_eq!(r.sends, r.events);
    assert_eq!(r.largest_group, 1);
    // At 100k events/s the run cannot be shorter than the schedule.
    assert!(r.duration_ns as f64 >= (r.events - 1) as f64 * 1e9 / 100_000.0);
    assert_no_gaps(&got);
    assert_eq!(got.len(), n);
    for (i, (g, (_, w))) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "record {i}");
    }
}

#[test]
fn replay_into_shm_rings_routes_tokens_to_shards_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = source(2, 3, dir.path());
    let want = expected(&mut src);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = std::path::PathBuf::from(format!(
        "/dev/shm/chronicle-replay-test-{}-{nanos}",
        std::process::id()
    ));
    let mut target = RingTarget::create_shm(&prefix, 2, 1 << 20, false).unwrap();
    let paths = target.paths().to_vec();
    assert_eq!(paths.len(), 2);
    assert!(paths[1].to_string_lossy().ends_with("-1"));
    let map = ShardMap::modulo(2).unwrap();
    let per_shard: Vec<Vec<Vec<u8>>> = (0..2)
        .map(|s| {
            want.iter()
                .filter(|(t, _)| map.shard_of(*t) == s)
                .map(|(_, r)| r.clone())
                .collect()
        })
        .collect();
    let readers: Vec<_> = paths
        .iter()
        .zip(&per_shard)
        .map(|(p, w)| {
            let mut c = chronicle_feed::attach(p, &Default::default()).unwrap();
            let n = w.len();
            std::thread::spawn(move || collect(&mut c, n))
        })
        .collect();
    let r = play(
        &mut src,
        &mut target,
        &PlayOptions::new(Pacing::Rate(50_000.0)),
    )
    .unwrap();
    let got: Vec<Vec<Vec<u8>>> = readers.into_iter().map(|h| h.join().unwrap()).collect();
    for p in &paths {
        std::fs::remove_file(p).unwrap();
    }
    assert_eq!(r.dropped, 0);
    assert_eq!(r.events, src.total_events());
    assert!(r.target.starts_with("shm:"), "{}", r.target);
    for (s, (g, w)) in got.iter().zip(&per_shard).enumerate() {
        assert_no_gaps(g);
        assert_eq!(g.len(), w.len(), "shard {s}");
        assert!(g == w, "shard {s} received its tokens' records in order");
    }
    assert!(
        per_shard.iter().all(|w| !w.is_empty()),
        "3 tokens over 2 shards"
    );
}

#[test]
fn replay_over_udp_through_the_feed_handler_delivers_everything_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = source(1, 2, dir.path());
    let want = expected(&mut src);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (producer, mut consumer) = mem_ring(1 << 22);
    let handler = FeedHandler::new(socket, vec![producer], ShardMap::modulo(1).unwrap()).unwrap();
    let addr = handler.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let feed = handler.spawn(None, false, stop.clone()).unwrap();
    let mut target = UdpTarget::connect(addr, 1472).unwrap();
    // Modest (a loopback socket buffer is not a ring, and this box may be busy), paced by
    // the capture so that a group's records share datagrams.
    let r = play(&mut src, &mut target, &PlayOptions::new(Pacing::Speed(5.0))).unwrap();
    let got = collect(&mut consumer, want.len());
    stop.store(true, Ordering::Relaxed);
    let (handler, result) = feed.join().unwrap();
    result.unwrap();
    let stats = handler.stats();
    assert_eq!(r.dropped, 0);
    // A datagram never holds two messages; a message's records share datagrams.
    assert!(target.datagrams() >= r.groups + r.declarations);
    assert!(target.datagrams() < r.events + r.declarations);
    assert_eq!(stats.datagrams, target.datagrams(), "{stats:?}");
    assert_eq!(stats.malformed, 0);
    assert_eq!(stats.lost_datagrams, 0);
    assert_no_gaps(&got);
    assert_eq!(got.len(), want.len());
    for (i, (g, (_, w))) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "record {i}");
    }
}

/// Records what the player hands over: the open message, the closed ones, and each
/// publication with its time and how many messages were staged behind it.
#[derive(Default)]
struct Recorder {
    open: Vec<Vec<u8>>,
    closed: VecDeque<Vec<Vec<u8>>>,
    publications: Vec<(Vec<Vec<u8>>, u64)>,
    most_staged_ahead: usize,
    declarations: u64,
}

impl Target for Recorder {
    fn stage(&mut self, _: u32, record: &[u8]) -> Result<Staged, Error> {
        self.open.push(record.to_vec());
        Ok(Staged::Taken)
    }
    fn end_message(&mut self) {
        assert!(!self.open.is_empty(), "a message holds records");
        self.closed.push_back(std::mem::take(&mut self.open));
    }
    fn publish(&mut self, visible: &mut dyn FnMut(u64, u64)) -> Result<(), Error> {
        let t = monotonic_ns();
        let records = self.closed.pop_front().expect("publishes a closed message");
        self.most_staged_ahead = self.most_staged_ahead.max(self.closed.len());
        visible(records.len() as u64, t);
        self.publications.push((records, t));
        Ok(())
    }
    fn declare(&mut self, _: u32, _: &[u8]) -> Result<(), Error> {
        assert!(
            self.open.is_empty() && self.closed.is_empty(),
            "a declaration follows what was staged"
        );
        self.declarations += 1;
        Ok(())
    }
    fn dropped(&self) -> u64 {
        0
    }
    fn describe(&self) -> String {
        "recorder".into()
    }
}

/// The source's events grouped as the schedule makes them due: consecutive events with the
/// same intended time (a declaration ends a group), with that time.
fn groups_of(s: &mut ReplaySource, pacing: Pacing) -> Vec<(u64, Vec<Vec<u8>>)> {
    let mut schedule = Schedule::new(pacing);
    let mut groups: Vec<(u64, Vec<Vec<u8>>)> = Vec::new();
    let mut split = true;
    while let Some(i) = s.next() {
        if i.declaration {
            split = true;
            continue;
        }
        let due = schedule.next(i.capture_receive_ns).unwrap();
        match groups.last_mut() {
            Some((d, g)) if *d == due && !split => g.push(i.record.to_vec()),
            _ => groups.push((due, vec![i.record.to_vec()])),
        }
        split = false;
    }
    s.rewind();
    groups
}

#[test]
fn a_same_time_group_becomes_visible_in_one_publication_never_before_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = source(2, 2, dir.path());
    let pacing = Pacing::Speed(20.0);
    let want = groups_of(&mut src, pacing);
    let opts = PlayOptions::new(pacing);
    let largest = want.iter().map(|(_, g)| g.len()).max().unwrap();
    assert!(
        largest > opts.max_batch,
        "the model has groups larger than a batch ({largest})"
    );
    let mut target = Recorder::default();
    let before = monotonic_ns();
    let r = play(&mut src, &mut target, &opts).unwrap();
    assert_eq!(target.declarations, 2);
    assert_eq!(
        target.publications.len(),
        want.len(),
        "one publication per group"
    );
    for (n, ((records, t), (due, group))) in target.publications.iter().zip(&want).enumerate() {
        assert!(
            records == group,
            "group {n}: its records, in order, in one publication"
        );
        // The schedule starts one lookahead after the player.
        assert!(
            t - before >= *due + opts.lookahead_ns,
            "group {n} visible {} ns after the start, due at {due} + {}",
            t - before,
            opts.lookahead_ns
        );
    }
    assert_eq!(
        (r.groups, r.sends, r.split_groups),
        (want.len() as u64, want.len() as u64, 0)
    );
    assert_eq!(r.largest_group, largest as u64);
    assert!(
        target.most_staged_ahead > 0,
        "later messages are staged while an earlier one waits for its time"
    );
    assert_eq!(r.pacing_error_ns.as_ref().unwrap().len(), r.events);
    // One wait per group at most: events of one group share their wake-up.
    assert!(r.wakeup_error_ns.as_ref().unwrap().len() <= r.groups);
}

#[test]
fn the_null_target_measures_the_same_schedule_with_nothing_sent() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = source(2, 2, dir.path());
    let pacing = Pacing::Speed(20.0);
    let want = groups_of(&mut src, pacing);
    let events: usize = want.iter().map(|(_, g)| g.len()).sum();
    let r = play(
        &mut src,
        &mut NullTarget::default(),
        &PlayOptions::new(pacing),
    )
    .unwrap();
    assert_eq!((r.events, r.dropped), (events as u64, 0));
    assert_eq!((r.groups, r.sends), (want.len() as u64, want.len() as u64));
    assert_eq!(r.pacing_error_ns.as_ref().unwrap().len(), events as u64);
    assert_eq!(
        r.publication_error_ns.as_ref().unwrap().len(),
        want.len() as u64
    );
}

#[test]
fn as_fast_as_possible_groups_are_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = source(1, 1, dir.path());
    let mut opts = PlayOptions::new(Pacing::AsFastAsPossible);
    opts.max_batch = 7;
    let mut target = Recorder::default();
    let r = play(&mut src, &mut target, &opts).unwrap();
    let sizes: Vec<usize> = target.publications.iter().map(|(g, _)| g.len()).collect();
    let (last, full) = sizes.split_last().unwrap();
    assert!(
        full.iter().all(|&n| n == 7) && (1..=7).contains(last),
        "{sizes:?}"
    );
    assert_eq!(sizes.iter().sum::<usize>() as u64, r.events);
    assert!(r.pacing_error_ns.is_none());
}

/// The first `n` events of a short synthetic stream.
fn some_events(n: usize) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let mut src = source(2, 1, dir.path());
    let mut v = Vec::new();
    while let Some(i) = src.next() {
        if !i.declaration && v.len() < n {
            v.push(i.record.to_vec());
        }
    }
    v
}

#[test]
fn a_ring_target_publishes_one_staged_message_at_a_time() {
    let events = some_events(30);
    let (producer, mut consumer) = mem_ring(1 << 16);
    let mut t = RingTarget::new(vec![producer]).unwrap();
    for (n, e) in events.iter().enumerate() {
        assert_eq!(t.stage(1, e).unwrap(), Staged::Taken);
        if n == 19 || n == 29 {
            t.end_message();
        }
    }
    assert!(
        consumer.pop().unwrap().is_none(),
        "staged messages are invisible"
    );
    for (range, message) in [(0..20, "first"), (20..30, "second")] {
        let mut calls = Vec::new();
        t.publish(&mut |n, at| calls.push((n, at))).unwrap();
        assert_eq!(calls.len(), 1, "the {message} message in one publication");
        assert_eq!(calls[0].0, range.len() as u64);
        for i in range {
            assert_eq!(
                consumer.pop().unwrap().unwrap().bytes,
                &events[i][..],
                "record {i}"
            );
        }
        assert!(
            consumer.pop().unwrap().is_none(),
            "nothing of the next message"
        );
    }
}

#[test]
fn a_ring_target_is_full_only_of_its_own_records_else_it_drops_with_a_gap() {
    let events = some_events(400);
    let (producer, mut consumer) = mem_ring(4096);
    let mut t = RingTarget::new(vec![producer]).unwrap();
    let mut staged = 0;
    while t.stage(1, &events[staged]).unwrap() == Staged::Taken {
        staged += 1;
    }
    assert!(
        staged > 10 && staged < events.len(),
        "{staged} records fill 4 KiB"
    );
    assert!(
        consumer.pop().unwrap().is_none(),
        "staged records are invisible"
    );
    assert_eq!(
        t.dropped(),
        0,
        "a ring full of our own staged records drops nothing"
    );
    t.end_message();
    t.publish(&mut |_, _| {}).unwrap();
    for (i, want) in events[..staged].iter().enumerate() {
        assert_eq!(
            consumer.pop().unwrap().unwrap().bytes,
            &want[..],
            "record {i}"
        );
    }
    assert!(consumer.pop().unwrap().is_none());

    // Ring full of published records the consumer has not read: nothing of ours is staged,
    // so the record is taken and dropped (the feed never waits), and a gap marks it.
    let (producer, mut consumer) = mem_ring(4096);
    let mut t = RingTarget::new(vec![producer]).unwrap();
    let mut n = 0;
    while t.stage(1, &events[n]).unwrap() == Staged::Taken {
        n += 1;
    }
    t.end_message();
    t.publish(&mut |_, _| {}).unwrap();
    assert_eq!(t.stage(1, &events[n]).unwrap(), Staged::Taken);
    assert_eq!(t.dropped(), 1);
    for _ in 0..n {
        consumer.pop().unwrap().unwrap();
    }
    assert_eq!(t.stage(1, &events[n + 1]).unwrap(), Staged::Taken);
    t.end_message();
    t.publish(&mut |_, _| {}).unwrap();
    let gap = consumer.pop().unwrap().unwrap().decode().unwrap();
    assert!(matches!(gap.body, Body::Gap(g) if g.lost == 1), "{gap:?}");
    assert_eq!(consumer.pop().unwrap().unwrap().bytes, &events[n + 1][..]);
}

#[test]
fn a_group_larger_than_the_ring_goes_out_in_parts_with_exact_gaps() {
    let dir = tempfile::tempdir().unwrap();
    // Fan-out: each group is 8 copies of a capture message's records.
    let mut src = source(2, 8, dir.path());
    let want: Vec<Vec<u8>> = expected(&mut src).into_iter().map(|(_, r)| r).collect();
    let (producer, mut consumer) = mem_ring(1 << 16);
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                let finished = done.load(Ordering::Acquire);
                match consumer.pop().expect("no ring fault") {
                    Some(v) => got.push(v.bytes.to_vec()),
                    None if finished => return got,
                    None => std::thread::yield_now(),
                }
            }
        })
    };
    let mut target = RingTarget::new(vec![producer]).unwrap();
    let r = play(
        &mut src,
        &mut target,
        &PlayOptions::new(Pacing::Speed(50.0)),
    )
    .unwrap();
    done.store(true, Ordering::Release);
    let got = reader.join().unwrap();
    assert!(
        r.split_groups > 0,
        "groups of {} records outgrow a 64 KiB ring",
        r.largest_group
    );
    // Every record arrived in order, except runs that a gap marker announces exactly.
    let mut next = 0;
    let mut lost = 0;
    for (i, g) in got.iter().enumerate() {
        let v = RecordView::parse(g).unwrap();
        if v.type_id == type_id::GAP_V1 {
            let Body::Gap(gap) = v.decode().unwrap().body else {
                unreachable!()
            };
            next += gap.lost as usize;
            lost += gap.lost;
            continue;
        }
        assert_eq!(g, &want[next], "record {i} is stream record {next}");
        next += 1;
    }
    assert_eq!(next, want.len(), "every record received or announced lost");
    assert_eq!(lost, r.dropped);
}
