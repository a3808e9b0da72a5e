//! Sends a [`ReplaySource`] to a [`Target`] on a [`Schedule`], measuring the pacing error.
//!
//! The unit of delivery is the **message**: the records due at the same instant (the levels
//! of one depth message, the copies of a fan-out) become visible together, as a real feed
//! delivers them. The player stages messages into the target ahead of their due time (a
//! ring: frames written behind the published `head`; UDP: datagrams built), up to
//! `lookahead_ns` ahead of the oldest unpublished one, and publishes each at its due time:
//! one Release store of each touched ring's `head` (up to the end of that message), or its
//! prepared datagrams sent back to back. Staging ahead matters: in the BTCUSDT capture half
//! of the messages arrive within 5 µs of the previous one, less than staging a 600-level
//! depth message takes. As fast as possible, messages are `max_batch` records.
//!
//! The wait is spin-then-sleep on `CLOCK_MONOTONIC` (the clock of the ring's publish stamps,
//! `chronicle_feed::clock`): while more than `spin_ns` remain the thread sleeps (with a 1 ns
//! timer slack, so the kernel does not round the wake-up up by its default 50 µs), then it
//! spins to the due time. The default spin is 1 s, so a capture's gaps are spun, not slept:
//! on the development VM (a Firecracker guest) a vCPU that went idle sometimes wakes
//! milliseconds late. The player pins itself to a core when asked.
//!
//! Pacing error = visible time − intended time, per event, the intended time from the
//! schedule (not from the previous send): a sender that falls behind keeps being measured
//! against where it should be, so a stall is charged to every event it delayed (no
//! coordinated omission). The visible time is the clock read just before the ring publish
//! (the time the ring stamps on the publication) or before the `send` of the record's
//! datagram. Declarations are not paced.

use crate::pacing::{Pacing, Schedule};
use crate::report::Report;
use crate::source::ReplaySource;
use crate::targets::{Staged, Target};
use crate::Error;
use chronicle_feed::clock::monotonic_ns;
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How to play.
#[derive(Debug, Clone)]
pub struct PlayOptions {
    pub pacing: Pacing,
    /// Below this much time to wait the player spins instead of sleeping.
    pub spin_ns: u64,
    /// Pin the sending thread to this core (ignored if pinning fails).
    pub core: Option<usize>,
    /// As fast as possible: records made visible together at most (a ring publication, or
    /// the datagrams sent back to back). Paced replays publish each same-time group whole.
    pub max_batch: usize,
    /// Paced replays stage messages due up to this long after the oldest unpublished one.
    pub lookahead_ns: u64,
    /// Set to stop early ([`stop_on_sigint`]).
    pub stop: Option<&'static AtomicBool>,
}

impl PlayOptions {
    pub fn new(pacing: Pacing) -> Self {
        Self {
            pacing,
            spin_ns: 1_000_000_000,
            max_batch: 16,
            lookahead_ns: 1_000_000,
            core: None,
            stop: None,
        }
    }
}

/// Asks the kernel to wake sleepers on time rather than within its default 50 µs slack.
fn tighten_timer_slack() {
    // SAFETY: prctl(PR_SET_TIMERSLACK) takes an integer and affects only this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

fn histogram() -> Histogram<u64> {
    // 1 ns to a day at 3 significant digits (errors beyond a day are recorded as a day).
    Histogram::<u64>::new_with_bounds(1, 86_400_000_000_000, 3).expect("valid histogram bounds")
}

/// A message staged and not yet published.
struct Message {
    /// Ns after the start; `None`: as fast as possible.
    due: Option<u64>,
}

/// The player's state: the clock, the messages staged ahead, what it measured.
struct Player {
    /// `CLOCK_MONOTONIC` at the start of the schedule.
    start: u64,
    spin_ns: u64,
    /// Closed messages not yet published, oldest first.
    queue: VecDeque<Message>,
    /// The open message: its due time, records staged into it since its last part, in all,
    /// and whether a part of it was already closed.
    due: Option<u64>,
    pending: u64,
    size: u64,
    parted: bool,
    /// Records staged in all (paces the checks for staged messages that came due).
    staged: u64,
    hist: Histogram<u64>,
    publications: Histogram<u64>,
    wakeup: Histogram<u64>,
    sends: u64,
    groups: u64,
    largest_group: u64,
    late_groups: u64,
    split_groups: u64,
}

/// How often (in records staged) the player checks whether a staged message came due.
const READY_CHECK: u64 = 8;

impl Player {
    /// Ns since the start.
    #[inline(always)]
    fn now(&self) -> u64 {
        monotonic_ns().saturating_sub(self.start)
    }

    /// Spin-then-sleep until `due`; returns the time it was reached.
    #[inline]
    fn wait_until(&self, due: u64) -> u64 {
        loop {
            let t = self.now();
            if t >= due {
                return t;
            }
            let left = due - t;
            if left > self.spin_ns {
                std::thread::sleep(Duration::from_nanos(left - self.spin_ns));
            } else {
                core::hint::spin_loop();
            }
        }
    }

    /// Waits for the oldest staged message's due time (if it has not passed) and makes it
    /// visible, recording each of its events' pacing error.
    fn publish_oldest(&mut self, target: &mut dyn Target) -> Result<(), Error> {
        let m = self.queue.pop_front().expect("a staged message");
        if let Some(due) = m.due {
            if self.now() < due {
                let woke = self.wait_until(due);
                self.wakeup.saturating_record(woke - due);
            }
        }
        let start = self.start;
        let (hist, publications, sends) = (&mut self.hist, &mut self.publications, &mut self.sends);
        target.publish(&mut |records, t| {
            *sends += 1;
            if let Some(due) = m.due {
                let error = t.saturating_sub(start).saturating_sub(due);
                hist.saturating_record_n(error, records);
                publications.saturating_record(error);
            }
        })
    }

    /// Publishes the staged messages whose due time has come (as fast as possible: all).
    fn publish_ready(&mut self, target: &mut dyn Target) -> Result<(), Error> {
        let now = self.now();
        while self
            .queue
            .front()
            .is_some_and(|m| m.due.is_none_or(|d| d <= now))
        {
            self.publish_oldest(target)?;
        }
        Ok(())
    }

    /// Publishes every closed message, each at its due time.
    fn publish_closed(&mut self, target: &mut dyn Target) -> Result<(), Error> {
        while !self.queue.is_empty() {
            self.publish_oldest(target)?;
        }
        Ok(())
    }

    /// Closes the open message and publishes everything, each message at its due time.
    fn drain(&mut self, target: &mut dyn Target) -> Result<(), Error> {
        self.close(target);
        self.publish_closed(target)
    }

    /// Closes what is staged of the open message (all of it, or a part) into the queue.
    fn close_part(&mut self, target: &mut dyn Target) {
        if !self.parted && self.due.is_some_and(|d| self.now() > d) {
            self.late_groups += 1;
        }
        target.end_message();
        self.queue.push_back(Message { due: self.due });
        self.pending = 0;
        self.parted = true;
    }

    /// Closes the open message: the next event starts another.
    fn close(&mut self, target: &mut dyn Target) {
        if self.pending > 0 {
            self.close_part(target);
        }
        if self.size > 0 {
            self.groups += 1;
            self.largest_group = self.largest_group.max(self.size);
        }
        self.size = 0;
        self.parted = false;
    }

    /// Stages one event of the open message. A full target first publishes the oldest
    /// message (at its due time); when the open message alone fills it, what is staged of it
    /// goes out as a part.
    #[inline]
    fn stage(
        &mut self,
        target: &mut dyn Target,
        token_id: u32,
        record: &[u8],
    ) -> Result<(), Error> {
        while target.stage(token_id, record)? == Staged::Full {
            if self.queue.is_empty() {
                assert!(self.pending > 0, "a target is full only of what it staged");
                if !self.parted {
                    self.split_groups += 1;
                }
                self.close_part(target);
            }
            self.publish_oldest(target)?;
        }
        self.pending += 1;
        self.size += 1;
        self.staged += 1;
        if self.staged.is_multiple_of(READY_CHECK) {
            self.publish_ready(target)?;
        }
        Ok(())
    }
}

/// Plays `source` (from where its cursor is) into `target` on `opts.pacing`'s schedule.
///
/// Events due at the same time form a message, staged as they come and closed by the next
/// event (due later), a declaration or the end. Staged messages are published oldest first,
/// each at its due time (at once if that has passed); the player stages ahead until the next
/// event is due more than `lookahead_ns` after the oldest staged message, then waits for
/// that one. As fast as possible, a message is `max_batch` events, published when closed.
pub fn play(
    source: &mut ReplaySource,
    target: &mut dyn Target,
    opts: &PlayOptions,
) -> Result<Report, Error> {
    play_with_progress(source, target, opts, &|_, _| {})
}

/// Events between two calls of a progress callback: rare enough to cost nothing per event.
const PROGRESS_EVERY: u64 = 1 << 14;

/// [`play`], telling `progress(done, total)` the events played every
/// [`PROGRESS_EVERY`] events and at the end.
pub fn play_with_progress(
    source: &mut ReplaySource,
    target: &mut dyn Target,
    opts: &PlayOptions,
    progress: &dyn Fn(u64, u64),
) -> Result<Report, Error> {
    let total = source.total_events();
    let pinned = opts
        .core
        .filter(|&c| core_affinity::set_for_current(core_affinity::CoreId { id: c }));
    tighten_timer_slack();
    let mut schedule = Schedule::new(opts.pacing);
    let max_batch = opts.max_batch.max(1) as u64;
    let (mut events, mut declarations) = (0u64, 0u64);
    let mut stopped = false;
    let mut p = Player {
        start: monotonic_ns(),
        spin_ns: opts.spin_ns,
        queue: VecDeque::new(),
        due: None,
        pending: 0,
        size: 0,
        parted: false,
        staged: 0,
        hist: histogram(),
        publications: histogram(),
        wakeup: histogram(),
        sends: 0,
        groups: 0,
        largest_group: 0,
        late_groups: 0,
        split_groups: 0,
    };
    while let Some(item) = source.next() {
        if let Some(stop) = opts.stop {
            if stop.load(Ordering::Relaxed) {
                stopped = true;
                break;
            }
        }
        if item.declaration {
            // After everything staged before it, on its own.
            p.drain(target)?;
            target.declare(item.token_id, item.record)?;
            declarations += 1;
            continue;
        }
        events += 1;
        if events.is_multiple_of(PROGRESS_EVERY) {
            progress(events, total);
        }
        // The schedule starts one lookahead after the player, so that its first messages
        // are staged ahead of their due time like every later one (staged cold, at once, the
        // first ones went out 120 µs late).
        let due = schedule
            .next(item.capture_receive_ns)
            .map(|d| d + opts.lookahead_ns);
        if p.size > 0 && (due != p.due || (due.is_none() && p.size >= max_batch)) {
            p.close(target);
        }
        match due {
            None => p.publish_closed(target)?,
            // Stage no further ahead than the lookahead: publish (waiting for their time)
            // the messages that are due well before this event.
            Some(d) => {
                while p
                    .queue
                    .front()
                    .is_some_and(|m| m.due.is_some_and(|md| d > md + opts.lookahead_ns))
                {
                    p.publish_oldest(target)?;
                }
            }
        }
        p.due = due;
        p.stage(target, item.token_id, item.record)?;
    }
    p.drain(target)?;
    target.finish()?;
    progress(events, total);
    let duration_ns = p.now();
    let paced = opts.pacing != Pacing::AsFastAsPossible;
    Ok(Report {
        events,
        dropped: target.dropped(),
        declarations,
        sends: p.sends,
        groups: p.groups,
        largest_group: p.largest_group,
        late_groups: p.late_groups,
        split_groups: p.split_groups,
        duration_ns,
        pacing: opts.pacing,
        pacing_error_ns: paced.then_some(p.hist),
        publication_error_ns: paced.then_some(p.publications),
        wakeup_error_ns: paced.then_some(p.wakeup),
        pinned,
        stopped,
        target: target.describe(),
    })
}

/// The core a sender pins to by default: the last one (the first is where the kernel and
/// most other work land).
pub fn default_core() -> Option<usize> {
    core_affinity::get_core_ids()?.iter().map(|c| c.id).max()
}

static SIGINT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // Async-signal-safe: one atomic store.
    SIGINT.store(true, Ordering::Relaxed);
}

/// A flag that the first Ctrl-C (SIGINT) sets, so that a replay stops and still reports;
/// a second Ctrl-C terminates as usual.
pub fn stop_on_sigint() -> &'static AtomicBool {
    // SAFETY: installs a handler that only stores to an atomic; SA_RESETHAND restores the
    // default action after the first signal.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        sa.sa_flags = libc::SA_RESETHAND;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
    }
    &SIGINT
}
