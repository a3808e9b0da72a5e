//! Without the allocator installed, `allocations` refuses to count (it would see zero).

#[test]
#[should_panic(expected = "not this binary's #[global_allocator]")]
fn refuses_to_count_when_not_the_global_allocator() {
    chronicle_testkit::alloc::allocations(|| {});
}
