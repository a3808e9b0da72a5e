//! `apply` (and `snapshot`) never allocate: a counting global allocator watches 100k events.
//! One test only in this binary, and counting is per thread, so the harness cannot interfere.

mod common;

use chronicle_engine::TokenEngine;
use chronicle_testkit::alloc::{allocations, CountingAllocator};
use common::*;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn apply_allocates_nothing_over_100k_events() {
    let records = market(0xA110C, 100_000, true);
    let mut engine = TokenEngine::new(TOKEN as u64);
    let mut transitions = 0u64;
    let mut digest = 0u64;

    // Sanity: the counter sees allocations at all.
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![1u8; 64]))), 1);

    let n = allocations(|| {
        for (i, r) in records.iter().enumerate() {
            if engine.apply(r).expect("well-ordered log").is_some() {
                transitions += 1;
            }
            if i % 1000 == 0 {
                let snap = engine.snapshot(i as u64);
                digest ^= u64::from_le_bytes(snap[40..48].try_into().expect("8 bytes"));
            }
        }
    });
    assert_eq!(n, 0, "apply/snapshot allocated {n} times");
    assert!(
        transitions > 10,
        "the run should move the FSM ({transitions} transitions)"
    );
    assert_ne!(digest, 0);
}
