//! The counting allocator counts what this thread allocates inside `allocations`, and
//! nothing else.

use chronicle_testkit::alloc::{allocations, CountingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn counts_allocations_and_reallocations_of_this_thread_only() {
    assert_eq!(allocations(|| {}), 0);
    assert_eq!(allocations(|| drop(black_box(vec![1u8; 64]))), 1);
    assert_eq!(
        allocations(|| drop(black_box(vec![0u8; 64]))),
        1,
        "alloc_zeroed"
    );
    let n = allocations(|| {
        let mut v: Vec<u8> = black_box(Vec::with_capacity(1));
        v.extend_from_slice(black_box(&[0u8; 4096]));
        drop(v);
    });
    assert_eq!(n, 2, "alloc then realloc");
    // Spawning allocates on this thread; the spawned thread's vec is not counted here.
    std::thread::scope(|s| {
        s.spawn(|| {}); // warm-up: any one-time cost of a first spawn
    });
    let other = allocations(|| {
        std::thread::scope(|s| {
            s.spawn(|| drop(black_box(vec![1u8; 64])));
        })
    });
    let spawn_only = allocations(|| {
        std::thread::scope(|s| {
            s.spawn(|| {});
        })
    });
    assert_eq!(other, spawn_only);
}

#[test]
#[should_panic(expected = "does not nest")]
fn nesting_is_refused() {
    allocations(|| {
        allocations(|| {});
    });
}
