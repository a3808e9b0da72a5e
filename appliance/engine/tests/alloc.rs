//! `apply` (and `snapshot`) never allocate: a counting global allocator watches 100k events.
//! One test only in this binary, and counting is per thread, so the harness cannot interfere.

mod common;

use chronicle_engine::TokenEngine;
use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // try_with: the allocator may run while thread-locals are being torn down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn apply_allocates_nothing_over_100k_events() {
    let records = market(0xA110C, 100_000, true);
    let mut engine = TokenEngine::new(TOKEN as u64);
    let mut transitions = 0u64;
    let mut digest = 0u64;

    // Sanity: the counter sees allocations at all.
    COUNTING.with(|c| c.set(true));
    drop(std::hint::black_box(vec![1u8; 64]));
    COUNTING.with(|c| c.set(false));
    assert_eq!(ALLOCATIONS.with(|n| n.replace(0)), 1);

    COUNTING.with(|c| c.set(true));
    for (i, r) in records.iter().enumerate() {
        if engine.apply(r).expect("well-ordered log").is_some() {
            transitions += 1;
        }
        if i % 1000 == 0 {
            let snap = engine.snapshot(i as u64);
            digest ^= u64::from_le_bytes(snap[40..48].try_into().expect("8 bytes"));
        }
    }
    COUNTING.with(|c| c.set(false));

    let allocations = ALLOCATIONS.with(|n| n.get());
    assert_eq!(
        allocations, 0,
        "apply/snapshot allocated {allocations} times"
    );
    assert!(
        transitions > 10,
        "the run should move the FSM ({transitions} transitions)"
    );
    assert_ne!(digest, 0);
}
