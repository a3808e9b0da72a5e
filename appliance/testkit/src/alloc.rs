//! A counting global allocator, for tests that prove a hot path allocates nothing.
//!
//! A test binary installs it and measures a closure:
//!
//! ```
//! use chronicle_testkit::alloc::{allocations, CountingAllocator};
//!
//! #[global_allocator]
//! static ALLOCATOR: CountingAllocator = CountingAllocator;
//!
//! fn main() {
//!     let v = vec![1u64; 4];
//!     assert_eq!(allocations(|| drop(std::hint::black_box(v.iter().sum::<u64>()))), 0);
//!     assert_eq!(allocations(|| drop(std::hint::black_box(v.clone()))), 1);
//! }
//! ```
//!
//! Counting is per thread, so the test harness's own threads cannot interfere.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards to the system allocator; counts `alloc`, `alloc_zeroed` and `realloc` made by a
/// thread inside [`allocations`].
pub struct CountingAllocator;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // try_with: the allocator may run while thread-locals are being torn down.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract for this method, passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract for this method, passed on unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: the caller's contract for this method, passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for this method, passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations made by this thread while running `f`.
///
/// Panics unless [`CountingAllocator`] is the binary's `#[global_allocator]` (a probe
/// allocation must be counted), so a test cannot pass by counting nothing.
pub fn allocations(f: impl FnOnce()) -> u64 {
    arm();
    f();
    disarm()
}

/// Starts counting this thread's allocations (for code that cannot be wrapped in a closure,
/// such as an async loop); [`disarm`] stops and returns the count. Panics as [`allocations`]
/// does when the counting allocator is not installed.
pub fn arm() {
    assert!(!ARMED.with(Cell::get), "arm() does not nest");
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    drop(std::hint::black_box(Box::new(0u64)));
    let probe = COUNT.with(|c| c.replace(0));
    if probe != 1 {
        ARMED.with(|a| a.set(false));
        panic!(
            "CountingAllocator is not this binary's #[global_allocator] \
             ({probe} probe allocations counted, expected 1)"
        );
    }
}

/// Stops counting (see [`arm`]): allocations since.
pub fn disarm() -> u64 {
    ARMED.with(|a| a.set(false));
    COUNT.with(Cell::get)
}
