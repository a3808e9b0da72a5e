//! Surviving a ring file that is truncated while mapped.
//!
//! Touching a page of a `MAP_SHARED` file mapping beyond the file's end raises SIGBUS. A
//! hostile or buggy peer can truncate a ring file at any moment, so checking the size with
//! `fstat` before reading is racy (and a syscall on the hot path). Instead each ring mapping
//! is registered here, and a process-wide SIGBUS handler that finds the faulting address in a
//! registered mapping (1) sets that mapping's `truncated` flag and (2) maps an anonymous zero
//! page over the faulting page with `MAP_FIXED`, so the interrupted load or store completes
//! (reading zeros). The ring code checks the flag after copying each record, so the zeros
//! never reach a caller: the consumer stops with `RingFault::Truncated`. No `longjmp` (which
//! Rust cannot use soundly), no syscall on the hot path, no race.
//!
//! Faults outside registered mappings go to the handler that was installed before ours (the
//! Rust runtime's stack-overflow handler, or the default action), so nothing else changes.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// A limit on mapped rings per process (rings per shard, producers plus consumers).
pub(crate) const MAX_MAPPINGS: usize = 256;

struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    truncated: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)] // only the array initialiser copies it
const EMPTY: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    truncated: AtomicBool::new(false),
};

static SLOTS: [Slot; MAX_MAPPINGS] = [EMPTY; MAX_MAPPINGS];
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);

/// The action that was installed before ours; we chain to it for foreign faults.
struct Previous(libc::sigaction);
// SAFETY: a plain C struct (integers and a function address), written once before our
// handler is installed and only read afterwards.
unsafe impl Sync for Previous {}
// SAFETY: as for Sync: plain data, never written after installation.
unsafe impl Send for Previous {}

static PREVIOUS: OnceLock<Result<Previous, i32>> = OnceLock::new();

fn install() -> Result<(), i32> {
    let result = PREVIOUS.get_or_init(|| {
        // SAFETY: plain libc calls with valid pointers.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            if page > 0 {
                PAGE_SIZE.store(page as usize, Ordering::Relaxed);
            }
            let mut new: libc::sigaction = MaybeUninit::zeroed().assume_init();
            new.sa_sigaction = handler as *const () as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut new.sa_mask);
            let mut old: libc::sigaction = MaybeUninit::zeroed().assume_init();
            if libc::sigaction(libc::SIGBUS, &new, &mut old) != 0 {
                return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
            }
            Ok(Previous(old))
        }
    });
    result.as_ref().map(|_| ()).map_err(|e| *e)
}

/// Registers `[start, start + len)`; returns the slot, whose flag the ring reads.
pub(crate) fn register(start: usize, len: usize) -> Result<usize, RegisterError> {
    assert!(
        start != 0 && len != 0,
        "a mapping has an address and a length"
    );
    install().map_err(RegisterError::Sigaction)?;
    for (i, slot) in SLOTS.iter().enumerate() {
        // Claim the slot (usize::MAX: reserved, ignored by the handler), then publish the
        // length before the start, since the handler matches on the start.
        if slot.start.load(Ordering::Relaxed) != 0 {
            continue;
        }
        if slot
            .start
            .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            slot.truncated.store(false, Ordering::Relaxed);
            slot.len.store(len, Ordering::Relaxed);
            slot.start.store(start, Ordering::Release);
            return Ok(i);
        }
    }
    Err(RegisterError::TooMany)
}

pub(crate) fn unregister(slot: usize) {
    let s = &SLOTS[slot];
    s.len.store(0, Ordering::Relaxed);
    s.start.store(0, Ordering::Release);
}

pub(crate) fn flag(slot: usize) -> &'static AtomicBool {
    &SLOTS[slot].truncated
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum RegisterError {
    TooMany,
    Sigaction(i32),
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    for slot in SLOTS.iter() {
        let start = slot.start.load(Ordering::Acquire);
        if start == 0 || start == usize::MAX {
            continue;
        }
        let len = slot.len.load(Ordering::Relaxed);
        if addr < start || addr - start >= len {
            continue;
        }
        slot.truncated.store(true, Ordering::Relaxed);
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        let at = addr & !(page - 1);
        // SAFETY: replaces one page inside a mapping we own; mmap is a raw syscall on Linux
        // (async-signal-safe in practice). The ring is dead from here on: the flag says so.
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            return;
        }
        break; // cannot repair: fall through to the default action
    }
    chain(sig, info, ctx);
}

fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    if let Some(Ok(Previous(prev))) = PREVIOUS.get() {
        let h = prev.sa_sigaction;
        if h != libc::SIG_DFL && h != libc::SIG_IGN {
            if prev.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler was installed as an SA_SIGINFO handler.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(h) };
                f(sig, info, ctx);
            } else {
                // SAFETY: the previous handler was installed as a plain handler.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
                f(sig);
            }
            return;
        }
    }
    // Default action: restore it and return; the faulting access repeats and kills the
    // process with SIGBUS, as it would have without us.
    // SAFETY: plain libc calls with valid pointers.
    unsafe {
        let mut dfl: libc::sigaction = MaybeUninit::zeroed().assume_init();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut dfl.sa_mask);
        libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
    }
}
