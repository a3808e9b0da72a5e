//! The few synchronisation primitives the ring uses, behind a `cfg(loom)` shim so that the
//! very same ring logic runs under the loom model checker (`RUSTFLAGS="--cfg loom"`).
//!
//! Record bytes live in [`Word`]s. In a normal build a `Word` is an `AtomicU64` accessed with
//! `Relaxed` ordering: the ring is shared with another process that we do not trust, and a
//! relaxed atomic access is the only way to read memory another party may be writing at the
//! same moment without undefined behaviour (it compiles to a plain `mov` on x86-64). Under loom
//! a `Word` is a `loom::cell::UnsafeCell`, so the model checker reports any access to record
//! bytes that is not ordered by the head/tail Release/Acquire pair as a data race.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;

/// One 8-byte unit of the ring's data area. `repr(transparent)` over `AtomicU64` so that a
/// mapped file can be viewed as `[Word]`.
#[cfg(not(loom))]
#[repr(transparent)]
pub(crate) struct Word(core::sync::atomic::AtomicU64);

#[cfg(not(loom))]
impl Word {
    pub(crate) fn new(v: u64) -> Self {
        Self(core::sync::atomic::AtomicU64::new(v))
    }

    #[inline(always)]
    pub(crate) fn load(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    #[inline(always)]
    pub(crate) fn store(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed)
    }
}

#[cfg(loom)]
pub(crate) struct Word(loom::cell::UnsafeCell<u64>);

#[cfg(loom)]
impl Word {
    pub(crate) fn new(v: u64) -> Self {
        Self(loom::cell::UnsafeCell::new(v))
    }

    pub(crate) fn load(&self) -> u64 {
        // SAFETY: loom checks that this read is ordered after the write it observes.
        self.0.with(|p| unsafe { *p })
    }

    pub(crate) fn store(&self, v: u64) {
        // SAFETY: loom checks that no read of this word races with the write.
        self.0.with_mut(|p| unsafe { *p = v })
    }
}
