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
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC exists on every Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
