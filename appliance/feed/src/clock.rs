//! The clock of Zone 1 timestamps: `CLOCK_MONOTONIC`, in nanoseconds.
//!
//! A ring frame carries the time its publication became visible (`docs/formats/ring.md`), and
//! the reader compares it with its own clock, in another process. `CLOCK_MONOTONIC` is one
//! clock for every process of the machine, needs no calibration shared between them, and any
//! producer (in any language) can read it. It is read through the vDSO (no system call) when
//! the kernel's clocksource allows it (`tsc`, `kvm-clock`): ~22 ns a read on the development
//! VM, against ~11 ns for the raw TSC, whose ticks would need each reader to know the
//! writer's calibration.

/// Now, on `CLOCK_MONOTONIC`, in ns (never 0 on a running system).
#[inline]
pub fn monotonic_ns() -> u64 {
    now_ns(libc::CLOCK_MONOTONIC)
}

/// Now, on `clock` (a `libc::CLOCK_*`; the benches read `CLOCK_THREAD_CPUTIME_ID`), in ns.
#[inline]
pub fn now_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer (an unknown clock is an EINVAL, caught below).
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    // Kept in release builds (TigerBeetle style): one predictable branch after a ~22 ns read.
    assert_eq!(rc, 0, "clock_gettime({clock})");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
